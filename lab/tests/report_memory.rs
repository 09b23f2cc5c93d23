//! `lab report parse` streams a console: its peak memory stays bounded whatever the file's
//! size (an 80 MiB console of real reports, every report kept up to the cap).

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// Peak resident memory of the children this process waited for, in KiB.
fn children_max_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialized by the successful call above.
    unsafe { usage.assume_init() }.ru_maxrss
}

#[test]
fn report_parse_memory_does_not_grow_with_the_console() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/console");
    let mut blob = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    for p in names {
        blob.extend(std::fs::read(p).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let console = dir.path().join("big.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&console).unwrap());
    let mut written = 0;
    while written < 80 << 20 {
        file.write_all(&blob).unwrap();
        written += blob.len();
    }
    drop(file);
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["report", "parse"])
        .arg(&console)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 100, "the first 100 reports");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more reports after the first 100"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak = children_max_rss_kib();
    assert!(
        peak < 64 * 1024,
        "peak memory {peak} KiB for an 80 MiB console"
    );
}
