//! Energy KPIs for the dashboard, each with a status level.
//!
//! [`compute_kpis`] turns an [`EnergyFrame`] into a [`KpiSet`]; [`KpiConfig`]
//! holds the thresholds of the status levels.

use std::fmt;

use chrono::{DateTime, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::frame::{EnergyFrame, SupplySource};
use crate::provenance::Provenance;

/// How worrying a KPI's value is. Ordered: `Ok < Warning < Critical`, so the
/// worst of several is their maximum.
///
/// Serialized in snake case: `"ok"`, `"warning"`, `"critical"`.
///
/// ```
/// use spe_core::KpiStatus;
///
/// assert!(KpiStatus::Ok < KpiStatus::Warning && KpiStatus::Warning < KpiStatus::Critical);
/// let worst = KpiStatus::worst([KpiStatus::Ok, KpiStatus::Critical, KpiStatus::Warning]);
/// assert_eq!(worst, KpiStatus::Critical);
/// assert_eq!(serde_json::to_string(&KpiStatus::Warning).unwrap(), "\"warning\"");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum KpiStatus {
    /// Within its normal range.
    #[default]
    Ok,
    /// Needs a look: past the warning threshold, or unknown.
    Warning,
    /// Needs action: past the critical threshold.
    Critical,
}

impl KpiStatus {
    /// The bare name: `ok`, `warning` or `critical`.
    pub fn name(&self) -> &'static str {
        match self {
            KpiStatus::Ok => "ok",
            KpiStatus::Warning => "warning",
            KpiStatus::Critical => "critical",
        }
    }

    /// The worst of `statuses`; `Ok` if there is none.
    pub fn worst(statuses: impl IntoIterator<Item = KpiStatus>) -> KpiStatus {
        statuses.into_iter().max().unwrap_or_default()
    }
}

impl fmt::Display for KpiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way a KPI gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher values are worse (data age, load on capacity).
    HigherIsWorse,
    /// Lower values are worse (coverage, self-sufficiency).
    LowerIsWorse,
}

/// Warning and critical levels of a KPI.
///
/// The comparisons are strict: with [`Direction::LowerIsWorse`], a value
/// *below* `critical` is critical, else a value *below* `warning` is a
/// warning; with [`Direction::HigherIsWorse`], *above*. The critical level is
/// checked first. A NaN value is unknown, hence a warning.
///
/// ```
/// use spe_core::{KpiStatus, Threshold};
///
/// let coverage = Threshold::lower_is_worse(1.0, 0.95);
/// assert_eq!(coverage.status(1.02), KpiStatus::Ok);
/// assert_eq!(coverage.status(1.0), KpiStatus::Ok);
/// assert_eq!(coverage.status(0.97), KpiStatus::Warning);
/// assert_eq!(coverage.status(0.90), KpiStatus::Critical);
/// assert_eq!(coverage.status_of(None), KpiStatus::Warning);
///
/// let age = Threshold::higher_is_worse(900.0, 3600.0);
/// assert_eq!(age.status(4000.0), KpiStatus::Critical);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Past this value, the KPI is a warning.
    pub warning: f64,
    /// Past this value, the KPI is critical.
    pub critical: f64,
    /// Which way is worse.
    pub direction: Direction,
}

impl Threshold {
    /// Levels for a KPI where higher values are worse.
    pub const fn higher_is_worse(warning: f64, critical: f64) -> Self {
        Threshold {
            warning,
            critical,
            direction: Direction::HigherIsWorse,
        }
    }

    /// Levels for a KPI where lower values are worse.
    pub const fn lower_is_worse(warning: f64, critical: f64) -> Self {
        Threshold {
            warning,
            critical,
            direction: Direction::LowerIsWorse,
        }
    }

    /// The status of `value`.
    pub fn status(&self, value: f64) -> KpiStatus {
        if value.is_nan() {
            return KpiStatus::Warning;
        }
        let past = |level: f64| match self.direction {
            Direction::HigherIsWorse => value > level,
            Direction::LowerIsWorse => value < level,
        };
        if past(self.critical) {
            KpiStatus::Critical
        } else if past(self.warning) {
            KpiStatus::Warning
        } else {
            KpiStatus::Ok
        }
    }

    /// The status of a value that may be unknown: `None` is a warning.
    pub fn status_of(&self, value: Option<f64>) -> KpiStatus {
        value.map_or(KpiStatus::Warning, |v| self.status(v))
    }
}

/// Thresholds of the KPIs.
///
/// Every field has a default (below), so a configuration file only needs the
/// fields it changes; unknown fields are refused, so a typo is not silently
/// ignored.
///
/// | field | default | why |
/// |---|---|---|
/// | `coverage_ratio` | warning below 1.0, critical below 0.95 | below 1.0 supply does not meet demand; a 5 % shortfall is beyond what reserves and demand response usually absorb within the hour |
/// | `balance_fraction` | warning below 0, critical below −0.05 (of demand) | the same rule seen as the balance: any deficit is a warning, a deficit over 5 % of demand is critical |
/// | `renewable_share` | warning below 0.05, never critical | a sustainability indicator, not a security one: flag only exceptionally low wind and solar output (a calm, dark hour). At 0.10 a windless night would be amber on many European grids every week, and an amber seen daily is an amber ignored |
/// | `peak_capacity_fraction` | warning above 0.9, critical above 1.0 | peak demand above 90 % of the available capacity leaves less margin than the usual largest-unit reserve; above 100 % the peak cannot be met |
/// | `available_capacity_mw` | none | site-specific: without it the peak is reported with status `ok` |
/// | `self_sufficiency` | warning below 0.7, critical below 0.5 | how much of demand local production covers if the interconnections fail: below 70 % an import outage means shedding load; below 50 %, most of it |
/// | `data_freshness_s` | warning above 900 s, critical above 3600 s | 15 minutes is three missed refreshes at the default 300 s; one hour is the recovery point objective (RPO) |
///
/// ```
/// use spe_core::{KpiConfig, KpiStatus};
///
/// let config: KpiConfig = serde_json::from_str(
///     r#"{"available_capacity_mw": 1200.0,
///         "self_sufficiency": {"warning": 0.4, "critical": 0.2, "direction": "lower_is_worse"}}"#,
/// ).unwrap();
/// assert_eq!(config.available_capacity_mw, Some(1200.0));
/// assert_eq!(config.self_sufficiency.status(0.3), KpiStatus::Warning);
/// assert_eq!(config.coverage_ratio, KpiConfig::default().coverage_ratio);
/// assert!(serde_json::from_str::<KpiConfig>(r#"{"coverage":{}}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KpiConfig {
    /// Supply ÷ demand.
    pub coverage_ratio: Threshold,
    /// Balance (supply − demand) as a fraction of demand; the `balance_mw` KPI
    /// shows the balance in MW and takes its status from this fraction.
    pub balance_fraction: Threshold,
    /// (Solar + wind) ÷ supply.
    pub renewable_share: Threshold,
    /// Peak demand ÷ [`available_capacity_mw`](Self::available_capacity_mw).
    pub peak_capacity_fraction: Threshold,
    /// The capacity available to meet demand (local production and import
    /// capacity), MW. `None`: the peak is reported with status `ok`. A value
    /// that is not a positive number makes the peak's status a warning.
    pub available_capacity_mw: Option<f64>,
    /// (Supply − imports) ÷ demand: the share of demand met by local production.
    pub self_sufficiency: Threshold,
    /// Age of the data, seconds.
    pub data_freshness_s: Threshold,
    /// Mean absolute percentage error of the demand forecast over the last
    /// day, percent (see [`forecast_error_kpi`]). Default: warning above 5 %,
    /// critical above 10 % — a day-ahead demand forecast for a site usually
    /// stays within a few percent; 10 % means the plan built on it is wrong.
    pub forecast_error_pct: Threshold,
}

