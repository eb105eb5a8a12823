//! Timer values (RFC 3261 §17 and Table 4, RFC 6026 timers L and M) and the small deadline set
//! each state machine keeps. No clock is read here: deadlines are `now + duration` where `now`
//! is always an `Instant` the caller passed in.

use std::time::{Duration, Instant};

use super::error::TransactionError;
use super::Reliability;

/// The named timers of RFC 3261 §17 (A–K) and RFC 6026 (L, M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE client: request retransmission (unreliable only), doubling from T1.
    A,
    /// INVITE client: transaction timeout in Calling, 64*T1.
    B,
    /// INVITE client: wait in Completed for retransmitted final responses.
    D,
    /// Non-INVITE client: request retransmission (unreliable only), doubling from T1 up to T2.
    E,
    /// Non-INVITE client: transaction timeout, 64*T1.
    F,
    /// INVITE server: final response retransmission (unreliable only), doubling up to T2.
    G,
    /// INVITE server: wait for the ACK, 64*T1.
    H,
    /// INVITE server: wait in Confirmed for ACK retransmissions, T4.
    I,
    /// Non-INVITE server: wait in Completed for request retransmissions, 64*T1.
    J,
    /// Non-INVITE client: wait in Completed for response retransmissions, T4.
    K,
    /// INVITE server (RFC 6026): Accepted state lifetime, 64*T1.
    L,
    /// INVITE client (RFC 6026): Accepted state lifetime, 64*T1.
    M,
}

impl Timer {
    /// Whether firing this timer ends the transaction (as opposed to retransmitting).
    pub fn terminates(self) -> bool {
        !matches!(self, Timer::A | Timer::E | Timer::G)
    }
}

/// T1, T2, T4 and timer D. Build with [`TimerConfig::new`] (checked) or take the RFC defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    t1: Duration,
    t2: Duration,
    t4: Duration,
    timer_d: Duration,
}

impl Default for TimerConfig {
    /// T1 500 ms, T2 4 s, T4 5 s, timer D 32 s (RFC 3261 Table 4).
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

impl TimerConfig {
    /// Checked constructor: T1 must be positive (retransmission intervals derive from it) and
    /// T2 at least T1. Timer D stays at its default of 32 s ([`TimerConfig::with_timer_d`]).
    pub fn new(t1: Duration, t2: Duration, t4: Duration) -> Result<Self, TransactionError> {
        if t1.is_zero() {
            return Err(TransactionError::InvalidConfig("T1 must be positive"));
        }
        if t2 < t1 {
            return Err(TransactionError::InvalidConfig("T2 must not be below T1"));
        }
        Ok(TimerConfig { t1, t2, t4, timer_d: TimerConfig::default().timer_d })
    }

    /// Sets timer D (unreliable transports; RFC 3261 asks for at least 32 s).
    #[must_use]
    pub fn with_timer_d(mut self, d: Duration) -> Self {
        self.timer_d = d;
        self
    }

    /// T1: RTT estimate.
    pub fn t1(&self) -> Duration {
        self.t1
    }

    /// T2: the cap of non-INVITE request and INVITE response retransmission intervals.
    pub fn t2(&self) -> Duration {
        self.t2
    }

    /// T4: how long a message may stay in the network.
    pub fn t4(&self) -> Duration {
        self.t4
    }

    /// 64*T1: timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// The duration of a terminating timer on this transport; `None` for the retransmission
    /// timers (A, E, G), whose intervals the machines compute.
    pub fn duration(&self, timer: Timer, reliability: Reliability) -> Option<Duration> {
        let reliable = reliability == Reliability::Reliable;
        Some(match timer {
            Timer::B | Timer::F | Timer::H | Timer::L | Timer::M => self.t1x64(),
            Timer::D if reliable => Duration::ZERO,
            Timer::D => self.timer_d,
            Timer::I | Timer::K if reliable => Duration::ZERO,
            Timer::I | Timer::K => self.t4,
            Timer::J if reliable => Duration::ZERO,
            Timer::J => self.t1x64(),
            Timer::A | Timer::E | Timer::G => return None,
        })
    }
}

/// The armed timers of one machine (at most three at a time).
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    armed: Vec<(Timer, Instant)>,
}

impl Timers {
    /// Arms (or re-arms) `timer` to fire at `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.clear(timer);
        self.armed.push((timer, at));
    }

    /// Disarms `timer`.
    pub(crate) fn clear(&mut self, timer: Timer) {
        self.armed.retain(|(t, _)| *t != timer);
    }

    /// Disarms everything.
    pub(crate) fn clear_all(&mut self) {
        self.armed.clear();
    }

    /// The earliest armed timer.
    pub(crate) fn next(&self) -> Option<(Timer, Instant)> {
        self.armed.iter().copied().min_by_key(|&(t, at)| (at, !t.terminates()))
    }

    /// Disarms and returns every timer due at `now`: terminating timers first, then by deadline.
    /// Each timer fires at most once per call, so a caller that is late does not get a burst of
    /// retransmissions.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Timer, Instant)> = self.armed.iter().copied().filter(|&(_, at)| at <= now).collect();
        self.armed.retain(|&(_, at)| at > now);
        due.sort_by_key(|&(t, at)| (!t.terminates(), at));
        due.into_iter().map(|(t, _)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn defaults_and_derived_values() {
        let c = TimerConfig::default();
        assert_eq!(c.t1x64(), Duration::from_secs(32));
        assert_eq!(c.duration(Timer::D, Reliability::Unreliable), Some(Duration::from_secs(32)));
        assert_eq!(c.duration(Timer::D, Reliability::Reliable), Some(Duration::ZERO));
        assert_eq!(c.duration(Timer::K, Reliability::Unreliable), Some(Duration::from_secs(5)));
        assert_eq!(c.duration(Timer::J, Reliability::Reliable), Some(Duration::ZERO));
        assert_eq!(c.duration(Timer::H, Reliability::Reliable), Some(Duration::from_secs(32)));
        assert_eq!(c.duration(Timer::A, Reliability::Unreliable), None);
    }

    #[test]
    fn config_is_checked() {
        assert_eq!(
            TimerConfig::new(Duration::ZERO, Duration::from_secs(4), Duration::from_secs(5)),
            Err(TransactionError::InvalidConfig("T1 must be positive"))
        );
        assert!(TimerConfig::new(Duration::from_secs(1), Duration::from_millis(500), Duration::ZERO).is_err());
        let c = TimerConfig::new(Duration::from_millis(100), Duration::from_secs(1), Duration::from_secs(2)).unwrap();
        assert_eq!(c.t1x64(), Duration::from_millis(6400));
    }

    #[test]
    fn expired_timers_terminating_first_once_each() {
        let t0 = Instant::now();
        let mut ts = Timers::default();
        ts.set(Timer::E, t0 + Duration::from_secs(1));
        ts.set(Timer::F, t0 + Duration::from_secs(2));
        assert_eq!(ts.next(), Some((Timer::E, t0 + Duration::from_secs(1))));
        assert!(ts.take_expired(t0).is_empty());
        assert_eq!(ts.take_expired(t0 + Duration::from_secs(3)), vec![Timer::F, Timer::E]);
        assert_eq!(ts.next(), None);
    }
}
