//! When to try a request again, and how long to wait first.
//!
//! Defaults (see [`RetryPolicy::default`]):
//! - at most **5 attempts** per request (the first one included);
//! - **429 and 503** wait for `Retry-After` (delta-seconds or an HTTP date), capped at **60 s**;
//!   without the header they back off like any other failure;
//! - other **5xx** and **transport failures** back off exponentially with *full jitter*: a
//!   random wait in `0..=min(10 s, 200 ms × 2^n)` before attempt n+1, so that many clients
//!   that failed together do not come back together.
//!
//! Only requests that are safe to repeat are retried after a 5xx or a broken connection
//! (`Repeat`); a connection that was never established is retried for every method, except
//! while `connect` probes the URL a user typed, where a wrong URL should fail at once. A 429 is retried for every method, because Confluence rejected the request before
//! acting on it; an upload that may have been applied is re-checked by the upload code instead.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How a failed request is tried again: how many attempts, the backoff between them, and the
/// longest `Retry-After` honoured. Which failures are retried is in the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included. 1 disables retries.
    pub max_attempts: u32,
    /// First backoff ceiling; doubles with every attempt.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Longest `Retry-After` we are willing to honour; longer values are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// How much of a failure a request may be repeated after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Idempotent (GET, PUT with a version, DELETE): 429, 5xx and transport failures.
    Idempotent,
    /// Might create something twice (POST): 429, and connections that never opened.
    NotIdempotent,
    /// A read whose connection failure is information (connect probing a URL the user typed):
    /// like `Idempotent` for error statuses, but a refused or broken connection fails at once.
    Probe,
}

/// What went wrong with one attempt, as far as retrying cares.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure<'a> {
    Status(u16, &'a HeaderMap),
    /// The connection was never established: the server cannot have seen the request.
    NotConnected,
    /// Anything else on the wire: reset, timeout, a cut body.
    Broken,
}

impl RetryPolicy {
    /// The wait before the next attempt, or `None` to give up. `attempt` counts from 1 (the
    /// attempt that just failed).
    pub(crate) fn next_delay(
        &self,
        attempt: u32,
        repeat: Repeat,
        failure: Failure<'_>,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let may_repeat_status = repeat != Repeat::NotIdempotent;
        match failure {
            Failure::Status(429, headers) => Some(self.retry_after_or_backoff(attempt, headers)),
            Failure::Status(503, headers) if may_repeat_status => {
                Some(self.retry_after_or_backoff(attempt, headers))
            }
            // 501 and 505 say the server will never do this; retrying cannot help.
            Failure::Status(status, _)
                if may_repeat_status && status >= 500 && status != 501 && status != 505 =>
            {
                Some(self.backoff(attempt))
            }
            Failure::NotConnected if repeat != Repeat::Probe => Some(self.backoff(attempt)),
            Failure::Broken if repeat == Repeat::Idempotent => Some(self.backoff(attempt)),
            _ => None,
        }
    }

    fn retry_after_or_backoff(&self, attempt: u32, headers: &HeaderMap) -> Duration {
        match retry_after(headers, SystemTime::now()) {
            Some(wait) => wait.min(self.max_retry_after),
            None => self.backoff(attempt),
        }
    }

    /// Full jitter: uniform in `0..=min(max_delay, base_delay × 2^(attempt-1))`.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// `Retry-After` as a duration from `now`: delta-seconds or an HTTP date (a date in the past
/// means "now").
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(v) = retry_after {
            map.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(Some("7")), now),
            Some(Duration::from_secs(7))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(Some(&later)), now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(Some(&earlier)), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(Some("soon")), now), None);
    }

    #[test]
    fn retry_after_is_capped() {
        let policy = RetryPolicy::default();
        let h = headers(Some("3600"));
        let wait = policy
            .next_delay(1, Repeat::Idempotent, Failure::Status(429, &h))
            .unwrap();
        assert_eq!(wait, Duration::from_secs(60));
    }

    #[test]
    fn post_is_not_repeated_after_5xx_or_reset() {
        let policy = RetryPolicy::default();
        let h = headers(None);
        assert!(policy
            .next_delay(1, Repeat::NotIdempotent, Failure::Status(500, &h))
            .is_none());
        assert!(policy
            .next_delay(1, Repeat::NotIdempotent, Failure::Broken)
            .is_none());
        assert!(policy
            .next_delay(1, Repeat::NotIdempotent, Failure::Status(429, &h))
            .is_some());
        assert!(policy
            .next_delay(1, Repeat::NotIdempotent, Failure::NotConnected)
            .is_some());
        assert!(policy
            .next_delay(1, Repeat::Probe, Failure::NotConnected)
            .is_none());
    }

    #[test]
    fn attempts_are_bounded_and_backoff_is_jittered_within_cap() {
        let policy = RetryPolicy::default();
        let h = headers(None);
        assert!(policy
            .next_delay(5, Repeat::Idempotent, Failure::Status(502, &h))
            .is_none());
        assert!(policy
            .next_delay(1, Repeat::Idempotent, Failure::Status(501, &h))
            .is_none());
        for attempt in 1..5 {
            let ceiling = Duration::from_millis(200 * (1 << (attempt - 1)));
            for _ in 0..50 {
                assert!(policy.backoff(attempt) <= ceiling);
            }
        }
        assert!(policy.backoff(30) <= Duration::from_secs(10));
    }
}
