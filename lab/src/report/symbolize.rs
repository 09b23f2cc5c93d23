//! file:line and inline frames for a report's stack, from the kernel's vmlinux (its symbol
//! table and DWARF), the way `scripts/decode_stacktrace.sh` shows them. Frames print
//! `function+offset/size`, which does not depend on where KASLR put the kernel: the address
//! is the symbol's address in vmlinux plus the offset (minus one for return addresses, so the
//! line is the call's, not the next statement's).

use super::frames::{Frame, Inlined};
use super::parser::Report;
use object::{Object, ObjectSymbol, SymbolKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SymbolizeError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an ELF file the lab can read: {detail}")]
    Elf { path: PathBuf, detail: String },
    #[error(
        "{path} has no DWARF debug info (.debug_info): build the variant with the debuginfo \
         fragment (CONFIG_DEBUG_INFO_DWARF5=y) to get file:line"
    )]
    NoDebugInfo { path: PathBuf },
}

/// The function every kernel defines in `init/main.c`: where DWARF puts it tells the tree's
/// root when the build's source directory is not known.
const ROOT_MARK: (&str, &str) = ("start_kernel", "init/main.c");

pub struct Symbolizer {
    /// Function symbols by name: (address, size). Static functions can share a name.
    symbols: HashMap<String, Vec<(u64, u64)>>,
    dwarf: addr2line::Loader,
    /// The kernel tree's root as DWARF names it (with a trailing `/`): file names are shown
    /// from there (`fs/eventpoll.c`), as scripts/decode_stacktrace.sh and syzkaller do.
    root: Option<String>,
}

impl Symbolizer {
    /// Open `path` (a vmlinux with DWARF). `source_dir` is the tree it was built from, when
    /// known (the lab's own builds record it); otherwise the root is read from the DWARF.
    pub fn open(path: &Path, source_dir: Option<&Path>) -> Result<Self, SymbolizeError> {
        let data = crate::files::read(path).map_err(|source| SymbolizeError::Read {
            path: path.into(),
            source,
        })?;
        let elf = object::File::parse(&*data).map_err(|e| SymbolizeError::Elf {
            path: path.into(),
            detail: e.to_string(),
        })?;
        if elf.section_by_name(".debug_info").is_none() {
            return Err(SymbolizeError::NoDebugInfo { path: path.into() });
        }
        let mut symbols: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        for sym in elf.symbols() {
            if sym.kind() != SymbolKind::Text {
                continue;
            }
            if let Ok(name) = sym.name() {
                symbols
                    .entry(name.to_string())
                    .or_default()
                    .push((sym.address(), sym.size()));
            }
        }
        let dwarf = addr2line::Loader::new(path).map_err(|e| SymbolizeError::Elf {
            path: path.into(),
            detail: e.to_string(),
        })?;
        let mut symbolizer = Symbolizer {
            symbols,
            dwarf,
            root: None,
        };
        symbolizer.root = match source_dir {
            Some(dir) => {
                let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
                Some(format!(
                    "{}/",
                    dir.display().to_string().trim_end_matches('/')
                ))
            }
            None => symbolizer.root_from_dwarf(),
        };
        Ok(symbolizer)
    }

    /// Where DWARF says `start_kernel` is, less `init/main.c`.
    fn root_from_dwarf(&self) -> Option<String> {
        let (function, file) = ROOT_MARK;
        let (address, _) = *self.symbols.get(function)?.first()?;
        let location = self.dwarf.find_location(address).ok()??;
        location.file?.strip_suffix(file).map(str::to_string)
    }

    /// The tree root file names are shown from, if known.
    pub fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// The address a frame points at, if its function is in vmlinux's symbol table. With
    /// several symbols of that name, the one whose size the frame printed.
    pub fn address(&self, frame: &Frame) -> Option<u64> {
        if frame.module.is_some() {
            return None;
        }
        let found = self.symbols.get(&frame.function)?;
        let (start, _) = found
            .iter()
            .find(|(_, size)| *size == frame.size)
            .or_else(|| (found.len() == 1).then(|| &found[0]))?;
        Some(start + frame.offset)
    }

