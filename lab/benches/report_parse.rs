//! Report parser throughput over real console text, parsed as `lab report parse` and the live
//! scanner do; criterion prints MiB/s. Two inputs of about 8 MiB each:
//! - `reports`: the lab's captured consoles (lab/tests/corpus/console/*.log) concatenated and
//!   repeated — about three lines in four are inside KASAN/WARNING/lockdep reports;
//! - `clean`: a baseline run's console without a report (boot log and power-off), repeated —
//!   what most of a night's consoles look like.
//!
//! `cargo bench -p lab --bench report_parse`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;

fn repeated(one: &str) -> String {
    one.repeat((8 << 20) / one.len().max(1) + 1)
}

fn console() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/console");
    let mut one = String::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    for p in paths {
        one.push_str(&String::from_utf8_lossy(&std::fs::read(p).unwrap()));
    }
    repeated(&one)
}

fn parse(c: &mut Criterion) {
    let clean =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/console/baseline-clean.log");
    let inputs = [
        ("reports", console()),
        ("clean", repeated(&std::fs::read_to_string(clean).unwrap())),
    ];
    let mut group = c.benchmark_group("report_parse");
    group.sample_size(10);
    for (name, text) in &inputs {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| lab::report::parser::parse(std::hint::black_box(text)))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
