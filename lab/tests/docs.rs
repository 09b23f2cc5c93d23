//! The documentation against the code it describes: every key a configuration file accepts
//! is in docs/configuration.md, every page of docs/ is reachable from the README, every
//! relative link leads to a file and heading that exist, and every measurement carries where
//! it was made.

use regex::Regex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The keys of the `deny_unknown_fields` structs in `source` (a `rename` counts as the key).
fn keys(source: &str) -> Vec<(String, String)> {
    let item = Regex::new(
        r"(?s)#\[serde\(deny_unknown_fields[^\]]*\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([a-z]+\))? )?struct (\w+)[^{]*\{(.*?)\n\}",
    )
    .unwrap();
    let field = Regex::new(r"^\s*(?:pub(?:\([a-z]+\))? )?([a-z_][a-z0-9_]*):").unwrap();
    let rename = Regex::new(r#"rename\s*=\s*"([^"]+)""#).unwrap();
    let mut out = Vec::new();
    for c in item.captures_iter(source) {
        let mut renamed = None;
        for line in c[2].lines() {
            if let Some(r) = rename.captures(line) {
                renamed = Some(r[1].to_string());
            }
            if let Some(f) = field.captures(line) {
                let key = renamed.take().unwrap_or_else(|| f[1].to_string());
                out.push((c[1].to_string(), key));
            }
        }
    }
    out
}

/// The keys of `source` that `doc` does not name as `` `key` ``, `[key]` or `[[…key]]`.
fn undocumented(source: &str, doc: &str) -> Vec<String> {
    keys(source)
        .into_iter()
        .filter(|(_, k)| {
            ![
                format!("`{k}`"),
                format!("[{k}]"),
                format!(".{k}]]"),
                format!("[[{k}]]"),
            ]
            .iter()
            .any(|form| doc.contains(form.as_str()))
        })
        .map(|(s, k)| format!("{s}.{k}"))
        .collect()
}

#[test]
fn every_configuration_key_is_in_the_reference() {
    let doc = read(&repo().join("docs/configuration.md"));
    let mut missing = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("lab/src/config")).unwrap() {
        let path = entry.unwrap().path();
        let source = read(&path);
        seen += keys(&source).len();
        for k in undocumented(&source, &doc) {
            missing.push(format!("{}: {k}", path.display()));
        }
    }
    assert!(seen > 40, "the key scan found only {seen} keys");
    assert!(
        missing.is_empty(),
        "keys docs/configuration.md does not name:\n{}",
        missing.join("\n")
    );
    // A key added to a file's struct is found missing.
    let planted = "#[derive(Deserialize)]\n#[serde(deny_unknown_fields)]\nstruct RawPlanted {\n    name: String,\n    #[serde(rename = \"warp-factor\")]\n    warp: u8,\n}\n";
    assert_eq!(undocumented(planted, &doc), ["RawPlanted.warp-factor"]);
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

fn pages() -> Vec<PathBuf> {
    let mut all = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            all.push(path);
        }
    }
    all
}

/// Relative links of `text` (in `dir`) that lead nowhere: "target (why)".
fn broken_links(dir: &Path, text: &str) -> Vec<String> {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut out = Vec::new();
    for c in link.captures_iter(text) {
        let target = &c[1];
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (file, fragment) = match target.split_once('#') {
            Some((f, a)) => (f, Some(a)),
            None => (target, None),
        };
        let path = if file.is_empty() {
            None
        } else {
            Some(dir.join(file))
        };
        if let Some(p) = &path {
            if !p.exists() {
                out.push(format!("{target} (no such file)"));
                continue;
            }
        }
        if let Some(fragment) = fragment {
            let heads = match &path {
                Some(p) if p.extension().is_some_and(|e| e == "md") => anchors(&read(p)),
                Some(_) => continue,
                None => anchors(text),
            };
            if !heads.contains(fragment) {
                out.push(format!("{target} (no such heading)"));
            }
        }
    }
    out
}

#[test]
fn every_page_is_reachable_and_every_link_leads_somewhere() {
    let readme = read(&repo().join("README.md"));
    let mut wrong = Vec::new();
    for page in pages() {
        let text = read(&page);
        let dir = page.parent().unwrap();
        for b in broken_links(dir, &text) {
            wrong.push(format!("{}: {b}", page.display()));
        }
        let name = page.file_name().unwrap().to_string_lossy().to_string();
        if name != "README.md" && !readme.contains(&format!("(docs/{name})")) {
            wrong.push(format!("{name}: no link from the README"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The check sees a planted broken link of each kind.
    let docs = repo().join("docs");
    let planted = "# Here\n[a](nowhere.md) [b](measurements.md#no-such) [c](#here) [d](#gone)\n";
    assert_eq!(broken_links(&docs, planted).len(), 3);
}

/// Every measurement says where it was made: each section of docs/measurements.md has a
/// `*Where: …*` line naming the host, the accelerator, a date and a commit.
#[test]
fn every_measurement_carries_its_provenance() {
    let text = read(&repo().join("docs/measurements.md"));
    let date = Regex::new(r"\b20\d\d-\d\d-\d\d\b").unwrap();
    let commit = Regex::new(r"\b[0-9a-f]{7,40}\b").unwrap();
    let sections: Vec<&str> = text.split("\n## ").skip(1).collect();
    assert!(sections.len() >= 10, "{} sections", sections.len());
    for s in sections {
        let title = s.lines().next().unwrap_or("");
        let Some(where_) = s.lines().find(|l| l.starts_with("*Where:")) else {
            panic!("measurements.md: {title}: no *Where:* line");
        };
        for (what, ok) in [
            ("a host", where_.contains("host")),
            (
                "an accelerator",
                where_.contains("TCG") || where_.contains("KVM"),
            ),
            ("a date", date.is_match(where_) || date.is_match(s)),
            ("a commit", commit.is_match(s)),
        ] {
            assert!(
                ok,
                "measurements.md: {title}: its *Where:* line names no {what}"
            );
        }
    }
}
