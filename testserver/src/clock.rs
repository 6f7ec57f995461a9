//! Timestamps in the shapes Confluence sends, without a date library.
//!
//! Everything is kept as epoch milliseconds (that is also what the download servlet's
//! `modificationDate` carries) and formatted on the way out: Cloud writes UTC with a `Z`,
//! Datacenter writes the server's offset, which for this server is always `+00:00`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Flavor;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    y: i64,
    mo: u32,
    d: u32,
    h: i64,
    mi: i64,
    s: i64,
    ms: i64,
}

fn parts(ms: i64) -> Parts {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    Parts {
        y,
        mo,
        d,
        h: rem / 3_600_000,
        mi: rem / 60_000 % 60,
        s: rem / 1000 % 60,
        ms: rem % 1000,
    }
}

/// `2024-01-15T10:30:00.000Z` (Cloud, and every v2 timestamp) or `…+00:00` (Datacenter v1).
pub(crate) fn format(ms: i64, flavor: Flavor) -> String {
    let p = parts(ms);
    let zone = match flavor {
        Flavor::Cloud => "Z",
        Flavor::Datacenter => "+00:00",
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{zone}",
        p.y, p.mo, p.d, p.h, p.mi, p.s, p.ms
    )
}

/// v2 always uses the UTC `Z` form.
pub(crate) fn format_v2(ms: i64) -> String {
    format(ms, Flavor::Cloud)
}

/// `yyyy-MM-ddTHH:mmZ`, the shape of `X-RateLimit-Reset`.
pub(crate) fn format_minute(ms: i64) -> String {
    let p = parts(ms);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}Z", p.y, p.mo, p.d, p.h, p.mi)
}

/// `YYYY-MM-DD` of a timestamp, as used in blog post URLs and seed folder names.
pub(crate) fn ymd(ms: i64) -> (i64, u32, u32) {
    let p = parts(ms);
    (p.y, p.mo, p.d)
}

/// Parses the date forms CQL accepts: `YYYY-MM-DD`, `YYYY/MM/DD`, optionally followed by ` HH:MM`.
pub(crate) fn parse_cql_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once(' ') {
        Some((d, t)) => (d, Some(t.trim())),
        None => (s, None),
    };
    let mut it = date.split(['-', '/']);
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if let Some(t) = time {
        let (h, mi) = t.split_once(':')?;
        let h: i64 = h.parse().ok()?;
        let mi: i64 = mi.parse().ok()?;
        if !(0..24).contains(&h) || !(0..60).contains(&mi) {
            return None;
        }
        ms += h * 3_600_000 + mi * 60_000;
    }
    Some(ms)
}

/// Parses a seed folder's `YYYY-MM-DD` prefix into midday UTC of that date.
pub(crate) fn parse_day(s: &str) -> Option<i64> {
    parse_cql_date(s).map(|ms| ms + 12 * 3_600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_both_flavors() {
        // 1637705708629 = 2021-11-23T22:15:08.629Z (docs/CONFLUENCE.md §4.1).
        assert_eq!(
            format(1_637_705_708_629, Flavor::Cloud),
            "2021-11-23T22:15:08.629Z"
        );
        assert_eq!(
            format(1_637_705_708_629, Flavor::Datacenter),
            "2021-11-23T22:15:08.629+00:00"
        );
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 59, 60, 365, 10_957, 19_737, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_cql_dates() {
        assert_eq!(parse_cql_date("2021-11-23"), Some(1_637_625_600_000));
        assert_eq!(
            parse_cql_date("2021-11-23 22:15"),
            Some(1_637_625_600_000 + 22 * 3_600_000 + 15 * 60_000)
        );
        assert_eq!(parse_cql_date("2021-13-01"), None);
        assert_eq!(parse_cql_date("yesterday"), None);
    }
}
