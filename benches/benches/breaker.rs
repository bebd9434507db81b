//! Closed-state overhead of a circuit breaker, per call, side by side with
//! the peers `failsafe` and `tower-resilience`. Target (issue 3): at most
//! 50 ns per call uncontended, and faster than both peers.
//!
//! Every function makes one call through a *closed* breaker around an
//! operation that succeeds at once (`std::future::ready(Ok(..))`), so what
//! is measured is the breaker's own cost: admission, the call, recording
//! the success. `baseline` is the bare operation driven the same way:
//! subtract it to get the overhead.
//!
//! The breakers are async and their futures are ready on their first poll,
//! so they are driven by the smallest executor there is: one `poll` with a
//! no-op waker, on the bench thread, no runtime. The uncontended group
//! panics if a first poll is not ready. Each breaker keeps its defaults.
//!
//! | function | API |
//! |---|---|
//! | `spe_core` | `CircuitBreaker::call(op)` on `BreakerConfig::default()` (count window of 10, 5 s call timeout inside) |
//! | `failsafe` | its async API, `failsafe::futures::CircuitBreaker::call(op())`, on `Config::new().build()` (it needs no runtime) |
//! | `failsafe_sync` | its sync API, `failsafe::CircuitBreaker::call(|| Ok(..))`, same breaker kind, for reference |
//! | `tower_resilience` | `poll_ready` then `Service::call` on `CircuitBreakerLayer::builder().build()` layered over `service_fn(|()| op())` |
//!
//! `closed_2_threads`: two std threads each make N calls at once on clones
//! of one shared breaker. The time reported is the wall time over N: the
//! time per call as each thread sees it, equal to the uncontended figure if
//! the breaker scaled perfectly. There a pending future is polled again
//! (spinning, yielding the thread every 64 polls) instead of panicking —
//! `tower-resilience` takes a `tokio::sync::Mutex`, which can be held by
//! the other thread — and the number of such extra polls is printed after
//! each function.
//!
//! Run: `cargo bench -p spe-benches --bench breaker` (see `benches/README.md`).

use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use spe_core::{BreakerConfig, BreakerState, CircuitBreaker, Classify};
use tower::{Layer, Service};
use tower_resilience::circuitbreaker::{CircuitBreakerLayer, CircuitState};

/// The operation's error type; never produced (every call succeeds).
#[derive(Debug)]
struct OpError;

impl Classify for OpError {}

/// The operation behind every breaker: a future that is ready at once.
#[inline(always)]
fn op() -> Ready<Result<u64, OpError>> {
    ready(Ok(black_box(1)))
}

/// Extra polls of pending futures in the 2-thread group, and calls made there.
static SPINS: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Drive `fut` on this thread with a no-op waker. Without `SPIN`, the first
/// poll must be ready; with it, a pending future is polled again until ready.
#[inline(always)]
fn drive<const SPIN: bool, F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    let mut spins = 0u64;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            if spins > 0 {
                SPINS.fetch_add(spins, Ordering::Relaxed);
            }
            return v;
        }
        assert!(SPIN, "the call was not ready on its first poll");
        spins += 1;
        // Spin a little, then let the other thread run (on 2 cores a
        // preempted lock holder would otherwise cost a whole time slice),
        // as an executor would run another task.
        if spins % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// One call through a tower service: `poll_ready`, then `call`.
#[inline(always)]
fn tower_call<const SPIN: bool, S: Service<()>>(svc: &mut S) -> Result<S::Response, S::Error> {
    drive::<SPIN, _>(std::future::poll_fn(|cx| svc.poll_ready(cx)))?;
    drive::<SPIN, _>(svc.call(()))
}

/// The breakers under test, each with its defaults, each returning a closure
/// that makes one call (so that clones can be handed to threads).
fn spe_core_caller<const SPIN: bool>(breaker: &CircuitBreaker) -> impl FnMut() -> u64 + Send {
    let breaker = breaker.clone();
    move || drive::<SPIN, _>(breaker.call(op)).expect("closed breaker, ready Ok")
}

type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::OrElse<
        failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
        failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
    >,
    (),
>;

fn failsafe_caller<const SPIN: bool>(breaker: &Failsafe) -> impl FnMut() -> u64 + Send {
    let breaker = breaker.clone();
    move || {
        drive::<SPIN, _>(failsafe::futures::CircuitBreaker::call(&breaker, op()))
            .expect("closed breaker, ready Ok")
    }
}

