//! Symbolization against a real ELF with DWARF: a C program built here with an inlined
//! function, its frames printed the kernel's way (`function+offset/size`), and the lab's
//! file:line and inline frames compared with binutils' addr2line on the same addresses.

use lab::report::frames::parse_frame;
use lab::report::symbolize::Symbolizer;
use std::path::Path;
use std::process::Command;

const PROGRAM: &str = r#"
static volatile int sink;
static inline __attribute__((always_inline)) void leaf(int x) {
    sink = x * 3;
    sink = sink + x;
}
__attribute__((noinline)) void middle(int x) {
    leaf(x);
    sink = sink - 1;
}
int main(int argc, char **argv) {
    (void)argv;
    middle(argc);
    return sink;
}
"#;

/// (address, size) of a function symbol, from nm.
fn symbol(elf: &Path, name: &str) -> (u64, u64) {
    let out = Command::new("nm")
        .arg("-S")
        .arg(elf)
        .output()
        .expect("nm (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some(name))
        .unwrap_or_else(|| panic!("{name} not in nm -S output"));
    let mut parts = line.split_whitespace();
    let addr = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
    let size = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
    (addr, size)
}

/// binutils' answer: (function, file:line) innermost first.
fn binutils(elf: &Path, address: u64) -> Vec<(String, String)> {
    let out = Command::new("addr2line")
        .args(["-i", "-f", "-e"])
        .arg(elf)
        .arg(format!("{address:#x}"))
        .output()
        .expect("addr2line (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|c| {
            let loc = c[1].split(' ').next().unwrap();
            let file = Path::new(loc)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (c[0].to_string(), file)
        })
        .collect()
}

#[test]
fn frames_get_the_lines_and_inline_frames_binutils_gives() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("prog.c");
    let elf = dir.path().join("prog");
    std::fs::write(&src, PROGRAM).unwrap();
    let status = Command::new("gcc")
        .args(["-g", "-O2", "-fno-pie", "-no-pie", "-o"])
        .arg(&elf)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(status.success());
    let symbolizer = Symbolizer::open(&elf, None).unwrap();
    let (start, size) = symbol(&elf, "middle");
    let mut inline_seen = false;
    for offset in 0..size {
        let mut frame = parse_frame(&format!(" middle+{offset:#x}/{size:#x}")).unwrap();
        symbolizer.symbolize_frame(&mut frame, false);
        let theirs = binutils(&elf, start + offset);
        let mut ours: Vec<(String, String)> = frame
            .inlined
            .iter()
            .map(|i| (i.function.clone(), i.location.clone().unwrap_or_default()))
            .collect();
        ours.push(("middle".into(), frame.location.clone().unwrap_or_default()));
        let ours: Vec<(String, String)> = ours
            .into_iter()
            .map(|(f, l)| (f, l.rsplit('/').next().unwrap().to_string()))
            .collect();
        // binutils names the outer function as DWARF does; the lab keeps the printed name.
        assert_eq!(
            ours.len(),
            theirs.len(),
            "offset {offset:#x}: {ours:?} vs {theirs:?}"
        );
        for ((of, ol), (tf, tl)) in ours.iter().zip(&theirs) {
            assert_eq!(ol, tl, "offset {offset:#x}: {ours:?} vs {theirs:?}");
            assert_eq!(of, tf, "offset {offset:#x}");
        }
        inline_seen |= ours.iter().any(|(f, _)| f == "leaf");
    }
    assert!(
        inline_seen,
        "no offset of middle() was attributed to the inlined leaf()"
    );
}

#[test]
fn a_vmlinux_without_dwarf_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("prog.c");
    let elf = dir.path().join("prog");
    std::fs::write(&src, PROGRAM).unwrap();
    assert!(Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&elf)
        .arg(&src)
        .status()
        .unwrap()
        .success());
    let err = Symbolizer::open(&elf, None)
        .err()
        .expect("no DWARF must be an error")
        .to_string();
    assert!(
        err.contains("no DWARF") && err.contains("CONFIG_DEBUG_INFO"),
        "{err}"
    );
}

/// A "kernel tree" under directories named like a tree's own (`/var/lib/lab/...`,
/// `.../home/kernel/...`): file names are shown from the tree's root, whether the build's
/// source directory is given or read from where DWARF puts `start_kernel` (init/main.c).
#[test]
fn paths_are_shown_from_the_tree_root_wherever_the_tree_lives() {
    for place in ["var/lib/lab/trees/x/src", "home/kernel/src"] {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join(place);
        std::fs::create_dir_all(tree.join("fs")).unwrap();
        std::fs::create_dir_all(tree.join("init")).unwrap();
        std::fs::write(
            tree.join("fs/prog.c"),
            PROGRAM.replace("int main(", "int unused_main("),
        )
        .unwrap();
        std::fs::write(
            tree.join("init/main.c"),
            "__attribute__((noinline)) void start_kernel(void) { __asm__ volatile(\"\"); }\n\
             int unused_main(int, char **);\n\
             int main(int argc, char **argv) { start_kernel(); return unused_main(argc, argv); }\n",
        )
        .unwrap();
        let elf = dir.path().join("vmlinux");
        // Compiled from inside the tree by absolute path, as kbuild does out of tree.
        let status = Command::new("gcc")
            .current_dir(&tree)
            .args(["-g", "-O2", "-fno-pie", "-no-pie", "-o"])
            .arg(&elf)
            .arg(tree.join("fs/prog.c"))
            .arg(tree.join("init/main.c"))
            .status()
            .expect("gcc");
        assert!(status.success());
        let (_, size) = symbol(&elf, "middle");
        for given in [Some(tree.as_path()), None] {
            let symbolizer = Symbolizer::open(&elf, given).unwrap();
            let mut frame = parse_frame(&format!(" middle+0x0/{size:#x}")).unwrap();
            symbolizer.symbolize_frame(&mut frame, false);
            let location = frame
                .inlined
                .first()
                .and_then(|i| i.location.clone())
                .or(frame.location.clone())
                .unwrap();
            assert!(
                location.starts_with("fs/prog.c:"),
                "{place} (source dir given: {}): {location}",
                given.is_some()
            );
        }
    }
}
