//! The long-term history: spe-core's [`HistoryStore`] wired to the server.
//!
//! - [`History::open`]: the store in `<data dir>/history/` (an SQLite
//!   database and its `backups/`), opened at start-up. A damaged or missing
//!   database replaced from a backup is journaled as a `store_corrupt`
//!   incident (opened and closed at once); a store that cannot be opened at
//!   all is logged and the server runs without it.
//! - [`record`]: the background task that records every snapshot's past
//!   hours (weather, demand, supply by source) and KPIs, every fresh answer
//!   of the prediction chain, and every [`MAINTAIN_EVERY`] runs the store's
//!   upkeep (a backup every 30 minutes, old predictions pruned). Damage found
//!   while running is journaled and repaired from the newest backup
//!   ([`History::run`]).
//! - [`history`]: `GET /api/history`, a recorded series, KPI or the demand
//!   forecasts made for each hour (day-ahead or latest) over a time range,
//!   as parallel arrays or CSV.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State, rejection::QueryRejection};
use axum::response::{IntoResponse as _, Response};
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use spe_core::{
    HistoryStore, IncidentKind, Journal, PredictionChain, StoreConfig, StoreError, StoreOpenReport,
};
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;

use crate::csv_dialect::CsvLocale;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// The store's directory in the data directory.
pub const HISTORY_DIR: &str = "history";
/// Component name of incidents about the history store.
pub const STORE_COMPONENT: &str = "store";
/// How often the recording task runs the store's upkeep
/// ([`HistoryStore::maintain`]).
pub const MAINTAIN_EVERY: Duration = Duration::from_secs(5 * 60);
/// The longest range `GET /api/history` answers, in days.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The range `GET /api/history` answers without `from`, in days before `to`.
pub const DEFAULT_RANGE_DAYS: i64 = 7;

/// The suffix of a store on its way from the earlier layout to its site's
/// directory: `<data-dir>/history.<site>.moving`.
const MOVING_SUFFIX: &str = ".moving";

/// Moves a store of the earlier layout, one for every site in
/// `<data-dir>/history/` itself, to the directory of the site the server
/// is started for, `<data-dir>/history/<site_key>/` (blocking: call it at
/// start-up, before [`History::open`]). Returns where a store was moved.
///
/// The move takes two renames, through `<data-dir>/history.<site>.moving`,
/// each durable; one a crash interrupted is finished at the next start, to
/// the site it was started for, whichever site that start is for. Nothing is
/// moved (it is logged) while a store has it open (an older server still
/// running on the directory), or when site directories are beside it
/// already.
pub fn adopt_earlier_layout(data_dir: &Path, site_key: &str) -> Option<PathBuf> {
    let root = data_dir.join(HISTORY_DIR);
    let mut moved = None;
    let prefix = format!("{HISTORY_DIR}.");
    // Moves a crash interrupted.
    for entry in std::fs::read_dir(data_dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(key) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(MOVING_SUFFIX))
            .filter(|k| !k.is_empty() && *k != "." && *k != "..")
        else {
            continue;
        };
        let target = root.join(key);
        if target.exists() {
            tracing::warn!(store = %entry.path().display(), site = key, "a history store half-way to its site's directory is left where it is: the site has a store already");
            continue;
        }
        match HistoryStore::relocate(&entry.path(), &target) {
            Ok(()) => {
                tracing::info!(
                    site = key,
                    "finished moving the history store to its site's directory"
                );
                if key == site_key {
                    moved = Some(target);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not finish moving the history store to its site's directory")
            }
        }
    }
    if !root.join(spe_core::HISTORY_FILE).exists() {
        return moved;
    }
    let beside = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().is_dir() && e.file_name() != spe_core::BACKUP_DIR);
    if beside {
        tracing::warn!(store = %root.display(), "a history store of the earlier layout (one for every site) is beside sites' stores: left where it is, and not read");
        return moved;
    }
    let moving = data_dir.join(format!("{prefix}{site_key}{MOVING_SUFFIX}"));
    let target = root.join(site_key);
    let result = HistoryStore::relocate(&root, &moving)
        .and_then(|()| HistoryStore::relocate(&moving, &target));
    match result {
        Ok(()) => {
            tracing::info!(
                site = site_key,
                "the history store of the earlier layout (one for every site) is now this site's"
            );
            Some(target)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not move the history store of the earlier layout (one for every site) to this site's directory");
            moved
        }
    }
}

/// The history store and the journal its damage is reported to. Cheap to
/// clone: clones share one store.
///
/// ```
/// use spe_server_example::history::History;
/// let history = History::in_memory();
/// assert!(history.store().dir().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct History {
    store: Arc<HistoryStore>,
    journal: Option<Journal>,
    revision: Arc<watch::Sender<u64>>,
    last_backup: Arc<watch::Sender<Option<DateTime<Utc>>>>,
}

impl History {
    /// Opens (or creates) the store in `dir` (blocking: call it at
    /// start-up). Repairs made on opening are journaled in `journal`;
    /// `None` (logged at `error`) if the store cannot be opened.
    pub fn open(dir: &Path, journal: Option<&Journal>, now: DateTime<Utc>) -> Option<History> {
        match HistoryStore::open(dir, StoreConfig::default(), now) {
            Ok((store, report)) => {
                let last_backup = store
                    .backups()
                    .ok()
                    .and_then(|b| b.last().map(|b| b.taken_at));
                let history = History {
                    store: Arc::new(store),
                    journal: journal.cloned(),
                    revision: Arc::new(watch::channel(0).0),
                    last_backup: Arc::new(watch::channel(last_backup).0),
                };
                history.journal_repair(&report, now);
                Some(history)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the history store; running without it");
                None
            }
        }
    }

    /// A store in memory, with no journal (tests, examples).
    pub fn in_memory() -> History {
        let store = HistoryStore::in_memory(StoreConfig::default())
            .unwrap_or_else(|e| unreachable!("the default configuration is valid: {e}"));
        History {
            store: Arc::new(store),
            journal: None,
            revision: Arc::new(watch::channel(0).0),
            last_backup: Arc::new(watch::channel(None).0),
        }
    }