    /// Fill in `location` and `inlined` of one frame. `return_address`: the frame is a
    /// caller in a call trace (its offset points after the call).
    pub fn symbolize_frame(&self, frame: &mut Frame, return_address: bool) {
        let Some(mut address) = self.address(frame) else {
            return;
        };
        if return_address && frame.offset > 0 {
            address -= 1;
        }
        let Ok(mut iter) = self.dwarf.find_frames(address) else {
            return;
        };
        let mut chain: Vec<Inlined> = Vec::new();
        while let Ok(Some(f)) = iter.next() {
            let function = f
                .function
                .as_ref()
                .and_then(|n| n.raw_name().ok().map(|s| s.into_owned()))
                .unwrap_or_else(|| "??".into());
            let location = f.location.as_ref().and_then(|l| {
                Some(format!(
                    "{}:{}",
                    tree_relative(l.file?, self.root()),
                    l.line.unwrap_or(0)
                ))
            });
            chain.push(Inlined { function, location });
        }
        // Innermost first; the last is the function the symbol table named.
        if let Some(outer) = chain.pop() {
            frame.location = outer.location;
            frame.inlined = chain;
        }
        if frame.location.is_none() {
            // Assembly has line tables but no function entries.
            if let Ok(Some(l)) = self.dwarf.find_location(address) {
                frame.location = l
                    .file
                    .map(|f| format!("{}:{}", tree_relative(f, self.root()), l.line.unwrap_or(0)));
            }
        }
    }

    /// Every frame of a report: the call trace (first frame as printed, the rest as return
    /// addresses) and the KASAN alloc/free stacks.
    pub fn symbolize(&self, report: &mut Report) {
        let race = report.race.iter_mut().flat_map(|r| &mut r.accesses);
        for stack in [
            &mut report.frames,
            &mut report.alloc_frames,
            &mut report.free_frames,
        ]
        .into_iter()
        .chain(race.map(|a| &mut a.frames))
        {
            for (i, frame) in stack.iter_mut().enumerate() {
                self.symbolize_frame(frame, i > 0);
            }
        }
    }
}

/// A DWARF file name shown from the kernel tree's root (`fs/eventpoll.c`): the root is
/// stripped when the name is under it; other names (the host's headers, generated files of
/// the object tree) stay as they are.
pub fn tree_relative<'a>(file: &'a str, root: Option<&str>) -> &'a str {
    let rest = root.and_then(|r| file.strip_prefix(r)).unwrap_or(file);
    rest.trim_start_matches("./")
}

/// One frame as decode_stacktrace.sh prints it: inline frames first, then the frame.
pub fn decoded(frame: &Frame) -> Vec<String> {
    let mut lines: Vec<String> = frame
        .inlined
        .iter()
        .map(|i| {
            format!(
                "{} {} [inline]",
                i.function,
                i.location.as_deref().unwrap_or("??:?")
            )
        })
        .collect();
    let module = frame
        .module
        .as_ref()
        .map(|m| format!(" [{m}]"))
        .unwrap_or_default();
    lines.push(format!(
        "{}{}+{:#x}/{:#x}{module}{}",
        if frame.reliable { "" } else { "? " },
        frame.function,
        frame.offset,
        frame.size,
        frame
            .location
            .as_ref()
            .map(|l| format!(" {l}"))
            .unwrap_or_default()
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shown_from_the_tree_root_wherever_the_tree_is() {
        // Caches under directories named like the tree's own top-level directories.
        for root in [
            "/var/lib/lab/cache/trees/debian-x/src/",
            "/home/kernel/.cache/kernel-race-lab/trees/x/src/",
            "/build/linux/",
        ] {
            let file = format!("{root}fs/eventpoll.c");
            assert_eq!(tree_relative(&file, Some(root)), "fs/eventpoll.c", "{root}");
            let header = format!("{root}./include/linux/fs.h");
            assert_eq!(tree_relative(&header, Some(root)), "include/linux/fs.h");
        }
        assert_eq!(tree_relative("fs/eventpoll.c", None), "fs/eventpoll.c");
        // Outside the tree: left as it is.
        assert_eq!(
            tree_relative("/usr/include/stdio.h", Some("/home/kernel/src/")),
            "/usr/include/stdio.h"
        );
        assert_eq!(
            tree_relative("/home/kernel/src/fs/x.c", None),
            "/home/kernel/src/fs/x.c"
        );
    }
}
