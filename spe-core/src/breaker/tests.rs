//! Tests of the breaker's behaviours, on an injected clock.

use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Waker};

use proptest::prelude::*;
use tokio::sync::oneshot;

use super::*;
use crate::source::SourceError;

fn config() -> BreakerConfig {
    BreakerConfig {
        jitter: 0.0,
        ..BreakerConfig::default()
    }
}

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    (
        CircuitBreaker::with_clock(config, clock.clone()).unwrap(),
        clock,
    )
}

#[derive(Debug)]
struct Boom;
impl Classify for Boom {}

async fn ok(b: &CircuitBreaker) -> Result<u32, BreakerError<Boom>> {
    b.call(|| async { Ok(1) }).await
}

async fn fail(b: &CircuitBreaker) -> Result<u32, BreakerError<Boom>> {
    b.call(|| async { Err(Boom) }).await
}

/// An operation that takes `d` on the manual clock, then succeeds.
async fn slow(
    b: &CircuitBreaker,
    clock: &ManualClock,
    d: Duration,
) -> Result<u32, BreakerError<Boom>> {
    b.call(|| async {
        clock.advance(d);
        Ok(1)
    })
    .await
}

#[tokio::test]
async fn trips_on_failure_rate_only_after_minimum_calls() {
    let (b, _) = breaker(BreakerConfig {
        minimum_calls: 4,
        ..config()
    });
    let mut events = b.subscribe();
    ok(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), BreakerState::Closed, "3 calls < minimum 4");
    ok(&b).await.unwrap(); // 4 calls, 2 failures: 50 % ≥ 50 %
    assert_eq!(b.state(), BreakerState::Open);
    let e = events.try_recv().unwrap();
    assert_eq!((e.from, e.to), (BreakerState::Closed, BreakerState::Open));
    assert!(matches!(
        e.reason,
        TransitionReason::FailureRate { calls: 4, .. }
    ));
    assert_eq!(e.open_wait, Some(Duration::from_secs(30)));
    assert!(events.try_recv().is_err(), "exactly one event");
}

/// The defaults as their table says: two failures in a row trip; one of
/// the first two calls failing is half of them and trips too; from the
/// third call on, one failure alone never does.
#[tokio::test]
async fn the_defaults_trip_as_documented() {
    for first_two in [[false, false], [true, false], [false, true]] {
        let (b, _) = breaker(config());
        for failing in first_two {
            if failing {
                fail(&b).await.unwrap_err();
            } else {
                ok(&b).await.unwrap();
            }
        }
        let expected = if first_two == [false, false] {
            BreakerState::Closed
        } else {
            BreakerState::Open
        };
        assert_eq!(b.state(), expected, "{first_two:?}");
    }
    let (b, _) = breaker(config());
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), BreakerState::Open, "two in a row");
    for calls_before in 2..10 {
        let (b, _) = breaker(config());
        for _ in 0..calls_before {
            ok(&b).await.unwrap();
        }
        fail(&b).await.unwrap_err();
        ok(&b).await.unwrap();
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "after {calls_before} calls"
        );
    }
}

#[tokio::test]
async fn successes_keep_it_closed() {
    let (b, _) = breaker(config());
    for i in 0..100 {
        if i % 3 == 2 {
            fail(&b).await.unwrap_err();
        } else {
            ok(&b).await.unwrap();
        }
    }
    assert_eq!(b.state(), BreakerState::Closed);
    let m = b.metrics();
    assert_eq!(m.window_calls, 10);
    assert!(m.failure_rate < 0.5);
}

