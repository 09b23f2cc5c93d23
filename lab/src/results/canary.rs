//! What the detector canary left (`canary.json`) and what it lets a clean run claim. A run
//! that printed nothing counts as clean only where every detector the scenario relies on was
//! seen to fire on the same machine: the same kernel build, command line and kernel
//! parameters. The evidence rule reads [`Detectors`]; nothing else decides it.

pub use crate::config::detector::Relied;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What one detector's trigger gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    pub detector: String,
    /// What was provoked (an LKDTM crash type).
    pub crash: String,
    /// The start of the title expected.
    pub expected: String,
    /// The first report's title, if the run printed one.
    pub seen: Option<String>,
    pub fired: bool,
    /// The kernel does not build the detector (its option is not set): nothing was provoked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
    /// How the run ended, and its directory.
    pub outcome: String,
    pub run: PathBuf,
    /// From the workload's start to the first report.
    pub first_report_ms: Option<u64>,
    /// Why the trigger's run said nothing about the kernel (QEMU or the agent failed, the
    /// machine did not boot): the detector was not heard, which is not that it is silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unheard: Option<String>,
}

/// `canary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    pub kernel: String,
    /// What decides what reaches the console, hashed: the kernel image, the command line and
    /// the kernel parameters (the same key finds it again).
    #[serde(default)]
    pub key: String,
    /// The machine's snapshot, when the runs restored one (canary.json is stored beside it).
    pub snapshot: Option<String>,
    pub at: String,
    pub proofs: Vec<Proof>,
    /// Where this canary.json is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// What the machine's canary lets a run with no report claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detectors {
    /// Every detector relied on fired (or the scenario relies on none).
    Proven,
    /// A detector relied on did not fire: a clean run is inconclusive, for this reason.
    Silent(String),
    /// No canary could run or was asked for: a clean run passes, qualified by this reason.
    Unproven(String),
}

/// How a detector is named in a verdict.
pub fn display(detector: &str) -> &str {
    match detector {
        "kasan" => "KASAN",
        "kcsan" => "KCSAN",
        "warning" => "WARNING",
        "lockdep" => "lockdep",
        "hung-task" => "the hung-task detector",
        "soft-lockup" => "the soft-lockup detector",
        other => other,
    }
}

impl Canary {
    /// Every detector the kernel builds fired.
    pub fn passed(&self) -> bool {
        self.proofs.iter().all(|p| p.fired || p.absent)
    }

    /// Whether this canary is the machine's answer: no trigger's run failed to say anything
    /// about the kernel. One that did is not kept as the machine's, so it runs again.
    pub fn answers(&self) -> bool {
        self.proofs.iter().all(|p| p.unheard.is_none())
    }

