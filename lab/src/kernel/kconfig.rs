//! Kernel configuration: start from a base (allnoconfig, defconfig or a file), merge the
//! fragments with the tree's own `scripts/kconfig/merge_config.sh`, `olddefconfig`, then
//! check that every option a fragment asked for made it into the final `.config`.

use super::variant::{ConfigBase, Fragment};
use std::collections::BTreeMap;
use std::path::Path;

/// One `CONFIG_X=...` or `# CONFIG_X is not set` line of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub symbol: String,
    /// `n` for "is not set".
    pub value: String,
    pub file: String,
    pub line: usize,
}

/// Parse `.config` syntax: symbol → value (`n` for "is not set").
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# CONFIG_") {
        let symbol = rest.strip_suffix(" is not set")?;
        return Some((symbol.to_string(), "n".to_string()));
    }
    let (symbol, value) = line.strip_prefix("CONFIG_")?.split_once('=')?;
    Some((symbol.to_string(), value.to_string()))
}

/// The options of `required` (`CONFIG_X`) that `config` (a .config's text) does not have as
/// `y`.
pub fn missing(required: &[String], config: &str) -> Vec<String> {
    let set = parse_config(config);
    required
        .iter()
        .filter(|opt| {
            let symbol = opt.strip_prefix("CONFIG_").unwrap_or(opt);
            set.get(symbol).map(String::as_str) != Some("y")
        })
        .cloned()
        .collect()
}

/// Every option the fragments ask for; later fragments override earlier ones.
pub fn requests(fragments: &[Fragment]) -> std::io::Result<BTreeMap<String, Request>> {
    let mut all = BTreeMap::new();
    for frag in fragments {
        let text = crate::files::read_to_string(&frag.path)?;
        for (i, line) in text.lines().enumerate() {
            if let Some((symbol, value)) = parse_line(line) {
                all.insert(
                    symbol.clone(),
                    Request {
                        symbol,
                        value,
                        file: frag.path.display().to_string(),
                        line: i + 1,
                    },
                );
            }
        }
    }
    Ok(all)
}

/// Every Kconfig file of the tree (hidden folders left out), with its text.
fn kconfig_files(srctree: &Path) -> impl Iterator<Item = (std::path::PathBuf, String)> {
    walkdir::WalkDir::new(srctree)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("Kconfig"))
        .filter_map(|e| {
            let text = crate::files::read_to_string(e.path()).ok()?;
            Some((e.into_path(), text))
        })
}

/// Every symbol the tree's Kconfig files define (`config X`, `menuconfig X`).
pub fn symbols(srctree: &Path) -> std::collections::BTreeSet<String> {
    let mut all = std::collections::BTreeSet::new();
    for (_, text) in kconfig_files(srctree) {
        for line in text.lines() {
            let t = line.trim();
            if let Some(symbol) = t
                .strip_prefix("config ")
                .or_else(|| t.strip_prefix("menuconfig "))
            {
                all.insert(symbol.trim().to_string());
            }
        }
    }
    all
}

/// The options the fragments ask for that the tree's Kconfig does not define, each with the
/// fragment line that asks: found before `make` runs. An option asked to be unset ("is not
/// set") is no problem where it does not exist. A tree without any Kconfig is not a kernel
/// tree: none are listed, and `make` says what is wrong.
pub fn unknown(requests: &BTreeMap<String, Request>, srctree: &Path) -> Vec<String> {
    let known = symbols(srctree);
    if known.is_empty() {
        return Vec::new();
    }
    requests
        .values()
        .filter(|r| r.value != "n" && !known.contains(&r.symbol))
        .map(|r| format!("CONFIG_{}={} ({}:{})", r.symbol, r.value, r.file, r.line))
        .collect()
}

/// What Kconfig says a symbol depends on: (Kconfig file:line, `depends on` expressions).
pub fn dependencies(srctree: &Path, symbol: &str) -> Option<(String, Vec<String>)> {
    let heads = [format!("config {symbol}"), format!("menuconfig {symbol}")];
    for (path, text) in kconfig_files(srctree) {
        let lines: Vec<&str> = text.lines().collect();
        let Some(start) = lines
            .iter()
            .position(|l| heads.iter().any(|h| l.trim() == h))
        else {
            continue;
        };
        let mut deps = enclosing(&lines, start);
        for line in &lines[start + 1..] {
            let t = line.trim();
            let next_entry = [
                "config ",
                "menuconfig ",
                "choice",
                "endchoice",
                "endmenu",
                "menu ",
                "if ",
                "endif",
                "source ",
            ]
            .iter()
            .any(|k| t.starts_with(k));
            if next_entry {
                break;
            }
            if let Some(dep) = t.strip_prefix("depends on ") {
                deps.push(dep.trim().to_string());
            }
        }
        let rel = path.strip_prefix(srctree).unwrap_or(&path);
        return Some((format!("{}:{}", rel.display(), start + 1), deps));
    }
    None
}

