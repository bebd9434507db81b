//! Sliding windows of call outcomes.
//!
//! Each window belongs to an *epoch* (one per closed period of the breaker):
//! a result recorded with another epoch is discarded, so calls admitted
//! before a state change can never count in the window of the next period.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::config::SlidingWindow;

/// The outcome of one finished call, as a window counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub failure: bool,
    pub slow: bool,
}

impl Outcome {
    fn code(self) -> u32 {
        1 | (u32::from(self.failure) << 1) | (u32::from(self.slow) << 2)
    }
}

/// What a window holds: calls, failures and slow calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub calls: u32,
    pub failures: u32,
    pub slow: u32,
}

pub(crate) enum Window {
    Count(CountWindow),
    Time(Mutex<TimeWindow>),
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow) -> Self {
        match kind {
            SlidingWindow::Count { size } => Window::Count(CountWindow::new(size)),
            SlidingWindow::Time { seconds } => Window::Time(Mutex::new(TimeWindow::new(seconds))),
        }
    }

    /// Record an outcome for `epoch`; the window's counts after it, or `None`
    /// if the window has moved to another epoch.
    #[inline]
    pub(crate) fn record(&self, epoch: u16, outcome: Outcome, now: Duration) -> Option<Counts> {
        match self {
            Window::Count(w) => w.record(epoch, outcome),
            Window::Time(w) => w
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(epoch, outcome, now),
        }
    }

    /// Empty the window and move it to `epoch`.
    pub(crate) fn reset(&self, epoch: u16) {
        match self {
            Window::Count(w) => w.reset(epoch),
            Window::Time(w) => w
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .reset(epoch),
        }
    }

    /// The counts now.
    pub(crate) fn counts(&self, now: Duration) -> Counts {
        match self {
            Window::Count(w) => unpack(w.counts.load(Ordering::Acquire)).1,
            Window::Time(w) => w.lock().unwrap_or_else(PoisonError::into_inner).counts(now),
        }
    }
}

/// The last `size` outcomes.
///
/// `counts` packs `epoch | failures | slow | calls` (16 bits each) into one
/// atomic word updated by compare-and-swap; each ring slot holds
/// `epoch << 8 | outcome code`, plus [`BUSY`] while a recorder owns it. A
/// slot written in another epoch counts as empty, so a reset (a new epoch in
/// `counts`) makes every older slot empty at once. (Epochs are 16 bits: a
/// result held across 65,536 state changes could be miscounted once — a call
/// would have to outlive hours of flapping.)
///
/// # Why the counts always equal the sum of the slots
///
/// A recorder claims a slot index, then *owns* the slot: it replaces the
/// slot's value `old` with `new | BUSY` by compare-and-swap, applies
/// `new - old` to `counts` in one compare-and-swap, and only then releases
/// the slot (stores `new`). While it owns the slot, `counts` still holds
/// `old`'s share, and nobody else can take `old` out of the slot: so at
/// every instant `counts` is the sum of one value per slot — the committed
/// one, or `old` for a slot whose owner has not updated `counts` yet. Every
/// field is therefore always within `0..=size`, failures and slow calls never
/// exceed calls, the arithmetic never over- or underflows and never reaches
/// the epoch bits, whatever the interleaving.
///
/// (Without ownership, a second recorder landing on the same slot before
/// the first had added its outcome subtracted that outcome from counts that
/// did not hold it yet: an overflow, and in release builds a counter wrapped
/// into the epoch, after which every record was dropped and the breaker could
/// never trip.)
///
/// A recorder finding its slot owned waits for the owner, which holds it for
/// one compare-and-swap loop on `counts`. That only happens when the ring
/// wraps around during a record: with more recorders at once than slots.
/// The steady state — a full window of fast successes — writes nothing at
/// all; any other record takes a fetch-add, two compare-and-swaps and a
/// store (the swap it replaces cost the same, bar the store). Lock-free
/// alternatives were measured: adding the new outcome before the swap and
/// subtracting the old one after it keeps every field non-negative but lets
/// the counts run ahead of the ring, and costs a third read-modify-write on
/// `counts`; taking slots in ticket order (wait for the ticket one lap
/// earlier) convoys behind preempted threads when they outnumber the cores.
pub(crate) struct CountWindow {
    counts: AtomicU64,
    head: AtomicU64,
    slots: Box<[AtomicU32]>,
}

