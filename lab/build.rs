//! Builds the guest agent (`runner`) as a static x86_64 executable and hands its path to the
//! lab, which embeds it: a `lab` binary carries its own guest agent and needs nothing else.
//! Turns the report parser's function map into the FST it looks names up in.

use std::env;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/report/function_map.rs"]
mod function_map;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for path in ["runner/src", "runner/Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=LAB_RUNNER_BIN");
    function_files(&manifest_dir, Path::new(&env::var("OUT_DIR").unwrap()));

    // A prebuilt agent can be supplied (packaging, cross builds).
    if let Ok(prebuilt) = env::var("LAB_RUNNER_BIN") {
        println!("cargo:rustc-env=LAB_RUNNER_PATH={prebuilt}");
        return;
    }

    // A target directory of its own, so the nested cargo never waits on the outer one's lock.
    let target_dir = env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace.join("target"))
        .join("runner-static");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--package",
            "runner",
            "--bin",
            "runner",
        ])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        // Static glibc: the initramfs holds the runner and nothing else.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "-Ctarget-feature=+crt-static\x1f-Cstrip=symbols",
        )
        // Do not inherit a clippy or coverage wrapper meant for the outer build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .status()
        .expect("run cargo to build the guest agent");
    assert!(status.success(), "building the guest agent (runner) failed");
    let bin = target_dir.join(TARGET).join("release").join("runner");
    println!("cargo:rustc-env=LAB_RUNNER_PATH={}", bin.display());
}

/// `function-files.fst` maps each name the function map decides to its file's index;
/// `function-files.txt` holds the files, one a line.
fn function_files(manifest_dir: &Path, out_dir: &Path) {
    let data = manifest_dir.join("data/function-files.gz");
    for path in [&data, &manifest_dir.join("src/report/function_map.rs")] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&data).expect("data/function-files.gz"))
        .read_to_string(&mut text)
        .expect("data/function-files.gz is gzip'd text");
    let map = function_map::decided(&text);
    let mut fst = fst::MapBuilder::memory();
    for &(name, file) in &map.names {
        fst.insert(name, file as u64)
            .expect("names sorted, each once");
    }
    std::fs::write(
        out_dir.join("function-files.fst"),
        fst.into_inner().unwrap(),
    )
    .unwrap();
    std::fs::write(out_dir.join("function-files.txt"), map.files.join("\n")).unwrap();
}