/// The conditions of the blocks of a Kconfig file that enclose line `at`: `if EXPR` … `endif`,
/// and a `menu`'s `depends on` lines, which every entry inside inherits. Block keywords stand
/// at the start of their line (indented lines are attributes and help text). Conditions from
/// the files that `source` this one are not followed.
fn enclosing(lines: &[&str], at: usize) -> Vec<String> {
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut menu_header = false;
    for line in &lines[..at] {
        let t = line.trim();
        let block = !line.starts_with(char::is_whitespace);
        if block && t.starts_with("if ") {
            blocks.push(vec![t["if ".len()..].trim().to_string()]);
            menu_header = false;
        } else if block && (t == "menu" || t.starts_with("menu ")) {
            blocks.push(Vec::new());
            menu_header = true;
        } else if block && (t.starts_with("endif") || t.starts_with("endmenu")) {
            blocks.pop();
            menu_header = false;
        } else if menu_header {
            match t.strip_prefix("depends on ") {
                Some(dep) => blocks.last_mut().unwrap().push(dep.trim().to_string()),
                None if block && !t.is_empty() => menu_header = false,
                None => {}
            }
        }
    }
    blocks.into_iter().flatten().collect()
}

/// Symbols named in a `depends on` expression.
fn symbols_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && w.chars().next().unwrap().is_ascii_uppercase())
        .map(str::to_string)
        .collect()
}

/// Options that need the compiler's support: (option, the Kconfig symbol that says the
/// compiler has it, what it needs). Kconfig drops such an option silently when the compiler
/// lacks it; the lab says so.
const COMPILER_NEEDS: &[(&str, &str, &str)] = &[
    (
        "KCSAN",
        "HAVE_KCSAN_COMPILER",
        "GCC 11 or later, or Clang 11 or later, accepting -fsanitize=thread \
         --param tsan-distinguish-volatile=1 (lib/Kconfig.kcsan)",
    ),
    (
        "KASAN_GENERIC",
        "CC_HAS_KASAN_GENERIC",
        "a compiler accepting -fsanitize=kernel-address (lib/Kconfig.kasan)",
    ),
    (
        "KASAN_SW_TAGS",
        "CC_HAS_KASAN_SW_TAGS",
        "a compiler accepting -fsanitize=kernel-hwaddress (lib/Kconfig.kasan)",
    ),
];

/// Why the compiler of `final_config` cannot build `symbol`, when that is why it was dropped.
fn compiler_cannot(symbol: &str, final_config: &BTreeMap<String, String>) -> Option<String> {
    let (_, capability, needs) = COMPILER_NEEDS.iter().find(|(s, _, _)| *s == symbol)?;
    if final_config.get(*capability).map(String::as_str) == Some("y") {
        return None;
    }
    let compiler = final_config
        .get("CC_VERSION_TEXT")
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "the compiler".into());
    Some(format!(
        "the compiler cannot build CONFIG_{symbol}: {compiler} does not give \
         CONFIG_{capability} (it needs {needs}); install such a compiler or build without \
         this detector"
    ))
}