impl Default for KpiConfig {
    fn default() -> Self {
        KpiConfig {
            coverage_ratio: Threshold::lower_is_worse(1.0, 0.95),
            balance_fraction: Threshold::lower_is_worse(0.0, -0.05),
            // A share is never below 0: never critical.
            renewable_share: Threshold::lower_is_worse(0.05, 0.0),
            peak_capacity_fraction: Threshold::higher_is_worse(0.9, 1.0),
            available_capacity_mw: None,
            self_sufficiency: Threshold::lower_is_worse(0.7, 0.5),
            data_freshness_s: Threshold::higher_is_worse(900.0, 3600.0),
            forecast_error_pct: Threshold::higher_is_worse(5.0, 10.0),
        }
    }
}

/// One KPI: its value, unit, status and the hour it describes.
///
/// ```
/// use spe_core::{Kpi, KpiStatus};
///
/// let k = Kpi::new("coverage_ratio", Some(0.97), "ratio", KpiStatus::Warning, None);
/// assert!(k.is_known());
/// assert_eq!(
///     serde_json::to_string(&k).unwrap(),
///     r#"{"name":"coverage_ratio","value":0.97,"unit":"ratio","status":"warning","at":null}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpi {
    /// Stable machine name (`demand_mw`, `coverage_ratio`, …).
    pub name: String,
    /// The value; `None` when unknown (never NaN or infinite).
    pub value: Option<f64>,
    /// Unit: `MW`, `ratio` (a dimensionless ratio, 1.0 = 100 %) or `s`.
    pub unit: String,
    /// How worrying the value is.
    pub status: KpiStatus,
    /// The hour the value describes (start of the hour, UTC): the current
    /// hour or the one fallen back to, the hour of the peak, or the time the
    /// data was produced for `data_freshness_s`. `None` if no hour applies.
    pub at: Option<DateTime<Utc>>,
}

impl Kpi {
    /// A KPI; a non-finite `value` is stored as unknown (`None`).
    pub fn new(
        name: impl Into<String>,
        value: Option<f64>,
        unit: impl Into<String>,
        status: KpiStatus,
        at: Option<DateTime<Utc>>,
    ) -> Self {
        Kpi {
            name: name.into(),
            value: value.filter(|v| v.is_finite()),
            unit: unit.into(),
            status,
            at,
        }
    }

    /// Whether the value is known.
    pub fn is_known(&self) -> bool {
        self.value.is_some()
    }
}

/// Supply KPIs by source, MW.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplyKpis {
    /// Photovoltaic production (`solar_mw`).
    pub solar: Kpi,
    /// Wind production (`wind_mw`).
    pub wind: Kpi,
    /// Other local production (`other_mw`).
    pub other: Kpi,
    /// Imports (`imports_mw`).
    pub imports: Kpi,
}

impl SupplyKpis {
    /// The KPI of one source.
    pub fn get(&self, source: SupplySource) -> &Kpi {
        match source {
            SupplySource::Solar => &self.solar,
            SupplySource::Wind => &self.wind,
            SupplySource::Other => &self.other,
            SupplySource::Imports => &self.imports,
        }
    }

    /// The four KPIs, in [`SupplySource::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = &Kpi> {
        [&self.solar, &self.wind, &self.other, &self.imports].into_iter()
    }
}

/// All the KPIs of the dashboard at one instant, with the provenance of the
/// data they were computed from. Built by [`compute_kpis`].
///
/// Serialized with its fields plus `status`, the overall [`status`](Self::status).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{EnergyColumns, EnergyFrame, KpiConfig, KpiStatus, Provenance, TimeAxis, compute_kpis};
///
/// let start = Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).unwrap();
/// let cols = EnergyColumns {
///     demand_mw: vec![Some(800.0), Some(820.0)],
///     solar_mw: vec![Some(150.0), Some(180.0)],
///     wind_mw: vec![Some(50.0), Some(40.0)],
///     other_mw: vec![Some(500.0), Some(500.0)],
///     imports_mw: vec![Some(120.0), Some(100.0)],
/// };
/// let frame = EnergyFrame::new(TimeAxis::new(start, 2).unwrap(), cols, Provenance::Live, start).unwrap();
/// let now = start + chrono::Duration::minutes(75); // 11:15
/// let kpis = compute_kpis(&frame, now, &KpiConfig::default());
///
/// assert_eq!(kpis.demand_mw.value, Some(820.0)); // the 11:00 hour
/// assert_eq!(kpis.coverage_ratio.value, Some(1.0));
/// assert_eq!(kpis.peak_demand_mw.value, Some(820.0));
/// assert_eq!(kpis.data_freshness_s.value, Some(4500.0));
/// assert_eq!(kpis.data_freshness_s.status, KpiStatus::Critical); // over the one-hour RPO
/// assert_eq!(kpis.status(), KpiStatus::Critical);
///
/// let json = serde_json::to_value(&kpis).unwrap();
/// assert_eq!(json["status"], "critical");
/// assert_eq!(json["supply_by_source"]["solar"]["value"], 180.0);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct KpiSet {
    /// The instant the KPIs were computed for (`now`).
    pub computed_at: DateTime<Utc>,
    /// Where the underlying data comes from.
    pub provenance: Provenance,
    /// Demand of the current hour, MW.
    pub demand_mw: Kpi,
    /// Total supply of the current hour (imports included), MW.
    pub supply_mw: Kpi,
    /// Supply of the current hour by source, MW.
    pub supply_by_source: SupplyKpis,
    /// Supply − demand of the current hour, MW; status from the balance as a
    /// fraction of demand.
    pub balance_mw: Kpi,
    /// Supply ÷ demand of the current hour.
    pub coverage_ratio: Kpi,
    /// (Solar + wind) ÷ supply of the current hour.
    pub renewable_share: Kpi,
    /// Highest demand over the 24 hours ending at the hour containing `now`
    /// (that hour included), MW; `at` is its hour (the earliest if tied).
    pub peak_demand_mw: Kpi,
    /// (Supply − imports) ÷ demand of the current hour.
    pub self_sufficiency: Kpi,
    /// Age of the data at `now`, whole seconds; `at` is when it was produced.
    pub data_freshness_s: Kpi,
    /// Error of the day-ahead demand forecast over the last day, percent
    /// (MAPE); unknown (status `ok`) unless set with [`forecast_error_kpi`]
    /// (as [`compute_kpis_with_forecast`] does).
    pub forecast_error_pct: Kpi,
}

