//! Boot-to-agent-ready, median of N runs each, same kernel, same accelerator, 2 vCPUs, 1 GiB:
//!
//! - `lab`:  `lab boot` until the agent's hello (lab's own preparation included);
//! - `restore`: `lab boot --snapshot` until the restored agent's hello (the snapshot is made
//!   by an uncounted first run; checking its hash, once per batch, is timed apart);
//! - `bare`: `qemu-system-x86_64 -kernel K -initrd <busybox echo>` until the echo;
//! - `vng`:  `vng --run K --exec 'echo ...'` until the echo.
//!
//! `cargo bench -p lab --bench boot_to_ready -- [--runs N] [--kernel PATH] [--no-vng]`
//! Writes the figures to target/bench/boot-to-ready.json as well.

mod common;

use flate2::{write::GzEncoder, Compression};
use std::io::{BufRead, BufReader, Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &str = "BOOT-BENCH-READY";

fn distro_kernel() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .expect("/boot")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("vmlinuz-6.12") && n.ends_with("-amd64")
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("no /boot/vmlinuz-6.12*-amd64 (scripts/setup.sh installs it)")
}

/// A busybox initramfs whose /init prints the marker and powers off.
fn busybox_initramfs(dir: &Path) -> PathBuf {
    let busybox =
        std::fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
    let init = format!("#!/bin/busybox sh\n/bin/busybox echo {MARKER}\n/bin/busybox poweroff -f\n");
    let entries: Vec<(&str, u32, u32, u32, Vec<u8>)> = vec![
        ("dev", 0o040_755, 0, 0, vec![]),
        ("dev/console", 0o020_600, 5, 1, vec![]),
        ("bin", 0o040_755, 0, 0, vec![]),
        ("bin/busybox", 0o100_755, 0, 0, busybox),
        ("init", 0o100_755, 0, 0, init.into_bytes()),
    ];
    let inputs = entries.into_iter().map(|(name, mode, major, minor, data)| {
        (
            cpio::NewcBuilder::new(name)
                .mode(mode)
                .rdev_major(major)
                .rdev_minor(minor),
            Cursor::new(data),
        )
    });
    let archive = cpio::write_cpio(inputs, Vec::new()).unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&archive).unwrap();
    let path = dir.join("busybox.cpio.gz");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    path
}

/// Seconds from spawning `cmd` until a line on its stdout or stderr contains the marker.
fn time_to_marker(mut cmd: Command) -> f64 {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.contains(MARKER) && !line.contains("echo") {
                    let _ = tx.send(());
                }
            }
        });
    }
    let got = rx.recv_timeout(Duration::from_secs(180));
    let elapsed = start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    got.expect("marker never appeared");
    elapsed
}

/// `lab boot` of `kernel` (restoring its snapshot with `snapshot`) for no time: its record,
/// and the seconds the whole process took.
fn lab_boot(
    kernel: &Path,
    cache: &Path,
    out_dir: &Path,
    snapshot: bool,
) -> (serde_json::Value, f64) {
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.arg("boot");
    if snapshot {
        cmd.arg("--snapshot");
    }
    let out = cmd
        .args([
            "--cpus",
            "2",
            "--memory",
            "1G",
            // The shortest workload there is: what is measured ends at the agent's hello.
            "--duration",
            "1ms",
            "--json",
        ])
        .arg("--kernel")
        .arg(kernel)
        .arg("--out")
        .arg(out_dir)
        .env("LAB_CACHE_DIR", cache)
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), wall)
}

