//! `lab nightly` on real kernels: a two-cell lab (the racy and the fixed epoll variant × the
//! dma-buf race) run three nights against one history. Night 1 has nothing to compare with,
//! night 2 changes nothing, night 3 moves the racy patch into baseline and must report exactly
//! that signature as a regression and exit 1.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
}

fn night(config: &Path, out: &Path) -> (std::process::Output, Value) {
    let output = lab()
        .args(["nightly", "--runs", "1", "--duration", "4s", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let results = std::fs::read(out.join("results.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (output, results)
}

#[test]
fn a_reinstated_race_is_the_one_regression_of_the_night() {
    let _slot = vm_slot();
    let (tmp, _) = run_dir("nightly");
    let kernels = tmp.path().join("kernels");
    copy_dir(&repo("kernels"), &kernels);
    let config = tmp.path().join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"test lab\"\nkernels = \"kernels\"\nscenarios = {:?}\nresults = \"nights\"\n\
             [[matrix]]\nvariants = [\"epoll-unpinned-poll\", \"baseline\"]\nscenarios = [\"epoll-dmabuf-race\"]\n",
            repo("scenarios")
        ),
    )
    .unwrap();

    let (out, first) = night(&config, &tmp.path().join("n1"));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(first["schema"], 1);
    assert_eq!(first["changes"].as_array().unwrap().len(), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("| epoll-unpinned-poll | FAIL 1/1: "),
        "{text}"
    );
    assert!(text.contains("| baseline | pass 1/1 |"), "{text}");

    let (out, second) = night(&config, &tmp.path().join("n2"));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        second["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] != "regression"),
        "{}",
        second["changes"]
    );

    // The racy revert now lives in baseline; the unpinned variant would add nothing to it
    // (the lab refuses such a variant), so it leaves the matrix.
    std::fs::rename(
        kernels.join("patches/epoll-unpinned-poll"),
        kernels.join("patches/baseline"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[\"epoll-unpinned-poll\", \"baseline\"]", "[\"baseline\"]"),
    )
    .unwrap();
    let (out, third) = night(&config, &tmp.path().join("n3"));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let regressions: Vec<&Value> = third["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "regression")
        .collect();
    assert_eq!(regressions.len(), 1, "{}", third["changes"]);
    assert_eq!(regressions[0]["variant"], "baseline");
    let baseline_cell = third["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["variant"] == "baseline")
        .unwrap();
    let first_title = baseline_cell["runs"][0]["reports"][0]["title"]
        .as_str()
        .unwrap();
    assert_eq!(regressions[0]["title"], first_title);
    // The JUnit file is valid XML with the failure's title as its message.
    let xml = std::fs::read_to_string(tmp.path().join("n3/junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("baseline"))
        .and_then(|c| c.children().find(|n| n.has_tag_name("failure")))
        .expect("baseline fails in junit.xml");
    assert_eq!(failure.attribute("message"), Some(first_title));
    assert!(std::fs::read_to_string(tmp.path().join("n3/summary.md"))
        .unwrap()
        .contains("## Regressions"));
    // report.html: the regression, and a link to the failing run's console that exists.
    let html = std::fs::read_to_string(tmp.path().join("n3/report.html")).unwrap();
    assert!(html.contains("1 regression(s)"));
    assert!(html.contains("href=\"baseline/epoll-dmabuf-race/run-001/console.log\""));
    assert!(tmp
        .path()
        .join("n3/baseline/epoll-dmabuf-race/run-001/console.log")
        .is_file());
}

/// A git source's ref is resolved to a commit; a commit the history already has with the
/// same plan is not built or run again unless --force. (The tree is not a kernel: a night
/// that does try to build it fails as infrastructure, exit 2, which is how the test sees
/// that it tried.)
#[test]
fn a_tested_git_commit_is_skipped_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    git(&tree, &["init", "-q", "-b", "main"]);
    std::fs::write(tree.join("README"), "not a kernel\n").unwrap();
    git(&tree, &["add", "README"]);
    git(&tree, &["commit", "-q", "-m", "one"]);
    let commit = git(&tree, &["rev-parse", "HEAD"]);
    let kernels = tmp.path().join("kernels");
    copy_dir(&repo("kernels"), &kernels);
    git_variant(&kernels, "branch", &tree, "main");
    let config = tmp.path().join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "kernels = \"kernels\"\nscenarios = {:?}\nresults = \"nights\"\nruns = 1\n\
             [[matrix]]\nvariants = [\"branch\"]\nscenarios = [\"uapi-epoll\"]\n",
            repo("scenarios")
        ),
    )
    .unwrap();
    // The history already has this commit with this plan (runs 1, the night's duration).
    let scenario = lab::config::scenario::find(&repo("scenarios"), "uapi-epoll").unwrap();
    let key = lab::nightly::plan_key(
        &scenario,
        1,
        Some(runner::quantity::WorkDuration::from_millis(4000).unwrap()),
    )
    .unwrap();
    std::fs::create_dir_all(tmp.path().join("nights")).unwrap();
    let mut history =
        lab::results::history::History::open(&tmp.path().join("nights/history.sqlite")).unwrap();
    let source = format!("git:{}@main", tree.display());
    let row = lab::results::history::RunRow {
        variant: "branch".into(),
        scenario: "uapi-epoll".into(),
        plan_key: key,
        index: 1,
        verdict: "pass".into(),
        outcome: "completed".into(),
        first_report_ms: None,
        reports: vec![],
    };
    history
        .record(
            ("2026-11-26T00:00:00Z", "a"),
            &source,
            Some(&commit),
            &[row],
        )
        .unwrap();
    drop(history);

    let (out, results) = night(&config, &tmp.path().join("n1"));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let note = results["cells"][0]["note"].as_str().unwrap();
    assert!(
        note.starts_with(&format!("already tested at {}", &commit[..12])),
        "{note}"
    );
    assert_eq!(results["cells"][0]["commit"], commit.as_str());
    assert!(results["errors"].as_array().unwrap().is_empty());

    // --force: it builds (and this tree cannot be built).
    let forced = lab()
        .args([
            "nightly",
            "--force",
            "--runs",
            "1",
            "--duration",
            "4s",
            "--config",
        ])
        .arg(&config)
        .arg("--out")
        .arg(tmp.path().join("n2"))
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(2), "{}", show(&forced));
    let text = String::from_utf8_lossy(&forced.stdout);
    assert!(text.contains("build of branch failed"), "{text}");
    assert!(
        text.contains("| branch | not run: branch did not build |"),
        "{text}"
    );
    let xml = std::fs::read_to_string(tmp.path().join("n2/junit.xml")).unwrap();
    assert!(xml.contains("<error"), "{xml}");

    // A new commit on the branch is not tested yet.
    std::fs::write(tree.join("README"), "still not a kernel\n").unwrap();
    git(&tree, &["commit", "-q", "-am", "two"]);
    let (out, results) = night(&config, &tmp.path().join("n3"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    // Not skipped as tested: it tried to build the new commit.
    assert_eq!(
        results["cells"][0]["note"],
        "not run: branch did not build",
        "{}",
        show(&out)
    );
    assert_eq!(
        results["cells"][0]["commit"],
        git(&tree, &["rev-parse", "HEAD"]).as_str()
    );
}

/// The branch a night's git source follows moves while the night builds (a push): every
/// variant of that source is still built from the commit the night planned and records.
#[test]
fn a_branch_that_moves_during_the_night_is_built_at_the_planned_commit() {
    let _slot = vm_slot();
    let tmp = tempfile::tempdir().unwrap();
    let baseline = built_kernel("baseline");
    let (tree, c) = fixture_tree(
        tmp.path(),
        &[
            ("fixture: planned", baseline.clone()),
            ("fixture: pushed during the night", baseline),
        ],
    );
    // The branch points at the first commit when the night starts.
    git(&tree, &["update-ref", "refs/heads/main", &c[0]]);
    let kernels = tmp.path().join("kernels");
    copy_dir(&repo("kernels"), &kernels);
    for v in ["first", "second"] {
        git_variant(&kernels, v, &tree, "main");
    }
    let config = tmp.path().join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "kernels = \"kernels\"\nscenarios = {:?}\nresults = \"nights\"\nruns = 1\n\
             [[matrix]]\nvariants = [\"first\", \"second\"]\nscenarios = [\"epoll-dmabuf-race\"]\n",
            repo("scenarios")
        ),
    )
    .unwrap();
    // The first build moves the branch to the second commit.
    let move_ref = format!("refs/heads/main {}", c[1]);
    let out = lab()
        .args(["nightly", "--runs", "1", "--duration", "2s", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(tmp.path().join("n1"))
        .env("LAB_FIXTURE_MOVE_REF", &move_ref)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(git(&tree, &["rev-parse", "main"]), c[1], "the branch moved");
    let results: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("n1/results.json")).unwrap())
            .unwrap();
    for cell in results["cells"].as_array().unwrap() {
        assert_eq!(cell["commit"], c[0].as_str(), "{cell}");
        let source_id = cell["kernel"]["inputs"]["source_id"].as_str().unwrap();
        assert!(
            source_id.ends_with(&format!("@{}", c[0])),
            "{} was built from {source_id}, the night records {}",
            cell["variant"],
            c[0]
        );
    }
}

/// A lab of one cell the kernel cannot run (its scenario needs an option no kernel has):
/// skipped without a VM, so nights of it take a second.
fn lab_without_vms(dir: &Path) -> PathBuf {
    built_kernel("baseline");
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(
        scenarios.join("needs-more.toml"),
        "kind = \"race\"\nworkload = \"epoll_close_race\"\nrequires = [\"CONFIG_LAB_TEST_NEVER_SET\"]\n",
    )
    .unwrap();
    let config = dir.join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "kernels = {:?}\nscenarios = \"scenarios\"\nresults = \"nights\"\nruns = 1\n\
             [[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"needs-more\"]\n",
            repo("kernels")
        ),
    )
    .unwrap();
    config
}

/// Nights started at the same moment by two labs get a directory each, and both are in the
/// history: nothing of one is written over by the other.
#[test]
fn nights_started_together_never_share_a_directory() {
    let _slot = vm_slot();
    let tmp = tempfile::tempdir().unwrap();
    let config = lab_without_vms(tmp.path());
    let start = || {
        lab()
            .args(["nightly", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..4).map(|_| start()).collect();
    let mut dirs = std::collections::BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        let dir = text
            .lines()
            .find_map(|l| l.strip_prefix("night: "))
            .expect("the night's directory")
            .to_string();
        assert!(Path::new(&dir).join("results.json").is_file(), "{dir}");
        dirs.insert(dir);
    }
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    let history =
        lab::results::history::History::open(&tmp.path().join("nights/history.sqlite")).unwrap();
    // Skipped cells say nothing about the kernel: no runs recorded, and no error either.
    assert!(history.trend(None, None).unwrap().is_empty());
}

/// A history whose header is intact and whose pages are damaged: the night checks it before
/// running anything, moves it aside (never resets it in place), says which file and where it
/// went, still writes its own results, and exits 2.
#[test]
fn a_damaged_history_is_moved_aside_and_the_night_still_writes_its_results() {
    let _slot = vm_slot();
    let tmp = tempfile::tempdir().unwrap();
    let config = lab_without_vms(tmp.path());
    // A history with a few pages of nights, then every page after the first overwritten.
    let path = tmp.path().join("nights/history.sqlite");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut h = lab::results::history::History::open(&path).unwrap();
    for night in 0..40 {
        let rows: Vec<lab::results::history::RunRow> = (0..20)
            .map(|i| lab::results::history::RunRow {
                variant: format!("v{i}"),
                scenario: "s".into(),
                plan_key: "k".into(),
                index: i,
                verdict: "fail".into(),
                outcome: "completed".into(),
                first_report_ms: None,
                reports: vec![(format!("sig{night}"), "WARNING in x".into())],
            })
            .collect();
        h.record(("2026-01-01T00:00:00Z", "b"), "debian:x", None, &rows)
            .unwrap();
    }
    drop(h);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * 4096, "{} bytes", bytes.len());
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();

    let (out, results) = night(&config, &tmp.path().join("n1"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the history {}", path.display()))
            && stderr.contains("moved aside to"),
        "{stderr}"
    );
    // The night's own results are there, the damage among its errors.
    assert_eq!(results["cells"][0]["counts"]["skipped"], 1, "{results}");
    assert!(
        results["errors"][0]
            .as_str()
            .unwrap()
            .contains("moved aside to"),
        "{results}"
    );
    for file in ["junit.xml", "summary.md", "report.html"] {
        assert!(tmp.path().join("n1").join(file).is_file(), "{file}");
    }
    // The damaged file is kept beside a new history.
    let aside: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("history.sqlite.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(lab::results::history::History::open(&path)
        .unwrap()
        .check()
        .is_ok());
}

/// Errors from the history name its file.
#[test]
fn lab_history_names_a_history_it_cannot_read() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("bad.sqlite"),
        "not a database, but long enough to look like one's header: ".repeat(20),
    )
    .unwrap();
    let config = tmp.path().join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "kernels = {:?}\nscenarios = {:?}\nhistory = \"bad.sqlite\"\n\
             [[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n",
            repo("kernels"),
            repo("scenarios")
        ),
    )
    .unwrap();
    let out = lab()
        .arg("history")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the history {}",
            tmp.path().join("bad.sqlite").display()
        )),
        "{stderr}"
    );
}

