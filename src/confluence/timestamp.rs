//! Confluence timestamps to `SystemTime`.
//!
//! Cloud writes UTC with milliseconds and `Z` (`2021-11-23T22:15:08.629Z`); Data Center writes
//! the server's offset (`2025-05-05T15:05:30.544+02:00`). Both are RFC 3339, which this small
//! parser covers (fraction optional, `Z` or `±hh:mm`/`±hhmm`), so no date crate is needed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses an RFC 3339 timestamp; `None` when it is not one.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let fraction = &after_dot[..digits];
        let padded: String = fraction
            .chars()
            .chain("000000000".chars())
            .take(9)
            .collect();
        nanos = padded.parse().ok()?;
        rest = &after_dot[digits..];
    }
    let offset_seconds: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = digits[0..2].parse().ok()?;
            let minutes: i64 = digits[2..4].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(60) - offset_seconds;
    if seconds >= 0 {
        Some(UNIX_EPOCH + Duration::new(seconds as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(seconds.unsigned_abs()))?
            .checked_add(Duration::from_nanos(nanos as u64))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(t: SystemTime) -> u128 {
        t.duration_since(UNIX_EPOCH).unwrap().as_millis()
    }

    #[test]
    fn cloud_utc_with_millis() {
        // docs/CONFLUENCE.md §4.1: modificationDate 1637705708629 = 2021-11-23T22:15:08.629Z.
        let t = parse_rfc3339("2021-11-23T22:15:08.629Z").unwrap();
        assert_eq!(millis(t), 1_637_705_708_629);
    }

    #[test]
    fn datacenter_offset() {
        // docs/CONFLUENCE.md §4.1: DC modificationDate 1746450330544 = 2025-05-05T15:05:30.544+02:00.
        let t = parse_rfc3339("2025-05-05T15:05:30.544+02:00").unwrap();
        assert_eq!(millis(t), 1_746_450_330_544);
        let t = parse_rfc3339("2025-05-05T15:05:30.544+0200").unwrap();
        assert_eq!(millis(t), 1_746_450_330_544);
    }

    #[test]
    fn without_fraction_and_rejects_garbage() {
        assert_eq!(
            parse_rfc3339("1970-01-02T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(86_400))
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2021-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2021-11-23T22:15:08"), None);
    }
}
