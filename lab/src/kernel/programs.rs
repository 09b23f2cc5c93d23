//! Programs built for one kernel: its UAPI headers (`make headers`), the test programs of a
//! selftest directory of its own tree, and C reproducers. Everything is static (the guest
//! has no libraries) and cached inside the kernel's cache entry, so a variant's programs
//! match its kernel and are built once.

use super::variant::{Source, Variant};
use super::{cache, source, switch_series, Built, ARCH};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Bumped when the way programs are built changes what comes out.
const RECIPE: u32 = 1;

/// The work tree at `variant`'s series and the kernel's object tree, under the source's lock.
fn in_tree<T>(
    variant: &Variant,
    built: &Built,
    f: impl FnOnce(&Path, &Path) -> Result<T>,
) -> Result<T> {
    let ident = source::identify(&variant.source)
        .with_context(|| format!("variant {} ({})", variant.name, variant.file.display()))?;
    let area = cache::dir("trees")?.join(&ident.slug);
    std::fs::create_dir_all(&area)?;
    let _lock = cache::lock(&area.join("lock"), true)?;
    let (src, pristine) = source::work_tree(&ident, &area)?;
    // A tree of the user's own is taken as it is (the lab never modifies it).
    if !matches!(variant.source, Source::Path { .. }) {
        switch_series(variant, &src, pristine.as_ref(), &area)?;
    }
    let obj = super::object_tree(&area, &built.metadata.config_hash);
    std::fs::create_dir_all(&obj)?;
    let config = crate::files::read(built.dir.join(".config"))?;
    if crate::files::read(obj.join(".config")).ok().as_deref() != Some(&config[..]) {
        crate::files::write(obj.join(".config"), &config)?;
    }
    f(&src, &obj)
}

/// Publish `tmp` as `entry` in one rename (a complete entry or none).
fn publish(tmp: &Path, entry: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(entry);
    std::fs::rename(tmp, entry).with_context(|| format!("publish {}", entry.display()))
}

fn scratch(entry: &Path) -> Result<PathBuf> {
    let tmp = entry.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    Ok(tmp)
}

/// The kernel's UAPI headers (`make headers` of its own tree): `<entry>/usr/include`.
pub fn headers(variant: &Variant, built: &Built) -> Result<PathBuf> {
    let entry = built.dir.join("usr");
    if entry.join("include/linux/version.h").is_file() {
        return Ok(entry.join("include"));
    }
    in_tree(variant, built, |src, obj| {
        if entry.join("include/linux/version.h").is_file() {
            return Ok(()); // made by another lab process while this one waited
        }
        let mut make = Command::new("make");
        make.arg("-C")
            .arg(src)
            .arg(format!("O={}", obj.display()))
            .arg(format!("ARCH={ARCH}"))
            .args(["-s", "headers"]);
        super::quiet(make, "make headers")?;
        let tmp = scratch(&entry)?;
        copy_tree(&obj.join("usr/include"), &tmp.join("include"))?;
        publish(&tmp, &entry)
    })?;
    Ok(entry.join("include"))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            crate::files::copy(&src, &dst).with_context(|| format!("copy {}", src.display()))?;
        }
    }
    Ok(())
}

/// The compiler's first complaint: the first `error:` line, else the first line.
pub fn first_error(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("error:") || l.contains("Error "))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message")
        .trim()
        .to_string()
}

/// A selftest directory built for one kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteBuild {
    /// Where the programs are (host).
    #[serde(skip)]
    pub dir: PathBuf,
    pub recipe: u32,
    /// The directory's test programs, in its Makefile's order (TEST_GEN_PROGS, then
    /// TEST_CUSTOM_PROGS and TEST_PROGS).
    pub programs: Vec<String>,
    /// `timeout=` of the directory's `settings` file (kselftest's per-program limit).
    pub timeout_s: Option<u64>,
    /// The options of the directory's `config` file: what its tests need of the kernel.
    pub config: Vec<String>,
}

