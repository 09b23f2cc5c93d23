//! Turning a variant into kernel artifacts, through a content-addressed cache.
//!
//! Every variant of one source shares a work area (`trees/<source>/`): a work tree that is
//! brought to "pristine + the variant's series" by rewriting only the files that differ, and
//! one object tree. Building another variant of the same source therefore recompiles only
//! what its patches change. Artifacts land in `kernels/<key>/`, where the key hashes
//! everything that changes the output; an entry appears only once complete (atomic rename).

pub mod kconfig;
pub mod make;
pub mod patches;
pub mod programs;
pub mod source;
pub mod symbols;

/// The kernels/*.toml model lives with the other input files.
pub use crate::config::variant;

use crate::cache;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use variant::{ConfigBase, Source, Variant};

/// Bumped when the way the lab builds changes what comes out.
const RECIPE: u32 = 1;
const ARCH: &str = "x86_64";

/// What decides the output of a build: hashed into the cache key, kept in metadata.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInputs {
    pub recipe: u32,
    pub arch: String,
    pub source_id: String,
    /// sha256 of the patches' sha256s, in order.
    pub series_hash: String,
    pub patches: Vec<String>,
    /// `allnoconfig`, `defconfig`, or `file:<sha256>`.
    pub config_base: String,
    /// (fragment name, sha256 of its content), in merge order.
    pub fragments: Vec<(String, String)>,
    pub compiler: String,
}

