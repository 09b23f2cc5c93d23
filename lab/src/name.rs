//! Names that become path components: a variant, a scenario, a detector build, a run. Data
//! the lab reads (kernels/, scenarios/, a shard's results.json from another machine) names
//! them; [`PathName`] is the only way such a name becomes part of a path, and it holds no
//! separator, no `.` or `..`, no control byte: a name can never reach outside the directory
//! it is joined to.

use std::fmt;
use std::path::{Path, PathBuf};

/// A single path component, checked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathName(String);

/// The longest name a file system takes as one component.
const MAX_LEN: usize = 255;

impl PathName {
    /// `what` says what the name is ("variant", "scenario") for the error.
    pub fn new(text: &str, what: &str) -> Result<PathName, String> {
        let why = if text.is_empty() {
            Some("it is empty".to_string())
        } else if text == "." || text == ".." {
            Some("it names a directory itself".to_string())
        } else if text.len() > MAX_LEN {
            Some(format!("it is longer than {MAX_LEN} bytes"))
        } else if let Some(c) = text.chars().find(|c| *c == '/' || *c == '\\') {
            Some(format!("it holds the separator {c:?}"))
        } else {
            text.chars()
                .find(|c| c.is_control())
                .map(|c| format!("it holds the control character {c:?}"))
        };
        match why {
            Some(why) => Err(format!(
                "{what} name {text:?} cannot name a directory: {why}"
            )),
            None => Ok(PathName(text.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PathName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<Path> for PathName {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

/// A night's (or a batch's) directory of one cell: `<dir>/<variant>/<scenario>`.
pub fn cell_dir(dir: &Path, variant: &str, scenario: &str) -> Result<PathBuf, String> {
    Ok(dir
        .join(PathName::new(variant, "variant")?)
        .join(PathName::new(scenario, "scenario")?))
}

/// The directory of run `index` in its batch: `run-001`.
pub fn run_dir_name(index: u32) -> String {
    format!("run-{index:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a name holds, the path it makes stays one level below the directory.
        #[test]
        fn a_name_never_leaves_its_directory(text in any::<String>()) {
            if let Ok(name) = PathName::new(&text, "variant") {
                let joined = Path::new("/night").join(&name);
                prop_assert_eq!(joined.parent(), Some(Path::new("/night")));
                prop_assert_eq!(joined.components().count(), 3);
                prop_assert_eq!(joined.file_name().unwrap().to_str(), Some(text.as_str()));
            }
        }
    }

    #[test]
    fn names_that_would_escape_or_hide_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../../ESCAPED-by-merge",
            "a/b",
            "/abs",
            "a\\b",
            "a\nb",
            "a\u{1b}[1m",
            "a\u{9b}b",
        ] {
            let e = PathName::new(bad, "variant").unwrap_err();
            assert!(e.starts_with("variant name"), "{bad:?}: {e}");
        }
        assert!(PathName::new(&"x".repeat(256), "scenario").is_err());
        for good in [
            "baseline",
            "epoll-unpinned-poll+kcsan",
            "v6.12",
            "a..b",
            ".hidden",
        ] {
            assert_eq!(PathName::new(good, "variant").unwrap().as_str(), good);
        }
    }
}
