//! `confluencefs pending`: what waits in the upload spool, and why; retry or drop entries.
//!
//! The spool is plain files, so this command works whether or not a mount is running, and
//! never needs the server or credentials. It finds spools through a mount (the root carries the
//! xattr `user.confluencefs.spool`) or under a cache directory (`DIR/*/spool`, one per site, and
//! `DIR/spool`). It only reads and rewrites records (each rewrite is atomic), and never cleans
//! up debris: a running mount may be admitting an entry at this moment. A mount notices a
//! retried entry at its next look at the spool (every few seconds).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::spool::{EntryState, Spool, SpoolEntry, UploadTarget};

/// The xattr of a mount's root that names its spool directory.
pub(super) const SPOOL_XATTR: &str = "user.confluencefs.spool";

#[derive(Debug, clap::Args)]
pub(super) struct PendingArgs {
    /// A confluencefs mount: its own spool is listed.
    pub mountpoint: Option<PathBuf>,
    /// List every spool under this cache directory instead
    /// [default: $XDG_CACHE_HOME/confluencefs or ~/.cache/confluencefs].
    #[arg(long, conflicts_with = "mountpoint")]
    pub cache_dir: Option<PathBuf>,
    /// Only the uploads to this site (a URL or a site of the configuration file, whose
    /// cache_dir is then the one looked in).
    #[arg(long, value_name = "URL|SITE", conflicts_with = "mountpoint")]
    pub site: Option<String>,
    /// Print the list as one JSON object (spools → entries, and the totals).
    #[arg(long, conflicts_with_all = ["retry", "drop"])]
    pub json: bool,
    /// Refresh the list every SECS seconds (default 1) until Ctrl-C, like watch(1).
    #[arg(long, value_name = "SECS", num_args = 0..=1,
          default_missing_value = super::watch::DEFAULT_SECS, conflicts_with_all = ["retry", "drop"])]
    pub watch: Option<f64>,
    /// Turn a failed entry (or all of them) back to pending, with its attempts reset.
    #[arg(long, value_name = "ID|all", conflicts_with = "drop")]
    pub retry: Option<String>,
    /// Delete an entry: its bytes will never be uploaded.
    #[arg(long, value_name = "ID")]
    pub drop: Option<String>,
}

pub(super) fn run(mut args: PendingArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let mut only_host = None;
    if let Some(named) = &args.site {
        let (url, cache_dir) = site_of(named, config)?;
        only_host = Some(host_of(&url).with_context(|| format!("{url:?} is not a URL"))?);
        if args.cache_dir.is_none() {
            args.cache_dir = cache_dir;
        }
    }
    let mut spools = find_spools(&args)?;
    let site_prefix = only_host.map(|host| format!("{}-", host.replace(':', "_")));
    if let Some(prefix) = &site_prefix {
        spools.retain(|spool| of_site(spool, prefix));
    }
    if let Some(wanted) = &args.retry {
        return retry(&spools, wanted);
    }
    if let Some(wanted) = &args.drop {
        let (spool, entry) = find_entry(&spools, wanted)?;
        // Dropping bytes that are on their way would not stop them: refuse until it is over.
        let Some(_held) = spool.try_lock(&entry.id)? else {
            bail!(
                "{} is being uploaded right now; look again in a moment",
                entry.id
            );
        };
        println!(
            "dropping {}: {} ({}, {}) — these bytes will not be uploaded",
            entry.id,
            entry.record.display_path,
            human_size(entry.record.size),
            state_text(&entry.record.state)
        );
        spool
            .remove(&entry.id)
            .with_context(|| format!("cannot drop {}", entry.id))?;
        return Ok(());
    }
    let show = |spools: &[Spool]| {
        if args.json {
            list_json(spools)
        } else {
            list(spools)
        }
    };
    let Some(secs) = args.watch else {
        return show(&spools);
    };
    let title = match &args.mountpoint {
        Some(path) => format!("confluencefs pending {}", path.display()),
        None => "confluencefs pending".to_string(),
    };
    // Spools are looked for again each time: a site's first upload makes its spool.
    super::watch::run(super::watch::interval(secs)?, &title, args.json, || {
        let mut spools = find_spools(&args)?;
        if let Some(prefix) = &site_prefix {
            spools.retain(|spool| of_site(spool, prefix));
        }
        show(&spools)
    })
}

/// Whether `spool` is one of the site whose directories start with `prefix`.
fn of_site(spool: &Spool, prefix: &str) -> bool {
    // Each site's spool lives in `CACHE_DIR/<host>-<hash>/spool` (`mount::site_dir_name`).
    spool
        .dir()
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name.to_string_lossy().starts_with(prefix))
}

