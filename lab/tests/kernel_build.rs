//! Kernel builds from Debian's linux-source-6.12: the seed variants build (cold once, then
//! incrementally), boot with every vCPU, and are cache hits the second time; broken inputs
//! are reported by patch/hunk and by CONFIG_ option.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo_kernels() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kernels")
}

fn build_json(kernels: &Path, variants: &[&str]) -> (std::process::Output, Option<Value>) {
    let out = lab()
        .args(["build", "--json", "--kernels"])
        .arg(kernels)
        .args(variants)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).ok();
    (out, json)
}

/// A kernels/ directory with the repo's fragments and one extra variant.
fn scratch_kernels(
    variant: &str,
    toml: &str,
    patch: Option<&str>,
    extra_fragment: Option<&str>,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    for entry in std::fs::read_dir(repo_kernels().join("configs"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(entry.path(), configs.join(entry.file_name())).unwrap();
    }
    if let Some(frag) = extra_fragment {
        std::fs::write(configs.join("extra.config"), frag).unwrap();
    }
    std::fs::write(dir.path().join(format!("{variant}.toml")), toml).unwrap();
    if let Some(patch) = patch {
        let p = dir.path().join("patches").join(variant);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("0001-broken.patch"), patch).unwrap();
    }
    dir
}

#[test]
fn broken_patch_is_reported_with_patch_hunk_and_file() {
    let patch = "\
From 0 Mon Sep 17 00:00:00 2001
Subject: [PATCH] does not apply

---
diff --git a/fs/eventpoll.c b/fs/eventpoll.c
--- a/fs/eventpoll.c
+++ b/fs/eventpoll.c
@@ -1219,7 +1219,7 @@ static __poll_t ep_item_poll(const struct epitem *epi, poll_table *pt,
 static __poll_t ep_item_poll(const struct epitem *epi, poll_table *pt,
 				 int depth)
 {
-	struct file *file = this_line_is_not_in_the_tree(epi);
+	struct file *file = epi->ffd.file;
 	__poll_t res;
 
 	/*
";
    let kernels = scratch_kernels("broken", "description = \"x\"\n", Some(patch), None);
    let (out, _) = build_json(kernels.path(), &["broken"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "patches/broken/0001-broken.patch: hunk #1 (@@ -1219,7 +1219,7 @@ static __poll_t \
             ep_item_poll(const struct epitem *epi, poll_table *pt,) does not apply to fs/eventpoll.c"
        ),
        "{stderr}"
    );
}

#[test]
fn option_that_cannot_be_set_is_named_with_its_dependency() {
    // UDMABUF needs DMA_SHARED_BUFFER, which nothing in this configuration selects.
    let kernels = scratch_kernels(
        "nodmabuf",
        "fragments = [\"qemu-guest\", \"extra\"]\n",
        None,
        Some("CONFIG_MEMFD_CREATE=y\nCONFIG_TMPFS=y\nCONFIG_UDMABUF=y\n"),
    );
    let (out, _) = build_json(kernels.path(), &["nodmabuf"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CONFIG_UDMABUF=y ("), "{stderr}");
    assert!(stderr.contains("extra.config:3)"), "{stderr}");
    assert!(stderr.contains("drivers/dma-buf/Kconfig"), "{stderr}");
    assert!(stderr.contains("DMA_SHARED_BUFFER=n"), "{stderr}");
    // Exactly the one option is reported.
    assert_eq!(
        stderr.matches(" is not in the final .config").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_compiler_that_cannot_do_kcsan_is_named_when_the_kcsan_build_is_asked_for() {
    // A gcc that refuses ThreadSanitizer's flags, as GCC before 11 does for the kernel's.
    let bin = tempfile::tempdir().unwrap();
    let gcc = bin.path().join("gcc");
    std::fs::write(
        &gcc,
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in -fsanitize=thread) \
         echo \"gcc: error: unrecognized argument to -fsanitize= option: 'thread'\" >&2; \
         exit 1;; esac; done\nexec /usr/bin/gcc \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gcc, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A fragment of its own (its text names the test's directory): never a cache hit.
    let kernels = scratch_kernels(
        "plain",
        "fragments = [\"qemu-guest\", \"scenarios\", \"kasan\", \"extra\"]\n",
        None,
        Some(&format!("# {}\nCONFIG_EPOLL=y\n", bin.path().display())),
    );
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = lab()
        .env("PATH", path)
        .args(["build", "--kernels"])
        .arg(kernels.path())
        .args(["plain", "--detector", "kcsan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the compiler cannot build CONFIG_KCSAN")
            && stderr.contains("CONFIG_HAVE_KCSAN_COMPILER")
            && stderr.contains("GCC 11 or later")
            && stderr.contains("kcsan.config:"),
        "{stderr}"
    );
    assert!(stderr.contains("plain+kcsan"), "{stderr}");
}

/// The upstream version in a Debian source id: `debian:linux-source-6.12=6.12.118-1` →
/// `6.12.118` (the Debian revision after the last `-` dropped).
fn package_upstream_version(source_id: &str) -> String {
    let version = source_id
        .rsplit_once('=')
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no version in source id {source_id}"));
    let upstream = version.rsplit_once('-').map_or(version, |(u, _)| u);
    upstream.to_string()
}

fn boot_variant(variant: &str) -> Value {
    let (_tmp, dir) = run_dir(variant);
    let out = lab()
        .args([
            "boot",
            "--variant",
            variant,
            "--cpus",
            "2",
            "--duration",
            "2s",
        ])
        .arg("--kernels")
        .arg(repo_kernels())
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    outcome(&dir)
}

#[test]
fn seed_variants_build_incrementally_boot_and_hit_the_cache() {
    let _slot = vm_slot();
    let (out, json) = build_json(&repo_kernels(), &["baseline", "epoll-unpinned-poll"]);
    assert!(out.status.success(), "{}", show(&out));
    let built = json.expect("lab build --json prints an array");
    assert_eq!(built[1]["variant"], "epoll-unpinned-poll");
    // Rebuilt (--force) right after baseline from the shared object tree, whatever the cache
    // held: only what the patch touches is rewritten and recompiled. Baseline first, so the
    // tree is baseline's whichever variant an earlier test built last.
    for variant in ["baseline", "epoll-unpinned-poll"] {
        let out = lab()
            .args(["build", "--json", "--force", "--kernels"])
            .arg(repo_kernels())
            .arg(variant)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let forced: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(forced[0]["cache_hit"], false, "{forced}");
        if variant == "epoll-unpinned-poll" {
            let m = &forced[0]["metadata"];
            let rewritten = m["files_rewritten"].as_array().unwrap();
            assert_eq!(rewritten, &vec![Value::from("fs/eventpoll.c")], "{m}");
            let compiled = m["files_compiled"].as_u64().unwrap();
            assert!(
                (1..20).contains(&compiled),
                "incremental build compiled {compiled} files: {m}"
            );
        }
    }
    for b in built.as_array().unwrap() {
        let dir = PathBuf::from(b["dir"].as_str().unwrap());
        for artifact in [
            "bzImage",
            "vmlinux",
            "System.map",
            ".config",
            "build.log",
            "metadata.json",
        ] {
            assert!(
                dir.join(artifact).is_file(),
                "{} lacks {artifact}",
                dir.display()
            );
        }
        let config = std::fs::read_to_string(dir.join(".config")).unwrap();
        for option in [
            "CONFIG_KASAN=y",
            "CONFIG_PROVE_LOCKING=y",
            "CONFIG_UDMABUF=y",
        ] {
            assert!(config.lines().any(|l| l == option), "{option} missing");
        }
    }

    // Both boot, see every vCPU and run the kernel the lab built: the release the build
    // tree gave (include/config/kernel.release), which starts with the upstream version of
    // the source package it was built from (Debian moves that version under the lab).
    for (b, variant) in built
        .as_array()
        .unwrap()
        .iter()
        .zip(["baseline", "epoll-unpinned-poll"])
    {
        let m = &b["metadata"];
        let release = m["kernel_release"].as_str().unwrap();
        let source_id = m["inputs"]["source_id"].as_str().unwrap();
        let upstream = package_upstream_version(source_id);
        assert!(
            release.starts_with(&upstream),
            "built release {release} is not from {source_id}"
        );
        let o = boot_variant(variant);
        assert_eq!(o["outcome"]["kind"], "completed", "{o}");
        assert_eq!(o["guest"]["nproc"], 2, "{o}");
        assert_eq!(o["guest"]["kernel_release"], release, "{o}");
    }

    // Nothing changed: both are cache hits.
    let (out, json) = build_json(&repo_kernels(), &["baseline", "epoll-unpinned-poll"]);
    assert!(out.status.success(), "{}", show(&out));
    for b in json.unwrap().as_array().unwrap() {
        assert_eq!(b["cache_hit"], true, "{b}");
    }

    // A patch that applies but does not compile: the first compiler error is shown. Same
    // configuration as the seed variants, so this is an incremental build.
    let patch = "\
From 0 Mon Sep 17 00:00:00 2001
Subject: [PATCH] break the build

---
diff --git a/fs/eventfd.c b/fs/eventfd.c
--- a/fs/eventfd.c
+++ b/fs/eventfd.c
@@ -6,6 +6,7 @@
  *
  */
 
+#error lab-test-compile-failure
 #include <linux/file.h>
 #include <linux/poll.h>
 #include <linux/init.h>
";
    let kernels = scratch_kernels("nocompile", "description = \"x\"\n", Some(patch), None);
    let (out, _) = build_json(kernels.path(), &["nocompile"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("first error: ")
            && stderr.contains("fs/eventfd.c:9:2: error: #error lab-test-compile-failure"),
        "{stderr}"
    );
    assert!(stderr.contains("last lines of"), "{stderr}");
}
