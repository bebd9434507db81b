//! The breaker's clock: real by default, injectable for tests.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A future that completes after a clock's duration has passed.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A monotonic clock: the time since an arbitrary origin, and sleeping.
///
/// The breaker reads it on every call (so `now` must be cheap) and sleeps on
/// it only when a call is still pending on its first poll (for the timeout).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Monotonic time since the clock's origin.
    fn now(&self) -> Duration;
    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The real clock: the CPU's time-stamp counter (through `quanta`, which
/// falls back to the OS monotonic clock where the counter is unreliable) for
/// reading, tokio's timer for sleeping.
///
/// Reading the counter costs a few nanoseconds against ~25 ns for
/// `std::time::Instant::now()` on a virtual machine: the breaker reads the
/// clock twice per call, so this is most of its overhead budget.
#[derive(Debug, Clone)]
pub struct SystemClock {
    clock: quanta::Clock,
    origin: quanta::Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.now();
        SystemClock { clock, origin }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Duration {
        self.clock.now().saturating_duration_since(self.origin)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that moves only when told to, shared by all its clones and safe
/// across threads (tokio worker threads included): the way to test timing
/// without sleeping.
///
/// ```
/// use std::time::Duration;
/// use spe_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let other = clock.clone();
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(other.now(), Duration::from_secs(30));
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Default)]
struct ManualInner {
    now_ns: AtomicU64,
    next_id: AtomicU64,
    sleepers: Mutex<HashMap<u64, (u64, Waker)>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Move the clock forward and wake the sleepers whose time has come.
    pub fn advance(&self, by: Duration) {
        let now = self
            .inner
            .now_ns
            .fetch_add(nanos(by), Ordering::AcqRel)
            .saturating_add(nanos(by));
        let due: Vec<Waker> = {
            let mut sleepers = self
                .inner
                .sleepers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let ids: Vec<u64> = sleepers
                .iter()
                .filter(|(_, (deadline, _))| *deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| sleepers.remove(&id).map(|(_, w)| w))
                .collect()
        };
        due.into_iter().for_each(Waker::wake);
    }

    /// Number of sleeps waiting on this clock (for tests that must know a
    /// call is pending before moving time).
    pub fn sleepers(&self) -> usize {
        self.inner
            .sleepers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.inner.now_ns.load(Ordering::Acquire))
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let deadline = nanos(self.now()).saturating_add(nanos(duration));
        Box::pin(ManualSleep {
            inner: self.inner.clone(),
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            deadline,
        })
    }
}

struct ManualSleep {
    inner: Arc<ManualInner>,
    id: u64,
    deadline: u64,
}

impl Future for ManualSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut sleepers = self
            .inner
            .sleepers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.inner.now_ns.load(Ordering::Acquire) >= self.deadline {
            sleepers.remove(&self.id);
            return Poll::Ready(());
        }
        sleepers.insert(self.id, (self.deadline, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        self.inner
            .sleepers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Wall time for timestamps, beside a monotonic [`Clock`] for timeouts.
///
/// Without an injected clock it is the system's wall time read at each call
/// (`Utc::now()`), so a long-running service follows the system's
/// corrections: an NTP step after booting without a real-time clock, or the
/// slow drift between the time-stamp counter and UTC. With an injected clock
/// it is the wall time given at the clock's reading then plus the clock's
/// progress since, so a test moves both together with one `advance`.
#[derive(Debug, Clone)]
pub(crate) enum WallClock {
    /// `Utc::now()`.
    System,
    /// `origin` + `clock.now()`.
    Offset {
        clock: Arc<dyn Clock>,
        origin: DateTime<Utc>,
    },
}

impl WallClock {
    /// The wall clock of a builder's `clock(clock, wall_now)` setting, and
    /// the monotonic clock to go with it: the system's without a setting.
    pub(crate) fn from_setting(
        setting: Option<(Arc<dyn Clock>, DateTime<Utc>)>,
    ) -> (Arc<dyn Clock>, WallClock) {
        match setting {
            Some((clock, wall_now)) => {
                let reading = chrono::Duration::from_std(clock.now()).unwrap_or_default();
                let origin = wall_now - reading;
                (clock.clone(), WallClock::Offset { clock, origin })
            }
            None => (Arc::new(SystemClock::new()), WallClock::System),
        }
    }

    /// The wall time now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        match self {
            WallClock::System => Utc::now(),
            WallClock::Offset { clock, origin } => {
                *origin + chrono::Duration::from_std(clock.now()).unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_wall_clock_moves_with_its_clock() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(10));
        let wall_now = DateTime::parse_from_rfc3339("2026-01-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (monotonic, wall) = WallClock::from_setting(Some((Arc::new(clock.clone()), wall_now)));
        // The given wall time is the one at the clock's current reading, not at zero.
        assert_eq!(wall.now(), wall_now);
        clock.advance(Duration::from_secs(5));
        assert_eq!(wall.now(), wall_now + chrono::Duration::seconds(5));
        assert_eq!(monotonic.now(), Duration::from_secs(15));
    }

    #[test]
    fn the_default_wall_clock_is_the_systems() {
        let (monotonic, wall) = WallClock::from_setting(None);
        assert!(matches!(wall, WallClock::System));
        let before = Utc::now();
        let now = wall.now();
        assert!(before <= now && now <= Utc::now());
        // The monotonic clock starts at its own origin.
        assert!(monotonic.now() < Duration::from_secs(60));
    }

    #[test]
    fn system_clock_follows_real_time() {
        let clock = SystemClock::new();
        let start = std::time::Instant::now();
        let a = clock.now();
        while start.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let b = clock.now();
        let elapsed = b - a;
        assert!(
            elapsed >= Duration::from_millis(15) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn manual_sleep_completes_only_when_advanced() {
        let clock = ManualClock::new();
        let sleep = clock.sleep(Duration::from_secs(5));
        let handle = tokio::spawn(sleep);
        // Wait until the sleep has registered (polled once).
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(4));
        assert!(!handle.is_finished());
        clock.advance(Duration::from_secs(1));
        handle.await.unwrap();
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn dropped_sleep_unregisters() {
        let clock = ManualClock::new();
        let mut sleep = clock.sleep(Duration::from_secs(1));
        let waker = Waker::noop();
        assert!(
            sleep
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
        assert_eq!(clock.sleepers(), 1);
        drop(sleep);
        assert_eq!(clock.sleepers(), 0);
    }
}
