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

/// Top-level directories of a kernel tree: a DWARF path is shown from the first of these on
/// (`/build/linux/fs/eventpoll.c` → `fs/eventpoll.c`).
const TREE_DIRS: &[&str] = &[
    "arch", "block", "certs", "crypto", "drivers", "fs", "include", "init", "io_uring", "ipc",
    "kernel", "lib", "mm", "net", "rust", "samples", "scripts", "security", "sound", "tools",
    "virt",
];

pub struct Symbolizer {
    /// Function symbols by name: (address, size). Static functions can share a name.
    symbols: HashMap<String, Vec<(u64, u64)>>,
    dwarf: addr2line::Loader,
}

impl Symbolizer {
    pub fn open(path: &Path) -> Result<Self, SymbolizeError> {
        let data = std::fs::read(path).map_err(|source| SymbolizeError::Read {
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
        Ok(Symbolizer { symbols, dwarf })
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
                    tree_relative(l.file?),
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
                    .map(|f| format!("{}:{}", tree_relative(f), l.line.unwrap_or(0)));
            }
        }
    }

    /// Every frame of a report: the call trace (first frame as printed, the rest as return
    /// addresses) and the KASAN alloc/free stacks.
    pub fn symbolize(&self, report: &mut Report) {
        for stack in [
            &mut report.frames,
            &mut report.alloc_frames,
            &mut report.free_frames,
        ] {
            for (i, frame) in stack.iter_mut().enumerate() {
                self.symbolize_frame(frame, i > 0);
            }
        }
    }
}

/// A DWARF file name shown from the kernel tree's top (`fs/eventpoll.c`).
pub fn tree_relative(file: &str) -> &str {
    // The host's own headers (a test program's, or the toolchain's) are not in the tree.
    if ["/usr/include/", "/usr/lib/"]
        .iter()
        .any(|p| file.starts_with(p))
    {
        return file;
    }
    let mut at = 0;
    for part in file.split('/') {
        if TREE_DIRS.contains(&part) && at > 0 {
            return &file[at..];
        }
        at += part.len() + 1;
    }
    file
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
    fn paths_are_shown_from_the_tree_top() {
        assert_eq!(
            tree_relative("/home/u/.cache/kernel-race-lab/trees/x/src/fs/eventpoll.c"),
            "fs/eventpoll.c"
        );
        assert_eq!(
            tree_relative("/build/linux/./include/linux/fs.h"),
            "include/linux/fs.h"
        );
        assert_eq!(tree_relative("fs/eventpoll.c"), "fs/eventpoll.c");
        assert_eq!(
            tree_relative("/usr/include/stdio.h"),
            "/usr/include/stdio.h"
        );
    }
}
