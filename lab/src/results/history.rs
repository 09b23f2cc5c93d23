//! The history of nights in SQLite: every run of every cell (source, variant, scenario, plan
//! key) and every report signature it printed. A night is judged against the last comparable
//! night of each cell: a signature that is new is a regression, one that disappeared is
//! fixed, and one that comes and goes across the recent nights is flaky (marked, not alarmed).

use super::culprit::{Culprit, Direction};
use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Nights looked back at to call a signature flaky.
pub const FLAKY_WINDOW: usize = 5;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nights (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    source TEXT NOT NULL,
    commit_id TEXT,
    uid TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    night INTEGER NOT NULL REFERENCES nights(id),
    variant TEXT NOT NULL,
    scenario TEXT NOT NULL,
    plan_key TEXT NOT NULL,
    idx INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    outcome TEXT NOT NULL,
    first_report_ms INTEGER
);
CREATE TABLE IF NOT EXISTS reports (
    run INTEGER NOT NULL REFERENCES runs(id),
    signature TEXT NOT NULL,
    title TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_cell ON runs(variant, scenario, plan_key);
CREATE INDEX IF NOT EXISTS reports_run ON reports(run);
CREATE TABLE IF NOT EXISTS culprits (
    id INTEGER PRIMARY KEY,
    night INTEGER NOT NULL REFERENCES nights(id),
    direction TEXT NOT NULL,
    source TEXT NOT NULL,
    variant TEXT NOT NULL,
    scenario TEXT NOT NULL,
    plan_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    old_commit TEXT NOT NULL,
    new_commit TEXT NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS culprits_cell ON culprits(source, variant, scenario, signature);
";

/// The schema this lab writes: 2 added the nights' uid, 3 the culprits (a table of its
/// own, made by [`SCHEMA`] in an older file too).
pub const SCHEMA_VERSION: i64 = 3;

/// The nights' uid (schema 2): added to a history made before it.
const MIGRATE_UID: &str = "ALTER TABLE nights ADD COLUMN uid TEXT;";

/// One matrix cell: what must be equal for two nights to be compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    pub source: String,
    pub variant: String,
    pub scenario: String,
    /// Hash of what else shapes the result (config fragments, vCPUs, duration...).
    pub plan_key: String,
}

/// One run to record.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub variant: String,
    pub scenario: String,
    pub plan_key: String,
    pub index: u32,
    pub verdict: String,
    pub outcome: String,
    pub first_report_ms: Option<u64>,
    /// (signature, title) of every report the run printed.
    pub reports: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Regression,
    Fixed,
    Flaky,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub variant: String,
    pub scenario: String,
    pub signature: String,
    pub title: String,
    /// The cell it changed in (source line and plan key with the names above).
    pub cell: Cell,
}

/// Bring an older history to this schema (in place, once; its nights stay as they are).
fn migrate(db: &Connection) -> rusqlite::Result<()> {
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version < 2 {
        let has_uid = db.prepare("SELECT uid FROM nights LIMIT 0").is_ok();
        if !has_uid {
            db.execute_batch(MIGRATE_UID)?;
        }
    }
    if version < SCHEMA_VERSION {
        db.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
    }
    Ok(())
}

pub struct History {
    db: Connection,
    path: PathBuf,
}

/// A history that cannot be read or written, naming its file.
#[derive(Debug, thiserror::Error)]
#[error("the history {}", path.display())]
pub struct HistoryError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

