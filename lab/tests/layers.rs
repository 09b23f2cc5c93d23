//! The shape of lab/src, checked from its source: every top-level module imports only the
//! layers below it, no two modules of one parent import each other in a cycle, and nothing
//! but `ui` (and `main.rs`) prints.
//!
//! A reference is a path `crate::a::b…` or `super::x…` in a file (in `use` items or inline);
//! it goes from the file's module to the longest module the path names. A module's references
//! to its own ancestors or descendants are containment, not dependencies: they are left out.
//! Every other reference is lifted to the two modules under the lowest common ancestor, which
//! gives one graph of sibling modules per parent; each must be acyclic.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom up: a module may import only modules of lower layers.
const LAYERS: &[&[&str]] = &[
    &["units", "events", "files", "name", "text"],
    &["interrupt", "report", "tap"],
    &["cache", "child"],
    &["config"],
    &["kernel", "vm"],
    &["results"],
    &["run"],
    &["compare", "bisect", "explore"],
    // A night bisects its own regressions: the one workflow built on another.
    &["nightly"],
    &["ui"],
    &["cli"],
];

/// Pairs of layers that must never import each other, whatever lies between them: the
/// machine knows no report format and no test format, the parser knows no QEMU, results and
/// single runs know no workflow, and the configuration knows nothing it configures.
const NEVER: &[(&str, &[&str])] = &[
    ("vm", &["report", "tap"]),
    ("report", &["vm"]),
    ("results", &["nightly", "compare", "bisect"]),
    ("run", &["nightly", "compare", "bisect"]),
    ("config", &["kernel", "vm", "report", "run"]),
];

type Module = Vec<String>;

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file of lab/src by module path (lib.rs and main.rs are the roots).
fn modules() -> BTreeMap<Module, PathBuf> {
    let root = src();
    let mut all = BTreeMap::new();
    for entry in walkdir::WalkDir::new(&root) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(&root).unwrap();
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        all.insert(parts, path.to_path_buf());
    }
    all
}

