//! The body of `GET /api/dashboard`, serialized once per second and reused.
//!
//! The dashboard is about 50 kB of JSON: serializing it for every request
//! would cap the server at a few thousand answers a second. What it shows
//! changes only with the failover service's snapshot, the prediction
//! chain's answer, the prediction archive, and the clock in whole seconds
//! (ages are whole seconds; the KPIs are computed for the current second).
//! So the body is built once for each [`DashboardKey`] and served as a
//! cheap clone of the same bytes.
//!
//! The circuit breaker's view is the exception: while the breaker is open
//! its `retry_after_s` counts down by the millisecond. It is serialized
//! last, and each answer gets the breaker of its request: when it differs
//! from the cached body's, the body's head is reused and only the tail is
//! written again (and kept for the next request).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use spe_core::{ChainResult, WeatherSnapshot};

use crate::api::BreakerView;

/// What a dashboard body depends on, besides the breaker.
#[derive(Debug, Clone)]
pub struct DashboardKey {
    /// The failover service's snapshot.
    pub snapshot: Arc<WeatherSnapshot>,
    /// The chain's latest answer and the time to measure its age at, to
    /// the second.
    pub predictions: Option<(Arc<ChainResult>, DateTime<Utc>)>,
    /// The prediction archive's revision (0 without an archive).
    pub archive_revision: u64,
    /// The time of the request, to the second.
    pub now: DateTime<Utc>,
}

/// `t` to the second, rounded down.
pub fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

impl DashboardKey {
    /// The key of a request at `now` (rounded down to the second; so is the
    /// predictions' `at`).
    pub fn new(
        snapshot: Arc<WeatherSnapshot>,
        predictions: Option<(Arc<ChainResult>, DateTime<Utc>)>,
        archive_revision: u64,
        now: DateTime<Utc>,
    ) -> Self {
        DashboardKey {
            snapshot,
            predictions: predictions.map(|(result, at)| (result, whole_second(at))),
            archive_revision,
            now: whole_second(now),
        }
    }

    /// Whether both keys give the same body: the same snapshot and answer
    /// (the same allocations, which the cache keeps alive), revision and
    /// seconds.
    fn same(&self, other: &DashboardKey) -> bool {
        let predictions = match (&self.predictions, &other.predictions) {
            (None, None) => true,
            (Some((a, at_a)), Some((b, at_b))) => Arc::ptr_eq(a, b) && at_a == at_b,
            _ => false,
        };
        Arc::ptr_eq(&self.snapshot, &other.snapshot)
            && predictions
            && self.archive_revision == other.archive_revision
            && self.now == other.now
    }
}

/// A body and what it was made from.
#[derive(Debug)]
struct Entry {
    key: DashboardKey,
    breaker: BreakerView,
    body: Bytes,
    /// The length of the body before `,"breaker":…}`; `None` if the body
    /// does not end with the breaker (then it cannot be spliced).
    head_len: Option<usize>,
}

/// The `,"breaker":{…}}` that ends a body.
fn breaker_tail(breaker: &BreakerView) -> Result<Vec<u8>, serde_json::Error> {
    let mut tail = Vec::with_capacity(128);
    tail.extend_from_slice(br#","breaker":"#);
    serde_json::to_writer(&mut tail, breaker)?;
    tail.push(b'}');
    Ok(tail)
}

impl Entry {
    fn new(key: DashboardKey, breaker: BreakerView, body: Vec<u8>) -> Self {
        let head_len = breaker_tail(&breaker)
            .ok()
            .filter(|tail| body.ends_with(tail))
            .map(|tail| body.len() - tail.len());
        if head_len.is_none() {
            tracing::warn!(
                "the dashboard body does not end with the breaker; it is rebuilt when the breaker changes"
            );
        }
        Entry {
            key,
            breaker,
            body: Bytes::from(body),
            head_len,
        }
    }

    /// The body with `breaker` instead, if it can be spliced.
    fn with_breaker(&self, breaker: BreakerView) -> Option<Entry> {
        let head_len = self.head_len?;
        let tail = breaker_tail(&breaker).ok()?;
        let mut body = Vec::with_capacity(head_len + tail.len());
        body.extend_from_slice(self.body.get(..head_len)?);
        body.extend_from_slice(&tail);
        Some(Entry {
            key: self.key.clone(),
            breaker,
            body: Bytes::from(body),
            head_len: Some(head_len),
        })
    }
}

/// The last dashboard body built. Shared by every request.
///
/// ```
/// use std::sync::Arc;
/// use spe_core::{FailoverService, Replay, Site};
/// use spe_server_example::api::BreakerView;
/// use spe_server_example::dashboard_cache::{DashboardCache, DashboardKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let source = Replay::from_csv_str(
/// #     "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n2020-01-01T00:00Z,1,0,50,3\n",
/// # )?;
/// let service = FailoverService::builder(Site::paris(), Arc::new(source)).build()?;
/// let cache = DashboardCache::default();
/// let breaker = BreakerView::from(service.breaker().metrics());
/// let key = || DashboardKey::new(service.snapshot(), None, 0, service.now());
/// let mut builds = 0;
/// let mut build = |_: &DashboardKey, b: &BreakerView| {
///     builds += 1;
///     // The breaker last.
///     let breaker = serde_json::to_string(b)?;
///     Ok::<_, serde_json::Error>(format!(r#"{{"mode":"estimation","breaker":{breaker}}}"#).into_bytes())
/// };
/// let first = cache.body(key(), breaker, &mut build)?;
/// let again = cache.body(key(), breaker, &mut build)?;
/// assert_eq!(first, again);
/// # // (The same second, almost surely; a new second would build again.)
/// assert!(builds <= 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct DashboardCache {
    entry: Mutex<Option<Arc<Entry>>>,
}