impl History {
    /// The history at `path`, which a night must have made.
    pub fn open_existing(path: &Path) -> anyhow::Result<Self> {
        if !path.is_file() {
            anyhow::bail!(
                "no history at {} yet: run lab nightly first",
                path.display()
            );
        }
        Ok(Self::open(path)?)
    }

    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let named = |source| HistoryError {
            path: path.to_path_buf(),
            source,
        };
        let db = Connection::open(path).map_err(named)?;
        // Another lab may be recording a night: wait for it rather than fail.
        db.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(named)?;
        db.execute_batch(SCHEMA).map_err(named)?;
        migrate(&db).map_err(named)?;
        Ok(History {
            db,
            path: path.to_path_buf(),
        })
    }

    pub fn in_memory() -> Result<Self, HistoryError> {
        let named = |source| HistoryError {
            path: ":memory:".into(),
            source,
        };
        let db = Connection::open_in_memory().map_err(named)?;
        db.execute_batch(SCHEMA).map_err(named)?;
        migrate(&db).map_err(named)?;
        Ok(History {
            db,
            path: ":memory:".into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn named<T>(&self, result: rusqlite::Result<T>) -> Result<T, HistoryError> {
        result.map_err(|source| HistoryError {
            path: self.path.clone(),
            source,
        })
    }

    /// SQLite's own check of every page (`PRAGMA quick_check`): a damaged file is an error
    /// naming it, before a night has run anything.
    pub fn check(&self) -> Result<(), HistoryError> {
        let verdict: rusqlite::Result<String> =
            self.db
                .query_row("PRAGMA quick_check", [], |row| row.get(0));
        match self.named(verdict)? {
            ok if ok == "ok" => Ok(()),
            problem => Err(HistoryError {
                path: self.path.clone(),
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(problem),
                ),
            }),
        }
    }

    /// Store one night's runs; returns the night's id.
    /// `(started, uid)`: when the night started, and its unique identity.
    pub fn record(
        &mut self,
        night: (&str, &str),
        source: &str,
        commit: Option<&str>,
        runs: &[RunRow],
    ) -> Result<i64, HistoryError> {
        let result = self.record_runs(night, source, commit, runs);
        self.named(result)
    }

    /// The history's night of this uid and source line, if it was recorded.
    pub fn night_of(&self, uid: &str, source: &str) -> Result<Option<i64>, HistoryError> {
        let found = self.db.query_row(
            "SELECT id FROM nights WHERE uid = ?1 AND source = ?2",
            params![uid, source],
            |row| row.get(0),
        );
        match found {
            Ok(id) => Ok(Some(id)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => self.named(Err(e)),
        }
    }

    fn record_runs(
        &mut self,
        (started, uid): (&str, &str),
        source: &str,
        commit: Option<&str>,
        runs: &[RunRow],
    ) -> rusqlite::Result<i64> {
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO nights (started, source, commit_id, uid) VALUES (?1, ?2, ?3, ?4)",
            params![started, source, commit, uid],
        )?;
        let night = tx.last_insert_rowid();
        for r in runs {
            tx.execute(
                "INSERT INTO runs (night, variant, scenario, plan_key, idx, verdict, outcome,
                                   first_report_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    night,
                    r.variant,
                    r.scenario,
                    r.plan_key,
                    r.index,
                    r.verdict,
                    r.outcome,
                    r.first_report_ms
                ],
            )?;
            let run = tx.last_insert_rowid();
            for (signature, title) in &r.reports {
                tx.execute(
                    "INSERT INTO reports (run, signature, title) VALUES (?1, ?2, ?3)",
                    params![run, signature, title],
                )?;
            }
        }
        tx.commit()?;
        Ok(night)
    }

    /// The night that already tested this source commit in every one of `cells` (variant,
    /// scenario, plan key), if any: a night on an unchanged commit can be skipped.
    pub fn tested(
        &self,
        source: &str,
        commit: &str,
        cells: &[(String, String, String)],
    ) -> Result<Option<i64>, HistoryError> {
        self.named(self.tested_in(source, commit, cells))
    }

    fn tested_in(
        &self,
        source: &str,
        commit: &str,
        cells: &[(String, String, String)],
    ) -> rusqlite::Result<Option<i64>> {
        let mut stmt = self.db.prepare(
            "SELECT runs.variant, runs.scenario, runs.plan_key, MAX(nights.id)
             FROM runs JOIN nights ON runs.night = nights.id
             WHERE nights.source = ?1 AND nights.commit_id = ?2
             GROUP BY runs.variant, runs.scenario, runs.plan_key",
        )?;
        let seen: BTreeMap<(String, String, String), i64> = stmt
            .query_map(params![source, commit], |row| {
                Ok(((row.get(0)?, row.get(1)?, row.get(2)?), row.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        if cells.is_empty() {
            return Ok(None);
        }
        cells
            .iter()
            .map(|c| seen.get(c).copied())
            .collect::<Option<Vec<i64>>>()
            .map_or(Ok(None), |nights| Ok(nights.into_iter().max()))
    }

    /// The cell's nights before `night`, newest first: each night's signatures with titles.
    fn earlier(
        &self,
        cell: &Cell,
        night: i64,
        limit: usize,
    ) -> rusqlite::Result<Vec<BTreeMap<String, String>>> {
        let mut nights = self.db.prepare(
            "SELECT DISTINCT nights.id FROM nights JOIN runs ON runs.night = nights.id
             WHERE nights.source = ?1 AND runs.variant = ?2 AND runs.scenario = ?3
               AND runs.plan_key = ?4 AND nights.id < ?5
             ORDER BY nights.id DESC LIMIT ?6",
        )?;
        let ids: Vec<i64> = nights
            .query_map(
                params![
                    cell.source,
                    cell.variant,
                    cell.scenario,
                    cell.plan_key,
                    night,
                    limit as i64
                ],
                |row| row.get(0),
            )?
            .collect::<Result<_, _>>()?;
        ids.into_iter()
            .map(|id| self.signatures(cell, id))
            .collect()
    }

    /// Signature → title of the cell's reports in one night.
    pub fn signatures(
        &self,
        cell: &Cell,
        night: i64,
    ) -> rusqlite::Result<BTreeMap<String, String>> {
        let mut stmt = self.db.prepare(
            "SELECT reports.signature, reports.title FROM reports
             JOIN runs ON reports.run = runs.id JOIN nights ON runs.night = nights.id
             WHERE runs.night = ?1 AND nights.source = ?2 AND runs.variant = ?3
               AND runs.scenario = ?4 AND runs.plan_key = ?5",
        )?;
        let rows = stmt.query_map(
            params![
                night,
                cell.source,
                cell.variant,
                cell.scenario,
                cell.plan_key
            ],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )?;
        rows.collect()
    }

    /// The cells a night ran.
    pub fn cells(&self, night: i64) -> rusqlite::Result<Vec<Cell>> {
        let mut stmt = self.db.prepare(
            "SELECT DISTINCT nights.source, runs.variant, runs.scenario, runs.plan_key
             FROM runs JOIN nights ON runs.night = nights.id WHERE nights.id = ?1
             ORDER BY 2, 3",
        )?;
        let rows = stmt.query_map(params![night], |row| {
            Ok(Cell {
                source: row.get(0)?,
                variant: row.get(1)?,
                scenario: row.get(2)?,
                plan_key: row.get(3)?,
            })
        })?;
        rows.collect()
    }

    /// What changed in `night` against each cell's last comparable night. A cell seen for the
    /// first time has nothing to compare with and reports no change.
    pub fn changes(&self, night: i64) -> Result<Vec<Change>, HistoryError> {
        self.named(self.changes_in(night))
    }

    fn changes_in(&self, night: i64) -> rusqlite::Result<Vec<Change>> {
        let mut out = Vec::new();
        for cell in self.cells(night)? {
            let now = self.signatures(&cell, night)?;
            let before = self.earlier(&cell, night, FLAKY_WINDOW)?;
            let Some(last) = before.first() else {
                continue;
            };
            let seen_in = |sig: &str| before.iter().filter(|n| n.contains_key(sig)).count();
            let change = |kind, signature: &str, title: &str| Change {
                kind,
                variant: cell.variant.clone(),
                scenario: cell.scenario.clone(),
                signature: signature.to_string(),
                title: title.to_string(),
                cell: cell.clone(),
            };
            for (sig, title) in &now {
                if last.contains_key(sig) {
                    continue;
                }
                // Seen in an earlier night of the window but not the last: it comes and goes.
                let kind = if seen_in(sig) > 0 {
                    ChangeKind::Flaky
                } else {
                    ChangeKind::Regression
                };
                out.push(change(kind, sig, title));
            }
            for (sig, title) in last {
                if now.contains_key(sig) {
                    continue;
                }
                // Fixed only if it was there every night of the window; else it was flaky.
                let kind = if seen_in(sig) == before.len() {
                    ChangeKind::Fixed
                } else {
                    ChangeKind::Flaky
                };
                out.push(change(kind, sig, title));
            }
        }
        Ok(out)
    }
}

/// A culprit as the history keeps it: the answer, and when the night that found it started.
pub struct KnownCulprit {
    pub culprit: Culprit,
    pub night_started: String,
}

impl History {
    /// Keep `culprit`, found by `night`.
    pub fn record_culprit(&mut self, night: i64, culprit: &Culprit) -> Result<(), HistoryError> {
        let answer = serde_json::to_string(culprit).expect("a culprit serializes");
        let done = self.db.execute(
            "INSERT INTO culprits (night, direction, source, variant, scenario, plan_key,
                                   signature, old_commit, new_commit, answer)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                night,
                culprit.direction.name(),
                culprit.source,
                culprit.variant,
                culprit.scenario,
                culprit.plan_key,
                culprit.signature,
                culprit.old,
                culprit.new,
                answer
            ],
        );
        self.named(done.map(drop))
    }

    /// Every culprit kept for `cell`'s `signature` in `direction`, newest first.
    pub fn culprits(
        &self,
        cell: &Cell,
        signature: &str,
        direction: Direction,
    ) -> Result<Vec<KnownCulprit>, HistoryError> {
        self.named(self.culprits_in(cell, signature, direction))
    }

    fn culprits_in(
        &self,
        cell: &Cell,
        signature: &str,
        direction: Direction,
    ) -> rusqlite::Result<Vec<KnownCulprit>> {
        let mut stmt = self.db.prepare(
            "SELECT culprits.answer, nights.started FROM culprits
             JOIN nights ON culprits.night = nights.id
             WHERE culprits.source = ?1 AND culprits.variant = ?2 AND culprits.scenario = ?3
               AND culprits.plan_key = ?4 AND culprits.signature = ?5
               AND culprits.direction = ?6
             ORDER BY culprits.id DESC",
        )?;
        let rows = stmt.query_map(
            params![
                cell.source,
                cell.variant,
                cell.scenario,
                cell.plan_key,
                signature,
                direction.name()
            ],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (answer, night_started) = row?;
            // An answer this lab cannot read is left out, not an error of the night.
            if let Ok(culprit) = serde_json::from_str(&answer) {
                out.push(KnownCulprit {
                    culprit,
                    night_started,
                });
            }
        }
        Ok(out)
    }

    /// The commit the cell's last night before `night` tested, if that night knew one.
    pub fn previous_commit(&self, cell: &Cell, night: i64) -> Result<Option<String>, HistoryError> {
        let found = self.db.query_row(
            "SELECT nights.commit_id FROM nights JOIN runs ON runs.night = nights.id
             WHERE nights.source = ?1 AND runs.variant = ?2 AND runs.scenario = ?3
               AND runs.plan_key = ?4 AND nights.id < ?5
             ORDER BY nights.id DESC LIMIT 1",
            params![
                cell.source,
                cell.variant,
                cell.scenario,
                cell.plan_key,
                night
            ],
            |row| row.get::<_, Option<String>>(0),
        );
        match found {
            Ok(commit) => Ok(commit),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => self.named(Err(e)),
        }
    }
}

/// Nights of a cell shown as its timeline in report.html.
pub const TIMELINE_NIGHTS: usize = 10;

impl History {
    /// The cell's last nights up to `night` (newest first, at most `limit`): each night's
    /// commit, runs, runs with a finding and signatures with titles.
    pub fn timeline(
        &self,
        cell: &Cell,
        night: i64,
        limit: usize,
    ) -> Result<Vec<TimelineNight>, HistoryError> {
        self.named(self.timeline_in(cell, night, limit))
    }

    fn timeline_in(
        &self,
        cell: &Cell,
        night: i64,
        limit: usize,
    ) -> rusqlite::Result<Vec<TimelineNight>> {
        let mut stmt = self.db.prepare(
            "SELECT nights.id, nights.started, nights.commit_id, COUNT(*),
                    SUM(runs.verdict = 'fail')
             FROM runs JOIN nights ON runs.night = nights.id
             WHERE nights.source = ?1 AND runs.variant = ?2 AND runs.scenario = ?3
               AND runs.plan_key = ?4 AND nights.id <= ?5
             GROUP BY nights.id ORDER BY nights.id DESC LIMIT ?6",
        )?;
        let rows: Vec<TimelineNight> = stmt
            .query_map(
                params![
                    cell.source,
                    cell.variant,
                    cell.scenario,
                    cell.plan_key,
                    night,
                    limit as i64
                ],
                |row| {
                    Ok(TimelineNight {
                        night: row.get(0)?,
                        started: row.get(1)?,
                        commit: row.get(2)?,
                        runs: row.get(3)?,
                        failed: row.get(4)?,
                        signatures: Default::default(),
                    })
                },
            )?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|mut n| {
                n.signatures = self.signatures(cell, n.night)?;
                Ok(n)
            })
            .collect()
    }
}

/// One night of a cell's timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimelineNight {
    pub night: i64,
    pub started: String,
    pub commit: Option<String>,
    pub runs: u64,
    /// Runs with a finding.
    pub failed: u64,
    /// Signature → title of what the night's runs found.
    pub signatures: BTreeMap<String, String>,
}