    /// When the newest backup was taken (`None` before the first), read
    /// without touching the store (for `/metrics`).
    pub fn last_backup(&self) -> Option<DateTime<Utc>> {
        *self.last_backup.borrow()
    }

    /// A counter of what [`record`] wrote (snapshots, predictions, upkeep
    /// runs), bumped after each success: to wait for a write.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    fn bump(&self) {
        self.revision.send_modify(|r| *r += 1);
    }

    /// The store (its methods block: see [`History::run`]).
    pub fn store(&self) -> &HistoryStore {
        &self.store
    }

    /// A repair found by opening or recovering, as an incident.
    fn journal_repair(&self, report: &StoreOpenReport, now: DateTime<Utc>) {
        if report.is_clean() {
            return;
        }
        tracing::warn!(report = %report.summary(), "history store repaired");
        if let Some(journal) = &self.journal {
            let resolution = match &report.restored_from {
                Some(b) => format!("restored the backup of {}", b.taken_at.to_rfc3339()),
                None => "started an empty store".to_owned(),
            };
            crate::app::record_repaired(
                journal,
                STORE_COMPONENT,
                IncidentKind::StoreCorrupt,
                now,
                details(report),
                resolution,
            );
        }
    }

    /// Damage found and a repair that failed, as an incident: the store
    /// retries on its next error.
    fn journal_failed_repair(&self, damage: &StoreError, failed: &StoreError, now: DateTime<Utc>) {
        let Some(journal) = &self.journal else { return };
        let name = |e: &StoreError| match e {
            // No paths of this machine in the journal.
            StoreError::Corrupt { detail, .. } => detail.clone(),
            other => other.to_string().replace(
                &self
                    .store
                    .dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                "<history>",
            ),
        };
        let details = format!(
            "damage found: {}; the repair failed: {}",
            name(damage),
            name(failed)
        );
        crate::app::record_repaired(
            journal,
            STORE_COMPONENT,
            IncidentKind::StoreCorrupt,
            now,
            details,
            "not repaired: retried on the next error",
        );
    }

    /// Runs `op` on the store off the async workers. Damage it finds
    /// ([`StoreError::Corrupt`]) is repaired at once from the newest backup
    /// and journaled; the error is still returned (this call's data may be
    /// lost; the next call works on the restored store).
    pub async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&HistoryStore) -> Result<T, StoreError> + Send + 'static,
    {
        let this = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let r = op(&this.store);
            if let Err(e) = &r
                && e.is_corruption()
            {
                tracing::error!(error = %e, "the history store is damaged; recovering");
                let now = Utc::now();
                match this.store.recover(now) {
                    Ok(report) => this.journal_repair(&report, now),
                    Err(failed) => {
                        tracing::error!(error = %failed, "cannot recover the history store");
                        this.journal_failed_repair(e, &failed, now);
                    }
                }
            }
            r
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(StoreError::Database {
                op: "run a history store task",
                message: e.to_string(),
            })
        })
    }
}

/// An incident's details: what was found, with file names only (no paths
/// of this machine).
fn details(report: &StoreOpenReport) -> String {
    let name = |p: &Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let mut parts = Vec::new();
    if let Some((path, why)) = &report.quarantined {
        parts.push(format!(
            "damaged history database quarantined as {} ({why})",
            name(path)
        ));
    }
    if report.was_missing {
        parts.push("the history database was missing".to_owned());
    }
    match &report.restored_from {
        Some(b) => parts.push(format!(
            "restored {} (data recorded after {} is lost)",
            name(&b.path),
            b.taken_at.to_rfc3339()
        )),
        None => parts.push("no sound backup: the history starts empty".to_owned()),
    }
    for (path, why) in &report.unusable_backups {
        parts.push(format!("backup {} unusable ({why})", name(path)));
    }
    for (path, why) in &report.skipped_backups {
        parts.push(format!("backup {} skipped ({why})", name(path)));
    }
    parts.join("; ")
}

/// The background task: record the current snapshot, then every new one
/// (its past hours and its KPIs), every fresh answer of `chain` (tier
/// `primary` or `fallback`, each one, from
/// [`PredictionChain::fresh_answers`]), and run the upkeep every [`MAINTAIN_EVERY`],
/// until `stop` turns `true`. Errors are logged; the next event tries again
/// (a snapshot re-records its hours, so a failed write is made good).
pub fn record(
    history: History,
    state: AppState,
    chain: Option<PredictionChain>,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut snapshots = state.service().watch();
    let mut answers = chain.as_ref().map(PredictionChain::fresh_answers);
    async move {
        let mut upkeep = tokio::time::interval(MAINTAIN_EVERY);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        snapshots.borrow_and_update();
        record_snapshot(&history, &state).await;
        loop {
            tokio::select! {
                biased;
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    // Answers published before the stop are still recorded.
                    if let Some(answers) = answers.as_mut() {
                        while let Ok(result) = answers.try_recv() {
                            record_answer(&history, result).await;
                        }
                    }
                    return;
                }
                changed = snapshots.changed() => {
                    if changed.is_err() { return }
                    record_snapshot(&history, &state).await;
                }
                Some(received) = next_answer(answers.as_mut()) => match received {
                    Ok(result) => record_answer(&history, result).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the history store fell behind the chain; answers not recorded");
                    }
                    Err(broadcast::error::RecvError::Closed) => answers = None,
                },
                _ = upkeep.tick() => {
                    let now = state.now();
                    match history.run(move |store| store.maintain(now)).await {
                        Ok(done) => {
                            if let Some(b) = done.backup {
                                tracing::debug!(bytes = b.bytes, pruned = done.predictions_pruned, "history store backed up");
                                history.last_backup.send_replace(Some(b.taken_at));
                            }
                            history.bump();
                        }
                        Err(e) => tracing::error!(error = %e, "the history store's upkeep failed"),
                    }
                }
            }
        }
    }
}

/// Records every step of one fresh answer of the chain.
async fn record_answer(history: &History, result: Arc<spe_core::ChainResult>) {
    let recorded = history
        .run(move |store| store.record_predictions(&result.predictions))
        .await;
    match recorded {
        Ok(_) => history.bump(),
        Err(e) => tracing::error!(error = %e, "cannot record the predictions in the history store"),
    }
}