/// Strip comments and string literals well enough that paths in them do not count.
fn code(text: &str) -> String {
    let strings = Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap();
    text.lines()
        .map(|l| {
            let l = strings.replace_all(l, "\"\"");
            match l.find("//") {
                Some(i) => l[..i].to_string(),
                None => l.into_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `text` (the source of module `from`) refers to.
fn references(from: &Module, text: &str, known: &BTreeMap<Module, PathBuf>) -> BTreeSet<Module> {
    let paths = Regex::new(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)").unwrap();
    let groups = Regex::new(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)*)::\{([^}]*)\}").unwrap();
    let mut out = BTreeSet::new();
    let mut resolve = |anchor: &str, rest: Vec<String>| {
        let mut base: Module = match anchor {
            "crate" => vec![],
            _ => from[..from.len().saturating_sub(1)].to_vec(),
        };
        // `super::super::…`: one level up per `super`.
        let ups = rest.iter().take_while(|s| *s == "super").count();
        if anchor == "super" && ups > base.len() {
            return;
        }
        if anchor == "super" {
            base.truncate(base.len() - ups);
        }
        base.extend(
            rest.into_iter()
                .skip(if anchor == "super" { ups } else { 0 }),
        );
        // The longest prefix that is a module.
        while !base.is_empty() && !known.contains_key(&base) {
            base.pop();
        }
        if !base.is_empty() {
            out.insert(base);
        }
    };
    let text = code(text);
    for c in paths.captures_iter(&text) {
        let rest = c[2]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        resolve(&c[1], rest);
    }
    for c in groups.captures_iter(&text) {
        let prefix: Vec<String> = c[2]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        for item in c[3].split(',') {
            let first = item
                .trim()
                .split("::")
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            // Types and `self` name no further module.
            if first.is_empty() || first == "self" || first.starts_with(char::is_uppercase) {
                continue;
            }
            let mut rest = prefix.clone();
            rest.push(first);
            resolve(&c[1], rest);
        }
    }
    out
}

fn is_prefix(a: &Module, b: &Module) -> bool {
    a.len() <= b.len() && b[..a.len()] == a[..]
}

/// (parent, from child, to child) for each dependency that is not containment.
fn sibling_edges() -> BTreeSet<(Module, String, String)> {
    let known = modules();
    let mut edges = BTreeSet::new();
    for (from, path) in &known {
        if from.is_empty() {
            continue; // lib.rs / main.rs declare and dispatch
        }
        let text = std::fs::read_to_string(path).unwrap();
        for to in references(from, &text, &known) {
            if is_prefix(&to, from) || is_prefix(from, &to) {
                continue;
            }
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            edges.insert((
                from[..common].to_vec(),
                from[common].clone(),
                to[common].clone(),
            ));
        }
    }
    edges
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_a_sibling_that_imports_it_back() {
    let mut graphs: BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (parent, from, to) in sibling_edges() {
        graphs
            .entry(parent)
            .or_default()
            .entry(from)
            .or_default()
            .insert(to);
    }
    assert!(
        graphs.len() > 3,
        "the reference scan found too little: {graphs:?}"
    );
    for (parent, graph) in &graphs {
        if let Some(c) = cycle(graph) {
            panic!(
                "an import cycle in crate::{}: {}",
                parent.join("::"),
                c.join(" → ")
            );
        }
    }
}

#[test]
fn every_top_level_module_imports_only_layers_below_it() {
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let known: BTreeSet<String> = modules()
        .keys()
        .filter_map(|m| m.first().cloned())
        .collect();
    for m in &known {
        assert!(
            layer(m).is_some(),
            "crate::{m} has no layer: add it to LAYERS"
        );
    }
    let mut wrong = Vec::new();
    for (parent, from, to) in sibling_edges() {
        if !parent.is_empty() {
            continue;
        }
        if layer(&from) <= layer(&to) {
            wrong.push(format!("crate::{from} imports crate::{to}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn only_the_ui_prints() {
    let printing = Regex::new(r"\b(e?print(ln)?)!").unwrap();
    let mut found = Vec::new();
    for (module, path) in modules() {
        if module.first().map(String::as_str) == Some("ui") || path.ends_with("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in code(&text).lines().enumerate() {
            if printing.is_match(line) {
                found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "library code prints:\n{}",
        found.join("\n")
    );
}

/// The ways of reading or writing a file that bypass the one opener and the one writer
/// (`files`).
const RAW_FILE_ACCESS: &str =
    r"\b(fs::write|fs::read_to_string|fs::read\(|File::create|File::open|OpenOptions|fs::copy)";

/// Raw accesses that are not a user's input nor an output file, each with its reason.
const RAW_FILE_ACCESS_ALLOWED: &[(&str, &str, &str)] = &[
    (
        "cache/mod.rs",
        "OpenOptions",
        "the lock file: opened for flock, never written",
    ),
    (
        "vm/accel.rs",
        "OpenOptions",
        "/dev/kvm: whether the device opens is the probe",
    ),
    (
        "vm/session/mod.rs",
        "File::open",
        "/dev/urandom: the guest's seed",
    ),
    (
        "run/pool.rs",
        "fs::read_to_string",
        "/proc/meminfo: the host's memory",
    ),
];

/// Every module file of lab/src with its text.
fn sources() -> Vec<(PathBuf, String)> {
    modules()
        .into_values()
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect()
}

/// A module file's path relative to lab/src (`vm/console.rs`).
fn relative(path: &Path) -> String {
    path.strip_prefix(src())
        .unwrap_or(path)
        .to_string_lossy()
        .to_string()
}

/// The library code of `text`: everything before its `#[cfg(test)]` module.
fn library_code(text: &str) -> String {
    code(text.split("#[cfg(test)]").next().unwrap_or(""))
}

/// Raw file accesses outside `files` (and the allowed ones) in `modules`' library code.
fn raw_file_accesses(sources: &[(PathBuf, String)]) -> Vec<String> {
    let raw = Regex::new(RAW_FILE_ACCESS).unwrap();
    let mut found = Vec::new();
    for (path, text) in sources {
        let rel = relative(path);
        if rel == "files.rs" {
            continue;
        }
        for (i, line) in library_code(text).lines().enumerate() {
            for m in raw.find_iter(line) {
                let allowed = RAW_FILE_ACCESS_ALLOWED
                    .iter()
                    .any(|(file, token, _)| *file == rel && m.as_str().contains(token));
                if !allowed {
                    found.push(format!("{rel}:{}: {}", i + 1, line.trim()));
                }
            }
        }
    }
    found
}

/// Every output file is written by `files::write` (temporary file, fsync, rename) or
/// created as a stream by `files::create_stream`; every input file is opened by
/// `files::open` (regular files only). Another way in or out fails here.
#[test]
fn every_file_is_read_by_the_one_opener_and_written_by_the_one_writer() {
    let sources = sources();
    let found = raw_file_accesses(&sources);
    assert!(
        found.is_empty(),
        "files read or written around lab/src/files.rs:\n{}",
        found.join("\n")
    );
    // The scan sees a planted one.
    let planted = vec![(
        src().join("results/planted.rs"),
        "fn f() { std::fs::write(p, b).unwrap(); }\n#[cfg(test)]\nmod t { fn g() { std::fs::write(p, b); } }\n".to_string(),
    )];
    assert_eq!(raw_file_accesses(&planted).len(), 1);
}

#[test]
fn the_scan_sees_a_cycle_when_there_is_one() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("accel".to_string(), ["qemu".to_string()].into()),
        ("qemu".to_string(), ["accel".to_string()].into()),
    ]
    .into();
    assert_eq!(cycle(&graph).unwrap(), ["accel", "qemu", "accel"]);
    let known: BTreeMap<Module, PathBuf> = [
        (vec!["vm".into(), "qemu".into()], PathBuf::new()),
        (vec!["vm".into(), "accel".into()], PathBuf::new()),
        (vec!["vm".into(), "initramfs".into()], PathBuf::new()),
        (vec!["vm".into()], PathBuf::new()),
    ]
    .into();
    let from = vec!["vm".to_string(), "accel".to_string()];
    let refs = references(
        &from,
        "use super::{initramfs, qemu::{self, Accel}};\n// crate::vm::x\n",
        &known,
    );
    let m = |s: &str| vec!["vm".to_string(), s.to_string()];
    assert_eq!(refs, [m("initramfs"), m("qemu")].into());
    assert!(Path::new(&src()).is_dir());
}

/// Imports of `text` (module `from`'s source) that [`NEVER`] forbids, as "a → b".
fn forbidden(from: &Module, text: &str, known: &BTreeMap<Module, PathBuf>) -> Vec<String> {
    let Some(top) = from.first() else {
        return vec![];
    };
    let never = NEVER
        .iter()
        .find(|(m, _)| m == top)
        .map_or(&[][..], |(_, n)| *n);
    references(from, text, known)
        .into_iter()
        .filter(|to| to.first().is_some_and(|t| never.contains(&t.as_str())))
        .map(|to| format!("crate::{} → crate::{}", from.join("::"), to.join("::")))
        .collect()
}

#[test]
fn no_module_imports_a_layer_it_must_never_know() {
    let known = modules();
    let mut found = Vec::new();
    for (from, path) in &known {
        found.extend(forbidden(
            from,
            &std::fs::read_to_string(path).unwrap(),
            &known,
        ));
    }
    assert!(
        found.is_empty(),
        "imports that NEVER forbids:\n{}",
        found.join("\n")
    );
    // The scan sees each path form of a planted import.
    let m = |s: &str| s.split("::").map(String::from).collect::<Module>();
    for (from, planted) in [
        ("vm::console", "use crate::report;\n"),
        (
            "vm::console",
            "fn f() { crate::report::parser::signature(\"\"); }\n",
        ),
        ("vm::session", "use super::super::tap;\n"),
        (
            "vm::session::state",
            "use super::super::super::tap::{self, Suite};\n",
        ),
        (
            "vm::session::state",
            "use crate::{report::parser, units};\n",
        ),
        ("report::parser", "use crate::vm::outcome::Outcome;\n"),
        ("config::lab", "use super::super::kernel;\n"),
    ] {
        assert_eq!(
            forbidden(&m(from), planted, &known).len(),
            1,
            "{from}: {planted}"
        );
    }
    // …and not one that goes nowhere forbidden.
    assert!(forbidden(&m("vm::session"), "use super::super::units;\n", &known).is_empty());
    assert!(forbidden(
        &m("vm::session::state"),
        "use super::super::outcome;\n",
        &known
    )
    .is_empty());
}

/// What makes a module a renderer: text built with `fmt::Write`, HTML (maud), JUnit
/// (quick_junit), a Markdown table, or a function named for a rendering.
const RENDERING: &str = r#"fmt::Write|\bmaud\b|\bhtml!|quick_junit|"\|[ -]|\|---\||\bfn (render|table|listing|page|summary_md|junit_xml)\b"#;

/// Renderers outside `results/render/` and `ui/`, as "file:line: code".
fn renderers_elsewhere(sources: &[(PathBuf, String)]) -> Vec<String> {
    let rendering = Regex::new(RENDERING).unwrap();
    let mut found = Vec::new();
    for (path, text) in sources {
        let rel = relative(path);
        if rel.starts_with("ui/") || rel.starts_with("results/render/") {
            continue;
        }
        // Literals count here (a Markdown table is one); comments and tests do not.
        let library = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in library.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if rendering.is_match(code) {
                found.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

/// Output is rendered in one of two places: a night's and the history's files in
/// `results/render/` (from the results model), a command's text in `ui/`.
#[test]
fn only_results_render_and_the_ui_render() {
    let sources = sources();
    let found = renderers_elsewhere(&sources);
    assert!(
        found.is_empty(),
        "output rendered outside results/render/ and ui/:\n{}",
        found.join("\n")
    );
    // The scan sees each kind of planted renderer.
    for planted in [
        "use std::fmt::Write;",
        "let s = String::from(\"| a | b |\\n|---|---|\\n\");",
        "pub fn render(c: &Comparison) -> String {",
        "use quick_junit::Report;",
        "fn f() -> Markup { html! { p { \"x\" } } }",
    ] {
        let file = vec![(src().join("compare/planted.rs"), planted.to_string())];
        assert_eq!(renderers_elsewhere(&file).len(), 1, "{planted}");
    }
}