/// No command runs zero times: nothing run would read as a pass.
#[test]
fn zero_runs_are_refused_on_the_command_line() {
    for args in [
        vec![
            "run",
            "--scenario",
            "uapi-epoll",
            "--kernel",
            "/boot/none",
            "--runs",
            "0",
        ],
        vec!["nightly", "--runs", "0"],
        vec!["compare", "--runs", "0"],
    ] {
        let out = lab().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("'0' for '--runs"), "{args:?}: {stderr}");
    }
}

/// A venv tool the set-up script installs (scripts/setup.sh).
/// The night as two shards (one told by --shard, one by GitLab's variables), merged: the
/// same cells and verdicts as a whole night, every run once, numbered across the shards; the
/// merged night goes into the history and its KCIDB export validates against KCIDB's schema.
#[test]
fn two_shards_merge_into_one_night_that_exports_to_kcidb() {
    let _slot = vm_slot();
    let (tmp, _) = run_dir("nightly-shards");
    let config = tmp.path().join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"test lab\"\nkernels = {:?}\nscenarios = {:?}\nresults = \"nights\"\n\
             runs = 2\n[[matrix]]\nvariants = [\"epoll-unpinned-poll\", \"baseline\"]\n\
             scenarios = [\"epoll-dmabuf-race\"]\n\
             expect = {{ baseline = \"pass\", epoll-unpinned-poll = \"fail\" }}\n",
            repo("kernels"),
            repo("scenarios")
        ),
    )
    .unwrap();
    let shard = |out: &str, flag: &[&str], env: &[(&str, &str)]| {
        let mut cmd = lab();
        cmd.args(["nightly", "--duration", "4s", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(tmp.path().join(out))
            .args(flag);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = cmd.output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", show(&output));
        output
    };
    let one = shard("s1", &["--shard", "1/2"], &[]);
    shard("s2", &[], &[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "2")]);
    assert!(String::from_utf8_lossy(&one.stdout).contains("Shard 1/2 of this night's plan"));
    assert!(
        !tmp.path().join("nights/history.sqlite").exists(),
        "a shard leaves the history to the merge"
    );

    // One shard alone is refused, naming the missing one.
    let refused = lab()
        .arg("merge")
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(tmp.path().join("refused"))
        .arg(tmp.path().join("s1"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
    assert!(
        show(&refused).contains("shard(s) 2/2"),
        "{}",
        show(&refused)
    );

    let merged = lab()
        .arg("merge")
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(tmp.path().join("night"))
        .arg(tmp.path().join("s2"))
        .arg(tmp.path().join("s1"))
        .output()
        .unwrap();
    assert_eq!(merged.status.code(), Some(0), "{}", show(&merged));
    let night: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("night/results.json")).unwrap())
            .unwrap();
    assert!(
        night["night"].is_i64(),
        "the merged night is in the history"
    );
    let cells = night["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    for cell in cells {
        let runs = cell["runs"].as_array().unwrap();
        let indices: Vec<u64> = runs.iter().map(|r| r["index"].as_u64().unwrap()).collect();
        assert_eq!(indices, [1, 2], "{}", cell["variant"]);
        for r in runs {
            let dir = PathBuf::from(r["dir"].as_str().unwrap());
            assert!(
                dir.starts_with(tmp.path().join("night")),
                "{}",
                dir.display()
            );
            assert!(dir.join("console.log").is_file(), "{}", dir.display());
        }
        let verdicts: Vec<&str> = runs
            .iter()
            .map(|r| r["verdict"]["verdict"].as_str().unwrap())
            .collect();
        let expected = if cell["variant"] == "baseline" {
            "pass"
        } else {
            "fail"
        };
        assert_eq!(verdicts, [expected, expected], "{}", cell["variant"]);
    }
    let text = String::from_utf8_lossy(&merged.stdout);
    assert!(text.contains("merged from 2 of 2 shards"), "{text}");

    same_as_a_whole_night(&config, tmp.path(), &night);

    exports_to_kcidb(tmp.path());
}