/// The chain's next fresh answer; never, without a chain.
async fn next_answer(
    answers: Option<&mut broadcast::Receiver<Arc<spe_core::ChainResult>>>,
) -> Option<Result<Arc<spe_core::ChainResult>, broadcast::error::RecvError>> {
    match answers {
        Some(r) => Some(r.recv().await),
        None => std::future::pending().await,
    }
}

/// Records the current snapshot's past hours and its KPIs.
async fn record_snapshot(history: &History, state: &AppState) {
    let snapshot = state.service().snapshot();
    let now = state.now();
    let kpis = state.kpis(&snapshot, now);
    let until = hour_start(now);
    let recorded = history
        .run(move |store| {
            let weather = store.record_weather(&snapshot.weather, until)?;
            let energy = store.record_energy(&snapshot.energy, until)?;
            let kpis = store.record_kpis(&kpis)?;
            Ok(weather + energy + kpis)
        })
        .await;
    match recorded {
        Ok(rows) => {
            tracing::debug!(rows, "snapshot recorded in the history store");
            history.bump();
        }
        Err(e) => tracing::error!(error = %e, "cannot record the snapshot in the history store"),
    }
}

fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// The query of `GET /api/history`: exactly one of `series`, `kpi` and
/// `predictions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    // The field comments are the OpenAPI document's descriptions: plain
    // Markdown, no rustdoc links.
    /// A recorded series: `temperature_2m`, `shortwave_radiation`,
    /// `cloud_cover`, `wind_speed_10m`, `demand_mw` or a supply column
    /// (`solar_mw`, `wind_mw`, `other_mw`, `imports_mw`); another name is a
    /// 400.
    #[param(value_type = Option<crate::openapi::SeriesName>)]
    pub series: Option<String>,
    /// A KPI's name (`coverage_ratio`, `forecast_error_pct`, … as listed);
    /// another name is a 400.
    #[param(value_type = Option<crate::openapi::KpiName>)]
    pub kpi: Option<String>,
    /// The demand forecasts recorded for each hour of the range:
    /// `day_ahead`, the latest made at least 24 hours before the hour (what
    /// the forecast error KPI judges), or `latest`, the latest made before
    /// the hour began (a forecast made during an hour is not one of it).
    #[param(value_type = Option<crate::openapi::PredictionsName>)]
    pub predictions: Option<String>,
    /// Start of the range (RFC 3339), included; default `to` minus 7 days.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// End of the range (RFC 3339), excluded; default the end of the current
    /// hour. At most 366 days after `from`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// `json` (default) or `csv` (a download named
    /// `history-<what>-<from>-<to>.csv`, e.g.
    /// `history-demand_mw-20260108T1100Z-20260115T1100Z.csv`: a header row, then `time`,
    /// `value`, `provenance`, `cached_age_s`, and `status`, `unit` for a KPI, or
    /// `made_at`, `model`, `tier`, `lower_95`, `upper_95` for predictions).
    #[param(value_type = Option<crate::openapi::HistoryFormat>)]
    pub format: Option<String>,
    /// With `format=csv`, the dialect: `en` (default: `,` between fields,
    /// `.` in numbers) or `fr` (`;` between fields, `,` in numbers, a UTF-8
    /// byte-order mark, for a spreadsheet in a French locale). Given
    /// without `format=csv`: a 400.
    #[param(value_type = Option<CsvLocale>)]
    pub locale: Option<CsvLocale>,
}

/// What `GET /api/history` is asked for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    /// The series or KPI.
    pub what: What,
    /// The answer's CSV dialect, if it is CSV (else JSON).
    pub csv: Option<CsvLocale>,
    /// Start, included.
    pub from: DateTime<Utc>,
    /// End, excluded.
    pub to: DateTime<Utc>,
}

/// A series, a KPI or recorded predictions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum What {
    /// An observed series.
    Series(String),
    /// A KPI.
    Kpi(String),
    /// The demand predictions for each hour made at least this long before
    /// it, the latest such; named `day_ahead` or `latest`.
    Predictions(&'static str, Duration),
}

/// How a range's ends are written in a download's file name
/// (`history-demand_mw-20260108T1000Z-20260115T1000Z.csv`).
const FILE_TIME: &str = "%Y%m%dT%H%MZ";

/// The interval level whose bounds `GET /api/history?predictions=…` gives.
pub const PREDICTION_LEVEL: f64 = 95.0;

impl HistoryQuery {
    /// The request, validated at `now`: one name among those recorded
    /// ([`series_names`], [`KpiSet::NAMES`](spe_core::KpiSet::NAMES)); times in RFC 3339; `from` before
    /// `to`, at most [`MAX_RANGE_DAYS`] apart.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<HistoryRequest, ApiError> {
        let what = match (&self.series, &self.kpi, &self.predictions) {
            (Some(s), None, None) => What::Series(known(s, "series", &series_names())?),
            (None, Some(k), None) => What::Kpi(known(k, "kpi", &spe_core::KpiSet::NAMES)?),
            (None, None, Some(p)) => match p.as_str() {
                "day_ahead" => What::Predictions("day_ahead", spe_core::DAY_AHEAD),
                "latest" => What::Predictions("latest", Duration::ZERO),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "predictions must be \"day_ahead\" or \"latest\", not {other:?}"
                    )));
                }
            },
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of `series`, `kpi` and `predictions`",
                ));
            }
        };
        let to = match &self.to {
            Some(raw) => time(raw, "to")?,
            None => hour_start(now) + TimeDelta::hours(1),
        };
        let from = match &self.from {
            Some(raw) => time(raw, "from")?,
            None => to - TimeDelta::days(DEFAULT_RANGE_DAYS),
        };
        if from >= to {
            return Err(ApiError::bad_request("`from` must be before `to`"));
        }
        if to - from > TimeDelta::days(MAX_RANGE_DAYS) {
            return Err(ApiError::bad_request(format!(
                "the range is at most {MAX_RANGE_DAYS} days: ask in several parts"
            )));
        }
        let csv = match self.format.as_deref() {
            None | Some("json") => {
                if self.locale.is_some() {
                    return Err(ApiError::bad_request(
                        "`locale` chooses a CSV dialect: give it with format=csv",
                    ));
                }
                None
            }
            Some("csv") => Some(self.locale.unwrap_or_default()),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "format must be \"json\" or \"csv\", not {other:?}"
                )));
            }
        };
        Ok(HistoryRequest {
            what,
            csv,
            from,
            to,
        })
    }
}

