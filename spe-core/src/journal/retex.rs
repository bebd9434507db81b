//! The post-incident review ("RETEX"): availability figures and a Markdown report.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Incident, IncidentId, IncidentKind};

/// Serde for [`TimeDelta`]: `[seconds, nanoseconds]`, exact (the nanoseconds
/// in `0..1e9`, as [`TimeDelta::new`] takes them).
mod delta {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
        // `subsec_nanos` is negative for a negative delta: normalise.
        let (mut secs, mut nanos) = (d.num_seconds(), d.subsec_nanos());
        if nanos < 0 {
            secs -= 1;
            nanos += 1_000_000_000;
        }
        (secs, nanos).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeDelta, D::Error> {
        let (secs, nanos) = <(i64, u32)>::deserialize(d)?;
        TimeDelta::new(secs, nanos)
            .ok_or_else(|| serde::de::Error::custom(format!("[{secs}, {nanos}] is not a duration")))
    }

    /// The same for an `Option<TimeDelta>` (`null` for `None`).
    pub(super) mod option {
        use chrono::TimeDelta;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            d: &Option<TimeDelta>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<TimeDelta>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] TimeDelta);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(t)| t))
        }
    }
}

/// Availability and incident figures for one component over a RETEX period.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use spe_core::{IncidentKind, Journal};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("incidents.journal"))?;
/// let day = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
/// let id = journal.open_incident("prediction-engine", IncidentKind::ModelCrash, day, "exit 137")?;
/// journal.close_incident(id, day + TimeDelta::hours(6), "restarted")?;
/// let retex = journal.retex(day, day + TimeDelta::days(1), day + TimeDelta::days(1));
/// let engine = &retex.by_component["prediction-engine"];
/// assert_eq!(engine.incidents, 1);
/// assert_eq!(engine.downtime, TimeDelta::hours(6));
/// assert_eq!(engine.availability, 0.75);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ComponentFigures {
    /// Incidents of this component in the period (as [`Retex::incidents`] counts them).
    pub incidents: usize,
    /// Measure of the union of its incident intervals, clipped to the
    /// measured part of the period.
    #[serde(with = "delta")]
    pub downtime: TimeDelta,
    /// `1 − downtime / length of the measured part of the period`, between 0
    /// and 1 (1 when nothing of the period has elapsed).
    pub availability: f64,
}

/// The longest incident of a RETEX period.
///
/// ```
/// # use chrono::{TimeDelta, TimeZone, Utc};
/// # use spe_core::{IncidentKind, Journal};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let journal = Journal::open(dir.path().join("j"))?;
/// let t = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
/// let id = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, t, "")?;
/// journal.close_incident(id, t + TimeDelta::minutes(40), "")?;
/// let longest = journal.retex(t, t + TimeDelta::days(1), t + TimeDelta::days(1)).longest_outage.unwrap();
/// assert_eq!((longest.id, longest.duration), (id, TimeDelta::minutes(40)));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LongestOutage {
    /// The incident.
    pub id: IncidentId,
    /// Its component.
    pub component: String,
    /// Its whole duration (not clipped to the period; up to `now` if still open).
    #[serde(with = "delta")]
    pub duration: TimeDelta,
}

