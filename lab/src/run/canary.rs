//! The detector canary: one fault per detector provoked through LKDTM, each in a guest of its
//! own (KASAN and lockdep report once per boot), on the machine a scenario runs on — its
//! kernel, vCPUs, memory, command line and kernel parameters, what decides what reaches the
//! console — and whether the kernel reported it with the title expected. What it proves: that
//! the detector is built, armed and heard on that machine. What it cannot: that it catches a
//! bug of another shape.

use super::{How, RunResult, Target};
use crate::config::scenario::{self, Scenario};
use crate::config::suppress::Suppressions;
use anyhow::Result;
use runner::quantity::{RunCount, WorkDuration};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A detector's trigger: the LKDTM crash type, what the workload sets first, and the start of
/// the title the report must have.
pub struct Trigger {
    pub detector: &'static str,
    /// The option that builds the detector: a kernel without it has nothing to prove.
    pub option: &'static str,
    pub crash: &'static str,
    /// (parameter, value): the detectors' thresholds, lowered so they report within seconds.
    pub params: &'static [(&'static str, u64)],
    pub title: &'static str,
    /// How long the guest gets to report.
    pub within_s: u64,
}

pub const TRIGGERS: &[Trigger] = &[
    Trigger {
        detector: "kasan",
        option: "CONFIG_KASAN",
        crash: "READ_AFTER_FREE",
        params: &[],
        title: "KASAN: slab-use-after-free Read in ",
        within_s: 10,
    },
    Trigger {
        detector: "warning",
        option: "CONFIG_BUG",
        crash: "WARNING",
        params: &[],
        title: "WARNING in ",
        within_s: 10,
    },
    Trigger {
        detector: "hung-task",
        option: "CONFIG_DETECT_HUNG_TASK",
        crash: "HUNG_TASK",
        params: &[("hung_task_timeout_secs", 2)],
        title: "INFO: task hung in ",
        within_s: 15,
    },
    Trigger {
        detector: "soft-lockup",
        option: "CONFIG_SOFTLOCKUP_DETECTOR",
        crash: "SOFTLOCKUP",
        params: &[("watchdog_thresh", 1)],
        title: "BUG: soft lockup in ",
        within_s: 15,
    },
];

/// What one trigger gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    pub detector: String,
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
}

/// `canary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    pub kernel: String,
    /// The machine's snapshot, when the runs restored one (canary.json is stored beside it).
    pub snapshot: Option<String>,
    pub at: String,
    pub proofs: Vec<Proof>,
}

impl Canary {
    /// Every detector the kernel builds fired.
    pub fn passed(&self) -> bool {
        self.proofs.iter().all(|p| p.fired || p.absent)
    }
}

/// Provoke every trigger on `target` under the machine of `base` (or the lab's default), one
/// run each under `out/<detector>/`; `canary.json` goes to `out` and beside the snapshot.
pub async fn canary(
    target: &Target,
    base: Option<&Scenario>,
    how: How,
    out: &Path,
) -> Result<Canary> {
    let mut proofs = Vec::new();
    let mut snapshot = None;
    let config = match &target.config {
        Some(file) => Some(crate::files::read_to_string(file)?),
        None => None,
    };
    for t in TRIGGERS {
        if config.as_deref().is_some_and(|c| !built(t, c)) {
            proofs.push(Proof {
                absent: true,
                ..proof(t, None, out)
            });
            continue;
        }
        let mut params = serde_json::Map::new();
        params.insert("type".into(), t.crash.into());
        for (k, v) in t.params {
            params.insert(k.to_string(), (*v).into());
        }
        let duration = WorkDuration::from_millis(t.within_s * 1000).expect("seconds");
        let probe = scenario::probe(
            base,
            &format!("canary-{}", t.detector),
            "provoke",
            params,
            duration,
            &["CONFIG_LKDTM"],
        );
        let dir = crate::cache::empty_dir(&out.join(t.detector))?;
        // The trigger's own time, whatever the caller's override.
        let how = How {
            duration: None,
            ..how
        };
        let results = super::runs(
            &probe,
            target,
            RunCount::new(1).expect("one"),
            how,
            dir.clone(),
            Suppressions::default(),
        )
        .await?;
        let r = results.first();
        snapshot = snapshot.or_else(|| {
            r.and_then(|r| r.record.as_ref())
                .and_then(|rec| rec.start.snapshot.clone())
        });
        proofs.push(proof(t, r, &dir));
    }
    let canary = Canary {
        kernel: target.name.clone(),
        snapshot: snapshot.clone(),
        at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        proofs,
    };
    let json = serde_json::to_vec_pretty(&canary)?;
    crate::files::write(out.join("canary.json"), &json)?;
    if let Some(key) = &snapshot {
        let dir = crate::cache::dir("snapshots")?.join(key);
        if dir.is_dir() {
            crate::files::write(dir.join("canary.json"), &json)?;
        }
    }
    Ok(canary)
}

/// Whether a kernel of this `.config` builds the trigger's detector.
fn built(t: &Trigger, config: &str) -> bool {
    crate::kernel::kconfig::missing(&[t.option.to_string()], config).is_empty()
}

fn proof(t: &Trigger, r: Option<&RunResult>, dir: &Path) -> Proof {
    let seen = r
        .and_then(|r| r.reports.iter().find(|rep| rep.counts()))
        .map(|rep| rep.title.clone());
    Proof {
        detector: t.detector.into(),
        crash: t.crash.into(),
        expected: t.title.into(),
        fired: seen.as_deref().is_some_and(|s| s.starts_with(t.title)),
        absent: false,
        seen,
        outcome: r.map_or("not-run", |r| r.outcome_name()).into(),
        run: r.map_or_else(|| dir.to_path_buf(), |r| r.dir.clone()),
        first_report_ms: r.and_then(|r| r.first_report_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detector_the_kernel_does_not_build_is_absent_not_failed() {
        let kcsan = "CONFIG_KCSAN=y\nCONFIG_BUG=y\nCONFIG_DETECT_HUNG_TASK=y\nCONFIG_SOFTLOCKUP_DETECTOR=y\n";
        let built: Vec<&str> = TRIGGERS
            .iter()
            .filter(|t| built(t, kcsan))
            .map(|t| t.detector)
            .collect();
        assert_eq!(built, ["warning", "hung-task", "soft-lockup"]);
        let c = Canary {
            kernel: "k".into(),
            snapshot: None,
            at: String::new(),
            proofs: vec![Proof {
                absent: true,
                ..proof(&TRIGGERS[0], None, Path::new("/x"))
            }],
        };
        assert!(c.passed());
        let failed = Canary {
            proofs: vec![proof(&TRIGGERS[0], None, Path::new("/x"))],
            ..c
        };
        assert!(!failed.passed());
    }
}