/// The names of the series the history store records: the weather
/// variables, `demand_mw` and the supply columns.
pub fn series_names() -> Vec<&'static str> {
    spe_core::WeatherVariable::ALL
        .iter()
        .map(spe_core::WeatherVariable::name)
        .chain(["demand_mw"])
        .chain(spe_core::SupplySource::ALL.iter().map(|s| s.column()))
        .collect()
}

/// The unit of a recorded series ([`series_names`]): a weather variable's,
/// else `MW` (demand and supply).
fn series_unit(series: &str) -> &'static str {
    spe_core::WeatherVariable::ALL
        .iter()
        .find(|v| v.name() == series)
        .map_or("MW", spe_core::WeatherVariable::unit)
}

/// `raw` if it is one of `names`, else a 400 that lists them (a name
/// nothing is recorded under is a typo, not an empty history).
fn known(raw: &str, param: &str, names: &[&str]) -> Result<String, ApiError> {
    if names.contains(&raw) {
        return Ok(raw.to_owned());
    }
    // Echoed only when short: the message stays small.
    let what = if raw.chars().count() <= 64 {
        format!("unknown {param} {raw:?}")
    } else {
        format!("unknown {param}")
    };
    Err(ApiError::bad_request(format!(
        "{what}: `{param}` must be one of {}",
        names.join(", ")
    )))
}

fn time(raw: &str, param: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::bad_request(format!("`{param}` is not an RFC 3339 time ({e}): {raw:?}"))
        })
}

/// The body of `GET /api/history`: parallel arrays, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryBody {
    /// The series asked for (absent for a KPI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// The KPI asked for (absent for a series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kpi: Option<String>,
    /// The predictions asked for: `day_ahead` or `latest` (absent
    /// otherwise). `value` is then the predicted mean and `provenance` that
    /// of the history they were made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictions: Option<&'static str>,
    /// Start of the range, included (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub from: DateTime<Utc>,
    /// End of the range, excluded.
    #[schema(value_type = String, format = DateTime)]
    pub to: DateTime<Utc>,
    /// The hours with a recorded value.
    #[schema(value_type = Vec<String>)]
    pub time: Vec<DateTime<Utc>>,
    /// The values (`null` for a KPI that was unknown).
    pub value: Vec<Option<f64>>,
    /// Where each value came from: `live`, `cached`, `synthetic`,
    /// `fallback`.
    pub provenance: Vec<&'static str>,
    /// For a `cached` provenance, how old the cached data was when it was
    /// handed out, in seconds (`null` for the others).
    pub cached_age_s: Vec<Option<u64>>,
    /// A KPI's status each hour: `ok`, `warning`, `critical`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<&'static str>>,
    /// The values' unit: a series' (`°C`, `W/m²`, `%`, `m/s`, `MW`), a
    /// KPI's (absent when no value of it is in the range), `MW` for
    /// predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Predictions: when each was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub made_at: Option<Vec<DateTime<Utc>>>,
    /// Predictions: the model that made each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Vec<String>>,
    /// Predictions: the tier that answered (`primary`, `fallback`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Vec<&'static str>>,
    /// Predictions: the lower bound of the 95 % interval (`null` if none
    /// was recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_95: Option<Vec<Option<f64>>>,
    /// Predictions: the upper bound of the 95 % interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper_95: Option<Vec<Option<f64>>>,
}

impl HistoryBody {
    /// Appends a row's provenance: its name and its cached age.
    fn push_provenance(&mut self, p: spe_core::Provenance) {
        self.provenance.push(p.name());
        self.cached_age_s.push(p.cached_age().map(|a| a.as_secs()));
    }

    /// The rows as CSV: `time,value,provenance,cached_age_s` (and `status,unit` for a
    /// KPI, `made_at,model,tier,lower_95,upper_95` for predictions); an
    /// unknown value is an empty field. In the dialect `locale`.
    pub fn to_csv(&self, locale: CsvLocale) -> Result<Vec<u8>, csv::Error> {
        let mut out = locale.writer(self.time.len() * 64);
        let kpi = self.status.is_some();
        let predictions = self.made_at.is_some();
        let mut header = vec!["time", "value", "provenance", "cached_age_s"];
        if kpi {
            header.extend(["status", "unit"]);
        }
        if predictions {
            header.extend(["made_at", "model", "tier", "lower_95", "upper_95"]);
        }
        let number = |v: Option<&Option<f64>>| locale.number(v.copied().flatten());
        out.write_record(&header)?;
        for (i, t) in self.time.iter().enumerate() {
            let mut row = vec![
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                number(self.value.get(i)),
                self.provenance
                    .get(i)
                    .copied()
                    .unwrap_or_default()
                    .to_owned(),
                self.cached_age_s
                    .get(i)
                    .copied()
                    .flatten()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            ];
            if let Some(status) = &self.status {
                row.push(status.get(i).copied().unwrap_or_default().to_owned());
                row.push(self.unit.clone().unwrap_or_default());
            }
            if predictions {
                row.push(
                    self.made_at
                        .as_ref()
                        .and_then(|m| m.get(i))
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                );
                // The model is named by the prediction command: text a
                // spreadsheet must not take for a formula.
                row.push(
                    self.model
                        .as_ref()
                        .and_then(|m| m.get(i))
                        .map(|m| crate::csv_dialect::text_cell(m).into_owned())
                        .unwrap_or_default(),
                );
                row.push(
                    self.tier
                        .as_ref()
                        .and_then(|m| m.get(i))
                        .copied()
                        .unwrap_or_default()
                        .to_owned(),
                );
                row.push(number(self.lower_95.as_ref().and_then(|b| b.get(i))));
                row.push(number(self.upper_95.as_ref().and_then(|b| b.get(i))));
            }
            out.write_record(&row)?;
        }
        out.into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))
    }
}

