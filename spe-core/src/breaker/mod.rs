//! A circuit breaker for any async operation.
//!
//! ```text
//!            failure or slow-call rate ≥ threshold
//!   closed ────────────────────────────────────────▶ open
//!     ▲                                               │ open wait (backoff, jitter)
//!     │ every probe succeeded                         ▼
//!     └──────────────────────────────────────────── half_open ──▶ open (a probe failed)
//! ```
//!
//! The closed state — the hot path — takes no lock: one atomic load to admit
//! a call, two clock reads, and for a count window nothing more while it is
//! full of fast successes; any other outcome takes its ring slot and updates
//! the window's counts by compare-and-swap (a recorder landing on a slot
//! another one holds waits for it: only with more calls ending at once than
//! the window has slots).
//! The timeout sits inside the breaker and its timer is only set if the
//! operation does not finish on its first poll. Every state change takes a
//! mutex, publishes exactly one [`StateChange`], and starts a new *epoch*:
//! results of calls admitted in an earlier epoch are dropped, so they cannot
//! extend an open state, fire a second event or count in the new window.

mod clock;
mod config;
mod error;
mod events;
mod window;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::broadcast;

pub(crate) use clock::WallClock;
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use config::{BreakerConfig, BreakerConfigError, SlidingWindow};
pub use error::{BreakerError, Classify, ErrorClass, Rejected};
pub use events::{BreakerMetrics, BreakerState, StateChange, TransitionReason};
use window::{Counts, Outcome, Window};

/// A callback run on every state change (while the change is being made:
/// keep it short and do not call the breaker from it).
type Callback = Box<dyn Fn(&StateChange) + Send + Sync>;

/// A circuit breaker. Clones share one state.
///
/// ```
/// use std::time::Duration;
/// use spe_core::{BreakerConfig, BreakerError, BreakerState, CircuitBreaker, ManualClock};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let clock = ManualClock::new();
/// let config = BreakerConfig { jitter: 0.0, ..BreakerConfig::default() };
/// let breaker = CircuitBreaker::with_clock(config, clock.clone()).unwrap();
///
/// // Two failures in a row trip the default breaker...
/// for _ in 0..2 {
///     let r: Result<(), _> = breaker.call(|| async { Err(std::io::Error::other("boom")) }).await;
///     assert!(matches!(r, Err(BreakerError::Inner(_))));
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
///
/// // ...then calls are refused without running, with the time to wait.
/// let r = breaker.call(|| async { Ok::<_, std::io::Error>(1) }).await;
/// let Err(BreakerError::Rejected(rejected)) = r else { panic!() };
/// assert_eq!(rejected.retry_after, Some(Duration::from_secs(30)));
///
/// // After the open wait, one probe goes; its success closes the circuit.
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(breaker.call(|| async { Ok::<_, std::io::Error>(2) }).await.unwrap(), 2);
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// # });
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    /// `state code | epoch << 8`.
    word: AtomicU64,
    /// Clock time (ns) at which an open circuit lets a probe go.
    open_until: AtomicU64,
    window: Window,
    control: Mutex<Control>,
    events: broadcast::Sender<StateChange>,
    rejected: AtomicU64,
    timeouts: AtomicU64,
    ignored: AtomicU64,
    transitions: AtomicU64,
}

struct Control {
    since: Duration,
    attempt: u32,
    probes_in_flight: u32,
    probe_successes: u32,
    rng: u64,
    callbacks: Vec<Callback>,
}

#[inline]
fn state_of(word: u64) -> BreakerState {
    BreakerState::from_code(word & 0xff)
}

#[inline]
fn epoch_of(word: u64) -> u16 {
    (word >> 8) as u16
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("config", &self.shared.config)
            .finish()
    }
}

/// What admission granted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PermitKind {
    Closed,
    Probe,
    PassThrough,
    /// The call has completed: nothing left to release.
    Done,
}

/// An admitted call. A probe permit dropped before completion (the call was
/// cancelled) frees its slot without recording anything.
///
/// Two machine words (`shared` and `meta = epoch | kind << 16`): the permit
/// is moved through `Result`s on the hot path, and word-sized fields keep
/// those moves free of store-forwarding stalls.
struct Permit<'a> {
    shared: &'a Shared,
    meta: u64,
}