/// A post-incident review over a period: what [`Journal::retex`](super::Journal::retex) returns.
///
/// **The period is half-open, `[from, to)`**, so consecutive periods (one
/// report a day) share no instant. An incident lasts `[start, end)`, until
/// `now` while open. It is *in* the period when it spends time in it (the
/// overlap has a positive length); an incident of zero length (`start ==
/// end`) is in the period where its start falls. An incident from 23:00 to
/// 24:00 is in that day only.
///
/// **Availability counts every incident as unavailability of the live data
/// path**: while an incident is open the dashboard keeps serving (estimated,
/// cached or fallback values), but not the live, nominal data. Overlapping
/// incidents count once. Availability is measured over the part of the
/// period elapsed at `now`, `[from, min(to, now))` (the whole period once it
/// is over): `1 − |⋃ incident intervals ∩ measured part| / |measured part|`,
/// and 1 when nothing of it has elapsed. A period not yet over is not
/// credited with the time still to come. (With a `now` earlier than some
/// records — a back-dated report — incidents after `now` are listed but add
/// no downtime.) Per-component figures do the same with that component's
/// incidents only.
///
/// Downtime is clipped to the measured part of the period; durations are not:
/// [`mttr`](Self::mttr) and [`longest_outage`](Self::longest_outage) use each
/// incident's whole duration, so an incident across the boundary of two
/// periods counts, with its whole duration, in both.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use spe_core::{IncidentKind, Journal};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("incidents.journal"))?;
/// let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let to = from + TimeDelta::days(10);
/// let a = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, from + TimeDelta::hours(10), "")?;
/// journal.close_incident(a, from + TimeDelta::hours(11), "")?;
/// let b = journal.open_incident("open-meteo", IncidentKind::Upstream5xx, from + TimeDelta::minutes(630), "")?;
/// journal.close_incident(b, from + TimeDelta::minutes(750), "")?;
///
/// let retex = journal.retex(from, to, to);
/// assert_eq!(retex.incident_count, 2);
/// assert_eq!(retex.downtime, TimeDelta::minutes(150));            // 1 h and 2 h, overlapping 30 min
/// assert_eq!(retex.availability, 1.0 - 9_000.0 / 864_000.0);
/// assert_eq!(retex.mttr, Some(TimeDelta::minutes(90)));
/// assert_eq!(retex.longest_outage.as_ref().map(|l| l.id), Some(b));
/// assert!(retex.to_markdown().contains("| Availability | 98.958 % |"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Retex {
    /// Start of the period.
    pub period_start: DateTime<Utc>,
    /// End of the period, excluded (never before its start).
    pub period_end: DateTime<Utc>,
    /// The `now` the figures were computed at (open incidents last until it).
    pub generated_at: DateTime<Utc>,
    /// End of the measured part of the period: `min(period_end,
    /// generated_at)`, not before `period_start`. Before `period_end`, the
    /// period is not over.
    pub measured_until: DateTime<Utc>,
    /// The incidents in the period (spending time in it, or of zero length
    /// and starting in it), newest first.
    pub incidents: Vec<Incident>,
    /// How many incidents are in the period.
    pub incident_count: usize,
    /// How many of them are still open.
    pub still_open: usize,
    /// Measure of the union of the incident intervals, clipped to the
    /// measured part of the period.
    #[serde(with = "delta")]
    pub downtime: TimeDelta,
    /// `1 − downtime / length of the measured part of the period`, between
    /// 0 and 1 (1 when nothing of the period has elapsed, or it is empty).
    pub availability: f64,
    /// Mean time to recovery: the mean whole duration (not clipped to the
    /// period) of the closed incidents in the period; `None` if none is closed.
    #[serde(with = "delta::option")]
    pub mttr: Option<TimeDelta>,
    /// The longest incident in the period, by whole duration.
    pub longest_outage: Option<LongestOutage>,
    /// Incident count per kind.
    pub by_kind: BTreeMap<IncidentKind, usize>,
    /// Figures per component.
    pub by_component: BTreeMap<String, ComponentFigures>,
}

/// A time interval `(start, end)`, `start <= end`.
type Interval = (DateTime<Utc>, DateTime<Utc>);

