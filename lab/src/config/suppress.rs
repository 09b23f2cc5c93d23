//! `suppressions.toml`: the reports a lab knows and leaves out of its verdicts — above all
//! the benign data races KCSAN finds in every kernel. Each entry says why. A suppressed report
//! is still kept, listed and shown with its reason; it only does not make the run a finding
//! (nor stop it).
//!
//! ```toml
//! [[suppress]]
//! functions = ["ktime_get", "update_wall_time"]   # a title naming these (any order), or
//! # title = "KCSAN: data-race in a / b"           # one title exactly, or
//! # signature = "3f2a9c0d1e2b4a5c"                # the lab's signature of one
//! reason = "timekeeping's seqcount readers retry: the torn read is thrown away"
//! ```

use super::error::{line_of, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    suppress: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    title: Option<String>,
    functions: Option<Vec<String>>,
    signature: Option<String>,
    #[serde(default)]
    reason: String,
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Title(String),
    /// Every one of these is a function the title names (`in a / b`, `in a`).
    Functions(Vec<String>),
    Signature(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matches: Match,
    pub reason: String,
    /// `file:line` of the entry.
    pub at: String,
}

/// A lab's suppression list (empty when it has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressions {
    pub file: Option<PathBuf>,
    pub rules: Vec<Rule>,
}

/// The functions a title names after its last ` in `: `KCSAN: data-race in a / b` → a, b.
pub fn title_functions(title: &str) -> Vec<&str> {
    title
        .rsplit_once(" in ")
        .map(|(_, f)| f.split(" / ").map(str::trim).collect())
        .unwrap_or_default()
}

impl Suppressions {
    pub fn load(file: &Path) -> Result<Suppressions, ConfigError> {
        let text = crate::files::read_to_string(file).map_err(|e| ConfigError::File {
            file: file.into(),
            message: e.to_string(),
        })?;
        Self::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Suppressions, ConfigError> {
        let at = |start: usize, message: String| ConfigError::At {
            file: file.into(),
            line: line_of(text, start),
            message,
        };
        let raw: Raw = toml::from_str(text)
            .map_err(|e| at(e.span().map_or(0, |s| s.start), e.message().to_string()))?;
        let mut rules = Vec::new();
        for entry in raw.suppress {
            let start = entry.span().start;
            let rule = entry.into_inner();
            let matches = match (rule.title, rule.functions, rule.signature) {
                (Some(t), None, None) => Match::Title(t),
                (None, Some(f), None) if !f.is_empty() => Match::Functions(f),
                (None, None, Some(s)) => Match::Signature(s),
                _ => {
                    return Err(at(
                        start,
                        "a suppression names exactly one of title = \"...\", functions = \
                         [\"a\", \"b\"] (not empty) or signature = \"...\""
                            .into(),
                    ))
                }
            };
            if rule.reason.trim().is_empty() {
                return Err(at(
                    start,
                    "a suppression needs a reason = \"...\": why this report is not a finding"
                        .into(),
                ));
            }
            rules.push(Rule {
                matches,
                reason: rule.reason.trim().to_string(),
                at: format!("{}:{}", file.display(), line_of(text, start)),
            });
        }
        Ok(Suppressions {
            file: Some(file.into()),
            rules,
        })
    }

    /// The rule that suppresses a report with this title and signature.
    pub fn rule(&self, title: &str, signature: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| match &r.matches {
            Match::Title(t) => t == title,
            Match::Signature(s) => s == signature,
            Match::Functions(fs) => {
                let named = title_functions(title);
                fs.iter().all(|f| named.contains(&f.as_str()))
            }
        })
    }

    /// Why a report with this title and signature is suppressed: the reason and where the
    /// entry is.
    pub fn why(&self, title: &str, signature: &str) -> Option<String> {
        self.rule(title, signature)
            .map(|r| format!("{} ({})", r.reason, r.at))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Suppressions, String> {
        Suppressions::parse(Path::new("s.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn rules_match_titles_functions_and_signatures() {
        let s = parse(
            "[[suppress]]\nfunctions = [\"b\", \"a\"]\nreason = \"benign\"\n\n\
             [[suppress]]\ntitle = \"KCSAN: data-race in x / y\"\nreason = \"known\"\n\n\
             [[suppress]]\nsignature = \"0123\"\nreason = \"seen\"\n",
        )
        .unwrap();
        assert_eq!(
            s.why("KCSAN: data-race in a / b", "s").as_deref(),
            Some("benign (s.toml:1)")
        );
        assert_eq!(s.rule("KCSAN: data-race in a / c", "s"), None);
        assert_eq!(
            s.rule("KCSAN: data-race in x / y", "s").unwrap().reason,
            "known"
        );
        assert_eq!(
            s.rule("KCSAN: data-race in x / z", "0123").unwrap().reason,
            "seen"
        );
        assert_eq!(
            s.why("KCSAN: data-race in x / y", "s").as_deref(),
            Some("known (s.toml:5)")
        );
        // One function: a race of unknown origin, or either side.
        let one = parse("[[suppress]]\nfunctions = [\"a\"]\nreason = \"r\"\n").unwrap();
        assert!(one.rule("KCSAN: data-race in a", "s").is_some());
        assert!(one.rule("KCSAN: data-race in a / q", "s").is_some());
        assert!(one.rule("KCSAN: data-race in ab / q", "s").is_none());
    }

    #[test]
    fn an_entry_without_a_reason_or_a_match_is_refused_at_its_line() {
        let e = parse("# list\n\n[[suppress]]\nfunctions = [\"a\"]\n").unwrap_err();
        assert!(
            e.starts_with("s.toml:3:") && e.contains("needs a reason"),
            "{e}"
        );
        let e = parse("[[suppress]]\nreason = \"r\"\n").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e =
            parse("[[suppress]]\ntitle = \"t\"\nsignature = \"s\"\nreason = \"r\"\n").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e = parse("[[suppress]]\nfunction = [\"a\"]\nreason = \"r\"\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
