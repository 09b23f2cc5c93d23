//! `lab report parse`'s text: one line per report (where, title, signature), and with a
//! vmlinux every frame decoded as scripts/decode_stacktrace.sh prints it.

use crate::report::parser::Report;
use crate::report::symbolize::decoded;
use std::path::Path;

pub fn listing(console: &Path, reports: &[Report], with_frames: bool) -> String {
    let mut s = String::new();
    for r in reports {
        let flag = if r.corrupted { " (corrupted)" } else { "" };
        s.push_str(&format!(
            "{}:{}: {}{flag}  [{}]\n",
            console.display(),
            r.line,
            r.title,
            r.signature
        ));
        if with_frames {
            for frame in &r.frames {
                for line in decoded(frame) {
                    s.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    s
}