impl KeyInputs {
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("serializable");
        hex::encode(&Sha256::digest(json)[..16])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CcacheStats {
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: f64,
}

/// metadata.json of a built kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub variant: String,
    pub key: String,
    pub inputs: KeyInputs,
    /// sha256 of the final .config.
    pub config_hash: String,
    pub kernel_release: String,
    pub duration_s: f64,
    /// Translation units compiled by this build (small when incremental).
    pub files_compiled: u64,
    /// Work-tree files the series switch rewrote.
    pub files_rewritten: Vec<String>,
    pub ccache: Option<CcacheStats>,
    pub artifacts: Vec<(String, u64)>,
    /// The tree it was built from (symbolized file names are shown relative to it).
    #[serde(default)]
    pub source_dir: Option<PathBuf>,
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Built {
    pub dir: PathBuf,
    pub metadata: Metadata,
    pub cache_hit: bool,
    /// Time spent by this call (lookup only, on a hit).
    pub elapsed_s: f64,
}

impl Built {
    pub fn bzimage(&self) -> PathBuf {
        self.dir.join("bzImage")
    }
}

/// The event that says `b` is ready, under `label`.
pub fn ready(label: &str, b: &Built) -> crate::events::Event {
    let m = &b.metadata;
    crate::events::Event::KernelReady {
        label: label.to_string(),
        kernel: crate::events::KernelReady {
            dir: b.dir.clone(),
            cache_hit: b.cache_hit,
            elapsed_s: b.elapsed_s,
            release: m.kernel_release.clone(),
            build_s: m.duration_s,
            files_compiled: m.files_compiled,
            files_rewritten: m.files_rewritten.len(),
            ccache_hit_rate: m.ccache.as_ref().map(|c| c.hit_rate),
            artifacts: m.artifacts.clone(),
        },
    }
}

/// What `lab build --json` prints for each built kernel.
pub fn json(built: &[Built]) -> serde_json::Value {
    built
        .iter()
        .map(|b| {
            serde_json::json!({
                "variant": b.metadata.variant,
                "cache_hit": b.cache_hit,
                "elapsed_s": b.elapsed_s,
                "dir": b.dir,
                "metadata": b.metadata,
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub jobs: usize,
    pub force: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            force: false,
        }
    }
}

const ARTIFACTS: &[(&str, &str)] = &[
    ("arch/x86/boot/bzImage", "bzImage"),
    ("vmlinux", "vmlinux"),
    ("System.map", "System.map"),
    (".config", ".config"),
];

fn sha_file(path: &Path) -> Result<String> {
    Ok(hex::encode(Sha256::digest(crate::files::read(path)?)))
}

fn compiler_version() -> String {
    Command::new("gcc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "gcc: not found".into())
}

fn has_ccache() -> bool {
    Command::new("ccache")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ccache_counts() -> Option<(u64, u64)> {
    let out = Command::new("ccache").arg("--print-stats").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix('\t')?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    Some((
        get("direct_cache_hit") + get("preprocessed_cache_hit"),
        get("cache_miss"),
    ))
}

/// Everything that goes into the key, computed without touching any tree.
pub fn key_inputs(variant: &Variant, source_id: &str) -> Result<KeyInputs> {
    let series: Vec<PathBuf> = variant.patches.iter().map(|p| p.path.clone()).collect();
    Ok(KeyInputs {
        recipe: RECIPE,
        arch: ARCH.into(),
        source_id: source_id.to_string(),
        series_hash: patches::series_hash(&series)?,
        patches: variant
            .patches
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.variant,
                    p.path.file_name().unwrap().to_string_lossy()
                )
            })
            .collect(),
        config_base: match &variant.config_base {
            ConfigBase::File(p) => format!("file:{}", sha_file(p)?),
            other => kconfig::base_target(other).unwrap().to_string(),
        },
        fragments: variant
            .fragments
            .iter()
            .map(|f| Ok((f.name.clone(), sha_file(&f.path)?)))
            .collect::<Result<_>>()?,
        compiler: compiler_version(),
    })
}

fn read_metadata(dir: &Path) -> Option<Metadata> {
    serde_json::from_slice(&crate::files::read(dir.join("metadata.json")).ok()?).ok()
}

fn quiet(mut cmd: Command, what: &str) -> Result<()> {
    let out = crate::child::output(&mut cmd).with_context(|| format!("run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The final `.config` of `variant`: base, fragments merged with the tree's
/// merge_config.sh, olddefconfig; an error naming every requested option that was dropped.
pub fn configure(variant: &Variant, src: &Path, scratch: &Path) -> Result<String> {
    std::fs::create_dir_all(scratch)?;
    // An option this tree's Kconfig does not define is said before make runs, naming the
    // series: another series' fragment line, not a build problem.
    let requests = kconfig::requests(&variant.fragments)?;
    let unknown = kconfig::unknown(&requests, src);
    if !unknown.is_empty() {
        bail!(
            "variant {} ({}{}): its fragments ask for options this tree's Kconfig does not \
             define: {}",
            variant.name,
            variant.file.display(),
            variant
                .series
                .as_deref()
                .map(|s| format!(", series {s}"))
                .unwrap_or_default(),
            unknown.join(", ")
        );
    }
    let make = |target: &str| {
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(src)
            .arg(format!("O={}", scratch.display()))
            .arg(format!("ARCH={ARCH}"))
            .args(["-s", target]);
        cmd
    };
    match &variant.config_base {
        ConfigBase::File(p) => {
            crate::files::copy(p, scratch.join(".config"))
                .with_context(|| format!("copy {}", p.display()))?;
        }
        base => {
            let target = kconfig::base_target(base).unwrap();
            quiet(make(target), &format!("make {target}"))?;
        }
    }
    let mut merge = Command::new(src.join("scripts/kconfig/merge_config.sh"));
    // merge_config.sh makes its temporary files in the current directory: not the tree.
    merge
        .current_dir(scratch)
        .env("ARCH", ARCH)
        .arg("-m")
        .arg("-O")
        .arg(scratch)
        .arg(scratch.join(".config"))
        .args(variant.fragments.iter().map(|f| &f.path));
    quiet(merge, "scripts/kconfig/merge_config.sh")?;
    quiet(make("olddefconfig"), "make olddefconfig")?;
    let final_config = crate::files::read_to_string(scratch.join(".config"))?;
    let problems = kconfig::dropped(&requests, &kconfig::parse_config(&final_config), src);
    if !problems.is_empty() {
        bail!(
            "variant {} ({}): the configuration drops options its fragments ask for:\n  {}",
            variant.name,
            variant.file.display(),
            problems.join("\n  ")
        );
    }
    Ok(final_config)
}

/// The object tree of one configuration in a source's work area: variants that differ only by
/// patches share it.
fn object_tree(area: &Path, config_hash: &str) -> PathBuf {
    area.join(format!("obj-{}", &config_hash[..12]))
}

/// Bring the work tree to pristine + the variant's series, rewriting only what differs.
/// Returns the files rewritten.
fn switch_series(
    variant: &Variant,
    src: &Path,
    pristine: &dyn patches::Pristine,
    area: &Path,
) -> Result<Vec<String>> {
    let state_path = area.join("series-state.json");
    let manifest: patches::Manifest = crate::files::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let series: Vec<PathBuf> = variant.patches.iter().map(|p| p.path.clone()).collect();
    // Patches are named relative to the directory that holds kernels/.
    let kernels_dir = variant.file.parent().unwrap_or(Path::new("."));
    let shown = |p: &Path| {
        p.strip_prefix(kernels_dir.parent().unwrap_or(kernels_dir))
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let patched = patches::apply_series(pristine, &series, &shown)
        .with_context(|| format!("variant {}: applying its patch series", variant.name))?;
    let (manifest, rewritten) = patches::sync_work_tree(src, pristine, &manifest, &patched)?;
    crate::files::write(&state_path, &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(rewritten)
}

/// ccache hits and misses between two `ccache_counts()`.
fn ccache_delta(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<CcacheStats> {
    let ((h0, m0), (h1, m1)) = (before?, after?);
    let (hits, misses) = (h1.saturating_sub(h0), m1.saturating_sub(m0));
    Some(CcacheStats {
        hits,
        misses,
        hit_rate: if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        },
    })
}

/// `make bzImage` in the object tree, through ccache when installed; the log goes next to it.
fn compile(
    variant: &Variant,
    src: &Path,
    obj: &Path,
    opts: &BuildOptions,
) -> Result<(make::MakeStats, Option<CcacheStats>)> {
    let ccache = has_ccache();
    let before = ccache.then(ccache_counts).flatten();
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(src)
        .arg(format!("O={}", obj.display()))
        .arg(format!("ARCH={ARCH}"))
        .arg(format!("-j{}", opts.jobs.max(1)))
        .arg("bzImage")
        .env("KBUILD_BUILD_USER", "lab")
        .env("KBUILD_BUILD_HOST", "kernel-race-lab")
        .env("KBUILD_BUILD_TIMESTAMP", "1970-01-01");
    if ccache {
        cmd.arg("CC=ccache gcc");
    }
    // Progress against the last cold build of this object tree, when there was one.
    let estimate_path = obj.with_extension("compile-estimate");
    let cold = !obj.join("vmlinux").exists();
    let expected = cold
        .then(|| {
            crate::files::read_to_string(&estimate_path)
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .flatten();
    let log_path = obj.with_extension("build.log");
    let stats = make::run(cmd, &log_path, &format!("build {}", variant.name), expected)?;
    if cold {
        let _ = crate::files::write(&estimate_path, stats.compiled.to_string());
    }
    let after = ccache.then(ccache_counts).flatten();
    Ok((stats, ccache_delta(before, after)))
}

/// Build the named variants of the kernels directory `kernels` (all when none are named),
/// each under every one of `detectors` (under its own when none are named), one note each.
pub fn build_named(
    kernels: &Path,
    names: &[String],
    detectors: &[String],
    opts: &BuildOptions,
) -> Result<Vec<Built>> {
    let catalog = variant::Catalog::load(kernels)?;
    let names = if names.is_empty() {
        catalog.names()
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        anyhow::bail!(
            "{} defines no variant (no *.toml): nothing to build",
            kernels.display()
        );
    }
    let mut built = Vec::new();
    for name in crate::config::detector::expand(&names, detectors) {
        let variant = catalog.get(&name)?;
        let b = build(&variant, opts)?;
        crate::events::emit(ready(&variant.name, &b));
        built.push(b);
    }
    Ok(built)
}

/// The cached kernel for `variant`, built if missing.
pub fn build(variant: &Variant, opts: &BuildOptions) -> Result<Built> {
    let started = Instant::now();
    let ident = source::identify(&variant.source)
        .with_context(|| format!("variant {} ({})", variant.name, variant.file.display()))?;
    let inputs = key_inputs(variant, &ident.id)?;
    let key = inputs.key();
    let entries = cache::dir("kernels")?;
    let entry = entries.join(&key);
    let hit = |dir: &Path| -> Option<Built> {
        read_metadata(dir).map(|metadata| {
            cache::touch(dir);
            Built {
                dir: dir.to_path_buf(),
                metadata,
                cache_hit: true,
                elapsed_s: started.elapsed().as_secs_f64(),
            }
        })
    };
    if !opts.force {
        if let Some(built) = hit(&entry) {
            return Ok(built);
        }
    }
    if let (Source::Path { path }, false) = (&variant.source, variant.patches.is_empty()) {
        bail!(
            "variant {} patches a path source ({}); the lab never modifies such trees: \
             use a git source for a patched variant",
            variant.name,
            path.display()
        );
    }

    // One build at a time per source work area; others (other sources, boots) go on.
    let area = cache::dir("trees")?.join(&ident.slug);
    std::fs::create_dir_all(&area)?;
    let _lock = cache::lock(&area.join("lock"), true)?;
    if !opts.force {
        if let Some(built) = hit(&entry) {
            return Ok(built); // built by another lab process while we waited
        }
    }
    crate::interrupt::check()?;
    let (src, pristine) = source::work_tree(&ident, &area)?;
    let rewritten = switch_series(variant, &src, pristine.as_ref(), &area)?;
    crate::interrupt::check()?;

    // The configuration, made in a scratch object tree so a failed or different
    // configuration never disturbs the shared one; copied over only when it changed.
    let final_config = configure(variant, &src, &area.join("kconfig"))?;
    crate::interrupt::check()?;
    let config_hash = hex::encode(Sha256::digest(final_config.as_bytes()));
    // One object tree per configuration: variants that differ only by patches share it, and
    // a variant with other options does not make the others recompile everything.
    let obj = object_tree(&area, &config_hash);
    std::fs::create_dir_all(&obj)?;
    cache::touch(&obj);
    if crate::files::read_to_string(obj.join(".config"))
        .ok()
        .as_deref()
        != Some(&final_config)
    {
        crate::files::write(obj.join(".config"), &final_config)?;
    }
    let (stats, ccache_stats) = compile(variant, &src, &obj, opts)?;
    let log_path = obj.with_extension("build.log");

    // Publish: everything into a temporary entry, then one rename.
    let tmp = entries.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let mut artifacts = Vec::new();
    for (from, to) in ARTIFACTS {
        let bytes = crate::files::copy(obj.join(from), tmp.join(to))
            .with_context(|| format!("copy {} from the object tree", from))?;
        artifacts.push((to.to_string(), bytes));
    }
    crate::files::copy(&log_path, tmp.join("build.log"))?;
    let release = crate::files::read_to_string(obj.join("include/config/kernel.release"))
        .unwrap_or_default()
        .trim()
        .to_string();
    let metadata = Metadata {
        variant: variant.name.clone(),
        key: key.clone(),
        inputs,
        config_hash,
        kernel_release: release,
        duration_s: started.elapsed().as_secs_f64(),
        files_compiled: stats.compiled,
        files_rewritten: rewritten,
        ccache: ccache_stats,
        artifacts,
        source_dir: src.canonicalize().ok(),
    };
    crate::files::write(
        tmp.join("metadata.json"),
        serde_json::to_vec_pretty(&metadata)?,
    )?;
    let _ = std::fs::remove_dir_all(&entry);
    std::fs::rename(&tmp, &entry)?;
    Ok(Built {
        dir: entry,
        metadata,
        cache_hit: false,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> KeyInputs {
        KeyInputs {
            recipe: RECIPE,
            arch: ARCH.into(),
            source_id: "debian:linux-source-6.12=6.12.117-1".into(),
            series_hash: "s".into(),
            patches: vec!["v/0001-a.patch".into()],
            config_base: "allnoconfig".into(),
            fragments: vec![("kasan".into(), "k".into())],
            compiler: "gcc 12".into(),
        }
    }

    #[test]
    fn key_changes_when_any_input_changes_and_only_then() {
        let base = inputs();
        assert_eq!(base.key(), inputs().key());
        let changes: [fn(&mut KeyInputs); 7] = [
            |i| i.recipe += 1,
            |i| i.source_id.push('x'),
            |i| i.series_hash.push('x'),
            |i| i.config_base = "defconfig".into(),
            |i| i.fragments[0].1.push('x'),
            |i| i.fragments.push(("lockdep".into(), "l".into())),
            |i| i.compiler.push('x'),
        ];
        for change in changes {
            let mut changed = inputs();
            change(&mut changed);
            assert_ne!(changed.key(), base.key(), "{changed:?}");
        }
    }

    #[test]
    fn key_inputs_follow_patch_and_fragment_content() {
        let dir = tempfile::tempdir().unwrap();
        let kernels = dir.path();
        std::fs::create_dir_all(kernels.join("configs")).unwrap();
        std::fs::create_dir_all(kernels.join("patches/v")).unwrap();
        for f in variant::DEFAULT_FRAGMENTS {
            std::fs::write(kernels.join(format!("configs/{f}.config")), "CONFIG_A=y\n").unwrap();
        }
        std::fs::write(kernels.join("v.toml"), "description = \"v\"\n").unwrap();
        std::fs::write(kernels.join("patches/v/0001-a.patch"), "one").unwrap();
        let load = || variant::Catalog::load(kernels).unwrap().get("v").unwrap();
        let k0 = key_inputs(&load(), "src").unwrap().key();
        assert_eq!(k0, key_inputs(&load(), "src").unwrap().key());
        // The TOML's comments and description do not change the output.
        std::fs::write(kernels.join("v.toml"), "# note\ndescription = \"w\"\n").unwrap();
        assert_eq!(k0, key_inputs(&load(), "src").unwrap().key());
        std::fs::write(kernels.join("patches/v/0001-a.patch"), "two").unwrap();
        let k1 = key_inputs(&load(), "src").unwrap().key();
        assert_ne!(k0, k1);
        std::fs::write(kernels.join("configs/kasan.config"), "CONFIG_B=y\n").unwrap();
        assert_ne!(k1, key_inputs(&load(), "src").unwrap().key());
        assert_ne!(k1, key_inputs(&load(), "other-src").unwrap().key());
    }
}
