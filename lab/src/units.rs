//! Sizes as QEMU and users write them ("1G", "512M", "2048"): binary units, MiB when bare;
//! durations as users write them ("5s", "500ms", "2m").

/// (suffix, MiB per unit), longest suffixes first.
const SUFFIXES: &[(&str, f64)] = &[
    ("TiB", 1024.0 * 1024.0),
    ("GiB", 1024.0),
    ("MiB", 1.0),
    ("KiB", 1.0 / 1024.0),
    ("T", 1024.0 * 1024.0),
    ("G", 1024.0),
    ("M", 1.0),
    ("K", 1.0 / 1024.0),
    ("", 1.0),
];

/// Parse a duration ("5s", "500ms", "2m").
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (expected e.g. 5s, 500ms, 2m)"))
}

/// The kernel's command line buffer on x86 (`COMMAND_LINE_SIZE`, the NUL included): a
/// longer line is cut by the boot code, and what is cut is silently lost.
pub const COMMAND_LINE_SIZE: usize = 2048;

/// The words the lab itself puts on every kernel command line, and those it may add
/// (`nokaslr` for a schedule).
pub const CMDLINE_BASE: &str = "console=ttyS0 panic=-1";
const CMDLINE_LAB_ADDS: &str = " nokaslr";

/// Extra kernel command line words (`--cmdline`, a scenario's `cmdline`): built only by
/// [`CmdlineExtra::new`], which refuses a line that would not fit the kernel's buffer with
/// the lab's own words, and control characters (the line is one line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdlineExtra(String);

impl CmdlineExtra {
    /// The longest extra text that fits with the lab's own words and the NUL.
    pub const MAX_LEN: usize =
        COMMAND_LINE_SIZE - 1 - CMDLINE_BASE.len() - 1 - CMDLINE_LAB_ADDS.len();

    pub fn new(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.len() > Self::MAX_LEN {
            return Err(format!(
                "a kernel command line of {} bytes: the x86 kernel takes {} with the NUL \
                 (COMMAND_LINE_SIZE), {} of them the lab's own ({CMDLINE_BASE:?} and \
                 {:?}), which leaves {} for extra words",
                t.len(),
                COMMAND_LINE_SIZE,
                COMMAND_LINE_SIZE - Self::MAX_LEN,
                CMDLINE_LAB_ADDS.trim(),
                Self::MAX_LEN
            ));
        }
        if let Some(c) = t.chars().find(|c| c.is_control()) {
            return Err(format!(
                "a kernel command line holds the control character {c:?}"
            ));
        }
        Ok(CmdlineExtra(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// With a word of the lab's own added (one of those [`Self::MAX_LEN`] leaves room for).
    pub fn with_lab_word(&self, word: &str) -> CmdlineExtra {
        debug_assert!(CMDLINE_LAB_ADDS.trim() == word);
        CmdlineExtra(format!("{} {word}", self.0).trim().to_string())
    }
}

impl std::str::FromStr for CmdlineExtra {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CmdlineExtra::new(s)
    }
}

/// Parse a workload's duration ("30s"): more than nothing, at most a week.
pub fn parse_work_duration(text: &str) -> Result<runner::quantity::WorkDuration, String> {
    runner::quantity::WorkDuration::from_duration(parse_duration(text)?).map_err(|e| e.to_string())
}

/// Parse a memory size into MiB.
pub fn parse_mib(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, per) = SUFFIXES
        .iter()
        .find_map(|(suffix, per)| {
            let lower = t.to_ascii_lowercase();
            lower
                .strip_suffix(&suffix.to_ascii_lowercase())
                .map(|n| (t[..n.len()].trim().to_string(), *per))
        })
        .ok_or_else(|| format!("bad size {text:?}"))?;
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad size {text:?}: expected e.g. 512M, 1G, 2048"))?;
    let mib = value * per;
    if !mib.is_finite() || mib > 1024.0 * 1024.0 * 1024.0 {
        return Err(format!("size {text:?} is too large to be a guest's memory"));
    }
    if mib < 1.0 {
        return Err(format!("size {text:?} is below 1 MiB"));
    }
    Ok(mib as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length up to the limit is taken, every longer one refused; what is taken fits
    /// the kernel's buffer with the lab's own words and a schedule's `nokaslr`.
    #[test]
    fn a_command_line_fits_the_kernels_buffer_or_is_refused() {
        for len in [0, 1, 100, CmdlineExtra::MAX_LEN - 1, CmdlineExtra::MAX_LEN] {
            let extra = CmdlineExtra::new(&"x".repeat(len)).unwrap();
            let full = format!("{CMDLINE_BASE} {}", extra.with_lab_word("nokaslr").as_str());
            assert!(full.len() < COMMAND_LINE_SIZE, "{len}");
        }
        for len in [CmdlineExtra::MAX_LEN + 1, 2048, 3000, 1 << 20] {
            let e = CmdlineExtra::new(&"x".repeat(len)).unwrap_err();
            assert!(
                e.contains(&len.to_string()) && e.contains("COMMAND_LINE_SIZE"),
                "{e}"
            );
        }
        assert!(CmdlineExtra::new("a\nb").is_err());
    }

    #[test]
    fn sizes() {
        for (text, mib) in [
            ("1G", 1024),
            ("1g", 1024),
            ("512M", 512),
            ("2048", 2048),
            ("1.5G", 1536),
            ("1GiB", 1024),
            ("4096K", 4),
        ] {
            assert_eq!(parse_mib(text), Ok(mib), "{text}");
        }
        for bad in ["", "G", "abc", "-1G", "1K", "1X", "NaN", "inf"] {
            assert!(parse_mib(bad).is_err(), "{bad}");
        }
        for huge in ["1e400", "1e30", "1e30T"] {
            let e = parse_mib(huge).unwrap_err();
            assert!(e.contains("too large"), "{huge}: {e}");
        }
    }
}
