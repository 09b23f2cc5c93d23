//! The commit behind a night's change: the answer of the bisection a night ran for a
//! regression (the commit that brought a signature in) or a fix (the commit that took it
//! out), or of one an earlier night ran. Kept in results.json and in the history.

use serde::{Deserialize, Serialize};

/// Which way a bisection looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// The commit that brought the signature in.
    Introduced,
    /// The commit that took it out.
    Fixed,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Introduced => "introduced",
            Direction::Fixed => "fixed",
        }
    }

    pub fn parse(text: &str) -> Option<Direction> {
        [Direction::Introduced, Direction::Fixed]
            .into_iter()
            .find(|d| d.name() == text)
    }
}

/// One bisection's answer for one cell's signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Culprit {
    pub direction: Direction,
    pub source: String,
    pub variant: String,
    pub scenario: String,
    pub plan_key: String,
    pub signature: String,
    pub title: String,
    /// The ends bisected: the old one (without the signature for a regression, with it for a
    /// fix) and the new one.
    pub old: String,
    pub new: String,
    /// The commit found and its subject; none when the bisection could not decide.
    pub commit: Option<String>,
    #[serde(default)]
    pub subject: String,
    pub confidence: f64,
    pub builds: u32,
    /// Wall time the bisection took this night (0 for an answer an earlier night found).
    #[serde(default)]
    pub wall_s: f64,
    /// Why no commit is named (budget spent, low confidence, an unbuildable commit).
    #[serde(default)]
    pub undecided: Option<String>,
    /// The range the answer lies in when undecided: (last old-state commit known, none for
    /// the old end; first new-state commit known).
    #[serde(default)]
    pub range: Option<(Option<String>, String)>,
    /// The night that found it, when an earlier one did (this night reports its answer and
    /// does not bisect again).
    #[serde(default)]
    pub earlier: Option<String>,
    /// Where the bisection's state, runs and log are.
    #[serde(default)]
    pub dir: String,
}

/// What a culprit is about: (source line, variant, scenario, plan key) of the cell, and the
/// signature with its title.
pub type About<'a> = ((&'a str, &'a str, &'a str, &'a str), (&'a str, &'a str));

impl Culprit {
    /// A bisection of `about` in `direction` over `old..new`, nothing found yet.
    pub fn new(direction: Direction, about: About<'_>, (old, new): (&str, &str)) -> Culprit {
        let ((source, variant, scenario, plan_key), (signature, title)) = about;
        Culprit {
            direction,
            source: source.into(),
            variant: variant.into(),
            scenario: scenario.into(),
            plan_key: plan_key.into(),
            signature: signature.into(),
            title: title.into(),
            old: old.into(),
            new: new.into(),
            commit: None,
            subject: String::new(),
            confidence: 0.0,
            builds: 0,
            wall_s: 0.0,
            undecided: None,
            range: None,
            earlier: None,
            dir: String::new(),
        }
    }

    /// One line: "introduced by `abcdef12 subject` — confidence 0.971, 7 builds", or why no
    /// commit is named and the range left.
    pub fn line(&self) -> String {
        let found = match &self.commit {
            Some(c) => format!(
                "{} by `{} {}` — confidence {}, {}",
                self.direction.name(),
                short(c),
                self.subject,
                crate::text::confidence(self.confidence),
                crate::text::count(self.builds, "build", "builds")
            ),
            None => format!(
                "{} by a commit not pinned down: {}; left: after {} up to {} ({})",
                self.direction.name(),
                self.undecided.as_deref().unwrap_or("undecided"),
                self.range
                    .as_ref()
                    .and_then(|r| r.0.as_deref())
                    .map_or_else(|| short(&self.old).to_string(), |c| short(c).to_string()),
                short(self.range.as_ref().map_or(&self.new, |r| &r.1)),
                crate::text::count(self.builds, "build", "builds")
            ),
        };
        match &self.earlier {
            Some(night) => format!("{found} (bisected by the night of {night})"),
            None => found,
        }
    }

    /// Whether this answer is about `variant × scenario`'s `signature`.
    pub fn is_about(&self, variant: &str, scenario: &str, signature: &str) -> bool {
        self.variant == variant && self.scenario == scenario && self.signature == signature
    }
}

/// A commit's first 12 hex digits.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn culprit() -> Culprit {
        let about = (
            ("git:/r@main", "baseline", "epoll-dmabuf-race", "k"),
            ("s", "WARNING in dma_buf_poll"),
        );
        Culprit {
            commit: Some("c".repeat(40)),
            subject: "epoll: poll the watched file without pinning it".into(),
            confidence: 0.9712,
            builds: 7,
            ..Culprit::new(
                Direction::Introduced,
                about,
                (&"a".repeat(40), &"b".repeat(40)),
            )
        }
    }

    #[test]
    fn a_culprit_reads_as_one_line() {
        assert_eq!(
            culprit().line(),
            "introduced by `cccccccccccc epoll: poll the watched file without pinning it` — \
             confidence 0.971, 7 builds"
        );
        let undecided = Culprit {
            commit: None,
            undecided: Some("budget spent: 3 builds".into()),
            range: Some((Some("d".repeat(40)), "e".repeat(40))),
            earlier: Some("2026-12-06T00:00:00Z".into()),
            ..culprit()
        };
        assert_eq!(
            undecided.line(),
            "introduced by a commit not pinned down: budget spent: 3 builds; left: after \
             dddddddddddd up to eeeeeeeeeeee (7 builds) (bisected by the night of \
             2026-12-06T00:00:00Z)"
        );
    }
}