/// One cell in one night, for `lab history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendRow {
    pub night: i64,
    pub started: String,
    pub source: String,
    pub variant: String,
    pub scenario: String,
    pub runs: u64,
    pub failed: u64,
    /// Titles of the runs' first reports, with how many runs printed each.
    pub titles: Vec<(String, u64)>,
}

impl History {
    /// Every night's cells, oldest first, filtered by variant and scenario.
    pub fn trend(
        &self,
        variant: Option<&str>,
        scenario: Option<&str>,
    ) -> Result<Vec<TrendRow>, HistoryError> {
        self.named(self.trend_in(variant, scenario))
    }

    fn trend_in(
        &self,
        variant: Option<&str>,
        scenario: Option<&str>,
    ) -> rusqlite::Result<Vec<TrendRow>> {
        let mut stmt = self.db.prepare(
            "SELECT nights.id, nights.started, nights.source, runs.variant, runs.scenario,
                    COUNT(*), SUM(runs.verdict = 'fail')
             FROM runs JOIN nights ON runs.night = nights.id
             WHERE (?1 IS NULL OR runs.variant = ?1) AND (?2 IS NULL OR runs.scenario = ?2)
             GROUP BY nights.id, runs.variant, runs.scenario
             ORDER BY nights.id, runs.variant, runs.scenario",
        )?;
        let mut rows: Vec<TrendRow> = stmt
            .query_map(params![variant, scenario], |row| {
                Ok(TrendRow {
                    night: row.get(0)?,
                    started: row.get(1)?,
                    source: row.get(2)?,
                    variant: row.get(3)?,
                    scenario: row.get(4)?,
                    runs: row.get(5)?,
                    failed: row.get(6)?,
                    titles: vec![],
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut titles = self.db.prepare(
            "SELECT reports.title, COUNT(*) FROM reports JOIN runs ON reports.run = runs.id
             WHERE runs.night = ?1 AND runs.variant = ?2 AND runs.scenario = ?3
             GROUP BY reports.title ORDER BY COUNT(*) DESC, reports.title",
        )?;
        for r in &mut rows {
            r.titles = titles
                .query_map(params![r.night, r.variant, r.scenario], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(variant: &str, index: u32, reports: &[(&str, &str)]) -> RunRow {
        RunRow {
            variant: variant.into(),
            scenario: "epoll-dmabuf-race".into(),
            plan_key: "k1".into(),
            index,
            verdict: if reports.is_empty() { "pass" } else { "fail" }.into(),
            outcome: "completed".into(),
            first_report_ms: None,
            reports: reports
                .iter()
                .map(|(s, t)| (s.to_string(), t.to_string()))
                .collect(),
        }
    }

    const WARN: (&str, &str) = ("sig-warn", "WARNING in dma_buf_poll");
    const UAF: (&str, &str) = (
        "sig-uaf",
        "KASAN: slab-use-after-free Read in dma_buf_file_release",
    );

    fn night(h: &mut History, runs: &[RunRow]) -> i64 {
        h.record(
            ("2026-11-26T00:00:00Z", ""),
            "debian:linux-source-6.12",
            Some("c1"),
            runs,
        )
        .unwrap()
    }

    #[test]
    fn first_night_has_nothing_to_compare() {
        let mut h = History::in_memory().unwrap();
        let n = night(&mut h, &[run("epoll-unpinned-poll", 1, &[WARN])]);
        assert!(h.changes(n).unwrap().is_empty());
    }

    #[test]
    fn same_night_twice_is_no_change() {
        let mut h = History::in_memory().unwrap();
        let runs = [
            run("baseline", 1, &[]),
            run("epoll-unpinned-poll", 1, &[WARN, UAF]),
        ];
        night(&mut h, &runs);
        let n = night(&mut h, &runs);
        assert!(h.changes(n).unwrap().is_empty());
    }

    #[test]
    fn a_new_signature_is_a_regression_and_a_vanished_one_is_fixed() {
        let mut h = History::in_memory().unwrap();
        night(
            &mut h,
            &[
                run("baseline", 1, &[]),
                run("epoll-unpinned-poll", 1, &[WARN]),
            ],
        );
        let n = night(
            &mut h,
            &[
                run("baseline", 1, &[UAF]),
                run("epoll-unpinned-poll", 1, &[]),
            ],
        );
        let changes = h.changes(n).unwrap();
        assert_eq!(changes.len(), 2, "{changes:?}");
        let regression = changes
            .iter()
            .find(|c| c.kind == ChangeKind::Regression)
            .unwrap();
        assert_eq!(
            (regression.variant.as_str(), regression.signature.as_str()),
            ("baseline", "sig-uaf")
        );
        let fixed = changes
            .iter()
            .find(|c| c.kind == ChangeKind::Fixed)
            .unwrap();
        assert_eq!(
            (fixed.variant.as_str(), fixed.title.as_str()),
            ("epoll-unpinned-poll", WARN.1)
        );
    }

    #[test]
    fn a_signature_that_comes_and_goes_is_flaky() {
        let mut h = History::in_memory().unwrap();
        night(&mut h, &[run("baseline", 1, &[UAF])]);
        night(&mut h, &[run("baseline", 1, &[])]);
        let n = night(&mut h, &[run("baseline", 1, &[UAF])]);
        let changes = h.changes(n).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Flaky);
        // And leaving again after an intermittent history is flaky, not fixed.
        let n = night(&mut h, &[run("baseline", 1, &[])]);
        assert_eq!(h.changes(n).unwrap()[0].kind, ChangeKind::Flaky);
    }

    #[test]
    fn other_plans_and_sources_are_not_compared() {
        let mut h = History::in_memory().unwrap();
        night(&mut h, &[run("baseline", 1, &[])]);
        let mut other_plan = run("baseline", 1, &[UAF]);
        other_plan.plan_key = "k2".into();
        let n = night(&mut h, &[other_plan]);
        assert!(h.changes(n).unwrap().is_empty());
        let n = h
            .record(
                ("t", ""),
                "git:linux@master",
                Some("c2"),
                &[run("baseline", 1, &[UAF])],
            )
            .unwrap();
        assert!(h.changes(n).unwrap().is_empty());
    }

    #[test]
    fn a_tested_commit_is_known_by_plan() {
        let mut h = History::in_memory().unwrap();
        night(&mut h, &[run("baseline", 1, &[])]);
        let src = "debian:linux-source-6.12";
        let cell = |v: &str, k: &str| {
            (
                v.to_string(),
                "epoll-dmabuf-race".to_string(),
                k.to_string(),
            )
        };
        assert_eq!(
            h.tested(src, "c1", &[cell("baseline", "k1")]).unwrap(),
            Some(1)
        );
        // Another plan, another variant, another commit: not tested.
        assert_eq!(
            h.tested(src, "c1", &[cell("baseline", "k1"), cell("baseline", "k9")])
                .unwrap(),
            None
        );
        assert_eq!(h.tested(src, "c1", &[cell("naive", "k1")]).unwrap(), None);
        assert_eq!(
            h.tested(src, "c2", &[cell("baseline", "k1")]).unwrap(),
            None
        );
    }

    #[test]
    fn trend_lists_each_night_of_a_cell() {
        let mut h = History::in_memory().unwrap();
        night(&mut h, &[run("baseline", 1, &[]), run("baseline", 2, &[])]);
        night(
            &mut h,
            &[
                run("baseline", 1, &[UAF]),
                run("baseline", 2, &[UAF]),
                run("other", 1, &[WARN]),
            ],
        );
        let t = h.trend(Some("baseline"), None).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].runs, t[0].failed), (2, 0));
        assert!(t[0].titles.is_empty());
        assert_eq!((t[1].runs, t[1].failed), (2, 2));
        assert_eq!(t[1].titles, [(UAF.1.to_string(), 2)]);
        assert_eq!(h.trend(None, None).unwrap().len(), 3);
        let text = super::super::render::history::table(&t);
        assert!(
            text.contains("| baseline | epoll-dmabuf-race | 2/2 | KASAN: slab-use-after-free Read in dma_buf_file_release (2) |"),
            "{text}"
        );
        assert!(h.trend(Some("nope"), None).unwrap().is_empty());
    }

    /// A history of schema 1 (no uid, no culprits) is brought to this schema in place when
    /// it is opened: its nights stay, and culprits can be kept and read back.
    #[test]
    fn an_old_history_is_migrated_in_place_without_losing_a_night() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        {
            let db = Connection::open(&path).unwrap();
            let v1 = SCHEMA
                .replace(
                    "    commit_id TEXT,\n    uid TEXT\n",
                    "    commit_id TEXT\n",
                )
                .split("CREATE TABLE IF NOT EXISTS culprits")
                .next()
                .unwrap()
                .to_string();
            assert!(!v1.contains("uid"), "{v1}");
            db.execute_batch(&v1).unwrap();
            db.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO nights (started, source, commit_id) VALUES ('n1', 'git:r@m', 'c1');
                 INSERT INTO runs (night, variant, scenario, plan_key, idx, verdict, outcome)
                     VALUES (1, 'baseline', 'epoll-dmabuf-race', 'k1', 1, 'pass', 'completed');",
            )
            .unwrap();
        }
        let mut h = History::open(&path).unwrap();
        let version: i64 =
            h.db.query_row("PRAGMA user_version", [], |row| row.get(0))
                .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let cell = h.cells(1).unwrap().remove(0);
        assert_eq!(h.previous_commit(&cell, 2).unwrap().as_deref(), Some("c1"));
        let n = h
            .record(
                ("n2", "u2"),
                "git:r@m",
                Some("c2"),
                &[run("baseline", 1, &[])],
            )
            .unwrap();
        let mut cell = cell;
        cell.plan_key = "k1".into();
        let about = (
            (
                cell.source.as_str(),
                cell.variant.as_str(),
                cell.scenario.as_str(),
                cell.plan_key.as_str(),
            ),
            ("sig", "t"),
        );
        let culprit = Culprit {
            commit: Some("c2".into()),
            confidence: 0.97,
            ..Culprit::new(Direction::Introduced, about, ("c1", "c2"))
        };
        h.record_culprit(n, &culprit).unwrap();
        drop(h);
        let h = History::open(&path).unwrap();
        let known = h.culprits(&cell, "sig", Direction::Introduced).unwrap();
        assert_eq!(known.len(), 1);
        assert_eq!(
            (known[0].culprit.clone(), known[0].night_started.as_str()),
            (culprit, "n2")
        );
        assert!(h
            .culprits(&cell, "sig", Direction::Fixed)
            .unwrap()
            .is_empty());
        assert_eq!(h.trend(None, None).unwrap().len(), 2);
    }

    /// A cell's timeline: its nights up to the one asked for, newest first, each with its
    /// commit, runs, runs with a finding and signatures; other cells' nights are not in it.
    #[test]
    fn a_cells_timeline_lists_its_last_nights() {
        let mut h = History::in_memory().unwrap();
        night(&mut h, &[run("baseline", 1, &[]), run("other", 1, &[WARN])]);
        let n2 = night(
            &mut h,
            &[run("baseline", 1, &[UAF]), run("baseline", 2, &[])],
        );
        let n3 = night(&mut h, &[run("baseline", 1, &[UAF])]);
        let cell = Cell {
            source: "debian:linux-source-6.12".into(),
            variant: "baseline".into(),
            scenario: "epoll-dmabuf-race".into(),
            plan_key: "k1".into(),
        };
        let t = h.timeline(&cell, n2, 10).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].night, t[0].runs, t[0].failed), (n2, 2, 1));
        assert_eq!(t[0].signatures["sig-uaf"], UAF.1);
        assert_eq!(t[0].commit.as_deref(), Some("c1"));
        assert!(t[1].signatures.is_empty());
        assert_eq!(h.timeline(&cell, n3, 2).unwrap()[0].night, n3);
        assert_eq!(h.timeline(&cell, n3, 2).unwrap().len(), 2);
    }

    #[test]
    fn history_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let n = {
            let mut h = History::open(&path).unwrap();
            night(&mut h, &[run("baseline", 1, &[WARN])])
        };
        let h = History::open(&path).unwrap();
        let cell = &h.cells(n).unwrap()[0];
        assert_eq!(h.signatures(cell, n).unwrap()["sig-warn"], WARN.1);
    }
}