impl KpiSet {
    /// The names of the KPIs, in [`iter`](Self::iter) (dashboard) order: the
    /// `name` of each [`Kpi`] of a set, and the names the
    /// [`HistoryStore`](crate::HistoryStore) records them under.
    ///
    /// ```
    /// assert_eq!(spe_core::KpiSet::NAMES[0], "demand_mw");
    /// assert!(spe_core::KpiSet::NAMES.contains(&"forecast_error_pct"));
    /// ```
    pub const NAMES: [&'static str; 13] = [
        "demand_mw",
        "supply_mw",
        "solar_mw",
        "wind_mw",
        "other_mw",
        "imports_mw",
        "balance_mw",
        "coverage_ratio",
        "renewable_share",
        "peak_demand_mw",
        "self_sufficiency",
        DATA_FRESHNESS,
        FORECAST_ERROR,
    ];

    /// The worst status of all the KPIs.
    pub fn status(&self) -> KpiStatus {
        KpiStatus::worst(self.iter().map(|k| k.status))
    }

    /// Every KPI, in dashboard order: demand, supply, supply by source,
    /// balance, coverage, renewable share, peak, self-sufficiency, freshness,
    /// forecast error.
    pub fn iter(&self) -> impl Iterator<Item = &Kpi> {
        [&self.demand_mw, &self.supply_mw]
            .into_iter()
            .chain(self.supply_by_source.iter())
            .chain([
                &self.balance_mw,
                &self.coverage_ratio,
                &self.renewable_share,
                &self.peak_demand_mw,
                &self.self_sufficiency,
                &self.data_freshness_s,
                &self.forecast_error_pct,
            ])
    }

    /// The KPI named `name` (`coverage_ratio`, `solar_mw`, …).
    pub fn get(&self, name: &str) -> Option<&Kpi> {
        self.iter().find(|k| k.name == name)
    }
}

impl Serialize for KpiSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Repr<'a> {
            computed_at: &'a DateTime<Utc>,
            provenance: &'a Provenance,
            status: KpiStatus,
            demand_mw: &'a Kpi,
            supply_mw: &'a Kpi,
            supply_by_source: &'a SupplyKpis,
            balance_mw: &'a Kpi,
            coverage_ratio: &'a Kpi,
            renewable_share: &'a Kpi,
            peak_demand_mw: &'a Kpi,
            self_sufficiency: &'a Kpi,
            data_freshness_s: &'a Kpi,
            forecast_error_pct: &'a Kpi,
        }
        Repr {
            computed_at: &self.computed_at,
            provenance: &self.provenance,
            status: self.status(),
            demand_mw: &self.demand_mw,
            supply_mw: &self.supply_mw,
            supply_by_source: &self.supply_by_source,
            balance_mw: &self.balance_mw,
            coverage_ratio: &self.coverage_ratio,
            renewable_share: &self.renewable_share,
            peak_demand_mw: &self.peak_demand_mw,
            self_sufficiency: &self.self_sufficiency,
            data_freshness_s: &self.data_freshness_s,
            forecast_error_pct: &self.forecast_error_pct,
        }
        .serialize(serializer)
    }
}

const MW: &str = "MW";
const RATIO: &str = "ratio";

/// `Some(x)` if `x` is finite.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// `num ÷ den` when `den > 0` and the result is finite.
fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    let (num, den) = (num?, den?);
    if den > 0.0 { finite(num / den) } else { None }
}

/// Status of a value with no threshold: `ok` when known.
fn known(value: Option<f64>) -> KpiStatus {
    if value.is_some() {
        KpiStatus::Ok
    } else {
        KpiStatus::Warning
    }
}

/// The index of the hour of `axis_start`'s grid containing `now` (may be
/// negative or past the end).
fn hour_index(axis_start: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let d = now.signed_duration_since(axis_start);
    let mut k = d.num_seconds().div_euclid(3600);
    // `num_seconds` truncates towards zero: correct a fraction of a second
    // before a whole hour.
    if Duration::try_hours(k).is_some_and(|h| d < h) {
        k -= 1;
    }
    k
}