/// Set on a slot while a recorder owns it (between taking it and updating
/// the counts).
const BUSY: u32 = 1 << 31;

fn pack(epoch: u16, c: Counts) -> u64 {
    // Masked: a field can never spill into its neighbour or the epoch.
    (u64::from(epoch) << 48)
        | (u64::from(c.failures & 0xffff) << 32)
        | (u64::from(c.slow & 0xffff) << 16)
        | u64::from(c.calls & 0xffff)
}

fn unpack(word: u64) -> (u16, Counts) {
    (
        (word >> 48) as u16,
        Counts {
            failures: ((word >> 32) & 0xffff) as u32,
            slow: ((word >> 16) & 0xffff) as u32,
            calls: (word & 0xffff) as u32,
        },
    )
}

impl CountWindow {
    fn new(size: u32) -> Self {
        CountWindow {
            counts: AtomicU64::new(0),
            head: AtomicU64::new(0),
            slots: (0..size.max(1)).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    #[inline]
    fn record(&self, epoch: u16, outcome: Outcome) -> Option<Counts> {
        let (current, counts) = unpack(self.counts.load(Ordering::Acquire));
        if current != epoch {
            return None;
        }
        // The healthy steady state: a full window of fast successes. Another
        // fast success changes no count whichever slot it replaced, so it
        // writes nothing — no shared cache line is dirtied on the hot path.
        if !outcome.failure
            && !outcome.slow
            && counts.failures == 0
            && counts.slow == 0
            && counts.calls as usize == self.slots.len()
        {
            return Some(counts);
        }
        let index = (self.head.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64) as usize;
        let slot = &self.slots[index];
        let tagged = (u32::from(epoch) << 8) | outcome.code();
        // Own the slot (see the type's documentation): its old value stays
        // counted until the counts are updated below.
        let old = Self::acquire(slot, tagged);
        let old_counted = (old >> 8) as u16 == epoch && old & 1 == 1;
        let mut word = self.counts.load(Ordering::Acquire);
        loop {
            let (current, mut c) = unpack(word);
            if current != epoch {
                // Reset since the check: put the slot back as it was; the new
                // epoch must not lose what it held.
                slot.store(old, Ordering::Release);
                return None;
            }
            // `counts` holds `old` (we own its slot), so nothing underflows,
            // and calls never exceed the ring's size; saturating all the
            // same, so that a bug could never leave a slot owned.
            if old_counted {
                c.failures = c.failures.saturating_sub((old >> 1) & 1);
                c.slow = c.slow.saturating_sub((old >> 2) & 1);
            } else {
                c.calls = (c.calls + 1).min(self.slots.len() as u32);
            }
            c.failures = (c.failures + u32::from(outcome.failure)).min(c.calls);
            c.slow = (c.slow + u32::from(outcome.slow)).min(c.calls);
            match self.counts.compare_exchange_weak(
                word,
                pack(epoch, c),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    slot.store(tagged, Ordering::Release);
                    return Some(c);
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Take `slot` for a recorder (write `tagged | BUSY`), waiting while
    /// another recorder owns it; the value it held.
    #[inline]
    fn acquire(slot: &AtomicU32, tagged: u32) -> u32 {
        let mut spins = 0u32;
        loop {
            let old = slot.load(Ordering::Relaxed);
            if old & BUSY == 0 {
                // Acquire: the previous owner's update of the counts happens
                // before ours.
                match slot.compare_exchange_weak(
                    old,
                    tagged | BUSY,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return old,
                    Err(_) => continue,
                }
            }
            // The owner is between two instructions, unless it was preempted:
            // then let it run.
            spins += 1;
            if spins % 64 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    fn reset(&self, epoch: u16) {
        self.counts
            .store(pack(epoch, Counts::default()), Ordering::Release);
    }
}

/// Outcomes of the calls that ended in the last `seconds`, per second.
pub(crate) struct TimeWindow {
    epoch: u16,
    seconds: u64,
    buckets: VecDeque<(u64, Counts)>,
    total: Counts,
}

impl TimeWindow {
    fn new(seconds: u32) -> Self {
        TimeWindow {
            epoch: 0,
            seconds: u64::from(seconds.max(1)),
            buckets: VecDeque::new(),
            total: Counts::default(),
        }
    }

    fn evict(&mut self, second: u64) {
        while let Some(&(s, c)) = self.buckets.front() {
            if s + self.seconds > second {
                break;
            }
            self.total.calls -= c.calls;
            self.total.failures -= c.failures;
            self.total.slow -= c.slow;
            self.buckets.pop_front();
        }
    }

    fn record(&mut self, epoch: u16, outcome: Outcome, now: Duration) -> Option<Counts> {
        if epoch != self.epoch {
            return None;
        }
        let second = now.as_secs();
        self.evict(second);
        let add = Counts {
            calls: 1,
            failures: u32::from(outcome.failure),
            slow: u32::from(outcome.slow),
        };
        match self.buckets.back_mut() {
            Some((s, c)) if *s >= second => {
                c.calls += 1;
                c.failures += add.failures;
                c.slow += add.slow;
            }
            _ => self.buckets.push_back((second, add)),
        }
        self.total.calls += 1;
        self.total.failures += add.failures;
        self.total.slow += add.slow;
        Some(self.total)
    }

    fn reset(&mut self, epoch: u16) {
        self.epoch = epoch;
        self.buckets.clear();
        self.total = Counts::default();
    }

    fn counts(&mut self, now: Duration) -> Counts {
        self.evict(now.as_secs());
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome {
        failure: false,
        slow: false,
    };
    const FAIL: Outcome = Outcome {
        failure: true,
        slow: false,
    };
    const SLOW: Outcome = Outcome {
        failure: false,
        slow: true,
    };

    #[test]
    fn count_window_slides_over_the_last_calls() {
        let w = Window::new(SlidingWindow::Count { size: 3 });
        let t = Duration::ZERO;
        assert_eq!(
            w.record(0, FAIL, t),
            Some(Counts {
                calls: 1,
                failures: 1,
                slow: 0
            })
        );
        w.record(0, FAIL, t);
        w.record(0, SLOW, t);
        assert_eq!(
            w.counts(t),
            Counts {
                calls: 3,
                failures: 2,
                slow: 1
            }
        );
        // The fourth call pushes out the first failure.
        assert_eq!(
            w.record(0, OK, t),
            Some(Counts {
                calls: 3,
                failures: 1,
                slow: 1
            })
        );
    }

    #[test]
    fn stale_epochs_are_discarded_and_reset_empties() {
        let w = Window::new(SlidingWindow::Count { size: 4 });
        let t = Duration::ZERO;
        w.record(0, FAIL, t);
        w.reset(1);
        assert_eq!(w.record(0, FAIL, t), None);
        assert_eq!(w.counts(t), Counts::default());
        assert_eq!(
            w.record(1, OK, t),
            Some(Counts {
                calls: 1,
                failures: 0,
                slow: 0
            })
        );
        // Old-epoch slots count as empty when overwritten.
        for _ in 0..4 {
            w.record(1, OK, t);
        }
        assert_eq!(
            w.counts(t),
            Counts {
                calls: 4,
                failures: 0,
                slow: 0
            }
        );
    }

    #[test]
    fn time_window_forgets_old_seconds() {
        let w = Window::new(SlidingWindow::Time { seconds: 10 });
        w.record(0, FAIL, Duration::from_secs(1));
        w.record(0, OK, Duration::from_secs(5));
        assert_eq!(
            w.counts(Duration::from_secs(10)),
            Counts {
                calls: 2,
                failures: 1,
                slow: 0
            }
        );
        assert_eq!(
            w.counts(Duration::from_secs(11)),
            Counts {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(w.counts(Duration::from_secs(15)), Counts::default());
        w.reset(3);
        assert_eq!(w.record(0, OK, Duration::from_secs(15)), None);
    }

    #[test]
    fn concurrent_records_keep_counts_consistent() {
        let w = std::sync::Arc::new(Window::new(SlidingWindow::Count { size: 64 }));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for j in 0..10_000 {
                        let o = if (i + j) % 3 == 0 { FAIL } else { OK };
                        w.record(0, o, Duration::ZERO);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let Window::Count(cw) = &*w else {
            unreachable!()
        };
        let failures: u32 = cw
            .slots
            .iter()
            .map(|s| (s.load(Ordering::Relaxed) >> 1) & 1)
            .sum();
        let c = w.counts(Duration::ZERO);
        assert_eq!(c.calls, 64);
        assert_eq!(c.failures, failures);
    }

    /// The counts of `w` recounted from its ring: the slots written in the
    /// window's epoch.
    fn recount(w: &CountWindow) -> (u16, Counts) {
        let (epoch, _) = unpack(w.counts.load(Ordering::Acquire));
        let mut c = Counts::default();
        for slot in w.slots.iter() {
            let v = slot.load(Ordering::Acquire);
            assert_eq!(v & BUSY, 0, "no slot left owned");
            if (v >> 8) as u16 == epoch && v & 1 == 1 {
                c.calls += 1;
                c.failures += (v >> 1) & 1;
                c.slow += (v >> 2) & 1;
            }
        }
        (epoch, c)
    }

    /// Several threads recording at once on a ring smaller than their
    /// number, so that two of them often hold the same slot: the counts must
    /// stay the sum of the slots, and the window must still count (and so
    /// trip) afterwards. Without one atomic step for a slot and its share of
    /// the counts, a second recorder subtracted the first one's outcome
    /// before it was added: an overflow panic in debug, a counter wrapped
    /// into the epoch bits in release (every later record dropped).
    #[test]
    fn racing_recorders_on_a_small_ring_keep_counts_equal_to_the_slots() {
        const SLOW_FAIL: Outcome = Outcome {
            failure: true,
            slow: true,
        };
        for (size, threads) in [(1u32, 2usize), (1, 4), (3, 4)] {
            let w = Window::new(SlidingWindow::Count { size });
            w.reset(7);
            let Window::Count(cw) = &w else {
                unreachable!()
            };
            let start = std::sync::Barrier::new(threads);
            std::thread::scope(|s| {
                for t in 0..threads {
                    let (w, start) = (&w, &start);
                    s.spawn(move || {
                        start.wait();
                        for i in 0..100_000usize {
                            let o = [FAIL, SLOW, OK, SLOW_FAIL][(t + i) % 4];
                            let c = w.record(7, o, Duration::ZERO);
                            let c = c.expect("the epoch never changes here");
                            assert!(c.failures <= c.calls && c.slow <= c.calls, "{c:?}");
                            assert!(c.calls <= size, "{c:?}");
                        }
                    });
                }
            });
            let (epoch, recounted) = recount(cw);
            assert_eq!(epoch, 7, "size {size}: epoch intact");
            assert_eq!(w.counts(Duration::ZERO), recounted, "size {size}");
            // The window still counts: a full window of failures trips.
            let mut last = None;
            for _ in 0..size {
                last = w.record(7, FAIL, Duration::ZERO);
            }
            assert_eq!(
                last,
                Some(Counts {
                    calls: size,
                    failures: size,
                    slow: 0
                }),
                "size {size}"
            );
        }
    }

    /// Recorders racing with resets, some recording for an epoch that has
    /// just ended (as calls admitted before a state change do): after they
    /// finish, the counts still equal the slots of the current epoch. (A
    /// stale recorder puts back the slot it took; without ownership another
    /// recorder could take the slot in between and the value was lost from
    /// the ring but not from the counts.)
    #[test]
    fn recorders_racing_with_resets_keep_counts_equal_to_the_slots() {
        let w = Window::new(SlidingWindow::Count { size: 2 });
        let Window::Count(cw) = &w else {
            unreachable!()
        };
        let epoch = || unpack(cw.counts.load(Ordering::Acquire)).0;
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for t in 0..3usize {
                let (w, start) = (&w, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..50_000usize {
                        let o = [FAIL, SLOW, OK][(t + i) % 3];
                        if let Some(c) = w.record(epoch(), o, Duration::ZERO) {
                            assert!(c.failures <= c.calls && c.slow <= c.calls, "{c:?}");
                            assert!(c.calls <= 2, "{c:?}");
                        }
                    }
                });
            }
            let (w, start) = (&w, &start);
            s.spawn(move || {
                start.wait();
                for e in 1..=20_000u16 {
                    w.reset(e);
                    std::hint::spin_loop();
                }
            });
        });
        let (e, recounted) = recount(cw);
        assert_eq!(e, 20_000);
        assert_eq!(w.counts(Duration::ZERO), recounted);
    }
}