/// The plan run as one whole night beside the merged `night`: the same cells, runs, indices,
/// verdicts, counts and marks.
fn same_as_a_whole_night(config: &Path, dir: &Path, night: &Value) {
    // The same plan as one whole night: the same cells, runs, indices, counts and marks.
    let whole = lab()
        .args(["nightly", "--duration", "4s", "--config"])
        .arg(config)
        .arg("--out")
        .arg(dir.join("whole"))
        .output()
        .unwrap();
    assert_eq!(whole.status.code(), Some(0), "{}", show(&whole));
    let whole_night: Value =
        serde_json::from_slice(&std::fs::read(dir.join("whole/results.json")).unwrap()).unwrap();
    let shape = |n: &Value| -> Vec<Value> {
        n["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "cell": [c["variant"], c["scenario"], c["expect"], c["runs_planned"]],
                    "indices": c["runs"].as_array().unwrap().iter().map(|r| r["index"].clone()).collect::<Vec<_>>(),
                    "verdicts": c["runs"].as_array().unwrap().iter().map(|r| r["verdict"]["verdict"].clone()).collect::<Vec<_>>(),
                    "counts": c["counts"],
                })
            })
            .collect()
    };
    assert_eq!(shape(&whole_night), shape(night));
    let marks = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name).join("summary.md"))
            .unwrap()
            .lines()
            .filter(|l| l.contains('✓') || l.contains('✗'))
            .map(|l| l.replace(char::is_numeric, "#"))
            .collect()
    };
    assert_eq!(marks("whole"), marks("night"));
    assert!(!marks("night").is_empty());
}