/// Compute the dashboard's KPIs from `frame` at `now`.
///
/// The KPIs:
///
/// | KPI | value | unit | status from |
/// |---|---|---|---|
/// | `demand_mw` | demand of the current hour | MW | known or not |
/// | `supply_mw` | total supply (all sources, imports included) | MW | known or not |
/// | `solar_mw`, `wind_mw`, `other_mw`, `imports_mw` | supply by [`SupplySource`] | MW | known or not |
/// | `balance_mw` | supply − demand | MW | [`KpiConfig::balance_fraction`] on balance ÷ demand |
/// | `coverage_ratio` | supply ÷ demand | ratio | [`KpiConfig::coverage_ratio`] |
/// | `renewable_share` | (solar + wind) ÷ supply | ratio | [`KpiConfig::renewable_share`] |
/// | `peak_demand_mw` | highest demand over the 24 h ending at the current hour, `at` its hour | MW | [`KpiConfig::peak_capacity_fraction`] on peak ÷ [`KpiConfig::available_capacity_mw`] |
/// | `self_sufficiency` | (supply − imports) ÷ demand | ratio | [`KpiConfig::self_sufficiency`] |
/// | `data_freshness_s` | age of the data ([`EnergyFrame::age`]) | s | [`KpiConfig::data_freshness_s`] |
/// | `forecast_error_pct` | unknown here: see [`compute_kpis_with_forecast`] | % | [`KpiConfig::forecast_error_pct`] |
///
/// # Unknown values
///
/// A KPI whose value cannot be known — missing data, a ratio over a zero
/// demand or supply, a sum too large to represent — has `value: None` and
/// status [`KpiStatus::Warning`]: the operator is told that something needs a
/// look, without the alarm of a `critical` that the data does not support
/// (the forecast error is the exception: see [`forecast_error_kpi`]).
/// A zero demand makes the balance's status a warning too (it is judged as a
/// fraction of demand), though its value in MW is known: a site drawing
/// nothing is more likely a metering fault than a real state. Values are never
/// NaN or infinite.
///
/// # The current hour
///
/// The "current" values are those of the hour containing `now`. If that hour
/// is not on the frame, or any of its demand or supply values is missing, they
/// fall back to the last hour before it with complete data (demand and all four
/// sources), so all the current KPIs describe one coherent hour; each KPI's
/// `at` says which. If no hour up to `now` is complete, the latest hour up to
/// `now` is used with whatever it holds.
///
/// # The peak and the freshness
///
/// Peak demand is taken over the 24 hours ending at the hour containing `now`
/// (that hour included), ignoring missing values, whether or not the current
/// values fell back to an earlier hour; `at` is the peak's hour, the earliest
/// if tied. Data freshness is [`EnergyFrame::age`] at `now`, in whole seconds.
///
/// Never panics; every value is finite or `None`. See [`KpiSet`] for an example.
pub fn compute_kpis(frame: &EnergyFrame, now: DateTime<Utc>, config: &KpiConfig) -> KpiSet {
    let axis = frame.axis();
    let cols = frame.columns();
    let n = axis.len();
    let now_index = hour_index(axis.start(), now);

    // The latest hour on the frame that is not after `now`'s hour.
    let latest = if now_index < 0 || n == 0 {
        None
    } else {
        Some(usize::try_from(now_index).map_or(n - 1, |i| i.min(n - 1)))
    };
    let complete = |i: usize| {
        cols.demand_mw[i].is_some()
            && SupplySource::ALL
                .iter()
                .all(|s| cols.supply(*s)[i].is_some())
    };
    let current = latest.and_then(|last| (0..=last).rev().find(|&i| complete(i)).or(Some(last)));
    let at = current.map(|i| axis.time(i));
    let value = |col: &[Option<f64>]| current.and_then(|i| col[i]);

    let demand = value(&cols.demand_mw);
    let [solar, wind, other, imports] = SupplySource::ALL.map(|s| value(cols.supply(s)));
    let sum = |parts: &[Option<f64>]| -> Option<f64> {
        parts
            .iter()
            .try_fold(0.0, |acc, p| Some(acc + (*p)?))
            .and_then(finite)
    };
    let supply = sum(&[solar, wind, other, imports]);
    let renewable = sum(&[solar, wind]);
    let local = sum(&[solar, wind, other]);
    let balance = supply.zip(demand).and_then(|(s, d)| finite(s - d));

    let coverage = ratio(supply, demand);
    let balance_fraction = ratio(balance, demand);
    let renewable_share = ratio(renewable, supply);
    let self_sufficiency = ratio(local, demand);

    // Peak over the 24 h ending at the hour containing `now`.
    let peak = if n == 0 {
        None
    } else {
        let last = now_index.min(n as i64 - 1);
        let first = now_index.saturating_sub(23).max(0);
        (first..=last)
            .filter_map(|i| usize::try_from(i).ok())
            .filter_map(|i| cols.demand_mw[i].map(|d| (i, d)))
            .fold(None, |best: Option<(usize, f64)>, (i, d)| match best {
                Some((_, b)) if b >= d => best,
                _ => Some((i, d)),
            })
    };
    let peak_value = peak.map(|(_, d)| d);
    let peak_status = match (peak_value, config.available_capacity_mw) {
        (None, _) => KpiStatus::Warning,
        (Some(_), None) => KpiStatus::Ok,
        (Some(p), Some(cap)) if cap.is_finite() && cap > 0.0 => {
            config.peak_capacity_fraction.status(p / cap)
        }
        (Some(_), Some(_)) => KpiStatus::Warning,
    };

    let mw = |name: &str, v: Option<f64>| Kpi::new(name, v, MW, known(v), at);
    let with = |name: &str, v: Option<f64>, unit: &str, t: &Threshold| {
        Kpi::new(name, v, unit, t.status_of(v), at)
    };
    KpiSet {
        computed_at: now,
        provenance: frame.provenance(),
        demand_mw: mw("demand_mw", demand),
        supply_mw: mw("supply_mw", supply),
        supply_by_source: SupplyKpis {
            solar: mw(SupplySource::Solar.column(), solar),
            wind: mw(SupplySource::Wind.column(), wind),
            other: mw(SupplySource::Other.column(), other),
            imports: mw(SupplySource::Imports.column(), imports),
        },
        balance_mw: Kpi::new(
            "balance_mw",
            balance,
            MW,
            config.balance_fraction.status_of(balance_fraction),
            at,
        ),
        coverage_ratio: with("coverage_ratio", coverage, RATIO, &config.coverage_ratio),
        renewable_share: with(
            "renewable_share",
            renewable_share,
            RATIO,
            &config.renewable_share,
        ),
        peak_demand_mw: Kpi::new(
            "peak_demand_mw",
            peak_value,
            MW,
            peak_status,
            peak.map(|(i, _)| axis.time(i)),
        ),
        self_sufficiency: with(
            "self_sufficiency",
            self_sufficiency,
            RATIO,
            &config.self_sufficiency,
        ),
        data_freshness_s: freshness_since(frame.produced_at(), now, config),
        forecast_error_pct: Kpi::new(FORECAST_ERROR, None, PERCENT, KpiStatus::Ok, None),
    }
}

const FORECAST_ERROR: &str = "forecast_error_pct";
const DATA_FRESHNESS: &str = "data_freshness_s";

/// `t` to the whole second, as every other time SP-E shows is written:
/// rounded up, as the age is rounded down, so that `at + value` is `now`.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    match t.with_nanosecond(0) {
        Some(s) if s < t => s + Duration::seconds(1),
        _ => t,
    }
}
const SECONDS: &str = "s";
const PERCENT: &str = "%";

/// How many of the last day's hours must have both an actual demand and a
/// forecast for [`forecast_error_kpi`] to give a value.
pub const FORECAST_ERROR_MIN_HOURS: usize = 12;

/// The lead time of the forecasts [`forecast_error_kpi`] judges: a day.
pub const DAY_AHEAD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The KPI `forecast_error_pct`: the mean absolute percentage error of the
/// demand forecast over the last day — the 24 whole hours before the hour
/// containing `now` — comparing each hour's actual demand in `frame` with
/// `forecast(hour)`, the value predicted for it (typically a day ahead:
/// [`PredictionArchive::forecast_for`](crate::PredictionArchive::forecast_for)
/// with [`DAY_AHEAD`]).
///
/// Hours with a missing actual, a zero actual (a percentage of nothing) or no
/// forecast are skipped; with fewer than [`FORECAST_ERROR_MIN_HOURS`] left the
/// value is unknown. Unlike the other KPIs, an unknown forecast error has
/// status `ok`: it means no forecast was made a day before (a fresh start, a
/// new site), which is not a fault of the site — a failing prediction engine
/// is reported by the prediction chain's incidents, not here. `at` is the
/// last hour judged. Never panics; the value is finite or `None`.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use spe_core::{EnergyColumns, EnergyFrame, KpiConfig, KpiStatus, Provenance, TimeAxis, forecast_error_kpi};
///
/// let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
/// let demand: Vec<Option<f64>> = (0..48).map(|_| Some(1000.0)).collect();
/// let none = vec![None; 48];
/// let cols = EnergyColumns {
///     demand_mw: demand, solar_mw: none.clone(), wind_mw: none.clone(),
///     other_mw: none.clone(), imports_mw: none,
/// };
/// let frame = EnergyFrame::new(TimeAxis::new(start, 48).unwrap(), cols, Provenance::Live, start).unwrap();
/// let now = start + Duration::hours(40) + Duration::minutes(10);
/// // Predicted 1060 MW for every hour: 6 % off.
/// let kpi = forecast_error_kpi(&frame, now, &KpiConfig::default(), |_| Some(1060.0));
/// assert!((kpi.value.unwrap() - 6.0).abs() < 1e-9);
/// assert_eq!(kpi.status, KpiStatus::Warning);
/// assert_eq!(kpi.at, Some(start + Duration::hours(39)));
/// // No forecast for the last day: unknown.
/// assert_eq!(forecast_error_kpi(&frame, now, &KpiConfig::default(), |_| None).value, None);
/// ```
pub fn forecast_error_kpi(
    frame: &EnergyFrame,
    now: DateTime<Utc>,
    config: &KpiConfig,
    forecast: impl Fn(DateTime<Utc>) -> Option<f64>,
) -> Kpi {
    let axis = frame.axis();
    let demand = &frame.columns().demand_mw;
    let now_index = hour_index(axis.start(), now);
    let mut sum = 0.0;
    let mut count = 0usize;
    let mut last = None;
    for k in (now_index - 24)..now_index {
        let Some(i) = usize::try_from(k).ok().filter(|i| *i < axis.len()) else {
            continue;
        };
        let time = axis.time(i);
        let (Some(actual), Some(predicted)) = (demand[i], forecast(time)) else {
            continue;
        };
        if actual == 0.0 || !actual.is_finite() || !predicted.is_finite() {
            continue;
        }
        let ape = ((predicted - actual) / actual).abs() * 100.0;
        if !ape.is_finite() {
            continue;
        }
        sum += ape;
        count += 1;
        last = Some(time);
    }
    let value = (count >= FORECAST_ERROR_MIN_HOURS)
        .then(|| sum / count as f64)
        .and_then(finite);
    Kpi::new(
        FORECAST_ERROR,
        value,
        PERCENT,
        value.map_or(KpiStatus::Ok, |v| config.forecast_error_pct.status(v)),
        value.and(last),
    )
}

