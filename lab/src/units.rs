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
    if !(mib >= 1.0 && mib.is_finite()) {
        return Err(format!("size {text:?} is below 1 MiB"));
    }
    Ok(mib as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_mib;

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
        for bad in ["", "G", "abc", "-1G", "1K", "1X"] {
            assert!(parse_mib(bad).is_err(), "{bad}");
        }
    }
}
