//! The function map's text (`data/function-files.gz`, made by `scripts/function-files.sh`) read
//! into the one file that decides for each name. `build.rs` includes this file too: it turns
//! what [`decided`] gives into the FST that `paths::file_of` looks names up in, kept in the
//! binary's read-only data, so a parse holds no copy of the map on its heap.

/// The map's files, and each name a file decides with its file's index into them, sorted by
/// name.
pub struct Decided<'a> {
    pub files: Vec<&'a str>,
    pub names: Vec<(&'a str, usize)>,
}

/// `@FILE` lines, each followed by the functions it defines; `@*also-elsewhere` lists the names
/// defined outside the map's scope too (no file of the map decides for them). A name decides
/// its file when one file defines it, or else when one source file (not a header: a header's
/// stub for another configuration does not count against it) does.
pub fn decided(text: &str) -> Decided<'_> {
    let mut files = Vec::new();
    let mut defined: Vec<(&str, usize)> = Vec::new();
    let mut elsewhere = std::collections::HashSet::new();
    let mut in_elsewhere = false;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        if let Some(file) = line.strip_prefix('@') {
            in_elsewhere = file == "*also-elsewhere";
            files.push(file);
        } else if in_elsewhere {
            elsewhere.insert(line);
        } else {
            defined.push((line, files.len() - 1));
        }
    }
    defined.retain(|(name, _)| !elsewhere.contains(name));
    defined.sort_unstable();
    defined.dedup();
    let mut names = Vec::new();
    for same in defined.chunk_by(|a, b| a.0 == b.0) {
        let sources: Vec<_> = same
            .iter()
            .filter(|&&(_, f)| !files[f].ends_with(".h"))
            .copied()
            .collect();
        match (same, sources.as_slice()) {
            ([one], _) | (_, [one]) => names.push(*one),
            _ => {}
        }
    }
    Decided { files, names }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of<'a>(map: &Decided<'a>, name: &str) -> Option<&'a str> {
        let (_, file) = map.names.iter().find(|(n, _)| *n == name)?;
        Some(map.files[*file])
    }

    #[test]
    fn a_name_defined_outside_the_scope_too_is_decided_by_no_file() {
        let map =
            decided("@lib/a.c\nhelper\nonly_here\n@lib/b.c\nhelper\n@*also-elsewhere\nhelper\n");
        assert_eq!(file_of(&map, "helper"), None);
        assert_eq!(file_of(&map, "only_here"), Some("lib/a.c"));
    }

    #[test]
    fn a_headers_stub_does_not_count_against_the_one_source_file() {
        let map = decided(
            "# a comment\n@include/linux/x.h\nstubbed\ntwice\n@lib/x.c\nstubbed\ntwice\n\
             @lib/y.c\ntwice\n@include/linux/y.h\ninline_only\n",
        );
        assert_eq!(file_of(&map, "stubbed"), Some("lib/x.c"));
        assert_eq!(file_of(&map, "twice"), None, "two source files define it");
        assert_eq!(file_of(&map, "inline_only"), Some("include/linux/y.h"));
        assert!(map.names.is_sorted_by_key(|(n, _)| *n));
    }
}
