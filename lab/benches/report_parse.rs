//! Report parser throughput over real console text: the lab's captured consoles
//! (lab/tests/corpus/console/*.log, KASAN/WARNING/lockdep reports amid boot and progress
//! noise) concatenated and repeated to about 8 MiB, parsed as `lab report parse` and the
//! live scanner do. Criterion prints the throughput in MiB/s.
//!
//! `cargo bench -p lab --bench report_parse`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;

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
    one.repeat((8 << 20) / one.len().max(1) + 1)
}

fn parse(c: &mut Criterion) {
    let text = console();
    let mut group = c.benchmark_group("report_parse");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("corpus", |b| {
        b.iter(|| lab::report::parser::parse(std::hint::black_box(&text)))
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
