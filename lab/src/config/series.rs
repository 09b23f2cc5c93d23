//! Series: the trees one variant builds on. A variant builds on its `[source]`, its default
//! series, which `[source] series = "6.12"` may name, and on every series its base chain
//! declares in a `[series.NAME]` table (a source of its own: `debian`, `git` or `path`).
//! `NAME@SERIES` is the variant on that series: the same configuration, that series' source,
//! and each variant's patches for it from `patches/<variant>@SERIES/`, because a backport is a
//! different patch. A variant with patches for its default series and none for another does
//! not exist there: asking for it is an error naming the folder to port them into.
//!
//! A series is one value of a build's target, beside the detector (`NAME@SERIES+kcsan`).

/// Between a variant's name and a series: `baseline@6.1`.
pub const SEPARATOR: char = '@';

/// `variant@series` → (variant, the series); a name without `@` has none. A detector's
/// suffix is split off first ([`super::detector::split`]).
pub fn split(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(SEPARATOR) {
        Some((variant, series)) if !variant.is_empty() && !series.is_empty() => {
            (variant, Some(series))
        }
        _ => (name, None),
    }
}

/// `variant` on `series` (`baseline`, `6.1` → `baseline@6.1`), its detector suffix kept after
/// the series (`baseline+kcsan`, `6.1` → `baseline@6.1+kcsan`).
pub fn with(variant: &str, series: &str) -> String {
    let (plain, detector) = super::detector::split(variant);
    let name = format!("{plain}{SEPARATOR}{series}");
    super::detector::with(&name, detector.map(|d| d.name))
}

/// A series name is a directory's part (`patches/<variant>@<series>/`, a night's cell): the
/// characters of a version or a branch, nothing that splits a name or a path.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "series name {name:?}: 1 to 40 of A-Z a-z 0-9 . - _ (it becomes part of the \
             variant's name, NAME{SEPARATOR}SERIES, and of a patch folder's)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_and_join_with_a_detector_after_the_series() {
        let table = [
            ("baseline", ("baseline", None)),
            ("baseline@6.1", ("baseline", Some("6.1"))),
            ("a@b@6.1", ("a@b", Some("6.1"))),
            ("@6.1", ("@6.1", None)),
            ("baseline@", ("baseline@", None)),
        ];
        for (name, want) in table {
            assert_eq!(split(name), want, "{name}");
        }
        assert_eq!(with("baseline", "6.1"), "baseline@6.1");
        assert_eq!(with("baseline+kcsan", "6.1"), "baseline@6.1+kcsan");
    }

    #[test]
    fn a_series_name_is_a_path_part() {
        for good in ["6.1", "6.12", "lts-6.1", "net_next"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "6/1",
            "..x/",
            "a b",
            "6.1+kcsan",
            "a@b",
            &"x".repeat(41),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