#[tokio::test]
async fn slow_calls_trip_at_their_own_rate() {
    let (b, clock) = breaker(BreakerConfig {
        minimum_calls: 5,
        ..config()
    });
    for _ in 0..4 {
        slow(&b, &clock, Duration::from_secs(4)).await.unwrap();
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.metrics().window_slow_calls, 4);
    slow(&b, &clock, Duration::from_secs(3)).await.unwrap(); // exactly the slow duration
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test]
async fn client_errors_are_ignored_and_server_errors_count() {
    let (b, _) = breaker(config());
    let status = |status: u16| SourceError::Status {
        source_name: "test".into(),
        status,
        reason: String::new(),
    };
    for _ in 0..5 {
        let r: Result<(), _> = b.call(|| async { Err(status(429)) }).await;
        assert!(matches!(
            r,
            Err(BreakerError::Inner(SourceError::Status { status: 429, .. }))
        ));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.metrics().ignored, 5);
    assert_eq!(b.metrics().window_calls, 0);
    for _ in 0..2 {
        let _: Result<(), _> = b.call(|| async { Err(status(503)) }).await;
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test]
async fn open_rejects_without_running_the_operation() {
    let (b, clock) = breaker(config());
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    clock.advance(Duration::from_secs(10));
    let ran = AtomicUsize::new(0);
    let r: Result<u32, BreakerError<Boom>> = b
        .call(|| {
            ran.fetch_add(1, Ordering::SeqCst);
            async { Ok(1) }
        })
        .await;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let Err(BreakerError::Rejected(rejected)) = r else {
        panic!("expected a rejection, got {r:?}")
    };
    assert_eq!(rejected.state, BreakerState::Open);
    assert_eq!(rejected.retry_after, Some(Duration::from_secs(20)));
    assert_eq!(b.retry_after(), Some(Duration::from_secs(20)));
    assert_eq!(b.metrics().rejected, 1);
}

#[tokio::test]
async fn timeout_is_inside_the_breaker_and_counts_as_a_failure() {
    let (b, clock) = breaker(config());
    for _ in 0..2 {
        let b2 = b.clone();
        let call =
            tokio::spawn(async move { b2.call(std::future::pending::<Result<u32, Boom>>).await });
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_millis(5000));
        let r = call.await.unwrap();
        assert!(
            matches!(r, Err(BreakerError::Timeout { after }) if after == Duration::from_millis(5000))
        );
    }
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.metrics().timeouts, 2);
}

#[tokio::test]
async fn backoff_grows_per_failed_probe_and_resets_on_close() {
    let (b, clock) = breaker(config());
    let mut events = b.subscribe();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    let mut waits = vec![events.try_recv().unwrap().open_wait.unwrap()];
    for _ in 0..3 {
        clock.advance(*waits.last().unwrap());
        fail(&b).await.unwrap_err(); // the probe fails
        let half = events.try_recv().unwrap();
        assert_eq!(
            (half.to, half.reason),
            (BreakerState::HalfOpen, TransitionReason::OpenWaitElapsed)
        );
        let reopen = events.try_recv().unwrap();
        assert_eq!(
            (reopen.to, reopen.reason),
            (BreakerState::Open, TransitionReason::ProbeFailed)
        );
        waits.push(reopen.open_wait.unwrap());
    }
    let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [30, 60, 120, 240]);
    assert_eq!(b.metrics().open_attempt, 3);
    clock.advance(Duration::from_secs(240));
    ok(&b).await.unwrap();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.metrics().open_attempt, 0);
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    events.try_recv().unwrap(); // half_open
    events.try_recv().unwrap(); // closed
    assert_eq!(
        events.try_recv().unwrap().open_wait,
        Some(Duration::from_secs(30)),
        "attempts reset on close"
    );
}

#[tokio::test]
async fn jitter_spreads_the_wait_within_bounds() {
    let (b, _) = breaker(BreakerConfig {
        jitter: 0.1,
        ..BreakerConfig::default()
    });
    let mut events = b.subscribe();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    let wait = events.try_recv().unwrap().open_wait.unwrap().as_secs_f64();
    assert!((27.0..=33.0).contains(&wait), "{wait}");
}

/// A call whose operation waits on a channel; the first poll admits it.
/// A boxed call future.
type CallFuture = Pin<Box<dyn Future<Output = Result<u32, BreakerError<Boom>>> + Send>>;

