//! Snapshots of booted guests: the machine's whole state, saved through QEMU's migration once
//! the agent is idle and ready, and loaded by every run of the same machine instead of a boot.
//!
//! A snapshot lives in `<cache>/snapshots/<key>/`: `state.zst` (QEMU's migration stream,
//! compressed by zstd), `initrd` (the initramfs it booted), `console.log` (its boot) and
//! `meta.json` (what it was made from, the state file's SHA-256, the agent's hello). The key
//! is a hash of everything that shapes the guest: the kernel image's and initramfs's
//! contents, QEMU's version and its whole command line (vCPUs, memory, accelerator, kernel
//! command line, devices).

use super::outcome::GuestInfo;
use super::qemu::{self, Machine, Sockets};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// Bumped whenever what a snapshot holds or how it is made changes.
/// 2: saved once the guest has settled (its console quiet), not as soon as the agent is up.
pub const FORMAT: u32 = 2;

/// The program that compresses and decompresses the state.
pub const ZSTD: &str = "zstd";

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub key: String,
    /// `qemu-system-x86_64 --version`, first line.
    pub qemu: String,
    /// QEMU's command line as keyed (kernel and initramfs by content, sockets left out).
    pub args: Vec<String>,
    /// When it was saved (RFC 3339).
    pub created: String,
    /// From QEMU's start to the agent's hello.
    pub boot_ms: u64,
    /// Pausing the guest and writing its state.
    pub save_ms: u64,
    /// The migration stream's size, and the file's (compressed).
    pub stream_bytes: u64,
    pub file_bytes: u64,
    /// SHA-256 of `state.zst`: checked before the first restore in each `lab` process.
    pub sha256: String,
    /// What the agent said when it was ready.
    pub hello: GuestInfo,
}

/// A snapshot on disk, checked.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub meta: Meta,
}

impl Snapshot {
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.zst")
    }

    pub fn initrd(&self) -> PathBuf {
        self.dir.join("initrd")
    }

    /// The migration URI that loads it (QEMU runs it through /bin/sh).
    pub fn incoming_uri(&self) -> String {
        format!("exec:{ZSTD} -d -q -c {}", shell_quote(&self.state()))
    }
}

/// The migration URI that saves a guest to `state`.
pub fn outgoing_uri(state: &Path) -> String {
    format!("exec:{ZSTD} -1 -q -c > {}", shell_quote(state))
}

/// One word for /bin/sh, whatever the path holds.
pub fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// A machine's key and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed {
    pub key: String,
    pub qemu: String,
    pub args: Vec<String>,
}

