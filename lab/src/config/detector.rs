//! Detectors: the sanitizer a variant's kernel is built with. KASAN and KCSAN cannot share a
//! kernel (KCSAN depends on !KASAN), so one variant is built once per detector:
//! `<variant>+kcsan` is the variant with `kcsan.config` in place of `kasan.config`, its own
//! configuration and object tree, and the same patches. A variant named without a detector
//! is built with the one its fragments bring (kasan for the default fragments).

/// One detector: its name on the command line and in lab.toml, and its fragment.
#[derive(Debug, PartialEq, Eq)]
pub struct Detector {
    pub name: &'static str,
    /// `kernels/configs/<fragment>.config`.
    pub fragment: &'static str,
    /// What it reports, for `--help` and errors.
    pub sees: &'static str,
}

/// Every detector the lab builds; a variant's fragments name at most one of them.
pub const DETECTORS: &[Detector] = &[
    Detector {
        name: "kasan",
        fragment: "kasan",
        sees: "memory-safety bugs (use-after-free, out-of-bounds) at the faulting access",
    },
    Detector {
        name: "kcsan",
        fragment: "kcsan",
        sees: "data races: two conflicting accesses, one of them a plain write, as they happen",
    },
];

/// The detectors the canary can prove on a machine (each has a trigger there), by the name a
/// scenario's `detectors` uses.
pub const PROVABLE: &[&str] = &[
    "kasan",
    "warning",
    "hung-task",
    "soft-lockup",
    "lockdep",
    "kcsan",
];

/// Which detectors a scenario relies on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Relied {
    /// Every detector the kernel builds (a race scenario's default).
    #[default]
    AllBuilt,
    /// These, by name (none: a uapi or suite scenario's checks are its own evidence).
    These(Vec<String>),
}

impl Relied {
    /// Whether a clean run needs any detector's proof.
    pub fn any(&self) -> bool {
        !matches!(self, Relied::These(names) if names.is_empty())
    }

    pub fn includes(&self, detector: &str) -> bool {
        match self {
            Relied::AllBuilt => true,
            Relied::These(names) => names.iter().any(|n| n == detector),
        }
    }
}

/// Between a variant's name and a detector's: `baseline+kcsan`.
pub const SEPARATOR: char = '+';

/// The detector called `name`, or an error listing the known ones.
pub fn get(name: &str) -> Result<&'static Detector, String> {
    DETECTORS.iter().find(|d| d.name == name).ok_or_else(|| {
        format!(
            "no detector named {name:?}; known: {}",
            names().collect::<Vec<_>>().join(", ")
        )
    })
}

pub fn names() -> impl Iterator<Item = &'static str> {
    DETECTORS.iter().map(|d| d.name)
}

/// `variant+detector` → (variant, the detector); any other name is a plain variant name.
pub fn split(name: &str) -> (&str, Option<&'static Detector>) {
    match name.rsplit_once(SEPARATOR) {
        Some((variant, d)) if !variant.is_empty() => match get(d) {
            Ok(detector) => (variant, Some(detector)),
            Err(_) => (name, None),
        },
        _ => (name, None),
    }
}

/// The detector whose fragment is among `fragments` (the first, in merge order).
pub fn of_fragments<'a>(fragments: impl IntoIterator<Item = &'a str>) -> Option<&'static Detector> {
    fragments
        .into_iter()
        .find_map(|f| DETECTORS.iter().find(|d| d.fragment == f))
}

/// `variant` under `detector` when one is given (`baseline`, `kcsan` → `baseline+kcsan`).
pub fn with(variant: &str, detector: Option<&str>) -> String {
    match detector {
        Some(d) => format!("{}{SEPARATOR}{d}", split(variant).0),
        None => variant.to_string(),
    }
}

/// clap's parser for a `--detector` value: one of [`DETECTORS`].
pub fn parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(names())
}

/// `fragments` with every detector's fragment replaced by `detector`'s, at the place of the
/// first (at the end when there was none).
pub fn swap(fragments: &[String], detector: &Detector) -> Vec<String> {
    let is_detector = |f: &String| DETECTORS.iter().any(|d| d.fragment == f);
    let at = fragments
        .iter()
        .position(is_detector)
        .unwrap_or(fragments.len());
    let mut out: Vec<String> = fragments
        .iter()
        .filter(|f| !is_detector(f))
        .cloned()
        .collect();
    out.insert(at.min(out.len()), detector.fragment.to_string());
    out
}

/// Each of `variants` under each of `detectors`, variant by variant (all detectors of one
/// variant side by side); no detectors: the variants as named.
pub fn expand(variants: &[String], detectors: &[String]) -> Vec<String> {
    if detectors.is_empty() {
        return variants.to_vec();
    }
    variants
        .iter()
        .flat_map(|v| detectors.iter().map(move |d| with(v, Some(d))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_on_a_known_detector_only() {
        assert_eq!(split("baseline+kcsan").0, "baseline");
        assert_eq!(split("baseline+kcsan").1.unwrap().name, "kcsan");
        assert_eq!(split("c++").0, "c++");
        assert!(split("a+b").1.is_none());
        assert!(split("+kcsan").1.is_none());
        assert!(get("tsan").unwrap_err().contains("kasan, kcsan"));
    }

    #[test]
    fn swapping_keeps_the_merge_order() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let kcsan = get("kcsan").unwrap();
        assert_eq!(
            swap(&f(&["qemu-guest", "kasan", "lockdep"]), kcsan),
            f(&["qemu-guest", "kcsan", "lockdep"])
        );
        assert_eq!(
            swap(&f(&["qemu-guest"]), kcsan),
            f(&["qemu-guest", "kcsan"])
        );
        assert_eq!(of_fragments(["qemu-guest", "kasan"]).unwrap().name, "kasan");
        assert_eq!(of_fragments(["qemu-guest"]), None);
    }

    #[test]
    fn a_variant_under_its_own_detector_keeps_its_name() {
        assert_eq!(with("baseline", Some("kcsan")), "baseline+kcsan");
        assert_eq!(with("baseline+kcsan", Some("kasan")), "baseline+kasan");
        assert_eq!(with("baseline", None), "baseline");
        assert_eq!(
            expand(&["a".into(), "b".into()], &["kasan".into(), "kcsan".into()]),
            ["a+kasan", "a+kcsan", "b+kasan", "b+kcsan"]
        );
    }
}