fn start(b: &CircuitBreaker) -> (CallFuture, oneshot::Sender<Result<u32, Boom>>) {
    let (tx, rx) = oneshot::channel::<Result<u32, Boom>>();
    let b = b.clone();
    let fut: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
        b.call(|| async move { rx.await.unwrap_or(Err(Boom)) })
            .await
    });
    (fut, tx)
}

fn poll_once<T>(fut: &mut Pin<Box<dyn Future<Output = T> + Send>>) -> Poll<T> {
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn half_open_admits_a_bounded_number_of_probes_and_cancelled_probes_free_their_slot() {
    let (b, clock) = breaker(BreakerConfig {
        half_open_probes: 2,
        ..config()
    });
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    clock.advance(Duration::from_secs(30));
    let mut probes: Vec<_> = (0..10).map(|_| start(&b)).collect();
    let mut admitted = Vec::new();
    for (i, (fut, _)) in probes.iter_mut().enumerate() {
        match poll_once(fut) {
            Poll::Pending => admitted.push(i),
            Poll::Ready(Err(BreakerError::Rejected(r))) => {
                assert_eq!(r.state, BreakerState::HalfOpen)
            }
            Poll::Ready(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(admitted, [0, 1], "exactly two probes");
    // Cancel the first probe: its slot is free, nothing is recorded.
    let (first, _tx) = probes.remove(0);
    drop(first);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let (mut third, tx3) = start(&b);
    assert!(
        poll_once(&mut third).is_pending(),
        "the freed slot admits a new probe"
    );
    let (mut fourth, _tx4) = start(&b);
    assert!(matches!(
        poll_once(&mut fourth),
        Poll::Ready(Err(BreakerError::Rejected(_)))
    ));
    // Both remaining probes succeed: closed.
    let (mut second, tx2) = probes.remove(0);
    tx2.send(Ok(2)).unwrap();
    assert!(matches!(poll_once(&mut second), Poll::Ready(Ok(2))));
    assert_eq!(b.state(), BreakerState::HalfOpen, "one success of two");
    tx3.send(Ok(3)).unwrap();
    assert!(matches!(poll_once(&mut third), Poll::Ready(Ok(3))));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test]
async fn results_from_before_a_transition_are_dropped() {
    let (b, clock) = breaker(config());
    let mut events = b.subscribe();
    let (mut stale, stale_tx) = start(&b);
    assert!(poll_once(&mut stale).is_pending()); // admitted while closed
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), BreakerState::Open);
    let opened = events.try_recv().unwrap();
    clock.advance(Duration::from_secs(10));
    // The stale call fails now: no new event, the open wait is not extended.
    stale_tx.send(Err(Boom)).unwrap();
    assert!(matches!(
        poll_once(&mut stale),
        Poll::Ready(Err(BreakerError::Inner(Boom)))
    ));
    assert!(events.try_recv().is_err());
    assert_eq!(
        b.retry_after(),
        Some(opened.open_wait.unwrap() - Duration::from_secs(10))
    );
    // Close the circuit, then let another stale failure land: the new window is clean.
    let (mut stale2, stale2_tx) = {
        // admitted in a fresh closed period below
        clock.advance(Duration::from_secs(20));
        ok(&b).await.unwrap();
        assert_eq!(b.state(), BreakerState::Closed);
        let (mut fut, tx) = start(&b);
        assert!(poll_once(&mut fut).is_pending());
        (fut, tx)
    };
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err(); // opens again (epoch moves on)
    clock.advance(Duration::from_secs(30));
    ok(&b).await.unwrap(); // closed again, new window
    stale2_tx.send(Err(Boom)).unwrap();
    assert!(matches!(poll_once(&mut stale2), Poll::Ready(Err(_))));
    assert_eq!(
        b.metrics().window_failures,
        0,
        "stale failure not counted in the new window"
    );
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test]
async fn forced_open_disabled_and_reset() {
    let (b, _) = breaker(config());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    b.on_state_change(move |c| seen2.lock().unwrap().push((c.from, c.to)));
    b.force_open();
    let r = ok(&b).await;
    assert!(matches!(
        r,
        Err(BreakerError::Rejected(Rejected {
            state: BreakerState::ForcedOpen,
            retry_after: None
        }))
    ));
    b.disable();
    for _ in 0..10 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(
        b.state(),
        BreakerState::Disabled,
        "disabled records nothing"
    );
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (BreakerState::Closed, BreakerState::ForcedOpen),
            (BreakerState::ForcedOpen, BreakerState::Disabled),
            (BreakerState::Disabled, BreakerState::Closed),
        ]
    );
}