/// [`compute_kpis`], plus the forecast error of the last day from
/// `forecast` (see [`forecast_error_kpi`]).
pub fn compute_kpis_with_forecast(
    frame: &EnergyFrame,
    now: DateTime<Utc>,
    config: &KpiConfig,
    forecast: impl Fn(DateTime<Utc>) -> Option<f64>,
) -> KpiSet {
    let mut kpis = compute_kpis(frame, now, config);
    kpis.forecast_error_pct = forecast_error_kpi(frame, now, config, forecast);
    kpis
}

/// The KPI `data_freshness_s` as an operator reads it: the age of the last
/// *live* data, `last_live_at` (e.g. [`WeatherSnapshot::last_live_at`](crate::WeatherSnapshot::last_live_at)).
///
/// [`compute_kpis`] measures the age of the frame it is given. An estimate
/// (a `synthetic` or `fallback` frame) is made afresh at each refresh, so its
/// age says nothing about the data behind the screen: for such a frame this
/// measures from `last_live_at` instead, judged by the same threshold, and
/// with no live data ever the value is unknown and the status `critical`.
/// A live or cached frame keeps the frame's age (its production time is
/// that of the live data: the fetch, for cached data).
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use spe_core::{EnergyColumns, EnergyFrame, KpiConfig, KpiStatus, Provenance, TimeAxis, live_data_freshness_kpi};
///
/// let now = Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0).unwrap();
/// let axis = TimeAxis::new(now, 0).unwrap();
/// let frame = |p| EnergyFrame::new(axis.clone(), EnergyColumns::with_capacity(0), p, now).unwrap();
/// let estimate = frame(Provenance::Synthetic);
/// let config = KpiConfig::default();
/// // Live data fetched now is fresh, whatever came before.
/// let live = live_data_freshness_kpi(&frame(Provenance::Live), None, now, &config);
/// assert_eq!((live.value, live.status), (Some(0.0), KpiStatus::Ok));
/// let kpi = live_data_freshness_kpi(&estimate, Some(now - Duration::hours(2)), now, &config);
/// assert_eq!((kpi.value, kpi.status), (Some(7200.0), KpiStatus::Critical));
/// let never = live_data_freshness_kpi(&estimate, None, now, &config);
/// assert_eq!((never.value, never.status), (None, KpiStatus::Critical));
/// ```
pub fn live_data_freshness_kpi(
    frame: &EnergyFrame,
    last_live_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    config: &KpiConfig,
) -> Kpi {
    let estimated = matches!(
        frame.provenance(),
        Provenance::Synthetic | Provenance::Fallback
    );
    let at = if estimated {
        last_live_at
    } else {
        Some(frame.produced_at())
    };
    match at {
        Some(at) => freshness_since(at, now, config),
        None => Kpi::new(DATA_FRESHNESS, None, SECONDS, KpiStatus::Critical, None),
    }
}

