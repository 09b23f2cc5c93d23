//! Errors in the lab's input files, each naming the file and, where known, the line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}: {message}")]
    At {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("no {what} named {name:?} in {dir}; known: {known}")]
    Unknown {
        what: &'static str,
        name: String,
        dir: PathBuf,
        known: String,
    },
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
