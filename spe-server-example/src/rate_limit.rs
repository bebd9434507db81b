//! A token-bucket rate limit per client address, on an injectable clock.
//!
//! Each client gets a bucket of `per_minute` tokens that refills at
//! `per_minute` tokens a minute; a call takes one token, or is refused with
//! the time until one is back. A client is its address, IPv4-mapped IPv6
//! addresses as IPv4, and IPv6 addresses by their /64 prefix (one host is
//! usually given a whole /64, so finer keys would be free to multiply).
//!
//! Admitted calls (an accepted token, or loopback without one) and refused
//! attempts (no or a wrong token) draw on two separate tables: guessing
//! tokens from many addresses cannot use up the budget of the operator who
//! has the token. Buckets of idle clients are dropped once [`MAX_CLIENTS`]
//! are tracked in a table, so neither can grow without bound; when every
//! tracked client is active, new addresses share one bucket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use spe_core::{Clock, SystemClock};

/// The most clients tracked at once in each table.
pub const MAX_CLIENTS: usize = 4096;
/// The shared key of clients beyond [`MAX_CLIENTS`] (and of unknown peers).
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Duration,
}

type Table = Arc<Mutex<HashMap<IpAddr, Bucket>>>;

/// A rate limit of `per_minute` calls a minute per client, bursts of up to
/// `per_minute`, counted apart for admitted calls ([`check`](Self::check))
/// and refused attempts ([`check_refused`](Self::check_refused)).
///
/// ```
/// use std::time::Duration;
/// use spe_core::ManualClock;
/// use spe_server_example::RateLimiter;
///
/// let clock = ManualClock::new();
/// let limiter = RateLimiter::with_clock(2, clock.clone());
/// let client = "192.0.2.1".parse().unwrap();
/// assert!(limiter.check(client).is_ok());
/// assert!(limiter.check(client).is_ok());
/// assert_eq!(limiter.check(client), Err(Duration::from_secs(30))); // one token every 30 s
/// // Refused attempts have their own budget.
/// assert!(limiter.check_refused(client).is_ok());
/// clock.advance(Duration::from_secs(30));
/// assert!(limiter.check(client).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_minute: u32,
    clock: Arc<dyn Clock>,
    admitted: Table,
    refused: Table,
}

impl RateLimiter {
    /// `per_minute` calls a minute per client (at least 1), on the system clock.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter::with_clock(per_minute, SystemClock::new())
    }

    /// The same on `clock` (tests use a manual one).
    pub fn with_clock(per_minute: u32, clock: impl Clock) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1),
            clock: Arc::new(clock),
            admitted: Table::default(),
            refused: Table::default(),
        }
    }

    /// Calls allowed a minute per client.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Take a token for an admitted call of `client`; `Err(wait)` when there
    /// is none, `wait` being the time until there is one again.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.take(&self.admitted, client)
    }

    /// The same for an attempt that is refused (no token, or a wrong one),
    /// from a budget of its own.
    pub fn check_refused(&self, client: IpAddr) -> Result<(), Duration> {
        self.take(&self.refused, client)
    }

    fn take(&self, table: &Table, client: IpAddr) -> Result<(), Duration> {
        let client = client_key(client);
        let now = self.clock.now();
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = table.lock().unwrap_or_else(PoisonError::into_inner);
        let key = if buckets.contains_key(&client) || buckets.len() < MAX_CLIENTS {
            client
        } else {
            // Forget the clients whose bucket has refilled: they are idle.
            buckets.retain(|_, b| {
                let elapsed = now.saturating_sub(b.at).as_secs_f64();
                b.tokens + elapsed * per_second < capacity
            });
            if buckets.len() < MAX_CLIENTS {
                client
            } else {
                OVERFLOW
            }
        };
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_sub(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second;
            Err(Duration::from_secs_f64(wait))
        }
    }

    /// Whole seconds to announce in `Retry-After` for `wait` (rounded up, at least 1).
    pub fn retry_after_secs(wait: Duration) -> u64 {
        wait.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// The key of `ip` in a table: IPv4-mapped IPv6 addresses as IPv4, other
/// IPv6 addresses by their /64 prefix.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::from(u64::MAX));
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spe_core::ManualClock;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_clock(6, clock.clone());
        for _ in 0..6 {
            assert!(limiter.check(ip(1)).is_ok());
        }
        assert_eq!(limiter.check(ip(1)), Err(Duration::from_secs(10)));
        // Another client has its own bucket.
        assert!(limiter.check(ip(2)).is_ok());
        clock.advance(Duration::from_secs(4));
        let wait = limiter.check(ip(1)).expect_err("not yet");
        assert!((wait.as_secs_f64() - 6.0).abs() < 1e-6, "{wait:?}");
        assert_eq!(RateLimiter::retry_after_secs(wait), 6);
        clock.advance(Duration::from_secs(6));
        assert!(limiter.check(ip(1)).is_ok());
        assert!(limiter.check(ip(1)).is_err());
        // A long pause refills up to the burst, no more.
        clock.advance(Duration::from_secs(3600));
        for _ in 0..6 {
            assert!(limiter.check(ip(1)).is_ok());
        }
        assert!(limiter.check(ip(1)).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_clock(1, clock.clone());
        let many = (0..MAX_CLIENTS as u32 + 10).map(|n| IpAddr::from((n + 1).to_be_bytes()));
        for client in many {
            let _ = limiter.check(client);
        }
        assert!(limiter.admitted.lock().expect("lock").len() <= MAX_CLIENTS + 1);
        // Once they are idle, their room is reclaimed for new clients.
        clock.advance(Duration::from_secs(120));
        assert!(limiter.check(ip(200)).is_ok());
        assert!(limiter.admitted.lock().expect("lock").len() <= 2);
    }

    #[test]
    fn refused_attempts_do_not_use_up_admitted_calls() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_clock(2, clock.clone());
        // Enough refused attempts from enough addresses to fill their table.
        for n in 0..MAX_CLIENTS as u32 + 10 {
            let client = IpAddr::from((n + 1).to_be_bytes());
            let _ = limiter.check_refused(client);
            let _ = limiter.check_refused(client);
        }
        assert!(limiter.check_refused(ip(1)).is_err());
        // The admitted calls of any client still have their whole budget.
        assert!(limiter.check(ip(1)).is_ok());
        assert!(limiter.check(ip(1)).is_ok());
        assert!(limiter.check(ip(1)).is_err());
    }

    #[test]
    fn clients_are_addresses_v4_mapped_as_v4_and_v6_by_prefix() {
        let limiter = RateLimiter::with_clock(1, ManualClock::new());
        let v4: IpAddr = "127.0.0.1".parse().expect("v4");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("mapped");
        assert!(limiter.check(v4).is_ok());
        assert!(limiter.check(mapped).is_err(), "the same client");
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("v6");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("v6");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("v6");
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(b).is_err(), "the same /64");
        assert!(limiter.check(other).is_ok(), "another /64");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RateLimiter::retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(
            RateLimiter::retry_after_secs(Duration::from_millis(1001)),
            2
        );
        assert_eq!(RateLimiter::retry_after_secs(Duration::ZERO), 1);
    }
}