fn failsafe_sync_caller(breaker: &Failsafe) -> impl FnMut() -> u64 + Send {
    let breaker = breaker.clone();
    move || {
        failsafe::CircuitBreaker::call(&breaker, || Ok::<u64, OpError>(black_box(1)))
            .expect("closed breaker, Ok")
    }
}

fn tower_service()
-> impl Service<(), Response = u64, Error: std::fmt::Debug> + Clone + Send + 'static {
    let layer = CircuitBreakerLayer::builder()
        .build()
        .expect("default config is valid");
    let service = layer.layer(tower::service_fn(|(): ()| op()));
    assert_eq!(service.state_sync(), CircuitState::Closed);
    service
}

fn tower_caller<const SPIN: bool, S>(service: &S) -> impl FnMut() -> u64 + Send
where
    S: Service<(), Response = u64, Error: std::fmt::Debug> + Clone + Send,
{
    let mut service = service.clone();
    move || tower_call::<SPIN, _>(&mut service).expect("closed breaker, ready Ok")
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn closed_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed_uncontended");
    configure(&mut group);

    group.bench_function("baseline", |b| {
        b.iter(|| drive::<false, _>(op()).expect("ready Ok"))
    });

    let spe = CircuitBreaker::new(BreakerConfig::default()).expect("default config is valid");
    let mut call = spe_core_caller::<false>(&spe);
    for _ in 0..10 {
        call();
    }
    assert_eq!(spe.metrics().window_calls, 10, "spe_core records the calls");
    group.bench_function("spe_core", |b| b.iter(&mut call));
    assert_eq!(spe.state(), BreakerState::Closed);

    let fs: Failsafe = failsafe::Config::new().build();
    let mut call = failsafe_caller::<false>(&fs);
    group.bench_function("failsafe", |b| b.iter(&mut call));
    let mut call = failsafe_sync_caller(&fs);
    group.bench_function("failsafe_sync", |b| b.iter(&mut call));
    assert!(failsafe::CircuitBreaker::is_call_permitted(&fs));

    let tower = tower_service();
    let mut call = tower_caller::<false, _>(&tower);
    group.bench_function("tower_resilience", |b| b.iter(&mut call));

    group.finish();
}

/// Two threads, each making `iters` calls with its own caller made by
/// `make` (clones of one breaker); the wall time from a common start.
fn two_threads<C: FnMut() -> u64 + Send>(iters: u64, make: impl Fn() -> C) -> Duration {
    let start_line = Barrier::new(3);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let mut call = make();
                let start_line = &start_line;
                s.spawn(move || {
                    start_line.wait();
                    for _ in 0..iters {
                        black_box(call());
                    }
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        for worker in workers {
            worker.join().expect("bench thread panicked");
        }
        let elapsed = start.elapsed();
        CALLS.fetch_add(2 * iters, Ordering::Relaxed);
        elapsed
    })
}

fn report_spins(name: &str) {
    let spins = SPINS.swap(0, Ordering::Relaxed);
    let calls = CALLS.swap(0, Ordering::Relaxed);
    if calls > 0 {
        eprintln!(
            "closed_2_threads/{name}: {spins} extra polls of pending calls in {calls} calls \
             ({:.3} per call)",
            spins as f64 / calls as f64
        );
    }
}

fn closed_2_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed_2_threads");
    configure(&mut group);
    group.bench_function("baseline", |b| {
        b.iter_custom(|iters| two_threads(iters, || || drive::<true, _>(op()).expect("ready Ok")))
    });
    report_spins("baseline");

    let spe = CircuitBreaker::new(BreakerConfig::default()).expect("default config is valid");
    group.bench_function("spe_core", |b| {
        b.iter_custom(|iters| two_threads(iters, || spe_core_caller::<true>(&spe)))
    });
    report_spins("spe_core");
    assert_eq!(spe.state(), BreakerState::Closed);

    let fs: Failsafe = failsafe::Config::new().build();
    group.bench_function("failsafe", |b| {
        b.iter_custom(|iters| two_threads(iters, || failsafe_caller::<true>(&fs)))
    });
    report_spins("failsafe");
    group.bench_function("failsafe_sync", |b| {
        b.iter_custom(|iters| two_threads(iters, || failsafe_sync_caller(&fs)))
    });
    report_spins("failsafe_sync");
    assert!(failsafe::CircuitBreaker::is_call_permitted(&fs));

    let tower = tower_service();
    group.bench_function("tower_resilience", |b| {
        b.iter_custom(|iters| two_threads(iters, || tower_caller::<true, _>(&tower)))
    });
    report_spins("tower_resilience");

    group.finish();
}

criterion_group!(benches, closed_uncontended, closed_2_threads);
criterion_main!(benches);