/// The merged night in `dir`/night and shard 1 alone in `dir`/s1 as KCIDB: each valid under
/// kcidb-io's latest schema, a test per run, an issue for the race; the shard says it is
/// not the whole night.
fn exports_to_kcidb(dir: &Path) {
    // KCIDB: valid under kcidb-io's latest schema, a test per run, an issue for the race.
    let export = lab()
        .args(["export", "kcidb", "--origin", "lab_test", "--out"])
        .arg(dir.join("kcidb.json"))
        .arg(dir.join("night"))
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0), "{}", show(&export));
    let counts = kcidb_counts(&dir.join("kcidb.json"));
    // Two checkouts (Debian's tree with and without the revert), two builds, four runs; the
    // unpinned variant's two runs each an incident of at least one issue.
    assert_eq!(&counts[..3], [2, 2, 4], "{counts:?}");
    assert!(counts[3] >= 1 && counts[4] >= 2, "{counts:?}");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join("kcidb.json")).unwrap()).unwrap();
    assert_eq!(doc["tests"][0]["misc"]["night"]["complete"], true);

    // One shard exported alone validates too, and says it is not the whole night.
    let export = lab()
        .args(["export", "kcidb", "--origin", "lab_test", "--out"])
        .arg(dir.join("kcidb-s1.json"))
        .arg(dir.join("s1"))
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0), "{}", show(&export));
    kcidb_counts(&dir.join("kcidb-s1.json"));
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join("kcidb-s1.json")).unwrap()).unwrap();
    assert_eq!(
        doc["tests"][0]["misc"]["night"]["complete"], false,
        "{}",
        doc["tests"][0]
    );
}
