//! Run-time kernel parameters a scenario sets before its workload (KCSAN's delay injection:
//! `kcsan.udelay_task`, `kcsan.udelay_interrupt`, `kcsan.skip_watch`): each written to
//! /sys/module/<module>/parameters/<param> and read back. A module the kernel lacks (KCSAN's
//! parameters on a KASAN build) is reported absent, not an error: one scenario runs under
//! either detector.

use std::collections::BTreeMap;
use std::path::PathBuf;

fn path(name: &str) -> Option<(PathBuf, PathBuf)> {
    let (module, param) = name.split_once('.')?;
    let dir = PathBuf::from("/sys/module").join(module);
    Some((dir.join("parameters").join(param), dir))
}

/// Set each parameter; for each, `{"asked", "now"}` (what the kernel reads back) or
/// `{"asked", "absent"|"error"}`.
pub fn set(params: &BTreeMap<String, String>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (name, value) in params {
        let result = match path(name) {
            None => serde_json::json!({ "asked": value, "error": "not module.param" }),
            Some((_, dir)) if !dir.exists() => serde_json::json!({
                "asked": value,
                "absent": format!("this kernel has no {}", dir.display()),
            }),
            Some((file, _)) => match std::fs::write(&file, value) {
                Ok(()) => match std::fs::read_to_string(&file) {
                    Ok(now) => serde_json::json!({ "asked": value, "now": now.trim() }),
                    Err(e) => {
                        serde_json::json!({ "asked": value, "error": format!("read back {}: {e}", file.display()) })
                    }
                },
                Err(e) => {
                    serde_json::json!({ "asked": value, "error": format!("{}: {e}", file.display()) })
                }
            },
        };
        out.insert(name.clone(), result);
    }
    serde_json::Value::Object(out)
}
