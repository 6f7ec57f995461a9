//! `--watch [SECS]`: run a listing again and again, the way watch(1) does.
//!
//! Each refresh clears the screen (ANSI `ESC[H ESC[2J`, what `watch` sends), prints a header
//! line with the interval and the time, then the command's own output; Ctrl-C ends it (the
//! default SIGINT action: nothing is held that needs cleaning up). A refresh that fails prints
//! its one-line error and the next one tries again, so a mount that goes away mid-watch shows
//! as an error rather than ending the watch. `--json` refreshes print one document per line
//! with no clearing, so that a script can read them as JSON Lines.

use std::io::Write;
use std::time::Duration;

/// The interval of `--watch` given without a value, in seconds.
pub(super) const DEFAULT_SECS: &str = "1";

/// The interval `--watch SECS` asks for, refused when it is not a positive number.
pub(super) fn interval(secs: f64) -> anyhow::Result<Duration> {
    if !(secs.is_finite() && secs > 0.0) {
        anyhow::bail!("--watch takes a positive number of seconds, not {secs}");
    }
    Ok(Duration::from_secs_f64(secs.max(0.1)))
}

/// Runs `refresh` every `every` until the process is interrupted. `title` names the command in
/// the header; `json` leaves the screen alone.
pub(super) fn run(
    every: Duration,
    title: &str,
    json: bool,
    mut refresh: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        if !json {
            let now = local_time(crate::mount::unix_ms(std::time::SystemTime::now()));
            print!(
                "\x1b[H\x1b[2JEvery {:.1}s: {title}    {now}\n\n",
                every.as_secs_f64()
            );
        }
        if let Err(err) = refresh() {
            println!("confluencefs: {}", super::one_line(&err));
        }
        std::io::stdout().flush()?;
        std::thread::sleep(every);
    }
}

/// The local time of day of `unix_ms` as `HH:MM:SS`, from libc (no date crate for this).
pub(super) fn local_time(unix_ms: u64) -> String {
    let secs = (unix_ms / 1000) as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return String::new();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_must_be_positive() {
        assert_eq!(interval(2.5).unwrap(), Duration::from_millis(2500));
        assert!(interval(0.0).is_err());
        assert!(interval(-1.0).is_err());
        assert!(interval(f64::NAN).is_err());
        assert_eq!(interval(0.01).unwrap(), Duration::from_millis(100));
        assert_eq!(local_time(1_700_000_000_000).len(), 8);
    }
}