    /// What this canary lets a clean run relying on `relied` claim. A detector relied on by
    /// name that the kernel does not build is silent too: nothing could have reported.
    pub fn covers(&self, relied: &Relied) -> Detectors {
        let at = self
            .file
            .as_ref()
            .map_or_else(|| self.key.clone(), |f| f.display().to_string());
        let silent: Vec<&Proof> = self
            .proofs
            .iter()
            .filter(|p| relied.includes(&p.detector))
            .filter(|p| !p.fired && (!p.absent || relied != &Relied::AllBuilt))
            .collect();
        let unknown: Vec<String> = match relied {
            Relied::AllBuilt => vec![],
            Relied::These(names) => names
                .iter()
                .filter(|n| !self.proofs.iter().any(|p| &p.detector == *n))
                .map(|n| format!("{} has no trigger in this canary", display(n)))
                .collect(),
        };
        match (silent.as_slice(), unknown.is_empty()) {
            ([], true) => Detectors::Proven,
            ([], false) => Detectors::Unproven(unknown.join("; ")),
            // One: what its trigger printed instead; several: their names (canary.json has
            // the rest).
            ([p], _) => {
                let what = match (&p.seen, p.absent, &p.unheard) {
                    (_, true, _) => "it is not built".to_string(),
                    (_, _, Some(why)) => format!("{}'s runs said nothing: {why}", p.crash),
                    (Some(seen), _, _) => format!("{} printed {seen:?}", p.crash),
                    (None, _, _) => format!("{} printed no report", p.crash),
                };
                let verb = match p.unheard {
                    Some(_) => "was not heard",
                    None => "did not fire",
                };
                Detectors::Silent(format!(
                    "{} {verb} on this machine ({what}; canary: {at})",
                    display(&p.detector)
                ))
            }
            (several, _) => {
                let names: Vec<&str> = several.iter().map(|p| display(&p.detector)).collect();
                let (last, rest) = names.split_last().expect("several");
                Detectors::Silent(format!(
                    "{} and {last} did not fire on this machine (canary: {at})",
                    rest.join(", ")
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(detector: &str, fired: bool, absent: bool, seen: Option<&str>) -> Proof {
        Proof {
            detector: detector.into(),
            crash: "X".into(),
            expected: "T".into(),
            seen: seen.map(str::to_string),
            fired,
            absent,
            outcome: "completed".into(),
            run: PathBuf::new(),
            first_report_ms: None,
            unheard: None,
        }
    }

    fn canary(proofs: Vec<Proof>) -> Canary {
        Canary {
            kernel: "k".into(),
            key: "abc".into(),
            snapshot: None,
            at: String::new(),
            proofs,
            file: Some("/c/canary.json".into()),
        }
    }

    /// A table of canaries × what the scenario relies on: only a detector relied on that did
    /// not fire makes the machine silent; one the kernel does not build is silent only when
    /// named.
    #[test]
    fn a_detector_relied_on_that_did_not_fire_silences_the_machine() {
        let all = Relied::AllBuilt;
        let kasan = Relied::These(vec!["kasan".into()]);
        let warning = Relied::These(vec!["warning".into()]);
        let none = Relied::These(vec![]);
        let fired = canary(vec![
            proof("kasan", true, false, Some("KASAN: x")),
            proof("warning", true, false, Some("WARNING in y")),
        ]);
        let kasan_silent = canary(vec![
            proof("kasan", false, false, None),
            proof("warning", true, false, Some("WARNING in y")),
        ]);
        let kasan_absent = canary(vec![
            proof("kasan", false, true, None),
            proof("warning", true, false, Some("WARNING in y")),
        ]);
        let table: [(&Canary, &Relied, &str); 12] = [
            (&fired, &all, "proven"),
            (&fired, &kasan, "proven"),
            (&fired, &none, "proven"),
            (&kasan_silent, &all, "silent"),
            (&kasan_silent, &kasan, "silent"),
            (&kasan_silent, &warning, "proven"),
            (&kasan_silent, &none, "proven"),
            (&kasan_absent, &all, "proven"),
            (&kasan_absent, &kasan, "silent"),
            (&kasan_absent, &warning, "proven"),
            (&fired, &Relied::These(vec!["kcsan".into()]), "unproven"),
            (&canary(vec![]), &all, "proven"),
        ];
        for (c, relied, expected) in table {
            let got = match c.covers(relied) {
                Detectors::Proven => "proven",
                Detectors::Silent(_) => "silent",
                Detectors::Unproven(_) => "unproven",
            };
            assert_eq!(got, expected, "{relied:?} on {:?}", c.proofs);
        }
        assert_eq!(
            kasan_silent.covers(&all),
            Detectors::Silent(
                "KASAN did not fire on this machine (X printed no report; canary: \
                 /c/canary.json)"
                    .into()
            )
        );
        let both_silent = canary(vec![
            proof("kasan", false, false, None),
            proof("warning", false, false, Some("BUG: soft lockup")),
            proof("hung-task", false, false, None),
        ]);
        assert_eq!(
            both_silent.covers(&all),
            Detectors::Silent(
                "KASAN, WARNING and the hung-task detector did not fire on this machine \
                 (canary: /c/canary.json)"
                    .into()
            )
        );
        assert!(fired.passed() && kasan_absent.passed() && !kasan_silent.passed());
    }

    /// A trigger whose runs said nothing about the kernel leaves a canary that is not the
    /// machine's answer (it runs again), and a verdict that says it was not heard.
    #[test]
    fn a_trigger_whose_run_failed_is_unheard_not_silent() {
        let mut lost = proof("lockdep", false, false, None);
        lost.unheard = Some("agent-lost: channel closed".into());
        let c = Canary {
            file: Some(PathBuf::from("/c/canary.json")),
            ..canary(vec![proof("kasan", true, false, None), lost])
        };
        assert!(!c.answers() && !c.passed());
        assert_eq!(
            c.covers(&Relied::AllBuilt),
            Detectors::Silent(
                "lockdep was not heard on this machine (X's runs said nothing: agent-lost: \
                 channel closed; canary: /c/canary.json)"
                    .into()
            )
        );
        let heard = canary(vec![proof("lockdep", false, false, None)]);
        assert!(heard.answers());
    }
}
