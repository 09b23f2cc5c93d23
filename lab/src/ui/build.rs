//! The kernel build display: a bar of files compiled against the expected count (a spinner
//! when the count is not known), or a plain line every 30 s.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// How often a plain display says how a build is going.
const PLAIN_EVERY: Duration = Duration::from_secs(30);

pub struct Build {
    bar: Option<ProgressBar>,
    expected: Option<u64>,
    last_plain: Instant,
}

impl Build {
    pub fn new(multi: Option<&MultiProgress>, label: &str, expected: Option<u64>) -> Build {
        let bar = multi.map(|multi| {
            let bar = match expected {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {pos}/{len} files {elapsed} (eta {eta})",
                    )
                    .unwrap()
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template(
                        "{prefix} {spinner} {pos} files compiled {elapsed}",
                    )
                    .unwrap(),
                ),
            };
            let bar = multi.add(bar);
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Build {
            bar,
            expected,
            last_plain: Instant::now(),
        }
    }

    /// Another file compiled: the bar moves; a plain display gets a line now and then.
    pub fn progress(&mut self, label: &str, compiled: u64, elapsed: Duration) -> Option<String> {
        if let Some(bar) = &self.bar {
            bar.set_position(compiled);
            return None;
        }
        if self.last_plain.elapsed() < PLAIN_EVERY {
            return None;
        }
        self.last_plain = Instant::now();
        let of = self.expected.map(|n| format!("/{n}")).unwrap_or_default();
        Some(format!(
            "lab: {label}: {compiled}{of} files compiled, {}s",
            elapsed.as_secs()
        ))
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One line about a kernel that is ready: a cache hit, or what was compiled and what came
/// out.
pub fn ready(k: &crate::events::KernelReady) -> String {
    if k.cache_hit {
        return format!("cache hit ({:.2} s) {}", k.elapsed_s, k.dir.display());
    }
    let ccache = k
        .ccache_hit_rate
        .map(|r| format!(", ccache hits {:.0}%", r * 100.0))
        .unwrap_or_default();
    let sizes: Vec<String> = k
        .artifacts
        .iter()
        .map(|(n, s)| format!("{n} {:.1} MiB", *s as f64 / (1024.0 * 1024.0)))
        .collect();
    format!(
        "built {} in {:.1} s ({} files compiled, {} rewritten by the series{ccache}); {}\n  {}",
        k.release,
        k.build_s,
        k.files_compiled,
        k.files_rewritten,
        sizes.join(", "),
        k.dir.display()
    )
}
