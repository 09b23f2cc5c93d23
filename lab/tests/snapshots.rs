//! Snapshots against a real QEMU and the Debian distro kernel: one saved guest restored
//! twice gives two runs of their own (each reseeded), and a damaged snapshot is found out and
//! made again.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `lab boot --snapshot` on the distro kernel with `cmdline` (which keys the snapshot);
/// the record and what lab said on stderr.
fn restored_boot(cmdline: &str, name: &str) -> (Value, String, tempfile::TempDir, PathBuf) {
    let (tmp, dir) = run_dir(name);
    let out = boot_distro(
        &["--snapshot", "--duration", "1s", "--cmdline", cmdline],
        &dir,
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(qemu_left(&dir).is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (outcome(&dir), stderr, tmp, dir)
}

fn snapshot_dir(key: &str) -> PathBuf {
    test_cache().join("snapshots").join(key)
}

fn meta(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap()
}

#[test]
fn one_snapshot_restored_twice_gives_two_runs_of_their_own_and_damage_is_found() {
    let _slot = vm_slot();
    // A command line of this test's own: a snapshot made here, not one from an earlier run.
    let token = format!(
        "lab.test=snapshot-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let (first, said, _t1, _) = restored_boot(&token, "snap-1");
    assert!(said.contains(" made: booted in "), "{said}");
    let (second, said, _t2, _) = restored_boot(&token, "snap-2");
    assert!(!said.contains(" made: "), "the same snapshot: {said}");

    for run in [&first, &second] {
        assert_eq!(run["outcome"]["kind"], "completed", "{run}");
        assert_eq!(run["start"]["how"], "restored", "{run}");
        let t = &run["timing"];
        assert!(
            t["restored_ms"].as_u64() < t["agent_hello_ms"].as_u64(),
            "the restored agent greets after the load: {t}"
        );
        assert!(run["guest"]["cmdline"].as_str().unwrap().contains(&token));
        assert!(run["threads"].as_array().unwrap().len() == 2, "{run}");
    }
    let key = first["start"]["snapshot"].as_str().unwrap().to_string();
    assert_eq!(second["start"]["snapshot"], key.as_str());
    // Same saved guest, its own seed, and the kernel's random pool moved apart.
    let rng = |run: &Value| run["observations"]["kernel-rng"].clone();
    assert!(rng(&first)["error"].is_null(), "{}", rng(&first));
    assert_ne!(first["seed"], second["seed"]);
    assert_eq!(rng(&first)["seed"], first["seed"]);
    assert_ne!(rng(&first)["first_bytes"], rng(&second)["first_bytes"]);

    // One byte of the saved state flipped: found before it is loaded, and made again.
    let dir = snapshot_dir(&key);
    let before = meta(&dir)["sha256"].clone();
    let state = dir.join("state.zst");
    let mut bytes = std::fs::read(&state).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&state, &bytes).unwrap();
    let (third, said, _t3, _) = restored_boot(&token, "snap-3");
    assert!(said.contains("is damaged: its SHA-256 is"), "{said}");
    assert!(said.contains(" made: booted in "), "{said}");
    assert_eq!(third["outcome"]["kind"], "completed", "{third}");
    assert_eq!(third["start"]["how"], "restored", "{third}");
    assert_eq!(third["start"]["snapshot"], key.as_str());
    assert_ne!(meta(&dir)["sha256"], before, "a new state file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_state_qemu_cannot_load_is_rebuilt_once_and_the_run_still_restores() {
    let _slot = vm_slot();
    let token = format!("lab.test=unloadable-{}", std::process::id());
    let (first, _, _t1, _) = restored_boot(&token, "unload-1");
    let key = first["start"]["snapshot"].as_str().unwrap().to_string();
    // A state file cut short, its hash made to match: only QEMU's load can tell.
    let dir = snapshot_dir(&key);
    let state = dir.join("state.zst");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 4]).unwrap();
    let mut m = meta(&dir);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes[..bytes.len() / 4]))
    };
    m["sha256"] = sha.into();
    std::fs::write(dir.join("meta.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    let (second, said, _t2, run) = restored_boot(&token, "unload-2");
    assert!(said.contains("cannot restore snapshot"), "{said}");
    assert_eq!(second["outcome"]["kind"], "completed", "{second}");
    assert_eq!(second["start"]["how"], "restored", "{second}");
    let note = second["start"]["note"].as_str().unwrap();
    assert!(note.contains("load of migration failed"), "{note}");
    let stderr = std::fs::read_to_string(run.join("restore-failed-stderr.log")).unwrap();
    assert!(stderr.contains("load of migration failed"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_boot_the_kernel_ends_in_a_panic_is_named_kept_and_not_tried_again() {
    let _slot = vm_slot();
    // No init: the kernel panics before the agent could greet.
    let (_tmp, dir) = run_dir("panics");
    let out = boot_distro(
        &[
            "--snapshot",
            "--duration",
            "1s",
            "--cmdline",
            "rdinit=/nonexistent lab.test=panics",
        ],
        &dir,
    );
    assert!(!out.status.success(), "{}", show(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(
            "no snapshot, every run boots: the guest panicked while booting: Kernel panic"
        ),
        "{said}"
    );
    assert!(said.contains("QEMU exit status: 0"), "{said}");
    let kept = std::fs::read_to_string(dir.join("snapshot-boot-1-console.log")).unwrap();
    assert!(kept.contains("Kernel panic"), "{kept}");
    assert!(
        !dir.join("snapshot-boot-2-console.log").exists(),
        "the kernel's own verdict is not asked twice"
    );
    assert_eq!(outcome(&dir)["outcome"]["kind"], "guest-panic");
}