/// A complete suite build of this recipe, if `manifest` is one's.
fn read_manifest(manifest: &Path) -> Option<SuiteBuild> {
    crate::files::read(manifest)
        .ok()
        .and_then(|b| serde_json::from_slice::<SuiteBuild>(&b).ok())
        .filter(|s| s.recipe == RECIPE)
}

/// The programs of `dir` (a selftest directory) from `variant`'s own tree, built statically
/// against the kernel's headers with the directory's own Makefile.
pub fn suite(variant: &Variant, built: &Built, dir: &str) -> Result<SuiteBuild> {
    let entry = built.dir.join("suites").join(dir.replace('/', "_"));
    let manifest = entry.join("manifest.json");
    if let Some(cached) = read_manifest(&manifest) {
        return Ok(SuiteBuild {
            dir: entry,
            ..cached
        });
    }
    crate::events::note(format!("{}: building {dir}", variant.name));
    let include = headers(variant, built)?;
    let built_suite = in_tree(variant, built, |src, _obj| {
        if let Some(done) = read_manifest(&manifest) {
            return Ok(done); // built by another lab process while this one waited
        }
        let tests = src.join(dir);
        if !tests.join("Makefile").is_file() {
            bail!(
                "variant {}: its tree has no {dir}/Makefile (a selftest directory of {})",
                variant.name,
                src.display()
            );
        }
        let tmp = scratch(&entry)?;
        let make = |target: Option<&str>| {
            let mut cmd = Command::new("make");
            cmd.arg("-C")
                .arg(&tests)
                .arg(format!("OUTPUT={}", tmp.display()))
                .arg(format!("KHDR_INCLUDES=-isystem {}", include.display()))
                .arg(format!("ARCH={ARCH}"))
                .env("LDFLAGS", "-static")
                .env_remove("MAKEFLAGS")
                .arg("-s");
            match target {
                Some(t) => {
                    cmd.arg(t);
                }
                None => {
                    cmd.arg(format!(
                        "-j{}",
                        std::thread::available_parallelism().map_or(1, |n| n.get())
                    ));
                }
            }
            cmd
        };
        let listed = crate::child::output(&mut make(Some("emit_tests")))
            .with_context(|| format!("make -C {dir} emit_tests"))?;
        let programs: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter_map(|l| l.rsplit_once(':').map(|(_, p)| p.trim().to_string()))
            .filter(|p| !p.is_empty())
            .collect();
        if programs.is_empty() {
            bail!("{dir}: its Makefile lists no test programs (make emit_tests printed none)");
        }
        let out =
            crate::child::output(&mut make(None)).with_context(|| format!("make -C {dir}"))?;
        if !out.status.success() {
            let log = String::from_utf8_lossy(&out.stderr);
            bail!(
                "variant {}: {dir} does not build: {}\n{}",
                variant.name,
                first_error(&log),
                log.lines().take(20).collect::<Vec<_>>().join("\n")
            );
        }
        // Programs from the source (TEST_PROGS scripts) go beside the built ones.
        for p in &programs {
            if !tmp.join(p).exists() && tests.join(p).is_file() {
                crate::files::copy(tests.join(p), tmp.join(p))?;
            }
        }
        let setting =
            |file: &str| crate::files::read_to_string(tests.join(file)).unwrap_or_default();
        let timeout_s = setting("settings")
            .lines()
            .find_map(|l| l.trim().strip_prefix("timeout=")?.trim().parse().ok());
        let config = super::kconfig::parse_config(&setting("config"))
            .into_iter()
            .filter(|(_, v)| v == "y" || v == "m")
            .map(|(k, _)| format!("CONFIG_{k}"))
            .collect();
        let suite = SuiteBuild {
            dir: PathBuf::new(),
            recipe: RECIPE,
            programs,
            timeout_s,
            config,
        };
        crate::files::write(
            tmp.join("manifest.json"),
            serde_json::to_vec_pretty(&suite)?,
        )?;
        std::fs::create_dir_all(entry.parent().unwrap())?;
        publish(&tmp, &entry)?;
        Ok(suite)
    })?;
    Ok(SuiteBuild {
        dir: entry,
        ..built_suite
    })
}