/// Options the fragments asked for that the final `.config` does not have, explained.
pub fn dropped(
    requests: &BTreeMap<String, Request>,
    final_config: &BTreeMap<String, String>,
    srctree: &Path,
) -> Vec<String> {
    let mut problems = Vec::new();
    // A fragment whose detector the compiler cannot build loses its other options with it:
    // they are counted, not explained one by one.
    let cannot: Vec<&Request> = requests
        .values()
        .filter(|r| compiler_cannot(&r.symbol, final_config).is_some())
        .collect();
    let mut following = 0;
    for req in requests.values() {
        let actual = final_config
            .get(&req.symbol)
            .cloned()
            .unwrap_or_else(|| "n".into());
        if actual == req.value {
            continue;
        }
        if let Some(why) = compiler_cannot(&req.symbol, final_config) {
            problems.push(format!("{why} (asked for at {}:{})", req.file, req.line));
            continue;
        }
        if cannot.iter().any(|c| c.file == req.file) {
            following += 1;
            continue;
        }
        let mut msg = format!(
            "CONFIG_{}={} ({}:{}) is not in the final .config (it is {})",
            req.symbol,
            req.value,
            req.file,
            req.line,
            if final_config.contains_key(&req.symbol) {
                format!("CONFIG_{}={actual}", req.symbol)
            } else {
                "absent".to_string()
            }
        );
        match dependencies(srctree, &req.symbol) {
            Some((at, deps)) if !deps.is_empty() => {
                let values: Vec<String> = deps
                    .iter()
                    .flat_map(|d| symbols_in(d))
                    .map(|s| {
                        let v = final_config.get(&s).map(String::as_str).unwrap_or("n");
                        format!("{s}={v}")
                    })
                    .collect();
                let deps: Vec<String> = deps
                    .iter()
                    .map(|d| {
                        if d.contains("||") {
                            format!("({d})")
                        } else {
                            d.clone()
                        }
                    })
                    .collect();
                msg.push_str(&format!(
                    "; Kconfig ({at}) says it depends on {} [{}]",
                    deps.join(" && "),
                    values.join(", ")
                ));
            }
            Some((at, _)) => msg.push_str(&format!("; Kconfig: {at}")),
            None => msg.push_str("; no such symbol in this tree's Kconfig"),
        }
        problems.push(msg);
    }
    if following > 0 {
        problems.push(format!(
            "({following} more option(s) of {} go with it)",
            cannot
                .iter()
                .map(|c| c.file.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    problems
}

/// The make target (or file) that starts the configuration.
pub fn base_target(base: &ConfigBase) -> Option<&'static str> {
    match base {
        ConfigBase::Allnoconfig => Some("allnoconfig"),
        ConfigBase::Defconfig => Some("defconfig"),
        ConfigBase::File(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_requirements_are_listed() {
        let required = ["CONFIG_EPOLL", "CONFIG_UDMABUF", "CONFIG_AIO"].map(String::from);
        let config = "CONFIG_EPOLL=y\n# CONFIG_UDMABUF is not set\n";
        assert_eq!(missing(&required, config), ["CONFIG_UDMABUF", "CONFIG_AIO"]);
    }

    #[test]
    fn config_lines() {
        let c = parse_config(
            "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n# comment\nCONFIG_D=0x10\n",
        );
        assert_eq!(c["A"], "y");
        assert_eq!(c["B"], "n");
        assert_eq!(c["C"], "\"x y\"");
        assert_eq!(c["D"], "0x10");
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn dropped_option_is_named_with_its_dependency() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("drivers/dma-buf")).unwrap();
        std::fs::write(
            tree.path().join("drivers/dma-buf/Kconfig"),
            "config OTHER\n\tbool\n\nconfig UDMABUF\n\tbool \"userspace dmabuf misc driver\"\n\tdepends on DMA_SHARED_BUFFER\n\tdepends on MEMFD_CREATE || COMPILE_TEST\n\nconfig NEXT\n\tdepends on X\n",
        )
        .unwrap();
        let frag = tree.path().join("f.config");
        std::fs::write(&frag, "# wanted\nCONFIG_UDMABUF=y\nCONFIG_OK=y\n").unwrap();
        let reqs = requests(&[Fragment {
            name: "f".into(),
            path: frag,
        }])
        .unwrap();
        let final_config = parse_config("CONFIG_OK=y\nCONFIG_MEMFD_CREATE=y\n");
        let problems = dropped(&reqs, &final_config, tree.path());
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert!(p.starts_with("CONFIG_UDMABUF=y ("), "{p}");
        assert!(p.contains("f.config:2)"), "{p}");
        assert!(p.contains("it is absent"), "{p}");
        assert!(p.contains("drivers/dma-buf/Kconfig:4"), "{p}");
        assert!(
            p.contains("depends on DMA_SHARED_BUFFER && (MEMFD_CREATE || COMPILE_TEST)"),
            "{p}"
        );
        assert!(
            p.contains("DMA_SHARED_BUFFER=n, MEMFD_CREATE=y, COMPILE_TEST=n"),
            "{p}"
        );
    }

    #[test]
    fn an_enclosing_if_or_menu_is_a_dependency_too() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("lib")).unwrap();
        std::fs::write(
            tree.path().join("lib/Kconfig.debug"),
            "menu \"Kernel Testing\"\n\tdepends on DEBUG_KERNEL\n\nmenuconfig RUNTIME_TESTING_MENU\n\tbool\n\nif RUNTIME_TESTING_MENU\n\nconfig OTHER\n\tbool\n\thelp\n\t  if you say Y here, nothing\n\t  endif of the help\n\nconfig LKDTM\n\ttristate \"LKDTM\"\n\tdepends on DEBUG_FS\n\nendif\n\nconfig AFTER\n\tbool\nendmenu\nconfig OUTSIDE\n\tbool\n",
        )
        .unwrap();
        let (at, deps) = dependencies(tree.path(), "LKDTM").unwrap();
        assert_eq!(at, "lib/Kconfig.debug:15");
        assert_eq!(deps, ["DEBUG_KERNEL", "RUNTIME_TESTING_MENU", "DEBUG_FS"]);
        assert_eq!(
            dependencies(tree.path(), "AFTER").unwrap().1,
            ["DEBUG_KERNEL"]
        );
        assert!(dependencies(tree.path(), "OUTSIDE").unwrap().1.is_empty());
    }

    #[test]
    fn an_option_the_compiler_cannot_build_names_the_compiler() {
        let tree = tempfile::tempdir().unwrap();
        let frag = tree.path().join("kcsan.config");
        std::fs::write(&frag, "# detector\nCONFIG_KCSAN=y\nCONFIG_KCSAN_STRICT=y\n").unwrap();
        let reqs = requests(&[Fragment {
            name: "kcsan".into(),
            path: frag,
        }])
        .unwrap();
        let without = parse_config("CONFIG_CC_VERSION_TEXT=\"gcc (Debian 10.2.1-6) 10.2.1\"\n");
        let problems = dropped(&reqs, &without, tree.path());
        let p = &problems[0];
        assert!(
            p.starts_with("the compiler cannot build CONFIG_KCSAN"),
            "{p}"
        );
        assert!(p.contains("gcc (Debian 10.2.1-6) 10.2.1"), "{p}");
        assert!(p.contains("CONFIG_HAVE_KCSAN_COMPILER"), "{p}");
        assert!(p.contains("kcsan.config:2"), "{p}");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[1].starts_with("(1 more option(s) of "),
            "{problems:?}"
        );
        // A compiler that can: the usual explanation (here, a dependency not met).
        let with = parse_config("CONFIG_HAVE_KCSAN_COMPILER=y\n");
        let problems = dropped(&reqs, &with, tree.path());
        assert!(problems[0].starts_with("CONFIG_KCSAN=y ("), "{problems:?}");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    /// Every option a fragment asks for that no Kconfig file of the tree defines is named
    /// with its line; the ones it defines (config or menuconfig, indented or not) and the ones
    /// asked to be unset are not.
    #[test]
    fn options_the_trees_kconfig_lacks_are_named_before_make() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("fs")).unwrap();
        std::fs::write(
            tree.path().join("Kconfig"),
            "config EPOLL\n\tbool \"epoll\"\nmenuconfig NET\n\tbool\n",
        )
        .unwrap();
        std::fs::write(tree.path().join("fs/Kconfig.binfmt"), "  config AIO\n").unwrap();
        let frag = tree.path().join("f.config");
        std::fs::write(
            &frag,
            "CONFIG_EPOLL=y\nCONFIG_NET=y\nCONFIG_AIO=y\nCONFIG_F_DUPFD_QUERY=y\n\
             # CONFIG_GONE is not set\nCONFIG_MEM_ALLOC_PROFILING=y\n",
        )
        .unwrap();
        let reqs = requests(&[Fragment {
            name: "f".into(),
            path: frag.clone(),
        }])
        .unwrap();
        let f = frag.display();
        assert_eq!(
            unknown(&reqs, tree.path()),
            [
                format!("CONFIG_F_DUPFD_QUERY=y ({f}:4)"),
                format!("CONFIG_MEM_ALLOC_PROFILING=y ({f}:6)"),
            ]
        );
        // No Kconfig at all: not a kernel tree, left to make to say.
        let empty = tempfile::tempdir().unwrap();
        assert!(unknown(&reqs, empty.path()).is_empty());
    }

    #[test]
    fn unknown_symbol_says_so() {
        let tree = tempfile::tempdir().unwrap();
        let frag = tree.path().join("f.config");
        std::fs::write(&frag, "CONFIG_NO_SUCH_THING=y\n").unwrap();
        let reqs = requests(&[Fragment {
            name: "f".into(),
            path: frag,
        }])
        .unwrap();
        let problems = dropped(&reqs, &BTreeMap::new(), tree.path());
        assert!(problems[0].contains("no such symbol"), "{problems:?}");
    }
}
