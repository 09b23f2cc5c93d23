//! Where an exploration may stop, from a variant's patch series (its bases' included): the
//! functions whose bodies the hunks change, found in the tree's source, located in the
//! kernel's System.map.
//!
//! A hunk is found in its file by its text (its context and removed lines where the tree
//! lacks the series, its context and added lines where it has it), so whichever variant the
//! shared work tree holds, the lines are where they are; hunk headers' line numbers and their
//! function context (git's guess: the last line at column 0 that starts with a letter, often
//! the function before) are not used. The function around a changed line is the kernel's
//! style of definition: a body opened by `{` at column 0, its name the identifier before the
//! first `(` of the lines above it; a `}` at column 0 met first means the line is outside any
//! function (an `#include`, a declaration). A function the patch adds whole is found from its
//! own added lines.
//!
//! A function System.map lacks was inlined (or is not built): it resolves to its callers in
//! the same file, the functions whose bodies call it, up to [`INLINE_DEPTH`] levels, each
//! caller kept only if System.map has it. Callers in other files (a static inline in a
//! header) are not looked for.

use crate::kernel::symbols::{Location, SymbolMap};

/// How many levels of callers an inlined function is followed through.
pub const INLINE_DEPTH: usize = 3;

/// One hunk: its lines, each with its mark (' ', '-', '+').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub file: String,
    pub lines: Vec<(char, String)>,
}

/// The line counts of a hunk header (`@@ -a,b +c,d @@`): (old, new); a count left out is 1.
fn counts(header: &str) -> Option<(usize, usize)> {
    let mut fields = header.split_whitespace().skip(1);
    let count = |f: Option<&str>, sign: char| -> Option<usize> {
        let range = f?.strip_prefix(sign)?;
        match range.split_once(',') {
            Some((_, n)) => n.parse().ok(),
            None => Some(1),
        }
    };
    Some((count(fields.next(), '-')?, count(fields.next(), '+')?))
}

/// The hunks of a unified diff (a `git format-patch` file), in order: each as many lines as
/// its header counts.
pub fn hunks(text: &str) -> Vec<Hunk> {
    let mut out: Vec<Hunk> = Vec::new();
    let mut file: Option<String> = None;
    // Lines of the open hunk still to come: (old side, new side).
    let mut left = (0usize, 0usize);
    for line in text.lines() {
        if left != (0, 0) {
            let mark = line.chars().next().unwrap_or(' ');
            let body = line.get(1..).unwrap_or("").to_string();
            match mark {
                '-' => left.0 = left.0.saturating_sub(1),
                '+' => left.1 = left.1.saturating_sub(1),
                // "\ No newline at end of file"
                '\\' => continue,
                _ => {
                    left.0 = left.0.saturating_sub(1);
                    left.1 = left.1.saturating_sub(1);
                }
            }
            let mark = if matches!(mark, '-' | '+') { mark } else { ' ' };
            out.last_mut().expect("open").lines.push((mark, body));
            continue;
        }
        if let Some(rest) = line.strip_prefix("+++ ") {
            let path = rest.split('\t').next().unwrap_or(rest).trim();
            file = (path != "/dev/null")
                .then(|| path.split_once('/').map_or(path, |(_, p)| p).to_string());
        } else if line.starts_with("@@ ") {
            if let (Some(f), Some(n)) = (&file, counts(line)) {
                out.push(Hunk {
                    file: f.clone(),
                    lines: vec![],
                });
                left = n;
            }
        }
    }
    out
}

/// Where the hunk's side (`keep`: ' ' and that mark) starts in `file_lines`, and the index
/// of each hunk line of that side.
fn locate(h: &Hunk, file_lines: &[&str], keep: char) -> Option<Vec<Option<usize>>> {
    let side: Vec<&str> = h
        .lines
        .iter()
        .filter(|(m, _)| *m == ' ' || *m == keep)
        .map(|(_, l)| l.as_str())
        .collect();
    if side.is_empty() || side.len() > file_lines.len() {
        return None;
    }
    let start =
        (0..=file_lines.len() - side.len()).find(|&i| file_lines[i..i + side.len()] == side[..])?;
    let mut at = start;
    Some(
        h.lines
            .iter()
            .map(|(m, _)| {
                if *m == ' ' || *m == keep {
                    at += 1;
                    Some(at - 1)
                } else {
                    None
                }
            })
            .collect(),
    )
}