/// `GET /api/history?series=…|kpi=…|predictions=…[&from=…][&to=…][&format=csv]`:
/// what the history store recorded, hour by hour, as JSON or CSV. `503`
/// without a store.
#[utoipa::path(
    get,
    path = "/api/history",
    tag = "history",
    params(HistoryQuery),
    responses(
        (status = 200, description = "The recorded values or predictions, oldest first (with `format=csv`, the same as CSV)", content(
            (HistoryBody = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An unknown series or KPI (the message lists the valid names), a bad time or range, or an unknown parameter", body = ErrorBody),
        (status = 503, description = "The history store is not available", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    let request = match query {
        Ok(Query(query)) => query.validate(state.now()),
        Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(history) = state.history().cloned() else {
        return ApiError::unavailable(
            "history_unavailable",
            "the history store could not be opened",
        )
        .into_response();
    };
    let HistoryRequest {
        what,
        csv,
        from,
        to,
    } = request;
    let read = history
        .run(move |store| {
            let mut body = HistoryBody {
                series: None,
                kpi: None,
                from,
                to,
                time: Vec::new(),
                value: Vec::new(),
                provenance: Vec::new(),
                cached_age_s: Vec::new(),
                status: None,
                unit: None,
                predictions: None,
                made_at: None,
                model: None,
                tier: None,
                lower_95: None,
                upper_95: None,
            };
            match what {
                What::Series(series) => {
                    for o in store.observations(&series, from, to)? {
                        body.time.push(o.time);
                        body.value.push(Some(o.value));
                        body.push_provenance(o.provenance);
                    }
                    body.unit = Some(series_unit(&series).to_owned());
                    body.series = Some(series);
                }
                What::Kpi(kpi) => {
                    let rows = store.kpis(&kpi, from, to)?;
                    body.unit = rows.last().map(|r| r.unit.clone());
                    let mut status = Vec::with_capacity(rows.len());
                    for r in rows {
                        body.time.push(r.hour);
                        body.value.push(r.value);
                        body.push_provenance(r.provenance);
                        status.push(r.status.name());
                    }
                    body.status = Some(status);
                    body.kpi = Some(kpi);
                }
                What::Predictions(name, lead) => {
                    let rows = store.predictions_for(from, to, lead)?;
                    body.unit = Some("MW".to_owned());
                    let n = rows.len();
                    let (mut made_at, mut model, mut tier) = (
                        Vec::with_capacity(n),
                        Vec::with_capacity(n),
                        Vec::with_capacity(n),
                    );
                    let (mut lower, mut upper) = (Vec::with_capacity(n), Vec::with_capacity(n));
                    for r in rows {
                        body.time.push(r.target);
                        body.value.push(Some(r.mean));
                        body.push_provenance(r.inputs);
                        made_at.push(r.made_at);
                        tier.push(r.tier.name());
                        let bounds = r.bounds.iter().find(|b| b.0 == PREDICTION_LEVEL);
                        lower.push(bounds.map(|b| b.1));
                        upper.push(bounds.map(|b| b.2));
                        model.push(r.model);
                    }
                    body.predictions = Some(name);
                    body.made_at = Some(made_at);
                    body.model = Some(model);
                    body.tier = Some(tier);
                    body.lower_95 = Some(lower);
                    body.upper_95 = Some(upper);
                }
            }
            Ok(body)
        })
        .await;
    match read {
        Ok(body) if csv.is_some() => match body.to_csv(csv.unwrap_or_default()) {
            Ok(text) => {
                let predictions = body.predictions.map(|p| format!("predictions-{p}"));
                let name = body
                    .series
                    .as_deref()
                    .or(body.kpi.as_deref())
                    .or(predictions.as_deref())
                    .unwrap_or("history");
                (
                    [
                        (
                            axum::http::header::CONTENT_TYPE,
                            "text/csv; charset=utf-8".to_owned(),
                        ),
                        (
                            axum::http::header::CONTENT_DISPOSITION,
                            // The range in the name: two downloads of
                            // different ranges do not overwrite each other.
                            format!(
                                "attachment; filename=\"history-{name}-{}-{}.csv\"",
                                body.from.format(FILE_TIME),
                                body.to.format(FILE_TIME)
                            ),
                        ),
                    ],
                    text,
                )
                    .into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, "writing the history as CSV failed");
                ApiError::internal("the history could not be written as CSV").into_response()
            }
        },
        Ok(body) => Json(body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading the history store failed");
            ApiError::unavailable(
                "history_unavailable",
                "the history store could not be read; try again",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Behaviour, get_json, refreshed, rig_with, rig_with_state, t0};
    use axum::http::StatusCode;
    use spe_core::{ModelPredictor, Observation, PredictionRequest, Provenance, SeasonalNaive};

    /// Waits (on the history's revision counter, not on time) until `ready`
    /// holds of the store.
    async fn until(history: &History, ready: impl Fn(&HistoryStore) -> bool) {
        let mut revisions = history.watch();
        while !ready(history.store()) {
            revisions.changed().await.expect("the history lives");
        }
    }

    #[tokio::test]
    async fn the_task_records_snapshots_kpis_and_fresh_predictions_until_stopped() {
        let rig = refreshed(Behaviour::Live).await;
        let history = History::in_memory();
        let clock = spe_core::ManualClock::new();
        let chain = PredictionChain::builder()
            .primary(Arc::new(ModelPredictor::new(Arc::new(
                SeasonalNaive::default(),
            ))))
            .clock(clock.clone(), t0())
            .build();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(record(
            history.clone(),
            rig.state.clone(),
            Some(chain.clone()),
            stop,
        ));

        // The snapshot's past hours, live, and its KPIs.
        let now = rig.state.now();
        until(&history, |s| {
            !s.observations("temperature_2m", now - TimeDelta::days(3), now)
                .unwrap()
                .is_empty()
        })
        .await;
        let temps = history
            .store()
            .observations(
                "temperature_2m",
                now - TimeDelta::days(30),
                now + TimeDelta::days(30),
            )
            .unwrap();
        assert!(
            temps.iter().all(|o| o.time < hour_start(now)),
            "only past hours"
        );
        assert!(temps.iter().all(|o| o.provenance == Provenance::Live));
        let snapshot = rig.service.snapshot();
        let i = snapshot
            .weather
            .axis()
            .index_of(temps[0].time)
            .expect("in the frame");
        assert_eq!(Some(temps[0].value), snapshot.weather.temperature_2m()[i]);
        assert!(
            !history
                .store()
                .observations("demand_mw", now - TimeDelta::days(3), now)
                .unwrap()
                .is_empty()
        );
        let kpis = history
            .store()
            .kpis(
                "demand_mw",
                hour_start(now),
                hour_start(now) + TimeDelta::hours(1),
            )
            .unwrap();
        assert_eq!(kpis.len(), 1);

        // A fresh answer of the chain is recorded, every step.
        let series: Vec<f64> = (0..24 * 14).map(|t| 500.0 + f64::from(t % 24)).collect();
        let request = PredictionRequest::builder(chain.now(), series)
            .horizon(24)
            .build()
            .expect("valid");
        let answer = chain.generate(request).await.expect("predictions");
        let made = answer.predictions.made_at;
        let first = answer.predictions.start;
        until(&history, |s| {
            s.prediction_for(first, std::time::Duration::ZERO)
                .unwrap()
                .is_some()
        })
        .await;
        let step = history
            .store()
            .prediction_for(first, std::time::Duration::ZERO)
            .unwrap()
            .expect("recorded");
        assert_eq!(step.made_at.timestamp(), made.timestamp());
        assert_eq!(step.mean, answer.predictions.forecast.mean()[0]);
        assert_eq!(history.store().stats().unwrap().predictions, 24);

        // Two answers in a row, before the task runs again: both recorded
        // (a reader of the latest answer only would see the second).
        let mut made = Vec::new();
        for _ in 0..2 {
            clock.advance(std::time::Duration::from_secs(3600));
            let series: Vec<f64> = (0..24 * 14).map(|t| 600.0 + f64::from(t % 24)).collect();
            let request = PredictionRequest::builder(chain.now(), series)
                .horizon(24)
                .build()
                .expect("valid");
            made.push(
                chain
                    .generate(request)
                    .await
                    .expect("predictions")
                    .predictions
                    .clone(),
            );
        }
        until(&history, |s| s.stats().unwrap().predictions == 72).await;
        for p in &made {
            let step = history
                .store()
                .prediction_for(p.start, std::time::Duration::ZERO)
                .unwrap()
                .expect("recorded");
            assert!(step.made_at.timestamp() <= p.made_at.timestamp());
        }
        let second_last_step = made[1].start + TimeDelta::hours(23);
        let step = history
            .store()
            .prediction_for(second_last_step, std::time::Duration::ZERO)
            .unwrap()
            .expect("recorded");
        assert_eq!(step.made_at.timestamp(), made[1].made_at.timestamp());

        stop_tx.send(true).expect("task alive");
        task.await.expect("the task ends");
    }

    #[tokio::test]
    async fn get_history_answers_a_series_or_a_kpi_as_parallel_arrays() {
        let history = History::in_memory();
        let h = hour_start(t0());
        history
            .store()
            .record_observations(&[
                Observation::new(
                    "demand_mw",
                    h - TimeDelta::hours(2),
                    910.0,
                    Provenance::Live,
                ),
                Observation::new(
                    "demand_mw",
                    h - TimeDelta::hours(1),
                    920.5,
                    Provenance::cached(std::time::Duration::from_secs(1800)),
                ),
                Observation::new("demand_mw", h - TimeDelta::days(10), 1.0, Provenance::Live),
            ])
            .unwrap();
        let rig = rig_with_state(Behaviour::Live, true, |s| s.with_history(history.clone()));
        let kpis = rig.state.kpis(&rig.service.snapshot(), rig.state.now());
        history.store().record_kpis(&kpis).unwrap();

        // Default range: the 7 days to the end of the current hour.
        let (status, _, body) = get_json(&rig.app, "/api/history?series=demand_mw").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["series"], "demand_mw");
        assert_eq!(body["value"], serde_json::json!([910.0, 920.5]));
        assert_eq!(body["provenance"], serde_json::json!(["live", "cached"]));
        assert_eq!(body["cached_age_s"], serde_json::json!([null, 1800]));
        assert_eq!(body["time"][0], "2026-01-15T08:00:00Z");
        assert_eq!(body["to"], "2026-01-15T11:00:00Z");
        assert!(body.get("status").is_none());

        let from = (h - TimeDelta::days(11)).to_rfc3339();
        let to = (h - TimeDelta::days(9)).to_rfc3339();
        let uri = format!(
            "/api/history?series=demand_mw&from={}&to={}",
            enc(&from),
            enc(&to)
        );
        let (status, _, body) = get_json(&rig.app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["value"], serde_json::json!([1.0]));

        let (status, _, body) = get_json(&rig.app, "/api/history?kpi=demand_mw").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["kpi"], "demand_mw");
        assert_eq!(body["unit"], "MW");
        assert_eq!(body["status"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["value"][0].as_f64(), kpis.demand_mw.value);

        // The dashboard's chart of the recorded week draws both hours.
        let (status, _, svg) = crate::test_support::call(
            &rig.app,
            axum::http::Method::GET,
            "/api/charts/history.svg?lang=en",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let svg = String::from_utf8(svg).expect("UTF-8");
        assert!(svg.contains("Measured demand") && svg.contains("Estimated demand"));
        assert!(!svg.contains("Nothing recorded") && !svg.contains("no history store"));

        // The same, as a CSV download.
        let (status, headers, csv) = crate::test_support::call(
            &rig.app,
            axum::http::Method::GET,
            "/api/history?series=demand_mw&format=csv",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
        let disposition = headers["content-disposition"].to_str().unwrap_or_default();
        assert!(
            disposition.contains("history-demand_mw-20260108T1100Z-20260115T1100Z.csv"),
            "the range in the name: {disposition}"
        );
        assert_eq!(
            String::from_utf8(csv).expect("UTF-8"),
            "time,value,provenance,cached_age_s\n2026-01-15T08:00:00Z,910,live,\n2026-01-15T09:00:00Z,920.5,cached,1800\n"
        );
        // In the French dialect.
        let (status, _, fr) = crate::test_support::call(
            &rig.app,
            axum::http::Method::GET,
            "/api/history?series=demand_mw&format=csv&locale=fr",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            String::from_utf8(fr).expect("UTF-8"),
            "\u{feff}time;value;provenance;cached_age_s\n2026-01-15T08:00:00Z;910;live;\n2026-01-15T09:00:00Z;920,5;cached;1800\n"
        );
        // A dialect for JSON is a mistake, said so.
        let (status, _, body) = get_json(&rig.app, "/api/history?series=demand_mw&locale=fr").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("format=csv")),
            "{body}"
        );
        let (_, _, csv) = crate::test_support::call(
            &rig.app,
            axum::http::Method::GET,
            "/api/history?kpi=demand_mw&format=csv",
        )
        .await;
        let csv = String::from_utf8(csv).expect("UTF-8");
        assert!(
            csv.starts_with("time,value,provenance,cached_age_s,status,unit\n"),
            "{csv}"
        );
        assert!(csv.trim_end().ends_with(",MW"), "{csv}");

        // The demand forecasts of each hour: made 30 h before this hour,
        // 48 hourly steps from the next hour, with 80 and 95 % bounds.
        let made = h - TimeDelta::hours(30);
        let mean: Vec<f64> = (0..48).map(|i| 1000.0 + f64::from(i)).collect();
        let band = |w: f64| spe_core::PredictionInterval {
            level: if w > 50.0 { 95.0 } else { 80.0 },
            lower: mean.iter().map(|m| m - w).collect(),
            upper: mean.iter().map(|m| m + w).collect(),
        };
        history
            .store()
            .record_predictions(&spe_core::Predictions {
                start: made + TimeDelta::hours(1),
                step_s: 3600,
                forecast: spe_core::Forecast::new(
                    "mstl",
                    mean.clone(),
                    vec![band(40.0), band(90.0)],
                )
                .unwrap(),
                made_at: made,
                tier: spe_core::Tier::Fallback,
                intervals_from: None,
                inputs: Provenance::cached(std::time::Duration::from_secs(600)),
            })
            .unwrap();
        let (status, _, body) = get_json(&rig.app, "/api/history?predictions=day_ahead").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["predictions"], "day_ahead");
        // Day-ahead: the hours from made + 24 h to the end of the range
        // (this hour's end): h − 6 h to h, 7 of them, steps 23 to 29.
        let times = body["time"].as_array().unwrap();
        assert_eq!(times.len(), 7, "{body}");
        assert_eq!(times[0], "2026-01-15T04:00:00Z");
        assert_eq!(body["value"][0], 1023.0);
        assert_eq!(body["lower_95"][0], 1023.0 - 90.0);
        assert_eq!(body["upper_95"][6], 1029.0 + 90.0);
        assert_eq!(body["provenance"][0], "cached");
        assert_eq!(body["cached_age_s"][0], 600);
        assert_eq!(body["tier"][0], "fallback");
        assert_eq!(body["model"][0], "mstl");
        assert_eq!(body["made_at"][0], "2026-01-14T04:00:00Z");
        // Latest: every recorded hour in the range, from made + 1 h.
        let (_, _, body) = get_json(&rig.app, "/api/history?predictions=latest").await;
        assert_eq!(body["time"].as_array().map(Vec::len), Some(30));
        // As CSV.
        let (status, headers, csv) = crate::test_support::call(
            &rig.app,
            axum::http::Method::GET,
            "/api/history?predictions=day_ahead&format=csv",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap_or_default()
                .contains("history-predictions-day_ahead-")
        );
        let csv = String::from_utf8(csv).expect("UTF-8");
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("time,value,provenance,cached_age_s,made_at,model,tier,lower_95,upper_95")
        );
        assert_eq!(
            lines.next(),
            Some(
                "2026-01-15T04:00:00Z,1023,cached,600,2026-01-14T04:00:00Z,mstl,fallback,933,1113"
            )
        );
        assert_eq!(lines.count(), 6);

        // A model named by a prediction command like a spreadsheet formula:
        // in the CSV, text, not a formula; in JSON, as named.
        let later = made + TimeDelta::hours(1);
        history
            .store()
            .record_predictions(&spe_core::Predictions {
                start: later + TimeDelta::hours(1),
                step_s: 3600,
                forecast: spe_core::Forecast::new("=HYPERLINK(\"http://x\",\"c\")", mean, vec![])
                    .unwrap(),
                made_at: later,
                tier: spe_core::Tier::Primary,
                intervals_from: None,
                inputs: Provenance::Live,
            })
            .unwrap();
        let (_, _, csv) = crate::test_support::call(
            &rig.app,
            axum::http::Method::GET,
            "/api/history?predictions=day_ahead&format=csv",
        )
        .await;
        let csv = String::from_utf8(csv).expect("UTF-8");
        let last = csv.lines().last().expect("a row");
        assert!(
            last.contains(r#","'=HYPERLINK(""http://x"",""c"")",primary,"#),
            "{last}"
        );
        let (_, _, body) = get_json(&rig.app, "/api/history?predictions=day_ahead").await;
        assert_eq!(
            body["model"].as_array().and_then(|m| m.last()),
            Some(&serde_json::json!("=HYPERLINK(\"http://x\",\"c\")"))
        );

        // A known series nothing was recorded of yet: an empty answer.
        let (status, _, body) = get_json(&rig.app, "/api/history?series=wind_mw").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["series"], "wind_mw");
        assert_eq!(body["time"], serde_json::json!([]));
        assert_eq!(body["unit"], "MW");
        // Each series with its unit; predictions in MW.
        for (series, unit) in [
            ("temperature_2m", "°C"),
            ("shortwave_radiation", "W/m²"),
            ("cloud_cover", "%"),
            ("wind_speed_10m", "m/s"),
            ("demand_mw", "MW"),
        ] {
            let (_, _, body) = get_json(&rig.app, &format!("/api/history?series={series}")).await;
            assert_eq!(body["unit"], unit, "{series}");
        }
        let (_, _, body) = get_json(&rig.app, "/api/history?predictions=latest").await;
        assert_eq!(body["unit"], "MW");
    }

    fn enc(s: &str) -> String {
        s.replace('+', "%2B").replace(':', "%3A")
    }

    #[tokio::test]
    async fn the_names_checked_are_those_recorded_and_documented() {
        let rig = rig_with(Behaviour::Refused, false);
        let kpis = rig.state.kpis(&rig.service.snapshot(), rig.state.now());
        let recorded: Vec<&str> = kpis.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(recorded, spe_core::KpiSet::NAMES);
        let doc: serde_json::Value =
            serde_json::from_str(crate::openapi::document()).expect("JSON");
        let params = doc["paths"]["/api/history"]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        let documented = |param: &str| -> Vec<String> {
            let p = params
                .iter()
                .find(|p| p["name"] == param)
                .unwrap_or_else(|| panic!("{param} is documented"));
            let schema = p["schema"]["oneOf"]
                .as_array()
                .and_then(|o| o.iter().find(|s| s["$ref"].is_string()))
                .map_or(&p["schema"], |r| r);
            let name = schema["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next())
                .unwrap_or_else(|| panic!("{param}: {p}"));
            doc["components"]["schemas"][name]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{param}: {}", doc["components"]["schemas"][name]))
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(documented("kpi"), spe_core::KpiSet::NAMES);
        assert_eq!(documented("series"), series_names());
    }

    #[tokio::test]
    async fn bad_history_queries_get_a_400_and_no_store_a_503() {
        let rig = rig_with_state(Behaviour::Live, true, |s| {
            s.with_history(History::in_memory())
        });
        // Not echoed back.
        let long = format!("/api/history?series={}", "a".repeat(100));
        for (uri, says) in [
            ("/api/history", "exactly one"),
            ("/api/history?series=demand_mw&kpi=demand_mw", "exactly one"),
            ("/api/history?series=Demand", "unknown series \"Demand\""),
            ("/api/history?series=", "unknown series \"\""),
            (
                "/api/history?series=nope",
                "unknown series \"nope\": `series` must be one of temperature_2m, \
                 shortwave_radiation, cloud_cover, wind_speed_10m, demand_mw, solar_mw, \
                 wind_mw, other_mw, imports_mw",
            ),
            ("/api/history?kpi=zzz", "unknown kpi \"zzz\""),
            ("/api/history?kpi=zzz", "coverage_ratio"),
            // A series name is not a KPI's, nor the other way round.
            ("/api/history?kpi=temperature_2m", "unknown kpi"),
            ("/api/history?series=coverage_ratio", "unknown series"),
            (&long, "unknown series: `series` must be one of"),
            ("/api/history?series=demand_mw&from=yesterday", "RFC 3339"),
            (
                "/api/history?series=demand_mw&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
                "before",
            ),
            (
                "/api/history?series=demand_mw&from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
                "366 days",
            ),
            ("/api/history?series=demand_mw&limit=3", "limit"),
            ("/api/history?series=demand_mw&format=xml", "format"),
            ("/api/history?predictions=tomorrow", "day_ahead"),
            (
                "/api/history?predictions=latest&kpi=demand_mw",
                "exactly one",
            ),
        ] {
            let (status, _, body) = get_json(&rig.app, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{uri}: {message}");
        }
        let rig = rig_with(Behaviour::Live, true);
        let (status, _, body) = get_json(&rig.app, "/api/history?series=demand_mw").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "history_unavailable");
    }
    #[tokio::test]
    async fn damage_found_while_running_is_repaired_or_its_failed_repair_journaled() {
        let dir = crate::test_support::TempDir::new();
        let journal = Journal::open(dir.path().join("incidents.journal")).expect("journal");
        let history =
            History::open(&dir.path().join(HISTORY_DIR), Some(&journal), t0()).expect("opens");
        let damage = || StoreError::Corrupt {
            path: "history.sqlite".into(),
            detail: "database disk image is malformed".into(),
        };
        // A sound file after all: nothing to repair, nothing journaled.
        let e = history
            .run(move |_| Err::<(), _>(damage()))
            .await
            .unwrap_err();
        assert!(e.is_corruption());
        assert!(journal.incidents(..).is_empty());
        // The file replaced by something no database can open: the repair
        // fails, and says so in the journal.
        let db = dir.path().join(HISTORY_DIR).join(spe_core::HISTORY_FILE);
        for side in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{side}", db.display()));
        }
        std::fs::create_dir(&db).expect("a directory in the way");
        let e = history
            .run(move |_| Err::<(), _>(damage()))
            .await
            .unwrap_err();
        assert!(e.is_corruption());
        let incidents = journal.incidents(..);
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        assert_eq!(incidents[0].kind, IncidentKind::StoreCorrupt);
        assert!(
            incidents[0].details.contains("the repair failed"),
            "{}",
            incidents[0].details
        );
        assert!(
            !incidents[0]
                .details
                .contains(&dir.path().display().to_string()),
            "{}",
            incidents[0].details
        );
    }
    #[tokio::test]
    async fn an_answer_published_just_before_the_stop_is_recorded() {
        let rig = refreshed(Behaviour::Live).await;
        let history = History::in_memory();
        let chain = PredictionChain::builder()
            .primary(Arc::new(ModelPredictor::new(Arc::new(
                SeasonalNaive::default(),
            ))))
            .build();
        let (stop_tx, stop) = watch::channel(false);
        // Subscribed here; not polled before the answer and the stop.
        let task = record(
            history.clone(),
            rig.state.clone(),
            Some(chain.clone()),
            stop,
        );
        let series: Vec<f64> = (0..24 * 14).map(|t| 500.0 + f64::from(t % 24)).collect();
        let request = PredictionRequest::builder(chain.now(), series)
            .horizon(24)
            .build()
            .expect("valid");
        chain.generate(request).await.expect("predictions");
        stop_tx.send(true).expect("receiver alive");
        task.await;
        assert_eq!(history.store().stats().unwrap().predictions, 24);
    }
}