#[tokio::test]
async fn time_window_trips_and_forgets() {
    let (b, clock) = breaker(BreakerConfig {
        window: SlidingWindow::Time { seconds: 60 },
        minimum_calls: 3,
        ..config()
    });
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    clock.advance(Duration::from_secs(61)); // both forgotten
    ok(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn clones_share_state_across_worker_threads() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (b, clock) = breaker(BreakerConfig {
        window: SlidingWindow::Count { size: 100 },
        minimum_calls: 100,
        failure_rate: 1.0,
        ..config()
    });
    rt.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move {
                    for _ in 0..25 {
                        let _ = fail(&b).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(b.state(), BreakerState::Open);
    let other = clock.clone();
    other.advance(Duration::from_secs(30));
    assert_eq!(b.retry_after(), Some(Duration::ZERO));
}

#[tokio::test]
async fn metrics_snapshot() {
    let (b, clock) = breaker(BreakerConfig {
        minimum_calls: 10,
        ..config()
    });
    ok(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    slow(&b, &clock, Duration::from_secs(5)).await.unwrap();
    let m = b.metrics();
    assert_eq!(
        (m.window_calls, m.window_failures, m.window_slow_calls),
        (3, 1, 1)
    );
    assert!((m.failure_rate - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(m.state, BreakerState::Closed);
    assert_eq!(m.time_in_state, Duration::from_secs(5));
    assert_eq!(m.retry_after, None);
    let json = serde_json::to_value(m).unwrap();
    assert_eq!(json["state"], "closed");
}

#[tokio::test]
async fn a_count_window_smaller_than_minimum_calls_trips_once_full() {
    // resilience4j's rule: the window's size is the minimum then. Before,
    // the window could never hold 10 calls and 1000 failures left it closed.
    let (b, _) = breaker(BreakerConfig {
        window: SlidingWindow::Count { size: 5 },
        minimum_calls: 10,
        ..config()
    });
    let mut events = b.subscribe();
    for _ in 0..4 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(b.state(), BreakerState::Closed, "4 calls < 5, the size");
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), BreakerState::Open);
    assert!(matches!(
        events.try_recv().unwrap().reason,
        TransitionReason::FailureRate { calls: 5, .. }
    ));
}

#[tokio::test]
async fn a_time_window_keeps_its_minimum_calls() {
    let (b, _) = breaker(BreakerConfig {
        window: SlidingWindow::Time { seconds: 60 },
        minimum_calls: 10,
        ..config()
    });
    for _ in 0..9 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test]
async fn the_jittered_wait_never_exceeds_the_cap() {
    // At the cap, the jitter may only shorten the wait (it was applied after
    // the cap, and a wait could reach 1.5 × max_open_wait).
    let max = Duration::from_secs(600);
    let (b, _) = breaker(BreakerConfig {
        open_wait: max,
        max_open_wait: max,
        jitter: 0.5,
        ..BreakerConfig::default()
    });
    let mut events = b.subscribe();
    let mut waits = Vec::new();
    for _ in 0..32 {
        fail(&b).await.unwrap_err();
        fail(&b).await.unwrap_err();
        let e = events.try_recv().unwrap();
        assert_eq!(e.to, BreakerState::Open);
        waits.push(e.open_wait.unwrap());
        assert!(b.retry_after().unwrap() <= max);
        b.reset();
        events.try_recv().unwrap(); // the reset
    }
    assert!(
        waits.iter().all(|w| *w <= max && *w >= max / 2),
        "{waits:?}"
    );
    assert!(waits.iter().any(|w| *w < max), "still spread: {waits:?}");
}

#[test]
fn huge_open_waits_are_rejected_and_a_day_is_accepted() {
    // 1.8e19 s with a jitter of 0.5 used to panic when the breaker tripped
    // ("cannot convert float seconds to Duration").
    let huge = Duration::from_secs(18_000_000_000_000_000_000);
    for max_open_wait in [
        huge,
        Duration::MAX,
        BreakerConfig::MAX_OPEN_WAIT + Duration::from_nanos(1),
    ] {
        let c = BreakerConfig {
            open_wait: max_open_wait,
            max_open_wait,
            jitter: 0.5,
            ..config()
        };
        let err = CircuitBreaker::with_clock(c, ManualClock::new()).unwrap_err();
        assert!(
            matches!(
                err,
                BreakerConfigError::Invalid {
                    name: "max_open_wait",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("at most one day"), "{err}");
    }
    let day = BreakerConfig::MAX_OPEN_WAIT;
    assert_eq!(day, Duration::from_secs(86_400));
    let (b, _) = breaker(BreakerConfig {
        open_wait: day,
        max_open_wait: day,
        jitter: 0.5,
        ..config()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        fail(&b).await.unwrap_err();
        fail(&b).await.unwrap_err();
    });
    assert_eq!(b.state(), BreakerState::Open);
    assert!(b.retry_after().unwrap() <= day);
}

#[tokio::test]
async fn operator_calls_in_the_state_they_ask_for_change_nothing() {
    let (b, _) = breaker(BreakerConfig {
        minimum_calls: 3,
        ..config()
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    b.on_state_change(move |c| seen2.lock().unwrap().push((c.from, c.to)));
    let mut events = b.subscribe();

    // reset() of a closed breaker: no event, no transition, but an empty
    // window, and a call admitted before it is not recorded.
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    let (mut held, held_tx) = start(&b);
    assert!(poll_once(&mut held).is_pending());
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.metrics().window_calls, 0, "reset empties the window");
    held_tx.send(Err(Boom)).unwrap();
    assert!(poll_once(&mut held).is_ready());
    assert_eq!(b.metrics().window_calls, 0, "admitted before the reset");
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "2 calls < 3 since the reset"
    );
    assert!(events.try_recv().is_err());
    assert_eq!(b.metrics().transitions, 0);

    b.force_open();
    b.force_open();
    b.disable();
    b.disable();
    b.reset();
    b.reset();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (BreakerState::Closed, BreakerState::ForcedOpen),
            (BreakerState::ForcedOpen, BreakerState::Disabled),
            (BreakerState::Disabled, BreakerState::Closed),
        ]
    );
    assert_eq!(b.metrics().transitions, 3);
    for _ in 0..3 {
        let e = events.try_recv().unwrap();
        assert_ne!(e.from, e.to);
    }
    assert!(events.try_recv().is_err(), "one event per change");
}

// ---- model test ---------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Ok,
    Fail,
    Slow,
    Ignored,
    Begin,
    End(usize, bool),
    Cancel(usize),
    Advance(u64),
    Reset,
    ForceOpen,
    Disable,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Ok),
        3 => Just(Op::Fail),
        1 => Just(Op::Slow),
        1 => Just(Op::Ignored),
        2 => Just(Op::Begin),
        2 => (0usize..8, any::<bool>()).prop_map(|(i, ok)| Op::End(i, ok)),
        1 => (0usize..8).prop_map(Op::Cancel),
        2 => (0u64..90).prop_map(Op::Advance),
        1 => prop_oneof![Just(Op::Reset), Just(Op::ForceOpen), Just(Op::Disable)],
    ]
}

#[derive(Debug)]
struct Ign;
impl Classify for Ign {
    fn classify(&self) -> ErrorClass {
        ErrorClass::Ignore
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random sequences of successes, failures, slow calls, held calls and
    /// clock steps never break the invariants.
    #[test]
    fn state_machine_invariants(ops in prop::collection::vec(op(), 1..120), probes in 1u32..4, min_calls in 1u32..10) {
        let cfg = BreakerConfig { half_open_probes: probes, minimum_calls: min_calls, window: SlidingWindow::Count { size: 6 }, ..config() };
        // A window of 6 calls never holds more: at most 6 are needed.
        let min_calls = min_calls.min(6);
        let (b, clock) = breaker(cfg.clone());
        let events = Arc::new(Mutex::new(Vec::<StateChange>::new()));
        let sink = events.clone();
        b.on_state_change(move |c| sink.lock().unwrap().push(*c));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut held: Vec<(CallFuture, oneshot::Sender<Result<u32, Boom>>)> = Vec::new();
        for op in ops {
            match op {
                Op::Ok => { let _ = rt.block_on(ok(&b)); }
                Op::Fail => { let _ = rt.block_on(fail(&b)); }
                Op::Slow => { let _ = rt.block_on(slow(&b, &clock, Duration::from_secs(4))); }
                Op::Ignored => { let _: Result<u32, _> = rt.block_on(b.call(|| async { Err(Ign) })); }
                Op::Begin => {
                    let (mut fut, tx) = start(&b);
                    if poll_once(&mut fut).is_pending() { held.push((fut, tx)); }
                }
                Op::End(i, success) => {
                    if !held.is_empty() {
                        let (mut fut, tx) = held.remove(i % held.len());
                        let _ = tx.send(if success { Ok(1) } else { Err(Boom) });
                        prop_assert!(poll_once(&mut fut).is_ready());
                    }
                }
                Op::Cancel(i) => { if !held.is_empty() { drop(held.remove(i % held.len())); } }
                Op::Advance(s) => clock.advance(Duration::from_secs(s)),
                Op::Reset => b.reset(),
                Op::ForceOpen => b.force_open(),
                Op::Disable => b.disable(),
            }
            // No probe beyond the limit.
            let in_flight = b.shared.lock().probes_in_flight;
            prop_assert!(in_flight <= cfg.half_open_probes, "{} probes in flight", in_flight);
            // Never stuck closed: a closed window holding enough calls is
            // below both rates (or it would have tripped).
            let m = b.metrics();
            prop_assert!(m.window_failures <= m.window_calls && m.window_slow_calls <= m.window_calls && m.window_calls <= 6);
            if b.state() == BreakerState::Closed && m.window_calls >= min_calls {
                prop_assert!(m.window_failures == 0 || m.failure_rate < cfg.failure_rate, "{:?}", m);
                prop_assert!(m.window_slow_calls == 0 || m.slow_call_rate < cfg.slow_call_rate, "{:?}", m);
            }
        }
        let events = events.lock().unwrap();
        // No lost transition: a chain from closed to the current state, one per change.
        let mut state = BreakerState::Closed;
        for e in events.iter() {
            prop_assert_eq!(e.from, state);
            prop_assert_ne!(e.from, e.to);
            state = e.to;
        }
        prop_assert_eq!(state, b.state());
        prop_assert_eq!(events.len() as u64, b.metrics().transitions);
        // No open state without a trip, and no probe before the wait.
        let mut opened_at: Option<(Duration, Duration)> = None;
        for e in events.iter() {
            match (e.to, e.reason) {
                (BreakerState::Open, TransitionReason::FailureRate { rate, calls }) => {
                    prop_assert!(rate >= cfg.failure_rate && calls >= min_calls);
                }
                (BreakerState::Open, TransitionReason::SlowCallRate { rate, calls }) => {
                    prop_assert!(rate >= cfg.slow_call_rate && calls >= min_calls);
                }
                (BreakerState::Open, TransitionReason::ProbeFailed) => prop_assert_eq!(e.from, BreakerState::HalfOpen),
                (BreakerState::Open, r) => prop_assert!(false, "opened for {:?}", r),
                (BreakerState::HalfOpen, _) => {
                    let (at, wait) = opened_at.expect("half-open follows open");
                    prop_assert!(e.at >= at + wait);
                }
                (BreakerState::Closed, r) => prop_assert!(matches!(r, TransitionReason::ProbesSucceeded | TransitionReason::Reset), "closed for {:?}", r),
                (BreakerState::ForcedOpen, r) => prop_assert_eq!(r, TransitionReason::ForcedOpen),
                (BreakerState::Disabled, r) => prop_assert_eq!(r, TransitionReason::Disabled),
            }
            if e.to == BreakerState::Open {
                opened_at = Some((e.at, e.open_wait.expect("open has a wait")));
            }
        }
        drop(held);
    }

    /// The open wait, on any settings (even ones `validate` refuses) and any
    /// draw of the jitter: no panic, never over `max_open_wait`, and the
    /// jitter's spread around the backoff when the settings are valid.
    #[test]
    fn open_wait_never_panics_nor_exceeds_the_cap(
        open_ms in prop_oneof![0u64..10_000_000, any::<u64>()],
        max_ms in prop_oneof![0u64..100_000_000, any::<u64>()],
        multiplier in prop_oneof![1.0f64..100.0, any::<f64>()],
        jitter in prop_oneof![0.0f64..=0.5, any::<f64>()],
        attempt in any::<u32>(),
        u in 0.0f64..1.0,
    ) {
        let cfg = BreakerConfig {
            open_wait: Duration::from_millis(open_ms),
            max_open_wait: Duration::from_millis(max_ms),
            backoff_multiplier: multiplier,
            jitter,
            ..BreakerConfig::default()
        };
        let backoff = cfg.backoff(attempt);
        let wait = cfg.open_wait_for(attempt, u);
        prop_assert!(backoff <= cfg.max_open_wait && wait <= cfg.max_open_wait);
        if cfg.validate().is_ok() {
            prop_assert!(backoff >= cfg.open_wait);
            let (lo, hi) = (backoff.as_secs_f64() * (1.0 - jitter), backoff.as_secs_f64() * (1.0 + jitter));
            let w = wait.as_secs_f64();
            prop_assert!(w >= lo * (1.0 - 1e-9) - 1e-9 && w <= hi * (1.0 + 1e-9) + 1e-9, "{} not in [{}, {}]", w, lo, hi);
        }
    }

    /// Tripping and failing probes on any valid timing settings: no panic,
    /// every open wait within the cap.
    #[test]
    fn tripping_never_panics_and_waits_stay_under_the_cap(
        open_ms in 1u64..=86_400_000,
        max_ms in 1u64..=86_400_000,
        multiplier in 1.0f64..=100.0,
        jitter in 0.0f64..=0.5,
        probes in 1usize..8,
    ) {
        let cfg = BreakerConfig {
            open_wait: Duration::from_millis(open_ms.min(max_ms)),
            max_open_wait: Duration::from_millis(max_ms),
            backoff_multiplier: multiplier,
            jitter,
            ..config()
        };
        let (b, clock) = breaker(cfg.clone());
        let waits = Arc::new(Mutex::new(Vec::new()));
        let sink = waits.clone();
        b.on_state_change(move |c| sink.lock().unwrap().extend(c.open_wait));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            fail(&b).await.unwrap_err();
            fail(&b).await.unwrap_err();
            for _ in 0..probes {
                clock.advance(b.retry_after().unwrap_or_default());
                fail(&b).await.unwrap_err(); // the probe fails: open again
            }
        });
        prop_assert_eq!(b.state(), BreakerState::Open);
        let waits = waits.lock().unwrap();
        prop_assert_eq!(waits.len(), probes + 1);
        for w in waits.iter() {
            prop_assert!(*w <= cfg.max_open_wait, "{:?} > {:?}", w, cfg.max_open_wait);
        }
    }
}
