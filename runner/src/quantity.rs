//! The quantities that describe work, each a type that only its parser builds: a run
//! count, vCPUs, worker threads, a workload's duration, a guest's memory. The host (command
//! line, lab.toml, scenarios, workload parameters) and the agent (the run request) read them
//! through the same parsers, so a number that cannot describe the work (0 runs, 2^32
//! threads, a 0 s workload) is refused where it is written, never wrapped or truncated into
//! one that passes.
//!
//! Each integer quantity deserializes from a JSON/TOML integer (its text through `FromStr`)
//! and serializes as its number: the wire format of the protocol is unchanged.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A number outside its quantity's range, or not a number: says which quantity, what was
/// given and the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError(pub String);

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QuantityError {}

/// An integer in `MIN..=MAX` whose meaning its name says.
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $what:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "Integer", into = "u32")]
        pub struct $name(u32);

        impl $name {
            pub const MIN: u32 = $min;
            pub const MAX: u32 = $max;
            /// What the quantity is, for errors.
            pub const WHAT: &'static str = $what;

            /// The one constructor: `value` within the range, else an error naming it.
            pub fn new(value: u64) -> Result<Self, QuantityError> {
                if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&value) {
                    Ok($name(value as u32))
                } else {
                    Err(QuantityError(format!(
                        "{value} is not a {}: {} to {}",
                        Self::WHAT,
                        Self::MIN,
                        Self::MAX
                    )))
                }
            }

            pub fn get(self) -> u32 {
                self.0
            }

            /// The value as a `usize`, for counting and indexing.
            pub fn count(self) -> usize {
                self.0 as usize
            }
        }

        impl FromStr for $name {
            type Err = QuantityError;
            fn from_str(s: &str) -> Result<Self, QuantityError> {
                Integer::from_str(s).and_then(|i| $name::try_from(i))
            }
        }

        impl TryFrom<Integer> for $name {
            type Error = QuantityError;
            fn try_from(i: Integer) -> Result<Self, QuantityError> {
                match i {
                    Integer::Unsigned(v) => $name::new(v),
                    Integer::Negative(v) => Err(QuantityError(format!(
                        "{v} is not a {}: {} to {}",
                        Self::WHAT,
                        Self::MIN,
                        Self::MAX
                    ))),
                }
            }
        }

        impl From<$name> for u32 {
            fn from(q: $name) -> u32 {
                q.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded!(
    /// How many runs of a cell, a batch or a bisection step.
    RunCount,
    "run count",
    1,
    100_000
);
bounded!(
    /// A guest's vCPUs (QEMU's `-smp`).
    Vcpus,
    "vCPU count",
    1,
    64
);
bounded!(
    /// Worker threads of a workload, in all or of one role (`closers`, `pollers`, `procs`).
    Threads,
    "worker thread count",
    1,
    1024
);

/// An integer as a serializer gives it: a reader sees 2^32 and -1 as what they are, never
/// truncated to a smaller type first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Integer {
    Unsigned(u64),
    Negative(i64),
}

impl FromStr for Integer {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, QuantityError> {
        let t = s.trim();
        if let Ok(v) = t.parse::<u64>() {
            return Ok(Integer::Unsigned(v));
        }
        match t.parse::<i64>() {
            Ok(v) => Ok(Integer::Negative(v)),
            Err(_) => Err(QuantityError(format!("{s:?} is not a whole number"))),
        }
    }
}

/// How long a workload runs: more than nothing, at most a week. Written as people write
/// durations ("30s", "500ms", "2m"); carried in the protocol as milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Integer", into = "u64")]
pub struct WorkDuration(u64);

impl WorkDuration {
    pub const MIN_MS: u64 = 1;
    pub const MAX_MS: u64 = 7 * 24 * 3600 * 1000;

    /// The one constructor from milliseconds.
    pub fn from_millis(ms: u64) -> Result<Self, QuantityError> {
        if (Self::MIN_MS..=Self::MAX_MS).contains(&ms) {
            Ok(WorkDuration(ms))
        } else {
            Err(QuantityError(format!(
                "a workload's duration of {} ms: it runs for 1 ms to 7 days",
                ms
            )))
        }
    }

    /// From a duration as measured (sub-millisecond parts must not make it 0).
    pub fn from_duration(d: Duration) -> Result<Self, QuantityError> {
        let ms = d.as_millis();
        if d > Duration::ZERO && ms == 0 {
            return Err(QuantityError(format!(
                "a workload's duration of {d:?}: below 1 ms"
            )));
        }
        Self::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub fn millis(self) -> u64 {
        self.0
    }

    pub fn get(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl TryFrom<Integer> for WorkDuration {
    type Error = QuantityError;
    fn try_from(i: Integer) -> Result<Self, QuantityError> {
        match i {
            Integer::Unsigned(v) => WorkDuration::from_millis(v),
            Integer::Negative(v) => Err(QuantityError(format!(
                "a workload's duration of {v} ms: it runs for 1 ms to 7 days"
            ))),
        }
    }
}

impl From<WorkDuration> for u64 {
    fn from(d: WorkDuration) -> u64 {
        d.0
    }
}

impl fmt::Display for WorkDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.get())
    }
}

/// Workload parameters that are quantities, by key: what each must be. Every workload reads
/// these keys through the same types, and the host checks a scenario's (and `--param`'s)
/// parameters against this table when it loads them, before anything boots.
pub const PARAM_QUANTITIES: &[(&str, ParamKind)] = &[
    ("closers", ParamKind::Threads),
    ("pollers", ParamKind::Threads),
    ("procs", ParamKind::Threads),
    ("threads", ParamKind::Threads),
    ("duration_ms", ParamKind::Millis),
    ("timeout_ms", ParamKind::Millis),
    ("hung_task_timeout_secs", ParamKind::Seconds),
    ("watchdog_thresh", ParamKind::Seconds),
    ("pace_us", ParamKind::Micros),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Threads,
    Millis,
    Seconds,
    /// A pause in microseconds: 1 to 1,000,000 (a second).
    Micros,
}

/// Check every quantity among a workload's parameters (and those of a `sequence`'s steps),
/// naming the key: `closers = 0` and `closers = 4294967296` are refused alike.
pub fn check_params(
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), QuantityError> {
    for (key, value) in params {
        if let Some((_, kind)) = PARAM_QUANTITIES.iter().find(|(k, _)| k == key) {
            let parsed = serde_json::from_value::<Integer>(value.clone())
                .map_err(|_| QuantityError(format!("{value} is not a whole number")));
            let checked = parsed.and_then(|i| match kind {
                ParamKind::Threads => Threads::try_from(i).map(drop),
                ParamKind::Millis => WorkDuration::try_from(i).map(drop),
                ParamKind::Micros => match i {
                    Integer::Unsigned(1..=1_000_000) => Ok(()),
                    _ => Err(QuantityError(format!(
                        "{value} is not a pause in microseconds: 1 to 1000000"
                    ))),
                },
                ParamKind::Seconds => match i {
                    Integer::Unsigned(1..=86_400) => Ok(()),
                    _ => Err(QuantityError(format!(
                        "{value} is not a number of seconds: 1 to 86400"
                    ))),
                },
            });
            checked.map_err(|e| QuantityError(format!("params.{key}: {e}")))?;
        }
        if key == "steps" {
            let steps = value.as_array().ok_or_else(|| {
                QuantityError(format!("params.steps: a list of steps, not {value}"))
            })?;
            if steps.is_empty() {
                return Err(QuantityError(
                    "params.steps: an empty list runs nothing".into(),
                ));
            }
            for (i, step) in steps.iter().enumerate() {
                let step = step.as_object().ok_or_else(|| {
                    QuantityError(format!("params.steps[{i}]: a table, not {step}"))
                })?;
                check_params(step).map_err(|e| QuantityError(format!("params.steps[{i}]: {e}")))?;
                if let Some(inner) = step.get("params").and_then(|p| p.as_object()) {
                    check_params(inner)
                        .map_err(|e| QuantityError(format!("params.steps[{i}].{e}")))?;
                }
            }
        }
    }
    Ok(())
}

/// A workload parameter as its type (`None` when absent): the getter every workload reads
/// its quantities with, so what [`check_params`] accepted is what runs.
pub fn param<T: serde::de::DeserializeOwned>(
    params: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<T>, QuantityError> {
    params
        .get(key)
        .map(|v| {
            serde_json::from_value::<T>(v.clone())
                .map_err(|e| QuantityError(format!("params.{key}: {e}")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every integer a reader may meet (any u64, any negative i64) either builds a
        /// quantity that holds exactly that value, or is refused naming it.
        #[test]
        fn an_integer_is_its_quantity_or_refused(v in any::<u64>(), n in i64::MIN..0) {
            for (got, min, max) in [
                (RunCount::new(v).map(u32::from), RunCount::MIN, RunCount::MAX),
                (Vcpus::new(v).map(u32::from), Vcpus::MIN, Vcpus::MAX),
                (Threads::new(v).map(u32::from), Threads::MIN, Threads::MAX),
            ] {
                match got {
                    Ok(q) => prop_assert!(u64::from(q) == v && (min..=max).contains(&q)),
                    Err(e) => {
                        prop_assert!(!(u64::from(min)..=u64::from(max)).contains(&v));
                        prop_assert!(e.0.contains(&v.to_string()));
                    }
                }
            }
            let text = v.to_string();
            prop_assert_eq!(text.parse::<Threads>().is_ok(), (1..=1024).contains(&v));
            let json = serde_json::json!(v);
            prop_assert_eq!(serde_json::from_value::<Threads>(json).is_ok(), (1..=1024).contains(&v));
            prop_assert!(serde_json::from_value::<Threads>(serde_json::json!(n)).is_err());
            prop_assert!(n.to_string().parse::<RunCount>().is_err());
            prop_assert_eq!(
                WorkDuration::from_millis(v).is_ok(),
                (1..=WorkDuration::MAX_MS).contains(&v)
            );
        }
    }

    #[test]
    fn the_wire_format_is_the_number() {
        let t: Threads = serde_json::from_str("3").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "3");
        let d: WorkDuration = serde_json::from_str("1500").unwrap();
        assert_eq!(d.get(), Duration::from_millis(1500));
        assert!(serde_json::from_str::<WorkDuration>("0").is_err());
        assert!(WorkDuration::from_duration(Duration::from_micros(10)).is_err());
        assert!(WorkDuration::from_duration(Duration::ZERO).is_err());
    }

    #[test]
    fn workload_parameters_that_are_quantities_are_checked_by_key() {
        let check = |v: serde_json::Value| check_params(v.as_object().unwrap());
        for bad in [
            serde_json::json!({"closers": 0}),
            serde_json::json!({"pollers": 4294967296u64}),
            serde_json::json!({"procs": -1}),
            serde_json::json!({"closers": "two"}),
            serde_json::json!({"timeout_ms": 0}),
            serde_json::json!({"steps": []}),
            serde_json::json!({"steps": [{"workload": "x", "threads": 0}]}),
            serde_json::json!({"steps": [{"workload": "x", "params": {"closers": 0}}]}),
        ] {
            let e = check(bad.clone()).unwrap_err().0;
            assert!(e.contains("params."), "{bad}: {e}");
        }
        for good in [
            serde_json::json!({"closers": 1, "pollers": 1024, "file_kind": "pipe"}),
            serde_json::json!({"steps": [{"workload": "x", "threads": 2, "duration_ms": 10}]}),
        ] {
            check(good.clone()).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }
}