/// Measure of the union of intervals (open or closed: the same measure).
pub(super) fn union_measure(mut intervals: Vec<Interval>) -> TimeDelta {
    intervals.sort();
    let mut total = TimeDelta::zero();
    let mut current: Option<Interval> = None;
    for (s, e) in intervals {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    total
}

fn ratio_available(downtime: TimeDelta, period: TimeDelta) -> f64 {
    if period <= TimeDelta::zero() {
        return 1.0;
    }
    (1.0 - downtime.as_seconds_f64() / period.as_seconds_f64()).clamp(0.0, 1.0)
}

/// Newest first: latest start, then highest id.
pub(super) fn newest_first(incidents: &mut [Incident]) {
    incidents.sort_by(newest_order);
}

/// The listing order: latest start first, then the larger id.
pub(super) fn newest_order(a: &Incident, b: &Incident) -> std::cmp::Ordering {
    b.start.cmp(&a.start).then(b.id.cmp(&a.id))
}

impl Retex {
    /// Computes the review of `all` incidents over `[from, to)` at `now`.
    pub(super) fn compute(
        all: impl IntoIterator<Item = Incident>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Retex {
        let to = to.max(from);
        let measured_until = to.min(now).max(from);
        let measured = measured_until - from;
        let in_period = |i: &Incident| {
            let (start, end) = (i.start, i.end_or(now));
            if start == end {
                from <= start && start < to
            } else {
                start.max(from) < end.min(to)
            }
        };
        let mut incidents: Vec<Incident> = all.into_iter().filter(in_period).collect();
        newest_first(&mut incidents);

        // The part of `[start, end)` inside `[from, measured_until)`, maybe empty.
        let clipped = |i: &Incident| {
            let start = i.start.max(from).min(measured_until);
            (start, i.end_or(now).min(measured_until).max(start))
        };
        let downtime = union_measure(incidents.iter().map(clipped).collect());

        let closed: Vec<i128> = incidents
            .iter()
            .filter(|i| !i.is_open())
            .map(|i| i128::from(i.duration(now).num_nanoseconds().unwrap_or(i64::MAX)))
            .collect();
        let mttr = (!closed.is_empty()).then(|| {
            let mean = closed.iter().sum::<i128>() / closed.len() as i128;
            TimeDelta::nanoseconds(i64::try_from(mean).unwrap_or(i64::MAX))
        });

        let longest_outage = incidents
            .iter()
            .max_by(|a, b| a.duration(now).cmp(&b.duration(now)).then(b.id.cmp(&a.id)))
            .map(|i| LongestOutage {
                id: i.id,
                component: i.component.clone(),
                duration: i.duration(now),
            });

        let mut by_kind = BTreeMap::new();
        let mut per_component: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
        for i in &incidents {
            *by_kind.entry(i.kind).or_insert(0) += 1;
            per_component
                .entry(i.component.clone())
                .or_default()
                .push(clipped(i));
        }
        let by_component = per_component
            .into_iter()
            .map(|(component, intervals)| {
                let incidents = intervals.len();
                let downtime = union_measure(intervals);
                let figures = ComponentFigures {
                    incidents,
                    downtime,
                    availability: ratio_available(downtime, measured),
                };
                (component, figures)
            })
            .collect();

        Retex {
            period_start: from,
            period_end: to,
            generated_at: now,
            measured_until,
            incident_count: incidents.len(),
            still_open: incidents.iter().filter(|i| i.is_open()).count(),
            downtime,
            availability: ratio_available(downtime, measured),
            mttr,
            longest_outage,
            by_kind,
            by_component,
            incidents,
        }
    }

    /// Availability in percent (`100 × availability`).
    ///
    /// ```
    /// # use chrono::{TimeDelta, Utc};
    /// # use spe_core::Journal;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("j"))?;
    /// let now = Utc::now();
    /// assert_eq!(journal.retex(now - TimeDelta::days(30), now, now).availability_percent(), 100.0);
    /// # Ok(()) }
    /// ```
    pub fn availability_percent(&self) -> f64 {
        self.availability * 100.0
    }

    /// A readable Markdown report: title, period (and, for a period not over,
    /// the time it is measured until), summary table (availability,
    /// downtime, incident count, MTTR, longest outage), counts by kind and by
    /// component, and the incident table newest first (start, end, duration,
    /// component, kind, mode changes, details).
    ///
    /// ```
    /// # use chrono::{TimeDelta, TimeZone, Utc};
    /// # use spe_core::{IncidentKind, Journal, Mode};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("j"))?;
    /// let t = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    /// let id = journal.open_incident("open-meteo", IncidentKind::Upstream5xx, t, "HTTP 503")?;
    /// journal.mode_changed(id, Mode::Nominal, Mode::Estimation, t)?;
    /// let md = journal.retex(t - TimeDelta::days(1), t + TimeDelta::days(1), t + TimeDelta::hours(1)).to_markdown();
    /// assert!(md.starts_with("# RETEX"));
    /// assert!(md.contains("| #1 | 2026-03-01 08:00:00 | ongoing | 1 h | open-meteo | upstream_5xx | nominal → estimation at 08:00:00 | HTTP 503 |"));
    /// # Ok(()) }
    /// ```
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.render(&mut out);
        out
    }

    fn render(&self, out: &mut String) -> fmt::Result {
        let period = self.period_end - self.period_start;
        writeln!(out, "# RETEX — incident review")?;
        writeln!(out)?;
        writeln!(
            out,
            "- **Period:** {} → {} ({})",
            fmt_time(self.period_start),
            fmt_time(self.period_end),
            fmt_duration(period)
        )?;
        writeln!(out, "- **Generated at:** {}", fmt_time(self.generated_at))?;
        if self.measured_until < self.period_end {
            writeln!(
                out,
                "- **Measured until:** {} (the period is not over: figures cover its first {})",
                fmt_time(self.measured_until),
                fmt_duration(self.measured_until - self.period_start)
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "Availability counts every incident as unavailability of the live data path \
             (the dashboard kept serving estimated, cached or fallback values meanwhile); \
             overlapping incidents count once, and open incidents last until the report time. \
             The period excludes its end; durations are whole, downtime is clipped to the period."
        )?;
        writeln!(out)?;
        writeln!(out, "## Summary")?;
        writeln!(out)?;
        writeln!(out, "| Figure | Value |")?;
        writeln!(out, "|---|---|")?;
        writeln!(
            out,
            "| Availability | {:.3} % |",
            self.availability_percent()
        )?;
        writeln!(out, "| Downtime | {} |", fmt_duration(self.downtime))?;
        writeln!(out, "| Incidents | {} |", self.incident_count)?;
        writeln!(out, "| Still open | {} |", self.still_open)?;
        match self.mttr {
            Some(mttr) => writeln!(out, "| Mean time to recovery | {} |", fmt_duration(mttr))?,
            None => writeln!(out, "| Mean time to recovery | — |")?,
        }
        match &self.longest_outage {
            Some(l) => writeln!(
                out,
                "| Longest outage | {} ({}), {} |",
                l.id,
                cell(&l.component),
                fmt_duration(l.duration)
            )?,
            None => writeln!(out, "| Longest outage | — |")?,
        }
        writeln!(out)?;

        if !self.by_kind.is_empty() {
            writeln!(out, "## By kind")?;
            writeln!(out)?;
            writeln!(out, "| Kind | Incidents |")?;
            writeln!(out, "|---|---|")?;
            for (kind, count) in &self.by_kind {
                writeln!(out, "| {kind} | {count} |")?;
            }
            writeln!(out)?;
            writeln!(out, "## By component")?;
            writeln!(out)?;
            writeln!(out, "| Component | Incidents | Downtime | Availability |")?;
            writeln!(out, "|---|---|---|---|")?;
            for (component, f) in &self.by_component {
                writeln!(
                    out,
                    "| {} | {} | {} | {:.3} % |",
                    cell(component),
                    f.incidents,
                    fmt_duration(f.downtime),
                    f.availability * 100.0
                )?;
            }
            writeln!(out)?;
        }

        writeln!(out, "## Incidents (newest first)")?;
        writeln!(out)?;
        if self.incidents.is_empty() {
            writeln!(out, "_No incident in this period._")?;
            return Ok(());
        }
        writeln!(
            out,
            "| # | Start | End | Duration | Component | Kind | Mode changes | Details |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|")?;
        for i in &self.incidents {
            let end = match i.end {
                Some(end) => fmt_time_plain(end),
                None => "ongoing".to_owned(),
            };
            let changes = if i.mode_changes.is_empty() {
                "—".to_owned()
            } else {
                i.mode_changes
                    .iter()
                    .map(|c| {
                        let at = if c.at.date_naive() == i.start.date_naive() {
                            c.at.format("%H:%M:%S").to_string()
                        } else {
                            fmt_time_plain(c.at)
                        };
                        format!("{} → {} at {at}", c.from, c.to)
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let mut details = i.details.clone();
            if !i.notes.is_empty() {
                let n = i.notes.len();
                details.push_str(&format!(" ({n} note{})", if n == 1 { "" } else { "s" }));
            }
            if let Some(resolution) = i.resolution.as_deref().filter(|r| !r.is_empty()) {
                details.push_str(" — resolved: ");
                details.push_str(resolution);
            }
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                i.id,
                fmt_time_plain(i.start),
                end,
                fmt_duration(i.duration(self.generated_at)),
                cell(&i.component),
                i.kind,
                changes,
                cell(details.trim())
            )?;
        }
        Ok(())
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn fmt_time_plain(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A Markdown table cell: no pipe, no line break.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `2 d 3 h 5 min 7 s`, zero units left out; `0 s` for nothing.
pub(super) fn fmt_duration(d: TimeDelta) -> String {
    let mut secs = d.num_seconds().max(0);
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)] {
        let n = secs / size;
        secs %= size;
        if n > 0 {
            parts.push(format!("{n} {unit}"));
        }
    }
    if parts.is_empty() {
        "0 s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::minutes(h)
    }

    #[test]
    fn union_of_intervals() {
        assert_eq!(union_measure(vec![]), TimeDelta::zero());
        assert_eq!(
            union_measure(vec![
                (t(0), t(60)),
                (t(30), t(90)),
                (t(200), t(210)),
                (t(40), t(50))
            ]),
            TimeDelta::minutes(100)
        );
        assert_eq!(
            union_measure(vec![(t(0), t(10)), (t(10), t(20))]),
            TimeDelta::minutes(20)
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(TimeDelta::zero()), "0 s");
        assert_eq!(fmt_duration(TimeDelta::minutes(150)), "2 h 30 min");
        assert_eq!(fmt_duration(TimeDelta::seconds(86_400 + 7)), "1 d 7 s");
        assert_eq!(fmt_duration(TimeDelta::seconds(-5)), "0 s");
    }

    #[test]
    fn cells_are_escaped() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn empty_period_is_fully_available() {
        let r = Retex::compute(Vec::new(), t(10), t(0), t(10));
        assert_eq!(r.period_end, r.period_start);
        assert_eq!(r.availability, 1.0);
        assert!(r.to_markdown().contains("_No incident in this period._"));
    }
}