/// `data_freshness_s` for data produced at `at`: its age at `now` in whole
/// seconds (0 if `at` is later), judged by the configured threshold.
fn freshness_since(at: DateTime<Utc>, now: DateTime<Utc>, config: &KpiConfig) -> Kpi {
    let age_s = (now - at).num_seconds().max(0) as f64;
    Kpi::new(
        DATA_FRESHNESS,
        Some(age_s),
        SECONDS,
        config.data_freshness_s.status(age_s),
        Some(whole_second(at)),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::frame::EnergyColumns;
    use crate::series::TimeAxis;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap()
    }

    fn h(i: i64) -> DateTime<Utc> {
        t0() + Duration::hours(i)
    }

    /// One hour per tuple: (demand, solar, wind, other, imports).
    type Hour = (
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
    );

    fn frame_at(hours: &[Hour], produced_at: DateTime<Utc>) -> EnergyFrame {
        let mut c = EnergyColumns::with_capacity(hours.len());
        for &(d, s, w, o, i) in hours {
            c.demand_mw.push(d);
            c.solar_mw.push(s);
            c.wind_mw.push(w);
            c.other_mw.push(o);
            c.imports_mw.push(i);
        }
        let axis = TimeAxis::new(t0(), hours.len()).unwrap();
        EnergyFrame::new(axis, c, Provenance::Live, produced_at).unwrap()
    }

    fn frame(hours: &[Hour]) -> EnergyFrame {
        frame_at(hours, t0())
    }

    fn hour(d: f64, s: f64, w: f64, o: f64, i: f64) -> Hour {
        (Some(d), Some(s), Some(w), Some(o), Some(i))
    }

    /// KPIs of a one-hour frame, produced right now.
    fn one(d: f64, s: f64, w: f64, o: f64, i: f64) -> KpiSet {
        compute_kpis(&frame(&[hour(d, s, w, o, i)]), t0(), &KpiConfig::default())
    }

    #[test]
    fn the_names_are_those_of_a_set_in_order() {
        let k = one(1000.0, 200.0, 150.0, 600.0, 100.0);
        let names: Vec<&str> = k.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, KpiSet::NAMES);
        for name in KpiSet::NAMES {
            assert_eq!(k.get(name).map(|k| k.name.as_str()), Some(name));
        }
    }

    #[test]
    fn healthy_hour_is_all_ok() {
        let k = one(1000.0, 200.0, 150.0, 600.0, 100.0);
        assert_eq!(k.demand_mw.value, Some(1000.0));
        assert_eq!(k.supply_mw.value, Some(1050.0));
        assert_eq!(k.balance_mw.value, Some(50.0));
        assert_eq!(k.coverage_ratio.value, Some(1.05));
        assert_eq!(k.renewable_share.value, Some(350.0 / 1050.0));
        assert_eq!(k.self_sufficiency.value, Some(0.95));
        assert_eq!(
            k.supply_by_source.get(SupplySource::Imports).value,
            Some(100.0)
        );
        assert_eq!(k.data_freshness_s.value, Some(0.0));
        assert_eq!(k.provenance, Provenance::Live);
        assert!(k.iter().all(|x| x.status == KpiStatus::Ok), "{k:#?}");
        assert_eq!(k.status(), KpiStatus::Ok);
        assert_eq!(k.iter().count(), 13);
        assert_eq!(k.get("wind_mw").unwrap().value, Some(150.0));
        assert!(k.get("nope").is_none());
        assert!(
            k.iter()
                .filter(|x| x.name != "forecast_error_pct")
                .all(|x| x.at == Some(t0()))
        );
    }

    #[test]
    fn coverage_and_balance_levels() {
        // coverage 1.0 exactly: ok (strict comparison); balance 0: ok.
        let k = one(1000.0, 0.0, 0.0, 800.0, 200.0);
        assert_eq!(
            (k.coverage_ratio.status, k.balance_mw.status),
            (KpiStatus::Ok, KpiStatus::Ok)
        );
        // 0.97: warning.
        let k = one(1000.0, 0.0, 0.0, 800.0, 170.0);
        assert_eq!(k.coverage_ratio.status, KpiStatus::Warning);
        assert_eq!(k.balance_mw.value, Some(-30.0));
        assert_eq!(k.balance_mw.status, KpiStatus::Warning);
        // 0.90: critical.
        let k = one(1000.0, 0.0, 0.0, 800.0, 100.0);
        assert_eq!(k.coverage_ratio.status, KpiStatus::Critical);
        assert_eq!(k.balance_mw.status, KpiStatus::Critical);
        assert_eq!(k.status(), KpiStatus::Critical);
    }

    #[test]
    fn renewable_share_levels() {
        let k = one(100.0, 10.0, 0.0, 90.0, 0.0); // 10 %
        assert_eq!(k.renewable_share.status, KpiStatus::Ok);
        let k = one(100.0, 2.0, 1.0, 97.0, 0.0); // 3 %
        assert_eq!(k.renewable_share.status, KpiStatus::Warning);
        let k = one(100.0, 0.0, 0.0, 100.0, 0.0); // 0 %: never critical by default
        assert_eq!(k.renewable_share.value, Some(0.0));
        assert_eq!(k.renewable_share.status, KpiStatus::Warning);
        // With a configured critical level:
        let cfg = KpiConfig {
            renewable_share: Threshold::lower_is_worse(0.2, 0.1),
            ..KpiConfig::default()
        };
        let k = compute_kpis(&frame(&[hour(100.0, 5.0, 0.0, 95.0, 0.0)]), t0(), &cfg);
        assert_eq!(k.renewable_share.status, KpiStatus::Critical);
    }

    #[test]
    fn self_sufficiency_levels() {
        let k = one(100.0, 10.0, 10.0, 60.0, 20.0); // 0.8
        assert_eq!(k.self_sufficiency.status, KpiStatus::Ok);
        let k = one(100.0, 10.0, 10.0, 40.0, 40.0); // 0.6
        assert_eq!(k.self_sufficiency.value, Some(0.6));
        assert_eq!(k.self_sufficiency.status, KpiStatus::Warning);
        let k = one(100.0, 10.0, 10.0, 20.0, 60.0); // 0.4
        assert_eq!(k.self_sufficiency.status, KpiStatus::Critical);
        // Coverage is fine throughout: imports fill the gap.
        assert_eq!(k.coverage_ratio.status, KpiStatus::Ok);
    }

    #[test]
    fn peak_levels_against_capacity() {
        let f = frame(&[hour(800.0, 0.0, 0.0, 800.0, 0.0)]);
        let cfg = |cap| KpiConfig {
            available_capacity_mw: cap,
            ..KpiConfig::default()
        };
        let status = |cap| compute_kpis(&f, t0(), &cfg(cap)).peak_demand_mw.status;
        assert_eq!(status(None), KpiStatus::Ok);
        assert_eq!(status(Some(1000.0)), KpiStatus::Ok); // 0.8
        assert_eq!(status(Some(850.0)), KpiStatus::Warning); // 0.94
        assert_eq!(status(Some(700.0)), KpiStatus::Critical); // 1.14
        assert_eq!(status(Some(0.0)), KpiStatus::Warning); // misconfigured
        assert_eq!(status(Some(-5.0)), KpiStatus::Warning);
        assert_eq!(status(Some(f64::NAN)), KpiStatus::Warning);
        assert_eq!(status(Some(f64::MIN_POSITIVE)), KpiStatus::Critical); // ratio overflows to inf
    }

    #[test]
    fn freshness_levels() {
        let hours = [hour(100.0, 0.0, 0.0, 100.0, 0.0)];
        let status_at = |age_s: i64| {
            let f = frame_at(&hours, t0() - Duration::seconds(age_s));
            let k = compute_kpis(&f, t0(), &KpiConfig::default());
            assert_eq!(k.data_freshness_s.value, Some(age_s.max(0) as f64));
            assert_eq!(k.data_freshness_s.at, Some(t0() - Duration::seconds(age_s)));
            k.data_freshness_s.status
        };
        assert_eq!(status_at(0), KpiStatus::Ok);
        assert_eq!(status_at(900), KpiStatus::Ok);
        assert_eq!(status_at(901), KpiStatus::Warning);
        assert_eq!(status_at(3600), KpiStatus::Warning);
        assert_eq!(status_at(3601), KpiStatus::Critical);
        assert_eq!(status_at(-60), KpiStatus::Ok); // produced "in the future": age 0
        // A production time with a fraction of a second is shown to the second.
        let f = frame_at(&hours, t0() - Duration::milliseconds(1500));
        let k = compute_kpis(&f, t0(), &KpiConfig::default());
        assert_eq!(k.data_freshness_s.at, Some(t0() - Duration::seconds(1)));
        assert_eq!(k.data_freshness_s.value, Some(1.0));
    }

    #[test]
    fn division_by_zero_gives_unknown_not_infinity() {
        // No demand: coverage and self-sufficiency are undefined.
        let k = one(0.0, 10.0, 0.0, 0.0, 0.0);
        assert_eq!(k.coverage_ratio.value, None);
        assert_eq!(k.coverage_ratio.status, KpiStatus::Warning);
        assert_eq!(k.self_sufficiency.value, None);
        assert_eq!(k.balance_mw.value, Some(10.0));
        assert_eq!(k.balance_mw.status, KpiStatus::Warning);
        assert_eq!(k.renewable_share.value, Some(1.0));
        // No supply: renewable share undefined, coverage 0.
        let k = one(100.0, 0.0, 0.0, 0.0, 0.0);
        assert_eq!(k.renewable_share.value, None);
        assert_eq!(k.renewable_share.status, KpiStatus::Warning);
        assert_eq!(k.coverage_ratio.value, Some(0.0));
        assert_eq!(k.coverage_ratio.status, KpiStatus::Critical);
        // Everything zero.
        let k = one(0.0, 0.0, 0.0, 0.0, 0.0);
        assert!(k.iter().all(|x| x.value.is_none_or(f64::is_finite)));
    }

    #[test]
    fn overflowing_sums_are_unknown() {
        let k = one(1.0, f64::MAX, f64::MAX, 0.0, 0.0);
        assert_eq!(k.supply_mw.value, None);
        assert_eq!(k.supply_mw.status, KpiStatus::Warning);
        assert_eq!(k.coverage_ratio.value, None);
        assert_eq!(k.supply_by_source.solar.value, Some(f64::MAX));
    }

    #[test]
    fn missing_values_fall_back_to_the_last_complete_hour() {
        let f = frame(&[
            hour(100.0, 0.0, 0.0, 100.0, 0.0),
            hour(110.0, 0.0, 0.0, 110.0, 0.0),
            (Some(120.0), None, Some(0.0), Some(120.0), Some(0.0)), // solar missing
            (None, None, None, None, None),
        ]);
        // now = 03:30: hour 3 is empty, hour 2 incomplete: back to hour 1.
        let k = compute_kpis(&f, h(3) + Duration::minutes(30), &KpiConfig::default());
        assert_eq!(k.demand_mw.value, Some(110.0));
        assert_eq!(k.demand_mw.at, Some(h(1)));
        assert_eq!(k.coverage_ratio.at, Some(h(1)));
        assert_eq!(k.coverage_ratio.status, KpiStatus::Ok);
        // The peak still sees hour 2's demand.
        assert_eq!(k.peak_demand_mw.value, Some(120.0));
        assert_eq!(k.peak_demand_mw.at, Some(h(2)));
        // now past the end of the frame: same fallback.
        let k = compute_kpis(&f, h(10), &KpiConfig::default());
        assert_eq!(k.demand_mw.at, Some(h(1)));
        // now at hour 0: hour 0 itself.
        let k = compute_kpis(&f, h(0), &KpiConfig::default());
        assert_eq!(k.demand_mw.value, Some(100.0));
    }

    #[test]
    fn no_complete_hour_reports_what_is_known() {
        let f = frame(&[(Some(90.0), None, Some(5.0), Some(80.0), Some(0.0))]);
        let k = compute_kpis(&f, h(0), &KpiConfig::default());
        assert_eq!(k.demand_mw.value, Some(90.0));
        assert_eq!(k.demand_mw.status, KpiStatus::Ok);
        assert_eq!(k.supply_by_source.wind.value, Some(5.0));
        assert_eq!(k.supply_by_source.solar.value, None);
        assert_eq!(k.supply_by_source.solar.status, KpiStatus::Warning);
        assert_eq!(k.supply_mw.value, None);
        assert_eq!(k.supply_mw.status, KpiStatus::Warning);
        assert_eq!(k.coverage_ratio.value, None);
        assert_eq!(k.balance_mw.value, None);
        assert_eq!(k.renewable_share.status, KpiStatus::Warning);
        assert_eq!(k.self_sufficiency.status, KpiStatus::Warning);
        assert_eq!(k.demand_mw.at, Some(h(0)));
        assert_eq!(k.status(), KpiStatus::Warning);
    }

    #[test]
    fn now_before_the_frame_or_empty_frame() {
        let f = frame(&[hour(100.0, 0.0, 0.0, 100.0, 0.0)]);
        let k = compute_kpis(&f, h(-2), &KpiConfig::default());
        assert_eq!(k.demand_mw.value, None);
        assert_eq!(k.demand_mw.at, None);
        assert_eq!(k.peak_demand_mw.value, None);
        assert_eq!(k.peak_demand_mw.status, KpiStatus::Warning);
        // A second before the frame starts is still before it.
        let k = compute_kpis(&f, t0() - Duration::milliseconds(1), &KpiConfig::default());
        assert_eq!(k.demand_mw.value, None);

        let k = compute_kpis(&frame(&[]), t0(), &KpiConfig::default());
        assert!(
            k.iter()
                .filter(|x| x.name != "data_freshness_s")
                .all(|x| x.value.is_none())
        );
        assert_eq!(k.status(), KpiStatus::Warning);
    }

    #[test]
    fn peak_over_the_last_24_hours() {
        // 48 hours of demand: a huge peak at hour 5 (outside the window when
        // now is at hour 40), the window's peak at hour 30, tied at hour 35.
        let mut hours: Vec<Hour> = (0..48).map(|_| hour(500.0, 0.0, 0.0, 500.0, 0.0)).collect();
        hours[5].0 = Some(2000.0);
        hours[30].0 = Some(900.0);
        hours[35].0 = Some(900.0);
        hours[41].0 = Some(1500.0); // after now
        hours[17].0 = Some(950.0); // the first hour of the window [17, 40]
        let f = frame(&hours);
        let k = compute_kpis(&f, h(40) + Duration::minutes(59), &KpiConfig::default());
        assert_eq!(k.peak_demand_mw.value, Some(950.0));
        assert_eq!(k.peak_demand_mw.at, Some(h(17)));
        // One hour later, hour 17 leaves the window: the earliest of the tie.
        hours[41].0 = Some(500.0);
        let f = frame(&hours);
        let k = compute_kpis(&f, h(41), &KpiConfig::default());
        assert_eq!(k.peak_demand_mw.value, Some(900.0));
        assert_eq!(k.peak_demand_mw.at, Some(h(30)));
        // Missing demand is ignored; the current hour counts.
        hours[30].0 = None;
        hours[41].0 = Some(901.0);
        let k = compute_kpis(&frame(&hours), h(41), &KpiConfig::default());
        assert_eq!(k.peak_demand_mw.at, Some(h(41)));
        // Now far past the frame: no demand in the window.
        let k = compute_kpis(&frame(&hours), h(100), &KpiConfig::default());
        assert_eq!(k.peak_demand_mw.value, None);
        assert_eq!(k.peak_demand_mw.status, KpiStatus::Warning);
    }

    #[test]
    fn threshold_directions_and_nan() {
        let hi = Threshold::higher_is_worse(10.0, 20.0);
        assert_eq!(hi.status(10.0), KpiStatus::Ok);
        assert_eq!(hi.status(10.5), KpiStatus::Warning);
        assert_eq!(hi.status(20.5), KpiStatus::Critical);
        assert_eq!(hi.status(f64::INFINITY), KpiStatus::Critical);
        assert_eq!(hi.status(f64::NAN), KpiStatus::Warning);
        let lo = Threshold::lower_is_worse(10.0, 5.0);
        assert_eq!(lo.status(f64::NEG_INFINITY), KpiStatus::Critical);
        assert_eq!(lo.status_of(Some(7.0)), KpiStatus::Warning);
        assert_eq!(lo.status_of(None), KpiStatus::Warning);
        assert_eq!(KpiStatus::worst([]), KpiStatus::Ok);
        assert_eq!(KpiStatus::Critical.to_string(), "critical");
    }

    #[test]
    fn config_and_set_serde() {
        let cfg = KpiConfig::default();
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(json.contains("\"lower_is_worse\""));
        assert_eq!(serde_json::from_str::<KpiConfig>(&json).unwrap(), cfg);
        assert_eq!(serde_json::from_str::<KpiConfig>("{}").unwrap(), cfg);

        let k = one(1000.0, 200.0, 150.0, 600.0, 30.0);
        let json = serde_json::to_value(&k).unwrap();
        assert_eq!(json["status"], "warning");
        assert_eq!(json["provenance"]["kind"], "live");
        assert_eq!(json["coverage_ratio"]["status"], "warning");
        assert_eq!(json["supply_by_source"]["imports"]["name"], "imports_mw");
        let back: KpiSet = serde_json::from_value(json).unwrap();
        assert_eq!(back, k);
    }

    fn value() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            Just(Some(0.0)),
            Just(Some(f64::MAX)),
            Just(Some(f64::MIN_POSITIVE)),
            Just(Some(5e-324)),
            (0.0..5000.0).prop_map(Some),
            (0.0..f64::MAX).prop_map(Some),
        ]
    }

    fn threshold() -> impl Strategy<Value = Threshold> {
        (any::<f64>(), any::<f64>(), any::<bool>()).prop_map(|(w, c, hi)| {
            if hi {
                Threshold::higher_is_worse(w, c)
            } else {
                Threshold::lower_is_worse(w, c)
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn compute_kpis_never_panics_nor_yields_non_finite_values(
            hours in proptest::collection::vec((value(), value(), value(), value(), value()), 0..60),
            now_s in -400_000i64..400_000,
            produced_s in -400_000i64..400_000,
            cap in prop_oneof![Just(None), any::<f64>().prop_map(Some), (1.0..1e5).prop_map(Some)],
            custom in any::<bool>(),
            thresholds in proptest::collection::vec(threshold(), 6),
        ) {
            let f = frame_at(&hours, t0() + Duration::seconds(produced_s));
            let mut cfg = KpiConfig { available_capacity_mw: cap, ..KpiConfig::default() };
            if custom {
                cfg.coverage_ratio = thresholds[0];
                cfg.balance_fraction = thresholds[1];
                cfg.renewable_share = thresholds[2];
                cfg.peak_capacity_fraction = thresholds[3];
                cfg.self_sufficiency = thresholds[4];
                cfg.data_freshness_s = thresholds[5];
            }
            let now = t0() + Duration::seconds(now_s);
            let k = compute_kpis(&f, now, &cfg);
            for kpi in k.iter() {
                prop_assert!(kpi.value.is_none_or(f64::is_finite), "{kpi:?}");
                if kpi.value.is_none() {
                    // An unknown forecast error is `ok` (no day-old forecast).
                    let expected = if kpi.name == "forecast_error_pct" { KpiStatus::Ok } else { KpiStatus::Warning };
                    prop_assert_eq!(kpi.status, expected);
                }
                if let Some(at) = kpi.at {
                    if kpi.name != "data_freshness_s" {
                        prop_assert!(at <= now && f.axis().index_of(at).is_some());
                    }
                }
            }
            for r in [&k.coverage_ratio, &k.renewable_share, &k.self_sufficiency] {
                prop_assert!(r.value.is_none_or(|v| v >= 0.0));
            }
            prop_assert!(k.renewable_share.value.is_none_or(|v| v <= 1.0 + 1e-12));
            let json = serde_json::to_string(&k).unwrap();
            let back: KpiSet = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.status(), k.status());
            for (a, b) in back.iter().zip(k.iter()) {
                prop_assert_eq!((&a.name, a.status, a.at), (&b.name, b.status, b.at));
                match (a.value, b.value) {
                    (None, None) => {}
                    (Some(x), Some(y)) => prop_assert!((x - y).abs() <= 1e-15 * y.abs().max(1e-300)),
                    other => prop_assert!(false, "{other:?}"),
                }
            }
        }
    }

    fn demand_frame(demand: Vec<Option<f64>>) -> EnergyFrame {
        let n = demand.len();
        let none = vec![None; n];
        let cols = EnergyColumns {
            demand_mw: demand,
            solar_mw: none.clone(),
            wind_mw: none.clone(),
            other_mw: none.clone(),
            imports_mw: none,
        };
        EnergyFrame::new(
            TimeAxis::new(t0(), n).unwrap(),
            cols,
            Provenance::Live,
            t0(),
        )
        .unwrap()
    }

    #[test]
    fn forecast_error_judges_the_24_hours_before_the_current_one() {
        // Demand 100 everywhere; the forecast is right except in hour 30
        // (the current hour, not judged) and hour 5 (outside the day).
        let frame = demand_frame(vec![Some(100.0); 48]);
        let forecast = |t: DateTime<Utc>| {
            let h = (t - t0()).num_hours();
            Some(if h == 30 || h == 5 {
                1000.0
            } else if h == 29 {
                124.0
            } else {
                100.0
            })
        };
        let now = h(30) + Duration::minutes(59);
        let kpi = forecast_error_kpi(&frame, now, &KpiConfig::default(), forecast);
        assert!((kpi.value.unwrap() - 1.0).abs() < 1e-12); // 24 % over 24 hours
        assert_eq!(kpi.status, KpiStatus::Ok);
        assert_eq!(kpi.at, Some(h(29)));
        let kpis = compute_kpis_with_forecast(&frame, now, &KpiConfig::default(), forecast);
        assert_eq!(kpis.get("forecast_error_pct"), Some(&kpi));
        assert_eq!(
            serde_json::to_value(&kpis).unwrap()["forecast_error_pct"]["unit"],
            "%"
        );
    }

    #[test]
    fn forecast_error_needs_twelve_judged_hours() {
        // Hours 7..=18 missing or zero: 12 hours are left of the day 6..30.
        let demand = (0..48)
            .map(|i| match i {
                7..=12 => None,
                13..=18 => Some(0.0),
                _ => Some(200.0),
            })
            .collect();
        let frame = demand_frame(demand);
        let forecast = |t: DateTime<Utc>| {
            Some(if (t - t0()).num_hours() < 25 {
                220.0
            } else {
                f64::NAN
            })
        };
        let kpi = forecast_error_kpi(&frame, h(30), &KpiConfig::default(), forecast);
        assert_eq!(kpi.value, None);
        assert_eq!(kpi.status, KpiStatus::Ok);
        assert_eq!(kpi.at, None);
        // With a finite forecast everywhere: 12 hours, 15 % off: critical.
        let kpi = forecast_error_kpi(&frame, h(30), &KpiConfig::default(), |_| Some(230.0));
        assert!((kpi.value.unwrap() - 15.0).abs() < 1e-9);
        assert_eq!(kpi.status, KpiStatus::Critical);
        // Before the frame, or with no forecast: unknown.
        assert_eq!(
            forecast_error_kpi(&frame, h(-3), &KpiConfig::default(), |_| Some(1.0)).value,
            None
        );
        assert_eq!(
            compute_kpis(&frame, h(30), &KpiConfig::default())
                .forecast_error_pct
                .value,
            None
        );
    }

    proptest! {
        #[test]
        fn forecast_error_is_finite_and_never_panics(
            demand in proptest::collection::vec(proptest::option::of(0f64..1e300), 0..80),
            predicted in proptest::collection::vec(proptest::option::of(proptest::num::f64::ANY), 80),
            now_h in -100i64..200,
        ) {
            let frame = demand_frame(demand);
            let kpi = forecast_error_kpi(&frame, h(now_h), &KpiConfig::default(), |t| {
                usize::try_from((t - t0()).num_hours()).ok().and_then(|i| predicted.get(i).copied().flatten())
            });
            if let Some(v) = kpi.value {
                prop_assert!(v.is_finite() && v >= 0.0);
            }
        }
    }
}