/// `pending --json`.
#[derive(serde::Serialize)]
struct PendingReport {
    spools: Vec<SpoolReport>,
    pending: u64,
    failed: u64,
    bytes: u64,
}

#[derive(serde::Serialize)]
struct SpoolReport {
    dir: String,
    entries: Vec<EntryReport>,
}

#[derive(serde::Serialize)]
struct EntryReport {
    id: String,
    /// `pending`, `failed` or `uploading` (a mount is sending it now).
    state: &'static str,
    /// For `failed`: the errno's name (`EFBIG`) and the reason.
    errno: Option<String>,
    reason: Option<String>,
    path: String,
    site: String,
    size: u64,
    attempts: u32,
    created_unix_ms: u64,
    last_error: Option<String>,
}

fn list_json(spools: &[Spool]) -> anyhow::Result<()> {
    let mut report = PendingReport {
        spools: Vec::new(),
        pending: 0,
        failed: 0,
        bytes: 0,
    };
    for spool in spools {
        let entries = spool
            .list()
            .with_context(|| format!("cannot read the spool {}", spool.dir().display()))?;
        let mut listed = Vec::new();
        for entry in entries {
            let record = entry.record;
            let (state, errno, reason) = match &record.state {
                EntryState::Pending => {
                    report.pending += 1;
                    ("pending", None, None)
                }
                EntryState::Failed { errno, reason } => {
                    report.failed += 1;
                    ("failed", Some(errno_name(*errno)), Some(reason.clone()))
                }
            };
            let state = match spool.try_lock(&entry.id) {
                Ok(None) => "uploading",
                _ => state,
            };
            report.bytes += record.size;
            listed.push(EntryReport {
                id: entry.id,
                state,
                errno,
                reason,
                path: record.display_path,
                site: record.site,
                size: record.size,
                attempts: record.attempts,
                created_unix_ms: record.created_unix_ms,
                last_error: record.last_error,
            });
        }
        report.spools.push(SpoolReport {
            dir: spool.dir().display().to_string(),
            entries: listed,
        });
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The URL and the cache directory of `named`, a URL or a site of the configuration file.
fn site_of(named: &str, config: Option<&Path>) -> anyhow::Result<(String, Option<PathBuf>)> {
    let config = super::config_file::Config::load(config)?;
    if super::site::is_url(named) {
        let cache_dir = config
            .site_by_url(named)
            .and_then(|(_, site)| site.mount.cache_dir.as_deref())
            .map(|dir| config.resolve_path(dir));
        return Ok((named.to_string(), cache_dir));
    }
    let site = config
        .site(named)
        .with_context(|| format!("no site {named:?} in {}", config.path.display()))?;
    let cache_dir = site
        .mount
        .cache_dir
        .as_deref()
        .map(|dir| config.resolve_path(dir));
    Ok((site.url.clone(), cache_dir))
}

/// The host of `url`, lower-cased.
fn host_of(url: &str) -> Option<String> {
    Some(
        url::Url::parse(url.trim())
            .ok()?
            .host_str()?
            .to_ascii_lowercase(),
    )
}

fn find_spools(args: &PendingArgs) -> anyhow::Result<Vec<Spool>> {
    if let Some(mountpoint) = &args.mountpoint {
        let value = getxattr(mountpoint, SPOOL_XATTR).with_context(|| {
            format!(
                "{} does not name its spool (is it a confluencefs mount?); try --cache-dir",
                mountpoint.display()
            )
        })?;
        let dir = PathBuf::from(std::ffi::OsStr::from_bytes(&value));
        return Ok(vec![Spool::inspect(&dir)]);
    }
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(super::mount_args::default_cache_dir);
    let mut dirs = Vec::new();
    if cache_dir.join("spool").is_dir() {
        dirs.push(cache_dir.join("spool"));
    }
    if let Ok(reader) = std::fs::read_dir(&cache_dir) {
        let mut sites: Vec<PathBuf> = reader
            .flatten()
            .map(|item| item.path().join("spool"))
            .filter(|spool| spool.is_dir())
            .collect();
        sites.sort();
        dirs.extend(sites);
    }
    Ok(dirs.iter().map(|dir| Spool::inspect(dir)).collect())
}

fn list(spools: &[Spool]) -> anyhow::Result<()> {
    let now = unix_ms();
    let (mut pending, mut failed, mut bytes) = (0, 0, 0);
    for spool in spools {
        let entries = spool
            .list()
            .with_context(|| format!("cannot read the spool {}", spool.dir().display()))?;
        if entries.is_empty() {
            continue;
        }
        println!("spool {}", spool.dir().display());
        for entry in &entries {
            let record = &entry.record;
            match record.state {
                EntryState::Pending => pending += 1,
                EntryState::Failed { .. } => failed += 1,
            }
            bytes += record.size;
            let error = record
                .last_error
                .as_deref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default();
            // A held entry lock means a mount is sending it at this moment.
            let state = match spool.try_lock(&entry.id) {
                Ok(None) => "uploading".to_string(),
                _ => state_text(&record.state),
            };
            println!(
                "{}  {:<15}  {:>10}  {:>2} tries  {:>4} old  {}  → {}{error}",
                entry.id,
                state,
                human_size(record.size),
                record.attempts,
                human_age(now.saturating_sub(record.created_unix_ms)),
                record.display_path,
                record.site,
            );
            // A page text's conflict says what to do, on a line of its own.
            if let (UploadTarget::PageText { .. }, EntryState::Failed { reason, .. }) =
                (&record.target, &record.state)
            {
                println!("    {}", reason.replace(" ID", &format!(" {}", entry.id)));
            }
        }
    }
    if pending + failed == 0 {
        println!("nothing pending");
    } else {
        let total = pending + failed;
        let noun = if total == 1 { "entry" } else { "entries" };
        println!(
            "{total} {noun} ({pending} pending, {failed} failed), {} waiting to be uploaded",
            human_size(bytes)
        );
    }
    Ok(())
}

fn retry(spools: &[Spool], wanted: &str) -> anyhow::Result<()> {
    let chosen: Vec<(&Spool, SpoolEntry)> = if wanted == "all" {
        let mut all = Vec::new();
        for spool in spools {
            for entry in spool.list()? {
                all.push((spool, entry));
            }
        }
        all
    } else {
        vec![find_entry(spools, wanted)?]
    };
    let mut retried = 0;
    for (spool, mut entry) in chosen {
        if entry.record.state == EntryState::Pending {
            if wanted != "all" {
                println!(
                    "{} is pending already: {}",
                    entry.id, entry.record.display_path
                );
            }
            continue;
        }
        entry.record.state = EntryState::Pending;
        entry.record.attempts = 0;
        if let UploadTarget::PageText { merge, .. } = &mut entry.record.target {
            // Asked for: merged onto a newer version when the edits touch different blocks.
            *merge = true;
        }
        spool
            .update(&entry)
            .with_context(|| format!("cannot retry {}", entry.id))?;
        println!("retrying {}: {}", entry.id, entry.record.display_path);
        retried += 1;
    }
    if wanted == "all" {
        println!("{retried} failed entries turned back to pending");
    }
    Ok(())
}

/// The entry named by its whole id, or by a prefix or suffix that only it has.
fn find_entry<'a>(spools: &'a [Spool], wanted: &str) -> anyhow::Result<(&'a Spool, SpoolEntry)> {
    let mut matches = Vec::new();
    for spool in spools {
        for entry in spool.list()? {
            if entry.id == wanted {
                return Ok((spool, entry));
            }
            if !wanted.is_empty() && (entry.id.starts_with(wanted) || entry.id.ends_with(wanted)) {
                matches.push((spool, entry));
            }
        }
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => bail!("no pending upload {wanted:?} (see `confluencefs pending`)"),
        n => bail!("{wanted:?} names {n} entries; give more of the id"),
    }
}

/// `getxattr(2)` of `path`.
fn getxattr(path: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    let c_name = CString::new(name)?;
    let mut buffer = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and live across the call; the buffer is valid
    // for writes of `buffer.len()` bytes, which is the size passed.
    let n = unsafe {
        libc::getxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buffer.truncate(n as usize);
    Ok(buffer)
}

fn state_text(state: &EntryState) -> String {
    match state {
        EntryState::Pending => "pending".into(),
        EntryState::Failed { errno, .. } => format!("failed ({})", errno_name(*errno)),
    }
}

fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EACCES => "EACCES",
        libc::EFBIG => "EFBIG",
        libc::EINVAL => "EINVAL",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EEXIST => "EEXIST",
        libc::ENOSPC => "ENOSPC",
        libc::ESTALE => "ESTALE",
        other => return format!("errno {other}"),
    };
    name.to_string()
}

pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn human_age(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages() {
        assert_eq!(human_size(17), "17 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
        assert_eq!(human_age(59_999), "59s");
        assert_eq!(human_age(3 * 3_600_000), "3h");
        assert_eq!(state_text(&EntryState::Pending), "pending");
        let failed = EntryState::Failed {
            errno: libc::EFBIG,
            reason: "too large".into(),
        };
        assert_eq!(state_text(&failed), "failed (EFBIG)");
    }

    #[test]
    fn getxattr_of_a_missing_attribute_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(getxattr(dir.path(), SPOOL_XATTR).is_err());
    }
}