impl<'a> Permit<'a> {
    #[inline]
    fn new(shared: &'a Shared, kind: PermitKind, epoch: u16) -> Self {
        let k = match kind {
            PermitKind::Closed => 0,
            PermitKind::Probe => 1,
            PermitKind::PassThrough => 2,
            PermitKind::Done => 3,
        };
        Permit {
            shared,
            meta: u64::from(epoch) | (k << 16),
        }
    }

    #[inline]
    fn kind(&self) -> PermitKind {
        match self.meta >> 16 {
            0 => PermitKind::Closed,
            1 => PermitKind::Probe,
            2 => PermitKind::PassThrough,
            _ => PermitKind::Done,
        }
    }

    #[inline]
    fn epoch(&self) -> u16 {
        self.meta as u16
    }

    #[inline]
    fn finish(&mut self) {
        self.meta = (self.meta & 0xffff) | (3 << 16);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.kind() == PermitKind::Probe {
            self.shared.release_probe(self.epoch());
        }
    }
}

/// The end of a call, as the breaker sees it.
#[derive(Clone, Copy)]
enum Ending {
    Success { slow: bool },
    Failure { slow: bool },
    Ignored,
}

impl CircuitBreaker {
    /// A breaker on the system clock.
    pub fn new(config: BreakerConfig) -> Result<Self, BreakerConfigError> {
        CircuitBreaker::with_clock(config, SystemClock::new())
    }

