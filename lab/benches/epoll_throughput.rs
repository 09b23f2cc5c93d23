//! epoll_close_race throughput against a minimal static C loop doing the same syscalls
//! (bench/fixtures/epoll_close_loop.c), in the same boot of the `baseline` variant: closer
//! iterations per second (dma-buf alloc + EPOLL_CTL_ADD + close on vCPU 0, epoll_wait spinning
//! on vCPU 1). Both run in each boot, in alternating order; medians over the boots.
//!
//! `cargo bench -p lab --bench epoll_throughput -- [--boots N] [--seconds S]`
//! Uses the lab's cache (LAB_CACHE_DIR): builds `baseline` if it is not there.

mod common;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| common::flag_value(&args, flag);
    let boots: usize = value("--boots").map(|v| v.parse().unwrap()).unwrap_or(3);
    let seconds: u64 = value("--seconds").map(|v| v.parse().unwrap()).unwrap_or(10);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let lab = env!("CARGO_BIN_EXE_lab");
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir).unwrap();

    let fixture = out_dir.join("epoll_close_loop");
    let cc = Command::new("gcc")
        .args(["-O2", "-static", "-pthread", "-o"])
        .arg(&fixture)
        .arg(root.join("bench/fixtures/epoll_close_loop.c"))
        .status()
        .expect("gcc");
    assert!(cc.success(), "building the C fixture failed");

    let built = Command::new(lab)
        .args(["build", "baseline", "--json", "--kernels"])
        .arg(root.join("kernels"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let built: Value = serde_json::from_slice(&built.stdout).unwrap();
    let kernel = PathBuf::from(built[0]["dir"].as_str().unwrap()).join("bzImage");

    let race = json!({
        "workload": "epoll_close_race",
        "duration_ms": seconds * 1000,
        "params": { "file_kind": "dmabuf-heap", "closer_cpus": [0], "poller_cpus": [1] },
    });
    let fixture_step = json!({
        "workload": "exec",
        "params": { "path": "/fixtures/epoll_close_loop", "args": [seconds.to_string()], "name": "c_fixture" },
    });
    let (mut rust, mut c) = (Vec::new(), Vec::new());
    for boot in 0..boots {
        let steps = if boot % 2 == 0 {
            json!([race, fixture_step])
        } else {
            json!([fixture_step, race])
        };
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(lab)
            .args(["boot", "--cpus", "2", "--workload", "sequence", "--json"])
            .arg("--kernel")
            .arg(&kernel)
            .arg("--duration")
            .arg(format!("{seconds}s"))
            .arg("--param")
            .arg(format!("steps={steps}"))
            .arg("--extra")
            .arg(format!("fixtures/epoll_close_loop={}", fixture.display()))
            .arg("--out")
            .arg(tmp.path().join("run"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let record: Value = serde_json::from_slice(&out.stdout).unwrap();
        let closer: u64 = record["threads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["role"] == "closer")
            .map(|t| t["count"].as_u64().unwrap())
            .sum();
        let fix = &record["observations"]["c_fixture"];
        let c_rate = fix["closer_iterations"].as_f64().unwrap() / fix["seconds"].as_f64().unwrap();
        rust.push(closer as f64 / seconds as f64);
        c.push(c_rate);
        println!(
            "boot {}: lab workload {:.0} closer iterations/s, C loop {:.0}/s",
            boot + 1,
            rust[boot],
            c_rate
        );
    }
    let (r, cm) = (common::median(rust.clone()), common::median(c.clone()));
    println!(
        "median over {boots} boots ({seconds} s each, baseline, TCG, 2 vCPUs): lab {r:.0}/s, C {cm:.0}/s, lab/C = {:.3}",
        r / cm
    );
    std::fs::write(
        out_dir.join("epoll-throughput.json"),
        serde_json::to_vec_pretty(&json!({
            "seconds": seconds, "boots": boots, "lab": rust, "c": c,
            "median_lab": r, "median_c": cm, "ratio": r / cm,
        }))
        .unwrap(),
    )
    .unwrap();
}
