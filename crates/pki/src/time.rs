//! Time as the PKI sees it: Unix seconds (UTC). Nothing in this crate reads the clock except
//! [`unix_now`]; every operation that depends on time takes `now` as an argument, so tests and
//! the `--now` option can put the CA at any instant (rotation at the 90-day boundary, expired CAs).

use openssl::asn1::{Asn1Time, Asn1TimeRef};

use crate::error::{CryptoContext, Error, Result};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The system clock, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A certificate validity window, both ends inclusive (RFC 5280 §4.1.2.5), in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// How far `not_before` is set back from "now", so that a peer whose clock runs a little
    /// behind still accepts a certificate issued a moment ago.
    pub const BACKDATE: i64 = 300;

    /// An explicit window (any window, including already-expired or not-yet-valid ones).
    pub fn new(not_before: i64, not_after: i64) -> Self {
        Validity { not_before, not_after }
    }

    /// `days` days from `now` (with `not_before` set back by [`Validity::BACKDATE`]).
    pub fn days_from(now: i64, days: u32) -> Self {
        Validity { not_before: now - Self::BACKDATE, not_after: now + i64::from(days) * DAY }
    }

    /// Is `t` inside the window?
    pub fn contains(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }
}

pub(crate) fn to_asn1(t: i64) -> Result<Asn1Time> {
    // time_t is 64-bit on every platform trunkgate supports.
    Asn1Time::from_unix(t).ctx("encoding a time")
}

/// Unix seconds of an ASN.1 time.
pub fn from_asn1(t: &Asn1TimeRef) -> Result<i64> {
    let epoch = Asn1Time::from_unix(0).ctx("encoding the epoch")?;
    let d = epoch.diff(t).ctx("reading a time")?;
    Ok(i64::from(d.days) * DAY + i64::from(d.secs))
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format(t: i64) -> String {
    let (days, secs) = (t.div_euclid(DAY), t.rem_euclid(DAY));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Whole days from `now` to `t` (negative when `t` is in the past), rounded toward zero.
pub fn days_between(now: i64, t: i64) -> i64 {
    (t - now) / DAY
}

/// Parse `@UNIX`, `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse(s: &str) -> Result<i64> {
    let bad = |why: &str| Error::invalid("time", s, why.to_string());
    if let Some(n) = s.strip_prefix('@') {
        return n.parse().map_err(|_| bad("expected @ followed by Unix seconds"));
    }
    let (date, clock) = match s.split_once('T') {
        Some((d, c)) => (d, Some(c.strip_suffix('Z').ok_or_else(|| bad("times must end in Z (UTC)"))?)),
        None => (s, None),
    };
    let fields = |text: &str, sep: char, n: usize| -> Result<Vec<i64>> {
        let v: Vec<i64> = text
            .split(sep)
            .map(|p| p.parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad("expected @UNIX, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"))?;
        if v.len() == n {
            Ok(v)
        } else {
            Err(bad("expected @UNIX, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"))
        }
    };
    let [y, m, d] = <[i64; 3]>::try_from(fields(date, '-', 3)?).map_err(|_| bad("bad date"))?;
    let [hh, mm, ss] = match clock {
        Some(c) => <[i64; 3]>::try_from(fields(c, ':', 3)?).map_err(|_| bad("bad time"))?,
        None => [0, 0, 0],
    };
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || !(0..24).contains(&hh)
        || !(0..60).contains(&mm)
        || !(0..61).contains(&ss)
    {
        return Err(bad("field out of range"));
    }
    let days = days_from_civil(y, m as u32, d as u32);
    if civil_from_days(days) != (y, m as u32, d as u32) {
        return Err(bad("no such day"));
    }
    Ok(days * DAY + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known era/day-of-era method).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_and_format_agree() {
        assert_eq!(parse("1970-01-01").unwrap(), 0);
        assert_eq!(parse("@1700000000").unwrap(), 1_700_000_000);
        let t = parse("2026-11-23T19:23:26Z").unwrap();
        assert_eq!(t, 1_795_461_806);
        assert_eq!(format(t), "2026-11-23 19:23:26 UTC");
        assert_eq!(format(parse("2000-02-29").unwrap()), "2000-02-29 00:00:00 UTC");
        assert!(parse("2026-02-30").is_err());
        assert!(parse("2026-11-23T19:23:26").is_err());
        assert!(parse("yesterday").is_err());
    }

    #[test]
    fn asn1_round_trip() {
        for t in [0i64, 1_795_461_806, 2_600_000_000] {
            assert_eq!(from_asn1(&to_asn1(t).unwrap()).unwrap(), t);
        }
    }
}