/// Milliseconds of a record's timing field.
fn ms(record: &serde_json::Value, field: &str) -> u64 {
    record["timing"][field].as_u64().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| common::flag_value(&args, flag);
    let runs: usize = value("--runs").map(|v| v.parse().unwrap()).unwrap_or(5);
    let kernel = value("--kernel")
        .map(PathBuf::from)
        .unwrap_or_else(distro_kernel);
    let with_vng = !args.iter().any(|a| a == "--no-vng");
    let tmp = tempfile::tempdir().unwrap();
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    let cache = target.join("lab-bench-cache");

    // lab boot: the agent's hello, plus what lab spends before QEMU starts.
    let mut lab_s = Vec::new();
    let mut accel = String::new();
    for i in 0..=runs {
        let (record, _) = lab_boot(&kernel, &cache, &tmp.path().join(format!("lab-{i}")), false);
        accel = record["accel"].as_str().unwrap().to_string();
        // Run 0 warms the cache (KVM probe verdict, initramfs): not counted.
        if i > 0 {
            lab_s.push((ms(&record, "prepare_ms") + ms(&record, "agent_hello_ms")) as f64 / 1000.0);
        }
    }

    // The same kernel restored from its snapshot: run 0 makes it (not counted).
    let mut restore_s = Vec::new();
    let mut loaded_s = Vec::new();
    let mut check_s = Vec::new();
    for i in 0..=runs {
        let out_dir = tmp.path().join(format!("restore-{i}"));
        let (record, wall) = lab_boot(&kernel, &cache, &out_dir, true);
        assert_eq!(record["start"]["how"], "restored", "{record}");
        let prepare = ms(&record, "prepare_ms");
        if i > 0 {
            restore_s.push((prepare + ms(&record, "agent_hello_ms")) as f64 / 1000.0);
            loaded_s.push(ms(&record, "restored_ms") as f64 / 1000.0);
            // What the process spent outside the run's own clock: start-up and the hash.
            check_s.push(wall - (prepare + ms(&record, "ended_ms")) as f64 / 1000.0);
        }
    }

    // Bare QEMU with a busybox echo, same accelerator and machine.
    let initrd = busybox_initramfs(tmp.path());
    let (accel_arg, cpu) = if accel == "kvm" {
        ("kvm", "host")
    } else {
        ("tcg,thread=multi", "max")
    };
    let mut bare_s = Vec::new();
    for _ in 0..runs {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-accel", accel_arg, "-cpu", cpu, "-smp", "2", "-m", "1024M"])
            .args(["-no-reboot", "-serial", "stdio"])
            .args(["-append", "console=ttyS0 panic=-1"])
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd);
        bare_s.push(time_to_marker(cmd));
    }

    let mut vng_s = Vec::new();
    if with_vng {
        for _ in 0..runs {
            let mut cmd = Command::new("vng");
            cmd.arg("--run")
                .arg(&kernel)
                .args(["--cpus", "2", "--memory", "1G"])
                .args(["--exec", &format!("echo {MARKER}")]);
            if accel != "kvm" {
                cmd.arg("--disable-kvm");
            }
            vng_s.push(time_to_marker(cmd));
        }
    }

    let (lab_m, bare_m) = (
        common::median(lab_s.clone()),
        common::median(bare_s.clone()),
    );
    println!(
        "boot-to-ready, {} ({accel}, 2 vCPUs, 1 GiB), median of {runs}:",
        kernel.display()
    );
    println!("  bare qemu + busybox echo  {bare_m:7.2} s   runs {bare_s:.2?}");
    println!(
        "  lab boot (agent hello)    {lab_m:7.2} s   runs {lab_s:.2?}   = {:.3}x bare",
        lab_m / bare_m
    );
    let (restore_m, loaded_m, check_m) = (
        common::median(restore_s.clone()),
        common::median(loaded_s.clone()),
        common::median(check_s.clone()),
    );
    println!(
        "  lab boot --snapshot       {restore_m:7.2} s   runs {restore_s:.2?}   = {:.3}x lab boot \
         (state loaded at {loaded_m:.2} s; lab's start-up and the snapshot's check {check_m:.2} s)",
        restore_m / lab_m
    );
    let vng_m = (!vng_s.is_empty()).then(|| common::median(vng_s.clone()));
    if let Some(vng_m) = vng_m {
        println!(
            "  vng --run + echo          {vng_m:7.2} s   runs {vng_s:.2?}   = {:.3}x bare",
            vng_m / bare_m
        );
    }
    let report = serde_json::json!({
        "kernel": kernel.display().to_string(),
        "accel": accel,
        "runs": runs,
        "seconds": { "bare": bare_s, "lab": lab_s, "restore": restore_s, "vng": vng_s },
        "median": { "bare": bare_m, "lab": lab_m, "restore": restore_m, "vng": vng_m },
        "lab_over_bare": lab_m / bare_m,
        "restore_over_lab": restore_m / lab_m,
        "restore_loaded_median": loaded_m,
        "restore_outside_run_median": check_m,
    });
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("boot-to-ready.json"),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
}
