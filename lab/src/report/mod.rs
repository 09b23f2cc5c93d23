//! Console text → kernel reports: formats table, titles, guilty frames, signatures.
//! Knows nothing about how the console was captured.

pub mod formats;
pub mod frames;
// Its rule runs in build.rs, which includes the file; here its tests run.
#[cfg(test)]
mod function_map;
mod guilty;
pub mod parser;
pub mod paths;
pub mod race;
mod scan;
pub mod symbolize;

/// The reports of the console log `console` (symbolized with `vmlinux` when given), and how
/// many more the parser left out after its limit.
pub fn parse_file(
    console: &std::path::Path,
    vmlinux: Option<&std::path::Path>,
) -> anyhow::Result<(Vec<parser::Report>, usize)> {
    let file = crate::files::open(console)?;
    let (mut reports, more) = parser::parse_reader(std::io::BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", console.display()))?;
    if let Some(vmlinux) = vmlinux {
        let symbolizer = symbolize::Symbolizer::open(vmlinux, None)?;
        reports.iter_mut().for_each(|r| symbolizer.symbolize(r));
    }
    Ok((reports, more))
}