/// The identifier before the first `(` of a definition's lines.
fn defined_name(signature: &str) -> Option<String> {
    // Kernel style: the name touches its parenthesis (`int (*fn)(void)` defines no function).
    let before = signature.split('(').next()?;
    let name: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!name.is_empty() && !name.chars().next()?.is_ascii_digit()).then_some(name)
}

/// The function whose body holds line `i` of `lines`, in the kernel's style of definition.
pub fn function_at(lines: &[&str], i: usize) -> Option<String> {
    let mut j = i.min(lines.len().checked_sub(1)?);
    loop {
        let l = lines[j];
        if l.starts_with('}') && j != i {
            return None;
        }
        if l.starts_with('{') {
            break;
        }
        j = j.checked_sub(1)?;
    }
    // The signature: the lines above the `{` back to a blank one or the end of something.
    let mut start = j;
    while start > 0 {
        let above = lines[start - 1].trim_end();
        if above.is_empty() || above.ends_with(';') || above.ends_with('}') || above.ends_with("*/")
        {
            break;
        }
        start -= 1;
        if !above.starts_with([' ', '\t']) {
            break;
        }
    }
    defined_name(&lines[start..j].join(" "))
}

/// Every function of a file with its body's lines (from the `{` to the `}` at column 0).
fn bodies(lines: &[&str]) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('{') {
            if let Some(name) = function_at(lines, i) {
                let end = (i + 1..lines.len())
                    .find(|&k| lines[k].starts_with('}'))
                    .unwrap_or(lines.len() - 1);
                out.push((name, i..end + 1));
                i = end;
            }
        }
        i += 1;
    }
    out
}

/// A function the hunks change, and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub function: String,
    /// "fs/open.c, hunk 2".
    pub at: String,
    /// `Some(callee)` when it stands for an inlined function it calls.
    pub inlined: Option<String>,
}

/// The functions the hunks of one patch change in a tree (`read` gives a file's text by its
/// path in the tree), each one System.map has, or its callers there.
pub fn changed(
    patch: &str,
    read: &dyn Fn(&str) -> Option<String>,
    map: &SymbolMap,
) -> Vec<Changed> {
    let mut out: Vec<Changed> = Vec::new();
    for (n, h) in hunks(patch).iter().enumerate() {
        let Some(text) = read(&h.file) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let at = format!("{}, hunk {}", h.file, n + 1);
        let mut functions: Vec<String> = Vec::new();
        // The tree with the series (added lines present) or without it (removed ones).
        for keep in ['+', '-'] {
            let Some(index) = locate(h, &lines, keep) else {
                continue;
            };
            for (k, (mark, _)) in h.lines.iter().enumerate() {
                if *mark == ' ' {
                    continue;
                }
                // A removed line in a tree that has the series: the line after it.
                let here = index[k].or_else(|| index[k..].iter().flatten().next().copied());
                if let Some(f) = here.and_then(|i| function_at(&lines, i)) {
                    if !functions.contains(&f) {
                        functions.push(f);
                    }
                }
            }
            break;
        }
        for f in functions {
            for c in in_map(&f, &lines, map, &at) {
                if !out.iter().any(|o| o.function == c.function) {
                    out.push(c);
                }
            }
        }
    }
    out
}