/// The longest a reproducer may take to compile (syzbot's compile in seconds).
const REPRO_COMPILE_LIMIT: Duration = Duration::from_secs(120);

/// A reproducer compiled as syzbot compiles them (`gcc -O2 -pthread -static`), against
/// `include` (a kernel's UAPI headers) when given; cached in `cache` by its content.
pub fn repro(file: &Path, include: Option<&Path>, cache: &Path) -> Result<PathBuf> {
    let text = crate::files::read(file)?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repro".into());
    let mut h = Sha256::new();
    h.update(RECIPE.to_le_bytes());
    h.update(&text);
    h.update(super::compiler_version());
    let entry = cache.join(format!("{}-{stem}", hex::encode(&h.finalize()[..8])));
    let program = entry.join(&stem);
    if program.is_file() {
        return Ok(program);
    }
    std::fs::create_dir_all(cache)?;
    let tmp = scratch(&entry)?;
    let mut cc = Command::new("gcc");
    cc.env("LC_ALL", "C")
        .args(["-O2", "-pthread", "-static", "-o"])
        .arg(tmp.join(&stem))
        .arg(file);
    if let Some(include) = include {
        cc.arg("-isystem").arg(include);
    }
    // A reproducer and what it includes are the user's: a FIFO among them would keep gcc
    // waiting forever.
    let out = crate::child::output_within(&mut cc, Some(REPRO_COMPILE_LIMIT))
        .with_context(|| format!("compile {}", file.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        bail!(
            "{} does not compile: {}",
            file.display(),
            first_error(&String::from_utf8_lossy(&out.stderr))
        );
    }
    publish(&tmp, &entry)?;
    Ok(program)
}

/// Where a kernel's compiled reproducers are kept.
pub fn repro_cache(built: &Built) -> PathBuf {
    built.dir.join("repros")
}

/// The per-program limit of a suite: the scenario's, the directory's `settings`, or none.
pub fn suite_timeout(scenario: Option<Duration>, suite: &SuiteBuild) -> Option<Duration> {
    scenario.or(suite.timeout_s.map(Duration::from_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_is_the_compiler_s_first_complaint() {
        let stderr = "x.c: In function 'main':\nx.c:3:5: error: 'y' undeclared (first use in this function)\nx.c:3:5: note: each undeclared identifier\nx.c:4:1: error: expected ';'\n";
        assert_eq!(
            first_error(stderr),
            "x.c:3:5: error: 'y' undeclared (first use in this function)"
        );
        assert_eq!(
            first_error("ld: cannot find -lfoo\n"),
            "ld: cannot find -lfoo"
        );
    }

    #[test]
    fn a_reproducer_that_does_not_compile_names_the_first_message() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.c");
        std::fs::write(&file, "int main(void)\n{\n\treturn undeclared_thing;\n}\n").unwrap();
        let e = repro(&file, None, &dir.path().join("cache"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.c does not compile: "), "{e}");
        assert!(e.contains("bad.c:3:"), "{e}");
        assert!(e.contains("error: 'undeclared_thing' undeclared"), "{e}");
        let good = dir.path().join("good.c");
        std::fs::write(
            &good,
            "#include <pthread.h>\nint main(void) { return 0; }\n",
        )
        .unwrap();
        let p = repro(&good, None, &dir.path().join("cache")).unwrap();
        assert!(p.is_file());
        // Cached by content: the same program again.
        assert_eq!(repro(&good, None, &dir.path().join("cache")).unwrap(), p);
    }
}
