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

/// The last `size` outcomes, lock-free.
///
/// `counts` packs `epoch | failures | slow | calls` (16 bits each) into one
/// atomic word updated by compare-and-swap; each ring slot holds
/// `epoch << 8 | outcome code`. A slot written in another epoch counts as
/// empty. A recorder claims a slot index, swaps its outcome into the slot,
/// then applies the difference between the old and new outcome to the
/// counts: once recorders are done, the counts equal the sum of the slots,
/// and a reset (a new epoch in `counts`) makes every older slot empty at once. (Epochs are 16 bits: a result held across 65,536 state changes
/// could be miscounted once — a call would have to outlive hours of flapping.)
pub(crate) struct CountWindow {
    counts: AtomicU64,
    head: AtomicU64,
    slots: Box<[AtomicU32]>,
}

fn pack(epoch: u16, c: Counts) -> u64 {
    (u64::from(epoch) << 48)
        | (u64::from(c.failures) << 32)
        | (u64::from(c.slow) << 16)
        | u64::from(c.calls)
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
        // Swap first: two recorders on the same slot (the ring wrapped while
        // one was delayed) each see a different old value.
        let old = slot.swap(tagged, Ordering::AcqRel);
        let old_counted = (old >> 8) as u16 == epoch && old & 1 == 1;
        let mut word = self.counts.load(Ordering::Acquire);
        loop {
            let (current, mut c) = unpack(word);
            if current != epoch {
                // Reset since the check: put the slot back if nobody else has
                // written it; the new epoch must not lose what it held.
                let _ = slot.compare_exchange(tagged, old, Ordering::AcqRel, Ordering::Acquire);
                return None;
            }
            if old_counted {
                c.failures -= (old >> 1) & 1;
                c.slow -= (old >> 2) & 1;
            } else {
                c.calls += 1;
            }
            c.failures += u32::from(outcome.failure);
            c.slow += u32::from(outcome.slow);
            match self.counts.compare_exchange_weak(
                word,
                pack(epoch, c),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(c),
                Err(actual) => word = actual,
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
}
