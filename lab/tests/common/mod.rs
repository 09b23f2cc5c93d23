//! Helpers for tests that boot real kernels under a real QEMU.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// VM tests share two cores: one guest at a time keeps timings meaningful.
static VM_SLOT: Mutex<()> = Mutex::new(());

pub fn vm_slot() -> MutexGuard<'static, ()> {
    VM_SLOT.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn lab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    // One cache for the whole test run: the KVM probe verdict and the initramfs are reused.
    let cache = std::env::var_os("LAB_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/lab-test-cache")
        });
    cmd.env("LAB_CACHE_DIR", cache);
    cmd
}

/// The Debian distro kernel the README's set-up installs (linux-image-6.12-amd64).
pub fn distro_kernel() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    name.starts_with("vmlinuz-6.12") && name.ends_with("-amd64")
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "no /boot/vmlinuz-6.12*-amd64: install linux-image-6.12-amd64 \
         (the README's test command does)",
    )
}

pub fn run_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("lab-{name}-"))
        .tempdir()
        .unwrap();
    let dir = tmp.path().join("run");
    (tmp, dir)
}

pub fn outcome(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("outcome.json"))
        .unwrap_or_else(|e| panic!("no outcome.json in {}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Live (not zombie) processes whose command line mentions `needle`.
pub fn live_processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let state = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
            })
            .unwrap_or_default();
        if cmdline.contains(needle) && state != "Z" && pid != std::process::id() {
            found.push((pid, cmdline));
        }
    }
    found
}

/// QEMU processes started for `run_dir` that are still alive.
pub fn qemu_left(run_dir: &Path) -> Vec<(u32, String)> {
    live_processes_mentioning(&run_dir.display().to_string())
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("qemu-system"))
        .collect()
}

/// `git -C repo args…` with a fixed identity; its trimmed stdout.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=lab", "-c", "user.email=lab@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