impl DashboardCache {
    fn entry(&self) -> MutexGuard<'_, Option<Arc<Entry>>> {
        self.entry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The body for `key` with `breaker`: the cached one when the key is
    /// the same (its breaker replaced if it differs), else the one `build`
    /// makes, which must serialize `breaker` as the last field.
    ///
    /// # Errors
    ///
    /// What `build` returns.
    pub fn body<E>(
        &self,
        key: DashboardKey,
        breaker: BreakerView,
        build: impl FnOnce(&DashboardKey, &BreakerView) -> Result<Vec<u8>, E>,
    ) -> Result<Bytes, E> {
        let cached = self.entry().clone();
        if let Some(entry) = cached.filter(|e| e.key.same(&key)) {
            if entry.breaker == breaker {
                return Ok(entry.body.clone());
            }
            if let Some(spliced) = entry.with_breaker(breaker) {
                let body = spliced.body.clone();
                *self.entry() = Some(Arc::new(spliced));
                return Ok(body);
            }
        }
        let body = build(&key, &breaker)?;
        let entry = Entry::new(key, breaker, body);
        let body = entry.body.clone();
        *self.entry() = Some(Arc::new(entry));
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Behaviour, rig_with};
    use spe_core::BreakerState;

    fn breaker(retry_after_s: Option<f64>) -> BreakerView {
        BreakerView {
            state: if retry_after_s.is_some() {
                BreakerState::Open
            } else {
                BreakerState::Closed
            },
            retry_after_s,
            failure_rate: 0.5,
            window_calls: 4,
            open_attempt: 0,
        }
    }

    /// A body like the dashboard's: the breaker last.
    #[derive(serde::Serialize)]
    struct Body<'a> {
        now: String,
        revision: u64,
        breaker: &'a BreakerView,
    }

    fn build(
        counter: &mut usize,
    ) -> impl FnMut(&DashboardKey, &BreakerView) -> Result<Vec<u8>, serde_json::Error> + '_ {
        move |key, breaker| {
            *counter += 1;
            serde_json::to_vec(&Body {
                now: key.now.to_rfc3339(),
                revision: key.archive_revision,
                breaker,
            })
        }
    }

    fn parse(body: &Bytes) -> serde_json::Value {
        serde_json::from_slice(body).expect("JSON")
    }

    #[tokio::test]
    async fn a_body_is_built_once_per_key_and_the_breaker_is_spliced() {
        let rig = rig_with(Behaviour::Refused, false);
        let cache = DashboardCache::default();
        let t = crate::test_support::t0();
        let key = |ms: i64, revision: u64| {
            DashboardKey::new(
                rig.service.snapshot(),
                None,
                revision,
                t + chrono::Duration::milliseconds(ms),
            )
        };
        let mut builds = 0;
        let first = cache
            .body(key(0, 0), breaker(None), build(&mut builds))
            .expect("built");
        // Within the same second: the same bytes.
        let again = cache
            .body(key(999, 0), breaker(None), build(&mut builds))
            .expect("cached");
        assert_eq!(builds, 1);
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same allocation");

        // Another breaker: spliced, not rebuilt; equal to a fresh build.
        let open = breaker(Some(12.5));
        let spliced = cache
            .body(key(500, 0), open, build(&mut builds))
            .expect("spliced");
        assert_eq!(builds, 1);
        let mut fresh = 0;
        let rebuilt = DashboardCache::default()
            .body(key(0, 0), open, build(&mut fresh))
            .expect("built");
        assert_eq!(parse(&spliced), parse(&rebuilt));
        assert_eq!(spliced, rebuilt, "byte for byte");
        assert_eq!(parse(&spliced)["breaker"]["retry_after_s"], 12.5);
        // The spliced body is kept for the next request with that breaker.
        let kept = cache
            .body(key(600, 0), open, build(&mut builds))
            .expect("cached");
        assert_eq!(kept.as_ptr(), spliced.as_ptr());

        // A new second, a new archive revision, a new snapshot: rebuilt.
        cache
            .body(key(1000, 0), open, build(&mut builds))
            .expect("built");
        assert_eq!(builds, 2);
        cache
            .body(key(1000, 1), open, build(&mut builds))
            .expect("built");
        assert_eq!(builds, 3);
        rig.service.refresh().await;
        cache
            .body(key(1000, 1), open, build(&mut builds))
            .expect("built");
        assert_eq!(builds, 4);
    }

    #[test]
    fn a_body_not_ending_with_the_breaker_is_rebuilt_when_it_changes() {
        let rig = rig_with(Behaviour::Refused, false);
        let cache = DashboardCache::default();
        let key = || DashboardKey::new(rig.service.snapshot(), None, 0, crate::test_support::t0());
        let mut builds = 0;
        // The breaker first.
        let mut odd = |_: &DashboardKey, b: &BreakerView| {
            builds += 1;
            let breaker = serde_json::to_string(b)?;
            Ok::<_, serde_json::Error>(format!(r#"{{"breaker":{breaker},"zzz":1}}"#).into_bytes())
        };
        cache.body(key(), breaker(None), &mut odd).expect("built");
        let body = cache
            .body(key(), breaker(Some(1.0)), &mut odd)
            .expect("built");
        assert_eq!(builds, 2);
        assert_eq!(parse(&body)["breaker"]["retry_after_s"], 1.0);
    }

    #[test]
    fn whole_seconds_round_down() {
        let t = crate::test_support::t0() + chrono::Duration::nanoseconds(999_999_999);
        assert_eq!(whole_second(t), crate::test_support::t0());
    }
}