fn in_map(function: &str, lines: &[&str], map: &SymbolMap, at: &str) -> Vec<Changed> {
    let has = |f: &str| {
        map.resolve(&Location {
            symbol: f.to_string(),
            offset: 0,
        })
        .is_ok()
    };
    if has(function) {
        return vec![Changed {
            function: function.to_string(),
            at: at.to_string(),
            inlined: None,
        }];
    }
    let all = bodies(lines);
    let mut wanted = vec![function.to_string()];
    let mut seen = wanted.clone();
    let mut out = Vec::new();
    for _ in 0..INLINE_DEPTH {
        let mut next = Vec::new();
        for callee in &wanted {
            let call = format!("{callee}(");
            for (name, body) in &all {
                if seen.contains(name) || !lines[body.clone()].iter().any(|l| l.contains(&call)) {
                    continue;
                }
                seen.push(name.clone());
                if has(name) {
                    out.push(Changed {
                        function: name.clone(),
                        at: at.to_string(),
                        inlined: Some(function.to_string()),
                    });
                } else {
                    next.push(name.clone());
                }
            }
        }
        if next.is_empty() {
            break;
        }
        wanted = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(path),
        )
        .unwrap()
    }

    /// Excerpts of Debian's 6.12.118 tree (tests/data): fs/open.c's includes and filp_flush
    /// without the series; fs/eventpoll.c's ep_item_poll with epoll-unpinned-poll applied.
    fn data(name: &str) -> String {
        repo(&format!("lab/tests/data/{name}"))
    }

    fn map(functions: &[&str]) -> SymbolMap {
        let text: String = functions
            .iter()
            .enumerate()
            .map(|(i, f)| format!("ffffffff8100{i:04x} T {f}\n"))
            .collect();
        SymbolMap::parse(&text)
    }

    /// The release-on-close patch changes filp_flush (and adds an #include, outside any
    /// function); with filp_flush inlined, it resolves to filp_close, its caller.
    #[test]
    fn a_patch_changes_the_function_around_its_hunks_and_an_inlined_one_its_callers() {
        let patch = repo(
            "kernels/patches/epoll-release-on-close/\
             0001-fs-detach-a-file-from-epoll-when-one-of-its-fds-is-c.patch",
        );
        let open_c = data("open-6.12.118-filp_flush.c");
        let read = |path: &str| (path == "fs/open.c").then(|| open_c.clone());
        let found = changed(&patch, &read, &map(&["filp_flush", "filp_close"]));
        assert_eq!(
            found,
            [Changed {
                function: "filp_flush".into(),
                at: "fs/open.c, hunk 2".into(),
                inlined: None
            }]
        );
        let inlined = changed(&patch, &read, &map(&["filp_close"]));
        assert_eq!(inlined.len(), 1);
        assert_eq!(inlined[0].function, "filp_close");
        assert_eq!(inlined[0].inlined.as_deref(), Some("filp_flush"));
        // A tree another variant's series left elsewhere: nothing of it found, nothing named.
        let other = |_: &str| Some("int f(void)\n{\n\treturn 0;\n}\n".to_string());
        assert!(changed(&patch, &other, &map(&["filp_flush"])).is_empty());
    }

    /// The unpinned-poll patch (epi_fget's pin taken out again) changes ep_item_poll, found in
    /// a tree that has it applied (the hunk's added lines are there, its removed ones not).
    #[test]
    fn the_unpinned_poll_patch_changes_ep_item_poll_in_a_tree_that_has_it() {
        let patch = repo(
            "kernels/patches/epoll-unpinned-poll/\
             0001-epoll-poll-the-watched-file-without-pinning-it.patch",
        );
        let eventpoll = data("eventpoll-6.12.118-ep_item_poll.c");
        let read = |path: &str| (path == "fs/eventpoll.c").then(|| eventpoll.clone());
        let found = changed(
            &patch,
            &read,
            &map(&["ep_item_poll", "__ep_eventpoll_poll"]),
        );
        let names: Vec<&str> = found.iter().map(|c| c.function.as_str()).collect();
        assert_eq!(names, ["ep_item_poll"]);
    }

    #[test]
    fn definitions_are_named_by_the_identifier_before_their_parenthesis() {
        let lines = [
            "static __poll_t ep_item_poll(const struct epitem *epi, poll_table *pt,",
            "\t\t\t\t int depth)",
            "{",
            "\tstruct file *file = epi_fget(epi);",
            "}",
            "",
            "struct x y = {",
        ];
        assert_eq!(function_at(&lines, 3).as_deref(), Some("ep_item_poll"));
        assert_eq!(function_at(&lines, 5), None);
        assert_eq!(defined_name("int (*fn)(void)"), None);
    }
}