    /// A breaker on the given clock (a [`ManualClock`] in tests).
    pub fn with_clock(
        config: BreakerConfig,
        clock: impl Clock,
    ) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9);
        let since = clock.now();
        Ok(CircuitBreaker {
            shared: Arc::new(Shared {
                window: Window::new(config.window),
                config,
                clock: Arc::new(clock),
                word: AtomicU64::new(BreakerState::Closed.code()),
                open_until: AtomicU64::new(0),
                control: Mutex::new(Control {
                    since,
                    attempt: 0,
                    probes_in_flight: 0,
                    probe_successes: 0,
                    rng: seed | 1,
                    callbacks: Vec::new(),
                }),
                events: broadcast::channel(64).0,
                rejected: AtomicU64::new(0),
                timeouts: AtomicU64::new(0),
                ignored: AtomicU64::new(0),
                transitions: AtomicU64::new(0),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// The breaker's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// The current state. An open circuit whose wait has passed reports
    /// `open` until the next call moves it to `half_open`.
    #[inline]
    pub fn state(&self) -> BreakerState {
        state_of(self.shared.word.load(Ordering::Acquire))
    }

    /// In the open state, the time until a probe may go (zero if it may go now).
    pub fn retry_after(&self) -> Option<Duration> {
        match self.state() {
            BreakerState::Open => {
                let until = self.shared.open_until.load(Ordering::Acquire);
                Some(Duration::from_nanos(
                    until.saturating_sub(nanos(self.shared.clock.now())),
                ))
            }
            _ => None,
        }
    }

    /// Receive every state change from now on. A receiver that falls more
    /// than 64 changes behind loses the oldest (see [`broadcast`]).
    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.shared.events.subscribe()
    }

    /// Run `callback` on every state change, synchronously, in order.
    pub fn on_state_change(&self, callback: impl Fn(&StateChange) + Send + Sync + 'static) {
        self.shared.lock().callbacks.push(Box::new(callback));
    }

    /// Run `operation` through the breaker, classifying its errors with
    /// [`Classify`].
    pub async fn call<F, Fut, T, E>(&self, operation: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        self.call_classified(operation, |e: &E| e.classify()).await
    }

    /// Run `operation` through the breaker, classifying its errors with `classify`.
    ///
    /// Refused calls return [`BreakerError::Rejected`] at once and never run
    /// `operation`. The call timeout applies inside (a timeout is a failure);
    /// a call lasting `slow_call_duration` or more is slow. Dropping the
    /// returned future (the caller's own cancellation) records nothing.
    pub async fn call_classified<F, Fut, T, E, C>(
        &self,
        operation: F,
        classify: C,
    ) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnOnce(&E) -> ErrorClass,
    {
        let shared = &*self.shared;
        let mut permit = shared.admit().map_err(BreakerError::Rejected)?;
        let clock = &*shared.clock;
        let start = clock.now();
        let result = match shared.config.call_timeout {
            None => Ok(operation().await),
            Some(timeout) => {
                let mut fut = pin!(operation());
                let mut sleep: Option<Sleep> = None;
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                        return Poll::Ready(Ok(v));
                    }
                    // Still pending: only now set the timer, for what is left.
                    let timer = sleep.get_or_insert_with(|| {
                        clock.sleep(timeout.saturating_sub(clock.now().saturating_sub(start)))
                    });
                    timer.as_mut().poll(cx).map(|()| Err(timeout))
                })
                .await
            }
        };
        if permit.kind() == PermitKind::PassThrough {
            permit.finish();
            return match result {
                Ok(r) => r.map_err(BreakerError::Inner),
                Err(after) => Err(BreakerError::Timeout { after }),
            };
        }
        let end = clock.now();
        let slow = end.saturating_sub(start) >= shared.config.slow_call_duration;
        let (ending, out) = match result {
            Ok(Ok(v)) => (Ending::Success { slow }, Ok(v)),
            Ok(Err(e)) => match classify(&e) {
                ErrorClass::Failure => (Ending::Failure { slow }, Err(BreakerError::Inner(e))),
                ErrorClass::Ignore => (Ending::Ignored, Err(BreakerError::Inner(e))),
            },
            Err(after) => {
                shared.timeouts.fetch_add(1, Ordering::Relaxed);
                (
                    Ending::Failure { slow: true },
                    Err(BreakerError::Timeout { after }),
                )
            }
        };
        shared.complete(&permit, ending, end);
        permit.finish();
        out
    }

    /// Refuse every call until [`reset`](Self::reset). Already forced open:
    /// nothing happens.
    pub fn force_open(&self) {
        let shared = &*self.shared;
        let mut control = shared.lock();
        shared.transition(
            &mut control,
            BreakerState::ForcedOpen,
            TransitionReason::ForcedOpen,
            shared.clock.now(),
        );
    }

    /// Let every call through and record nothing, until [`reset`](Self::reset).
    /// Already disabled: nothing happens.
    pub fn disable(&self) {
        let shared = &*self.shared;
        let mut control = shared.lock();
        shared.transition(
            &mut control,
            BreakerState::Disabled,
            TransitionReason::Disabled,
            shared.clock.now(),
        );
    }

    /// Back to `closed` with an empty window and no backoff. A closed breaker
    /// stays closed (no [`StateChange`], no transition counted) but its
    /// window is emptied, and calls admitted before the reset are not
    /// recorded.
    pub fn reset(&self) {
        let shared = &*self.shared;
        let mut control = shared.lock();
        control.attempt = 0;
        shared.transition(
            &mut control,
            BreakerState::Closed,
            TransitionReason::Reset,
            shared.clock.now(),
        );
    }

    /// A snapshot of the metrics.
    pub fn metrics(&self) -> BreakerMetrics {
        let shared = &*self.shared;
        let now = shared.clock.now();
        let control = shared.lock();
        let counts = shared.window.counts(now);
        let rate = |n: u32| {
            if counts.calls == 0 {
                0.0
            } else {
                f64::from(n) / f64::from(counts.calls)
            }
        };
        BreakerMetrics {
            state: self.state(),
            time_in_state: now.saturating_sub(control.since),
            window_calls: counts.calls,
            window_failures: counts.failures,
            window_slow_calls: counts.slow,
            failure_rate: rate(counts.failures),
            slow_call_rate: rate(counts.slow),
            rejected: shared.rejected.load(Ordering::Relaxed),
            timeouts: shared.timeouts.load(Ordering::Relaxed),
            ignored: shared.ignored.load(Ordering::Relaxed),
            transitions: shared.transitions.load(Ordering::Relaxed),
            open_attempt: control.attempt,
            retry_after: self.retry_after(),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admit a call or refuse it. Closed and disabled states take one atomic load.
    #[inline]
    fn admit(&self) -> Result<Permit<'_>, Rejected> {
        let word = self.word.load(Ordering::Acquire);
        let kind = match state_of(word) {
            BreakerState::Closed => PermitKind::Closed,
            BreakerState::Disabled => PermitKind::PassThrough,
            _ => return self.admit_slow(),
        };
        Ok(Permit::new(self, kind, epoch_of(word)))
    }

    #[cold]
    fn admit_slow(&self) -> Result<Permit<'_>, Rejected> {
        let now = self.clock.now();
        let word = self.word.load(Ordering::Acquire);
        if state_of(word) == BreakerState::Open {
            let until = self.open_until.load(Ordering::Acquire);
            if nanos(now) < until {
                return Err(self.reject(
                    BreakerState::Open,
                    Some(Duration::from_nanos(until - nanos(now))),
                ));
            }
        }
        let mut control = self.lock();
        let word = self.word.load(Ordering::Acquire);
        let permit = |kind, word| Permit::new(self, kind, epoch_of(word));
        match state_of(word) {
            BreakerState::Closed => Ok(permit(PermitKind::Closed, word)),
            BreakerState::Disabled => Ok(permit(PermitKind::PassThrough, word)),
            BreakerState::ForcedOpen => Err(self.reject(BreakerState::ForcedOpen, None)),
            BreakerState::Open => {
                let until = self.open_until.load(Ordering::Acquire);
                if nanos(now) < until {
                    return Err(self.reject(
                        BreakerState::Open,
                        Some(Duration::from_nanos(until - nanos(now))),
                    ));
                }
                self.transition(
                    &mut control,
                    BreakerState::HalfOpen,
                    TransitionReason::OpenWaitElapsed,
                    now,
                );
                control.probes_in_flight = 1;
                Ok(permit(PermitKind::Probe, self.word.load(Ordering::Acquire)))
            }
            BreakerState::HalfOpen => {
                if control.probes_in_flight < self.config.half_open_probes {
                    control.probes_in_flight += 1;
                    Ok(permit(PermitKind::Probe, word))
                } else {
                    // Every probe slot is taken: the answer comes within a call timeout.
                    let wait = self.config.call_timeout.unwrap_or(self.config.open_wait);
                    Err(self.reject(BreakerState::HalfOpen, Some(wait)))
                }
            }
        }
    }

    fn reject(&self, state: BreakerState, retry_after: Option<Duration>) -> Rejected {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        Rejected { state, retry_after }
    }

    /// Record the end of an admitted call.
    #[inline]
    fn complete(&self, permit: &Permit<'_>, ending: Ending, now: Duration) {
        match permit.kind() {
            PermitKind::PassThrough | PermitKind::Done => {}
            PermitKind::Closed => {
                let outcome = match ending {
                    Ending::Success { slow } => Outcome {
                        failure: false,
                        slow,
                    },
                    Ending::Failure { slow } => Outcome {
                        failure: true,
                        slow,
                    },
                    Ending::Ignored => {
                        self.ignored.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                if let Some(counts) = self.window.record(permit.epoch(), outcome, now) {
                    if let Some(reason) = self.trip_reason(counts) {
                        self.trip(permit.epoch(), reason, now);
                    }
                }
            }
            PermitKind::Probe => self.complete_probe(permit.epoch(), ending, now),
        }
    }

    #[inline]
    fn trip_reason(&self, c: Counts) -> Option<TransitionReason> {
        // `minimum_calls` is capped by a count window's size. A snapshot
        // with more failures or slow calls than calls cannot come from the
        // window (see `window::CountWindow`); were one to appear, it is
        // ignored rather than trusted.
        if c.calls < self.config.effective_minimum_calls()
            || (c.failures == 0 && c.slow == 0)
            || c.failures > c.calls
            || c.slow > c.calls
        {
            return None;
        }
        let calls = f64::from(c.calls);
        let failure_rate = f64::from(c.failures) / calls;
        let slow_rate = f64::from(c.slow) / calls;
        if failure_rate >= self.config.failure_rate {
            Some(TransitionReason::FailureRate {
                rate: failure_rate,
                calls: c.calls,
            })
        } else if slow_rate >= self.config.slow_call_rate {
            Some(TransitionReason::SlowCallRate {
                rate: slow_rate,
                calls: c.calls,
            })
        } else {
            None
        }
    }

    #[cold]
    fn trip(&self, epoch: u16, reason: TransitionReason, now: Duration) {
        let mut control = self.lock();
        let word = self.word.load(Ordering::Acquire);
        // Only the epoch that measured the rate may trip, and only once.
        if state_of(word) == BreakerState::Closed && epoch_of(word) == epoch {
            control.attempt = 0;
            self.transition(&mut control, BreakerState::Open, reason, now);
        }
    }

    #[cold]
    fn complete_probe(&self, epoch: u16, ending: Ending, now: Duration) {
        let mut control = self.lock();
        let word = self.word.load(Ordering::Acquire);
        if state_of(word) != BreakerState::HalfOpen || epoch_of(word) != epoch {
            return; // a probe of an earlier half-open period: its slot is gone
        }
        control.probes_in_flight = control.probes_in_flight.saturating_sub(1);
        match ending {
            Ending::Ignored => {
                self.ignored.fetch_add(1, Ordering::Relaxed);
            }
            Ending::Failure { .. } => {
                control.attempt = control.attempt.saturating_add(1);
                self.transition(
                    &mut control,
                    BreakerState::Open,
                    TransitionReason::ProbeFailed,
                    now,
                );
            }
            Ending::Success { .. } => {
                control.probe_successes += 1;
                if control.probe_successes >= self.config.half_open_probes {
                    control.attempt = 0;
                    self.transition(
                        &mut control,
                        BreakerState::Closed,
                        TransitionReason::ProbesSucceeded,
                        now,
                    );
                }
            }
        }
    }

    fn release_probe(&self, epoch: u16) {
        let mut control = self.lock();
        let word = self.word.load(Ordering::Acquire);
        if state_of(word) == BreakerState::HalfOpen && epoch_of(word) == epoch {
            control.probes_in_flight = control.probes_in_flight.saturating_sub(1);
        }
    }

    /// Change state (the control lock held): new epoch, window and timers set
    /// up, exactly one event published.
    ///
    /// A move to the current state (only the operator's `reset`,
    /// `force_open` and `disable` can ask for one) is no state change: no
    /// event, no transition counted. `reset` of a closed breaker still
    /// empties its window, in a new epoch so that calls admitted before it
    /// are not recorded (a window reset within its own epoch would leave its
    /// slots counted).
    fn transition(
        &self,
        control: &mut Control,
        to: BreakerState,
        reason: TransitionReason,
        now: Duration,
    ) {
        let word = self.word.load(Ordering::Acquire);
        let from = state_of(word);
        let epoch = epoch_of(word).wrapping_add(1);
        if from == to {
            if to == BreakerState::Closed {
                self.window.reset(epoch);
                self.word
                    .store(to.code() | (u64::from(epoch) << 8), Ordering::Release);
            }
            return;
        }
        let mut open_wait = None;
        match to {
            BreakerState::Closed => self.window.reset(epoch),
            BreakerState::Open => {
                let wait = self.open_wait(control);
                self.open_until
                    .store(nanos(now).saturating_add(nanos(wait)), Ordering::Release);
                open_wait = Some(wait);
            }
            _ => {}
        }
        control.probes_in_flight = 0;
        control.probe_successes = 0;
        control.since = now;
        self.word
            .store(to.code() | (u64::from(epoch) << 8), Ordering::Release);
        self.transitions.fetch_add(1, Ordering::Relaxed);
        let change = StateChange {
            from,
            to,
            reason,
            at: now,
            open_wait,
        };
        tracing::info!(from = %from, to = %to, reason = ?reason, "circuit breaker state change");
        let _ = self.events.send(change);
        for callback in &control.callbacks {
            callback(&change);
        }
    }

    /// The open wait after `control.attempt` failed probes, jitter drawn
    /// and cap applied after it ([`BreakerConfig::open_wait_for`]).
    fn open_wait(&self, control: &mut Control) -> Duration {
        if self.config.jitter == 0.0 {
            return self.config.backoff(control.attempt);
        }
        // xorshift64*: plenty for spreading waits.
        let mut x = control.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        control.rng = x;
        let u = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        self.config.open_wait_for(control.attempt, u)
    }
}

#[cfg(test)]
mod tests;
