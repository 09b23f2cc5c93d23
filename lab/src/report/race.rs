//! The two sides of a KCSAN data-race report (kernel/kcsan/report.c, print_report()): each
//! access with its stack (the other thread's first, then the one that hit the watchpoint; a
//! race of unknown origin has only the latter), and the value change KCSAN observed.
//!
//! ```text
//! BUG: KCSAN: data-race in ep_poll_callback / ep_remove
//!
//! write to 0xffff888004a8c0e8 of 8 bytes by task 231 on cpu 1:
//!  ep_remove+0x1e3/0x2d0
//!  ...
//!
//! read to 0xffff888004a8c0e8 of 8 bytes by interrupt on cpu 0:
//!  ep_poll_callback+0x7f/0x4a0
//!  ...
//!
//! value changed: 0xffff888005f2e400 -> 0x0000000000000000
//! ```

use super::frames::{self, Frame};
use super::scan::lines;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// One side of the race.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaceAccess {
    /// `read`, `write (marked)`, `read-write`, `assert no writes`, ...
    pub access: String,
    pub address: String,
    pub size: u64,
    /// `task 231` or `interrupt`.
    pub by: String,
    pub cpu: u32,
    /// Its stack, the access itself first.
    pub frames: Vec<Frame>,
}

/// What KCSAN saw racing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Race {
    /// The other access first (as printed), then the one that found it.
    pub accesses: Vec<RaceAccess>,
    /// `0x00000000 -> 0x00000001`, when KCSAN printed the value change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_changed: Option<String>,
    /// Only one side is known ("race at unknown origin").
    #[serde(default)]
    pub unknown_origin: bool,
}

/// An access line; `race at unknown origin, with ` may come before it.
static ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(race at unknown origin, with )?([a-z][a-z \-]*?(?: \([a-z]+\))*) to (0x[0-9a-fA-F]+) of (\d+) bytes by (task \d+|interrupt) on cpu (\d+):",
    )
    .unwrap()
});

const VALUE_CHANGED: &str = "value changed: ";

/// The race in a KCSAN report's body (the lines after its header), when it names accesses.
pub fn scan(body: &str) -> Option<Race> {
    let mut race = Race {
        accesses: Vec::new(),
        value_changed: None,
        unknown_origin: false,
    };
    let mut open = false; // frames go to the last access until a blank line
    for line in lines(body) {
        let t = line.trim();
        if let Some(c) = ACCESS.captures(t) {
            race.unknown_origin |= c.get(1).is_some();
            race.accesses.push(RaceAccess {
                access: c[2].to_string(),
                address: c[3].to_string(),
                size: c[4].parse().unwrap_or(0),
                by: c[5].to_string(),
                cpu: c[6].parse().unwrap_or(0),
                frames: Vec::new(),
            });
            open = true;
        } else if let Some(v) = t.strip_prefix(VALUE_CHANGED) {
            race.value_changed = Some(v.to_string());
            open = false;
        } else if t.is_empty() || t.starts_with("Reported by") {
            open = false;
        } else if open {
            if let (Some(frame), Some(access)) =
                (frames::parse_frame(line), race.accesses.last_mut())
            {
                access.frames.push(frame);
            }
        }
    }
    (!race.accesses.is_empty()).then_some(race)
}

/// Each side's guilty function, the first frame of its stack that is not reporting or
/// locking machinery (the access itself when it is not), joined as a title names them
/// (`a / b`; one function for a race of unknown origin). Empty when no side has a frame.
pub fn guilty_sides(race: &Race) -> String {
    let sides: Vec<&str> = race
        .accesses
        .iter()
        .filter_map(|a| {
            frames::candidates(&a.frames)
                .next()
                .or(a.frames.first())
                .map(|f| f.function.as_str())
        })
        .collect();
    sides.join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_and_the_value_change() {
        let body = "\n\
write to 0xffff888004a8c0e8 of 8 bytes by task 231 on cpu 1:\n \
ep_remove+0x1e3/0x2d0\n \
do_epoll_ctl+0x33/0x90\n\
\n\
read (marked) to 0xffff888004a8c0e8 of 8 bytes by interrupt on cpu 0:\n \
ep_poll_callback+0x7f/0x4a0\n\
\n\
value changed: 0xffff888005f2e400 -> 0x0000000000000000\n\
\n\
Reported by Kernel Concurrency Sanitizer on:\n\
CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Not tainted 6.12.117 #1\n";
        let race = scan(body).unwrap();
        assert_eq!(race.accesses.len(), 2);
        let (a, b) = (&race.accesses[0], &race.accesses[1]);
        assert_eq!(
            (a.access.as_str(), a.size, a.by.as_str(), a.cpu),
            ("write", 8, "task 231", 1)
        );
        assert_eq!(a.frames.len(), 2);
        assert_eq!(a.frames[0].function, "ep_remove");
        assert_eq!(
            (b.access.as_str(), b.by.as_str()),
            ("read (marked)", "interrupt")
        );
        assert_eq!(b.frames[0].function, "ep_poll_callback");
        assert_eq!(
            race.value_changed.as_deref(),
            Some("0xffff888005f2e400 -> 0x0000000000000000")
        );
        assert!(!race.unknown_origin);
    }

    #[test]
    fn a_race_of_unknown_origin_has_one_side() {
        let body = "\n\
race at unknown origin, with assert no writes to 0xffff8881001cb1e8 of 4 bytes by task 4926 on cpu 0:\n \
dequeue_entities+0x6df/0x760\n \
pick_next_task_fair+0x7d/0x410\n\
\n\
value changed: 0x00000000 -> 0x00000001\n";
        let race = scan(body).unwrap();
        assert!(race.unknown_origin);
        assert_eq!(race.accesses.len(), 1);
        assert_eq!(race.accesses[0].access, "assert no writes");
        assert_eq!(race.accesses[0].frames.len(), 2);
        assert!(scan("Call Trace:\n foo+0x1/0x2\n").is_none());
    }
}
