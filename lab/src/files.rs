//! The one opener and the one writer.
//!
//! Every file a user names, or that the lab finds in a folder a user names (kernels/,
//! scenarios/, a night's shards, a snapshot, a reproducer and what it includes), is opened
//! through [`open`] / [`read`] / [`read_to_string`]: a directory, a FIFO, a socket or a
//! device is refused with its path and what it is, before anything blocks on it.
//!
//! Every output file is written through [`write`]: a temporary file beside it, written
//! whole, fsync'd, renamed over the target and the directory fsync'd, so that a reader (or
//! a crash, or a full disk) never sees a partial file and an earlier valid file is never
//! replaced by a truncated one. Files that grow while a run goes on (a console, the agent's
//! stream, a build log) are created through [`create_stream`]. `tests/layers.rs` fails when
//! another write path appears in the lab's code.

use anyhow::{Context, Result};
use std::fs::{File, Metadata};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a file system entry is, in words, for an error that refuses it.
pub fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a regular file"
    }
}

/// The error that refuses `path` for being `meta`'s kind of entry.
fn not_regular(path: &Path, meta: &Metadata) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "{} is {}, not a regular file",
            path.display(),
            kind_of(meta)
        ),
    )
}

/// Whether `path` is a regular file (following links); `Err` says what it is instead, or
/// why it cannot be seen, naming the path.
pub fn check_regular(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| named(path, e))?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(not_regular(path, &meta))
    }
}

/// Open a regular file for reading. Opened without blocking (a FIFO's open would wait for
/// a writer), then refused unless the open file is a regular file: what is checked is what
/// is read, with no window between a check and the open. Errors name the path.
pub fn open(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match std::fs::metadata(path) {
            // A socket cannot be opened at all (ENXIO): say what it is.
            Ok(meta) if !meta.is_file() => not_regular(path, &meta),
            _ => named(path, e),
        })?;
    let meta = file.metadata().map_err(|e| named(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    // A regular file never blocks; the flag is dropped so later reads behave as usual.
    nix::fcntl::fcntl(
        &file,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .map_err(|e| named(path, e.into()))?;
    Ok(file)
}

/// The whole of a regular file.
pub fn read(path: impl AsRef<Path>) -> std::io::Result<Vec<u8>> {
    let path = path.as_ref();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut open(path)?, &mut bytes).map_err(|e| named(path, e))?;
    Ok(bytes)
}

/// The whole of a regular file, as UTF-8 text.
pub fn read_to_string(path: impl AsRef<Path>) -> std::io::Result<String> {
    let path = path.as_ref();
    String::from_utf8(read(path)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: not UTF-8 text ({e})", path.display()),
        )
    })
}

/// Write `bytes` to `path` so that readers never see a partial file: a temporary file in
/// the same directory, written and fsync'd, renamed over `path`, then the directory
/// fsync'd. On any failure the temporary file is removed, `path` keeps what it had, and
/// the error names `path`.
pub fn write(path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> Result<()> {
    let (path, bytes) = (path.as_ref(), bytes.as_ref());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("write {}: not a file name", path.display()))?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.is_file() {
            anyhow::bail!(
                "write {}: it is {}, not a regular file",
                path.display(),
                kind_of(&meta)
            );
        }
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("write {}", path.display()))
    })
}

/// Copy the regular file `from` to `to` the way [`write`] writes: through a temporary file
/// beside `to`, fsync'd and renamed, with `from`'s permissions. Returns the bytes copied.
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> std::io::Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    let (from, to) = (from.as_ref(), to.as_ref());
    let mut source = open(from)?;
    let mode = source
        .metadata()
        .map_err(|e| named(from, e))?
        .permissions()
        .mode();
    let to = if to.as_os_str().to_string_lossy().ends_with('/') || to.is_dir() {
        to.join(from.file_name().unwrap_or_default())
    } else {
        to.to_path_buf()
    };
    let dir = to
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(to.file_name().unwrap_or_default());
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let copied = (|| -> std::io::Result<u64> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .open(&tmp)?;
        let n = std::io::copy(&mut source, &mut file)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &to)?;
        Ok(n)
    })();
    copied.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        std::io::Error::new(
            e.kind(),
            format!("copy {} to {}: {e}", from.display(), to.display()),
        )
    })
}

/// Create (or truncate) a file that grows while the lab works: a console, the agent's
/// stream, a build log. Its writes are the caller's; errors name the file.
pub fn create_stream(path: &Path) -> std::io::Result<File> {
    File::create(path).map_err(|e| named(path, e))
}

/// [`create_stream`] for tokio's writers.
pub async fn create_stream_async(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::File::create(path)
        .await
        .map_err(|e| named(path, e))
}

/// An I/O error that names the file it happened on (its kind kept).
pub fn named(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of entry that is not a regular file is refused by the opener, naming the
    /// path and the kind, and none blocks.
    #[test]
    fn the_opener_refuses_every_entry_that_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("0002-x.patch")).unwrap();
        nix::unistd::mkfifo(&d.join("fifo.patch"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let sock = std::os::unix::net::UnixListener::bind(d.join("sock.toml")).unwrap();
        std::fs::write(d.join("real"), "x").unwrap();
        std::os::unix::fs::symlink(d.join("0002-x.patch"), d.join("link-to-dir")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link-to-file")).unwrap();
        for (name, kind) in [
            ("0002-x.patch", "a directory"),
            ("fifo.patch", "a FIFO"),
            ("sock.toml", "a socket"),
            ("link-to-dir", "a directory"),
        ] {
            let e = format!("{:#}", read(d.join(name)).unwrap_err());
            assert!(e.contains(name) && e.contains(kind), "{name}: {e}");
            let e = format!("{:#}", check_regular(&d.join(name)).unwrap_err());
            assert!(e.contains(name) && e.contains(kind), "{name}: {e}");
        }
        let e = format!("{:#}", read(Path::new("/dev/null")).unwrap_err());
        assert!(
            e.contains("/dev/null") && e.contains("character device"),
            "{e}"
        );
        let e = format!("{:#}", read(d.join("missing")).unwrap_err());
        assert!(e.contains("missing"), "{e}");
        assert_eq!(read(d.join("link-to-file")).unwrap(), b"x");
        assert_eq!(read_to_string(d.join("real")).unwrap(), "x");
        drop(sock);
    }

    #[test]
    fn the_writer_replaces_whole_files_and_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("results.json");
        write(&f, b"one").unwrap();
        write(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let e = format!("{:#}", write(dir.path().join("sub"), b"x").unwrap_err());
        assert!(e.contains("sub") && e.contains("a directory"), "{e}");
        // Only the file itself is left: no temporary file beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2);
        let e = format!(
            "{:#}",
            write(dir.path().join("nodir/x.json"), b"x").unwrap_err()
        );
        assert!(e.contains("nodir/x.json"), "{e}");
    }
}