fn file_sha256(path: &Path) -> Result<String> {
    let mut file = crate::files::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut file, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// The key of `machine` (its kernel and initramfs read and hashed), under `qemu_version`.
pub fn key(machine: &Machine, qemu_version: &str) -> Result<Keyed> {
    let mut keyed = machine.clone();
    keyed.kernel = format!("kernel-sha256:{}", file_sha256(&machine.kernel)?).into();
    if let Some(initrd) = &machine.initrd {
        keyed.initrd = Some(format!("initrd-sha256:{}", file_sha256(initrd)?).into());
    }
    // The sockets' paths differ from run to run and are not part of the guest.
    let args: Vec<String> = qemu::args(&keyed, Some(&Sockets::in_dir(Path::new("/lab"))))
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut h = Sha256::new();
    h.update(format!("format={FORMAT}\0qemu={qemu_version}\0"));
    for a in &args {
        h.update(a.as_bytes());
        h.update([0]);
    }
    Ok(Keyed {
        key: hex::encode(&h.finalize()[..12]),
        qemu: qemu_version.to_string(),
        args,
    })
}

/// `qemu-system-x86_64 --version`'s first line (asked once per process).
pub fn qemu_version() -> Result<String> {
    static VERSION: Mutex<Option<String>> = Mutex::new(None);
    let mut cached = VERSION.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = cached.as_ref() {
        return Ok(v.clone());
    }
    let out = std::process::Command::new(qemu::QEMU)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", qemu::QEMU))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_default().trim().to_string();
    if !out.status.success() || line.is_empty() {
        anyhow::bail!("{} --version printed no version", qemu::QEMU);
    }
    *cached = Some(line.clone());
    Ok(line)
}

/// Whether `program` is on the PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// State files this process has checked, with the size and modification time they had: a file
/// written since is checked again.
static CHECKED: Mutex<Option<HashMap<PathBuf, (u64, SystemTime)>>> = Mutex::new(None);

fn stat(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// The snapshot in `dir` made for `keyed`, checked: `Ok(None)` when there is none, `Err(why)`
/// when what is there cannot be used (the caller discards it and makes a new one).
pub fn open(dir: &Path, keyed: &Keyed) -> std::result::Result<Option<Snapshot>, String> {
    let meta_file = dir.join("meta.json");
    let bytes = match crate::files::read(&meta_file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", meta_file.display())),
    };
    let meta: Meta =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", meta_file.display()))?;
    if meta.format != FORMAT || meta.key != keyed.key {
        return Err(format!(
            "{} is for another machine (format {}, key {})",
            meta_file.display(),
            meta.format,
            meta.key
        ));
    }
    let snapshot = Snapshot {
        dir: dir.to_path_buf(),
        meta,
    };
    let state = snapshot.state();
    let Some(now) = stat(&state) else {
        return Err(format!("{} is missing", state.display()));
    };
    let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
    let checked = checked.get_or_insert_with(HashMap::new);
    if checked.get(&state) != Some(&now) {
        let sha = file_sha256(&state).map_err(|e| format!("{e:#}"))?;
        if sha != snapshot.meta.sha256 {
            return Err(format!(
                "{} is damaged: its SHA-256 is {sha}, it was {} when saved",
                state.display(),
                snapshot.meta.sha256
            ));
        }
        checked.insert(state, now);
    }
    Ok(Some(snapshot))
}

/// Write `meta.json` of a snapshot saved into `dir`.
pub fn write_meta(dir: &Path, meta: &Meta) -> Result<()> {
    crate::files::write(dir.join("meta.json"), &serde_json::to_vec_pretty(meta)?)
}

/// SHA-256 of a saved state file.
pub fn state_sha256(state: &Path) -> Result<String> {
    file_sha256(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(dir: &Path) -> Machine {
        std::fs::write(dir.join("bzImage"), b"kernel").unwrap();
        std::fs::write(dir.join("initrd"), b"initrd").unwrap();
        Machine {
            kernel: dir.join("bzImage"),
            initrd: Some(dir.join("initrd")),
            cpus: 2,
            memory_mib: 1024,
            accel: qemu::Accel::Tcg,
            cmdline_extra: Default::default(),
        }
    }

    #[test]
    fn the_key_follows_contents_and_shape_not_paths() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ma, mb) = (machine(a.path()), machine(b.path()));
        let ka = key(&ma, "QEMU 7.2").unwrap();
        assert_eq!(ka.key, key(&mb, "QEMU 7.2").unwrap().key, "same contents");
        assert!(ka.args.iter().any(|x| x.starts_with("kernel-sha256:")));
        let mut differ = vec![key(&ma, "QEMU 8.0").unwrap().key];
        for change in [
            |m: &mut Machine| m.cpus = 3,
            |m: &mut Machine| m.memory_mib = 2048,
            |m: &mut Machine| m.accel = qemu::Accel::Kvm,
            |m: &mut Machine| m.cmdline_extra = "nokaslr".parse().unwrap(),
        ] {
            let mut m = ma.clone();
            change(&mut m);
            differ.push(key(&m, "QEMU 7.2").unwrap().key);
        }
        std::fs::write(b.path().join("initrd"), b"another agent").unwrap();
        differ.push(key(&mb, "QEMU 7.2").unwrap().key);
        for k in &differ {
            assert_ne!(*k, ka.key);
        }
    }

    fn saved(dir: &Path, keyed: &Keyed) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("state.zst"), b"the machine's state").unwrap();
        let meta = Meta {
            format: FORMAT,
            key: keyed.key.clone(),
            qemu: keyed.qemu.clone(),
            args: keyed.args.clone(),
            created: String::new(),
            boot_ms: 0,
            save_ms: 0,
            stream_bytes: 0,
            file_bytes: 0,
            sha256: state_sha256(&dir.join("state.zst")).unwrap(),
            hello: GuestInfo {
                kernel_release: "6.12".into(),
                nproc: 2,
                cmdline: String::new(),
                pid1: true,
                agent_version: "0".into(),
            },
        };
        write_meta(dir, &meta).unwrap();
    }

    #[test]
    fn a_damaged_or_foreign_snapshot_is_refused_with_the_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let keyed = key(&machine(tmp.path()), "QEMU 7.2").unwrap();
        let dir = tmp.path().join("snap");
        assert!(open(&dir, &keyed).unwrap().is_none(), "nothing there yet");
        saved(&dir, &keyed);
        assert!(open(&dir, &keyed).unwrap().is_some());
        // One byte changed, same size: the hash sees it (the file's mtime moved on).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("state.zst"), b"the machine's stata").unwrap();
        let why = open(&dir, &keyed).unwrap_err();
        assert!(why.contains("is damaged: its SHA-256 is"), "{why}");
        let other = Keyed {
            key: "other".into(),
            ..keyed.clone()
        };
        saved(&dir, &keyed);
        let why = open(&dir, &other).unwrap_err();
        assert!(why.contains("is for another machine"), "{why}");
        std::fs::remove_file(dir.join("state.zst")).unwrap();
        assert!(open(&dir, &keyed).unwrap_err().contains("is missing"));
    }

    #[test]
    fn paths_reach_the_shell_as_one_word() {
        assert_eq!(
            shell_quote(Path::new("/c/it's here/state.zst")),
            r"'/c/it'\''s here/state.zst'"
        );
        let s = Snapshot {
            dir: "/c/s".into(),
            meta: serde_json::from_value(serde_json::json!({
                "format": 1, "key": "k", "qemu": "q", "args": [], "created": "",
                "boot_ms": 0, "save_ms": 0, "stream_bytes": 0, "file_bytes": 0, "sha256": "",
                "hello": {"kernel_release": "", "nproc": 1, "cmdline": "", "pid1": true,
                          "agent_version": ""}
            }))
            .unwrap(),
        };
        assert_eq!(s.incoming_uri(), "exec:zstd -d -q -c '/c/s/state.zst'");
        assert_eq!(
            outgoing_uri(Path::new("/c/s/state.zst")),
            "exec:zstd -1 -q -c > '/c/s/state.zst'"
        );
    }
}
