//! The initramfs the lab boots: the static guest agent as `/init`, the mount points it
//! needs and `/dev/console`. Nothing from the host's root filesystem.

use crate::cache;
use anyhow::{Context, Result};
use cpio::newc::Builder;
use flate2::{write::GzEncoder, Compression};
use sha2::{Digest, Sha256};
use std::io::{Cursor, Write};
use std::path::PathBuf;

/// The guest agent, built statically by build.rs and embedded in `lab`.
pub const RUNNER: &[u8] = include_bytes!(env!("LAB_RUNNER_PATH"));

const DIR: u32 = 0o040_755;
const CHR: u32 = 0o020_600;
const EXE: u32 = 0o100_755;

/// (path, mode, rdev major, rdev minor, contents)
type Entry = (&'static str, u32, u32, u32, &'static [u8]);

const ENTRIES: &[Entry] = &[
    ("dev", DIR, 0, 0, b""),
    ("dev/console", CHR, 5, 1, b""),
    ("proc", DIR, 0, 0, b""),
    ("sys", DIR, 0, 0, b""),
    ("tmp", DIR, 0, 0, b""),
    ("init", EXE, 0, 0, RUNNER),
];

/// The uncompressed newc archive.
pub fn archive() -> Result<Vec<u8>> {
    let inputs = ENTRIES.iter().map(|&(name, mode, major, minor, data)| {
        let builder = Builder::new(name)
            .mode(mode)
            .nlink(if mode == DIR { 2 } else { 1 })
            .rdev_major(major)
            .rdev_minor(minor);
        (builder, Cursor::new(data))
    });
    cpio::write_cpio(inputs, Vec::new()).context("write initramfs cpio archive")
}

/// Path of the gzip-compressed initramfs in the cache, generated on first use.
pub fn path() -> Result<PathBuf> {
    let digest = hex::encode(&Sha256::digest(RUNNER)[..8]);
    let path = cache::dir("initramfs")?.join(format!("runner-{digest}.cpio.gz"));
    if !path.exists() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&archive()?)?;
        crate::files::write(&path, &gz.finish()?)?;
    }
    Ok(path)
}

/// The cached initramfs plus a second archive with `extras` (guest path, host file), as one
/// file in `dir`: the kernel unpacks concatenated archives in order.
pub fn with_extras(dir: &std::path::Path, extras: &[(String, PathBuf)]) -> Result<PathBuf> {
    if extras.is_empty() {
        return path();
    }
    let mut entries: Vec<(String, u32, Vec<u8>)> = Vec::new();
    for (guest, host) in extras {
        let guest = guest.trim_start_matches('/').to_string();
        let mut parent = std::path::Path::new(&guest).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            let d = dir.to_string_lossy().into_owned();
            if !entries.iter().any(|(n, _, _)| *n == d) {
                entries.push((d, DIR, Vec::new()));
            }
            parent = dir.parent();
        }
        let bytes = crate::files::read(host)?;
        entries.push((guest, EXE, bytes));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let inputs = entries.iter().map(|(name, mode, data)| {
        (
            Builder::new(name).mode(*mode).nlink(1),
            Cursor::new(data.as_slice()),
        )
    });
    let extra = cpio::write_cpio(inputs, Vec::new()).context("write extra cpio archive")?;
    let mut bytes = crate::files::read(path()?)?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&extra)?;
    bytes.extend(gz.finish()?);
    let out = dir.join("initramfs.cpio.gz");
    crate::files::write(&out, bytes)?;
    Ok(out)
}

/// Write the agent binary itself (for backends that run it from the host filesystem).
pub fn write_runner(dir: &std::path::Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("runner");
    crate::files::write(&path, RUNNER)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_holds_init_console_and_mount_points() {
        let bytes = archive().unwrap();
        let mut rest = Cursor::new(bytes);
        let mut seen = Vec::new();
        loop {
            let reader = cpio::NewcReader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            let e = reader.entry();
            seen.push((
                e.name().to_string(),
                e.mode(),
                e.rdev_major(),
                e.file_size(),
            ));
            rest = reader.finish().unwrap();
        }
        let find = |n: &str| seen.iter().find(|e| e.0 == n).cloned().unwrap();
        assert_eq!(find("init").1, EXE);
        assert_eq!(find("init").3 as usize, RUNNER.len());
        assert_eq!(find("dev/console").1, CHR);
        assert_eq!(find("dev/console").2, 5);
        for dir in ["dev", "proc", "sys", "tmp"] {
            assert_eq!(find(dir).1, DIR);
        }
    }

    #[test]
    fn embedded_runner_is_a_static_x86_64_elf() {
        assert_eq!(&RUNNER[..4], b"\x7fELF");
        assert_eq!(RUNNER[4], 2, "64-bit");
        assert_eq!(u16::from_le_bytes([RUNNER[18], RUNNER[19]]), 62, "x86-64");
        // A static executable has no PT_INTERP program header.
        let phoff = u64::from_le_bytes(RUNNER[32..40].try_into().unwrap()) as usize;
        let phentsize = u16::from_le_bytes([RUNNER[54], RUNNER[55]]) as usize;
        let phnum = u16::from_le_bytes([RUNNER[56], RUNNER[57]]) as usize;
        let interp = (0..phnum).any(|i| {
            let off = phoff + i * phentsize;
            u32::from_le_bytes(RUNNER[off..off + 4].try_into().unwrap()) == 3
        });
        assert!(!interp, "runner must not need a dynamic loader");
    }
}
