//! `confluencefs status`: what each running mount is doing, and whether it is safe to unmount.
//!
//! The mounts come from `/proc/self/mountinfo` (type `fuse.confluencefs`); each mount's own
//! numbers from the status file its process writes once a second (`mount::MountStatus`), found
//! by the mount's device number, which mountinfo also shows. So this command never touches
//! the mount itself — a hung mount cannot hang the command that is asked why it hangs — and
//! needs neither the server nor credentials. The spool is read here, live, as `pending` reads
//! it: it is plain files, and what waits there is the answer to "is it safe to unmount?".

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

use crate::mount::{status_dirs, status_file_name, MountStatus};
use crate::spool::{EntryState, Spool};

/// A status written longer ago than this comes from a process that stopped answering.
const FRESH_MS: u64 = 5_000;

#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    /// A confluencefs mount; without it, every confluencefs mount this user may see.
    pub mountpoint: Option<PathBuf>,
    /// Print one JSON object: {"mounts": [...]} (fields in docs/CONFIGURATION.md).
    #[arg(long)]
    pub json: bool,
    /// Refresh every SECS seconds (default 1) until Ctrl-C, like watch(1).
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = super::watch::DEFAULT_SECS)]
    pub watch: Option<f64>,
}

pub(super) fn run(args: StatusArgs) -> anyhow::Result<()> {
    let once = || show(args.mountpoint.as_deref(), args.json, args.watch.is_some());
    match args.watch {
        None => once(),
        Some(secs) => {
            let title = match &args.mountpoint {
                Some(path) => format!("confluencefs status {}", path.display()),
                None => "confluencefs status".to_string(),
            };
            super::watch::run(super::watch::interval(secs)?, &title, args.json, once)
        }
    }
}

/// Prints the report once; `--json` under `--watch` on one line per refresh (JSON Lines).
fn show(mountpoint: Option<&Path>, json: bool, watching: bool) -> anyhow::Result<()> {
    let mounts = match mountpoint {
        Some(path) => vec![find_mount(path)?],
        None => {
            let mut mounts = our_mounts()?;
            mounts.extend(detached(&mounts));
            mounts
        }
    };
    let reports: Vec<Value> = mounts.iter().map(report).collect();
    if json {
        let document = json!({ "mounts": reports });
        if watching {
            println!("{}", serde_json::to_string(&document)?);
        } else {
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        return Ok(());
    }
    if reports.is_empty() {
        println!("no confluencefs mounts");
    }
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", text(report));
    }
    Ok(())
}

/// A confluencefs mount as mountinfo shows it.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    mountpoint: PathBuf,
    major: u32,
    minor: u32,
    /// `user_id=` of the super options: who mounted it.
    owner: Option<u32>,
    /// Found through its status file only: not in this process's mountinfo (see [`detached`]).
    status: Option<MountStatus>,
}

/// The FUSE mounts of `mountinfo`'s text, and whether each is surely ours by its type or
/// source (`fuse.confluencefs` through mount(8), else source `confluencefs`); one renamed with
/// `-o fsname=` is recognised by its status file instead.
fn parse_mountinfo(mountinfo: &str) -> Vec<(Mount, bool)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let mut after = after.split(' ');
            let fstype = after.next()?;
            if fstype != "fuse" && !fstype.starts_with("fuse.") {
                return None;
            }
            let source = after.next().unwrap_or("");
            let surely_ours = fstype == "fuse.confluencefs" || source == "confluencefs";
            let owner = after.next().and_then(|options| {
                options
                    .split(',')
                    .find_map(|o| o.strip_prefix("user_id=")?.parse().ok())
            });
            let (major, minor) = fields.get(2)?.split_once(':')?;
            let mountpoint = {
                use std::os::unix::ffi::OsStrExt;
                let bytes = crate::mount::unescape_mountinfo(fields.get(4)?);
                PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))
            };
            let mount = Mount {
                mountpoint,
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                owner,
                status: None,
            };
            Some((mount, surely_ours))
        })
        .collect()
}

/// The confluencefs mounts this user may look at: their own, or every one for root.
fn our_mounts() -> anyhow::Result<Vec<Mount>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")?;
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    Ok(parse_mountinfo(&mountinfo)
        .into_iter()
        .filter(|(m, _)| uid == 0 || m.owner.map_or(true, |owner| owner == uid))
        .filter(|(m, surely)| *surely || status_of(m).is_some())
        .map(|(m, _)| m)
        .collect())
}

/// The mount at `path` (which may be given relative, or through a symbolic link).
fn find_mount(path: &Path) -> anyhow::Result<Mount> {
    let mounts = our_mounts()?;
    let absolute = std::path::absolute(path)?;
    let found = |wanted: &Path| mounts.iter().find(|m| m.mountpoint == wanted).cloned();
    // Canonicalizing asks the mount for its root: only when the plain path is no mountpoint.
    found(&absolute)
        .or_else(|| std::fs::canonicalize(path).ok().and_then(|c| found(&c)))
        .with_context(|| format!("{} is not a confluencefs mount", path.display()))
}

/// Processes of this user whose mount mountinfo does not show but which still run: unmounted
/// and finishing their uploads, detached lazily (`umount -l`) and serving the files still open,
/// or mounted in another mount namespace.
fn detached(mounted: &[Mount]) -> Vec<Mount> {
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    let mut found = Vec::new();
    for dir in status_dirs(uid) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(status) = read_status(&entry.path()) else {
                continue;
            };
            let mountpoint = PathBuf::from(&status.mountpoint);
            let shown = mounted.iter().any(|m| m.mountpoint == mountpoint)
                || found.iter().any(|m: &Mount| m.mountpoint == mountpoint);
            let now = crate::mount::unix_ms(std::time::SystemTime::now());
            let fresh = now.saturating_sub(status.updated_unix_ms) <= FRESH_MS;
            if alive(status.pid) && fresh && !shown {
                found.push(Mount {
                    mountpoint,
                    major: 0,
                    minor: 0,
                    owner: Some(uid),
                    status: Some(status),
                });
            }
        }
    }
    found
}

fn read_status(path: &Path) -> Option<MountStatus> {
    if path.extension().map_or(true, |e| e != "json") {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The status file of `mount`, if its process wrote one.
fn status_of(mount: &Mount) -> Option<MountStatus> {
    if let Some(status) = &mount.status {
        return Some(status.clone());
    }
    // SAFETY: getuid cannot fail and touches no memory.
    let owner = mount.owner.unwrap_or_else(|| unsafe { libc::getuid() });
    let name = status_file_name(mount.major, mount.minor);
    status_dirs(owner)
        .iter()
        .filter_map(|dir| read_status(&dir.join(&name)))
        // A file a crashed process left for a device number since reused names another path.
        .find(|status| Path::new(&status.mountpoint) == mount.mountpoint)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// One mount's report, as `--json` prints it.
fn report(mount: &Mount) -> Value {
    let mountpoint = mount.mountpoint.display().to_string();
    let Some(status) = status_of(mount) else {
        return json!({
            "mountpoint": mountpoint,
            "state": "unknown",
            "problem": "no status file: its process is an older confluencefs, or found no runtime directory",
        });
    };
    if !alive(status.pid) {
        return json!({
            "mountpoint": mountpoint,
            "state": "stale",
            "pid": status.pid,
            "problem": format!(
                "the process that served it ({}) is gone; `fusermount3 -uz {mountpoint}` detaches it",
                status.pid
            ),
        });
    }
    let now = crate::mount::unix_ms(std::time::SystemTime::now());
    let responding = now.saturating_sub(status.updated_unix_ms) <= FRESH_MS;
    let spool = status
        .spool_dir
        .as_deref()
        .map(|dir| spool_summary(Path::new(dir)));
    let waiting = spool.as_ref().map_or(0, |s| s.pending + s.failed);
    let idle = status.uploads.is_empty() && waiting == 0;
    let mut value = serde_json::to_value(&status).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.insert("responding".into(), json!(responding));
        fields.insert("detached".into(), json!(mount.status.is_some()));
        fields.insert("idle".into(), json!(idle));
        fields.insert(
            "spool".into(),
            spool.map_or(Value::Null, |s| {
                json!({
                    "pending": s.pending,
                    "failed": s.failed,
                    "uploading": s.uploading,
                    "bytes": s.bytes,
                    "unreadable": s.unreadable,
                })
            }),
        );
    }
    value
}

/// What waits in a spool.
#[derive(Debug, Default, PartialEq, Eq)]
struct SpoolSummary {
    pending: u64,
    failed: u64,
    /// Entries a mount holds the lock of: being sent now (counted in `pending` or `failed` too).
    uploading: u64,
    bytes: u64,
    /// Set when the spool could not be read.
    unreadable: Option<String>,
}

fn spool_summary(dir: &Path) -> SpoolSummary {
    let spool = Spool::inspect(dir);
    let mut summary = SpoolSummary::default();
    match spool.list() {
        Ok(entries) => {
            for entry in entries {
                match entry.record.state {
                    EntryState::Pending => summary.pending += 1,
                    EntryState::Failed { .. } => summary.failed += 1,
                }
                if matches!(spool.try_lock(&entry.id), Ok(None)) {
                    summary.uploading += 1;
                }
                summary.bytes += entry.record.size;
            }
        }
        Err(err) => summary.unreadable = Some(err.to_string()),
    }
    summary
}

/// One mount's report as text.
fn text(report: &Value) -> String {
    let mut out = String::new();
    let s = |key: &str| report.get(key).and_then(Value::as_str).unwrap_or("");
    let n = |value: &Value, key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
    let mountpoint = s("mountpoint");
    match s("state") {
        "unknown" | "stale" => {
            let _ = writeln!(out, "{mountpoint}: {}", s("problem"));
            return out;
        }
        _ => {}
    }
    let detached = report.get("detached").and_then(Value::as_bool) == Some(true);
    let state = match (
        s("state"),
        report.get("responding").and_then(Value::as_bool),
    ) {
        ("unmounting", _) => "unmounted, finishing its uploads".to_string(),
        _ if detached => "not in the mount table: unmounted lazily and serving the files still \
                          open, or in another mount namespace"
            .to_string(),
        (_, Some(false)) => "not responding (its status is not being updated)".to_string(),
        _ => format!("up {}", human_duration(n(report, "uptime_s"))),
    };
    let _ = writeln!(out, "{mountpoint}  (pid {}, {state})", n(report, "pid"));
    let read_only = if report.get("read_only").and_then(Value::as_bool) == Some(true) {
        ", read-only"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  site       {} ({}, user {}{read_only})",
        s("site"),
        s("flavor"),
        s("user")
    );
    let cache = &report["cache"];
    let hit_rate = cache
        .get("hit_rate")
        .and_then(Value::as_f64)
        .map_or("no reads yet".to_string(), |r| {
            format!("hit rate {:.0}%", r * 100.0)
        });
    let disk = if n(cache, "disk_limit_bytes") == 0 {
        "no disk tier".to_string()
    } else {
        format!(
            "disk {} of {}",
            human_size(n(cache, "disk_bytes")),
            human_size(n(cache, "disk_limit_bytes"))
        )
    };
    let _ = writeln!(
        out,
        "  cache      memory {} of {}, {disk}; {hit_rate} ({} memory, {} disk, {} fetched)",
        human_size(n(cache, "memory_bytes")),
        human_size(n(cache, "memory_limit_bytes")),
        n(cache, "memory_hits"),
        n(cache, "disk_hits"),
        n(cache, "misses"),
    );
    let requests = &report["requests"];
    let _ = writeln!(
        out,
        "  requests   {} made, {} retried ({} downloads, {} from the media host, {} uploads)",
        n(requests, "made"),
        n(requests, "retried"),
        n(requests, "downloads"),
        n(requests, "media"),
        n(requests, "uploads"),
    );
    let read_path = match s("read_path") {
        "media" => "Cloud's media host (the site redirects each download there)",
        "direct" => "direct from the site",
        _ => "nothing downloaded yet",
    };
    let _ = writeln!(out, "  reads      {read_path}");
    let passthrough = &report["passthrough"];
    let kernel = match passthrough["off_because"].as_str() {
        _ if passthrough["on"].as_bool() == Some(true) => format!(
            "the kernel reads and writes local files itself where it can (FUSE passthrough; {} opened)",
            n(passthrough, "opened")
        ),
        Some(reason) => format!("every READ and WRITE through the mount process ({reason})"),
        None => "every READ and WRITE through the mount process".to_string(),
    };
    let _ = writeln!(out, "  kernel     {kernel}");
    let uploads = report["uploads"].as_array().cloned().unwrap_or_default();
    if uploads.is_empty() {
        let _ = writeln!(out, "  uploads    none in flight");
    }
    for upload in &uploads {
        let size = upload
            .get("size")
            .and_then(Value::as_u64)
            .map_or("a file still being written".to_string(), human_size);
        let _ = writeln!(
            out,
            "  uploading  {}: {} of {size} sent, {}/s",
            upload.get("name").and_then(Value::as_str).unwrap_or(""),
            human_size(n(upload, "bytes_sent")),
            human_size(n(upload, "rate_bytes_per_s")),
        );
    }
    let spool = &report["spool"];
    let (pending, failed) = (n(spool, "pending"), n(spool, "failed"));
    if spool.is_null() {
        let _ = writeln!(out, "  spool      none (read-only)");
    } else if let Some(problem) = spool.get("unreadable").and_then(Value::as_str) {
        let _ = writeln!(out, "  spool      unreadable: {problem}");
    } else {
        let _ = writeln!(
            out,
            "  spool      {pending} pending, {failed} failed, {}",
            human_size(n(spool, "bytes"))
        );
    }
    let errors = report["errors"].as_array().cloned().unwrap_or_default();
    if errors.is_empty() {
        let _ = writeln!(out, "  errors     none");
    }
    for error in &errors {
        let _ = writeln!(
            out,
            "  {:<9}  {} {}",
            error.get("level").and_then(Value::as_str).unwrap_or(""),
            super::watch::local_time(n(error, "unix_ms")),
            error.get("message").and_then(Value::as_str).unwrap_or("")
        );
    }
    let _ = writeln!(
        out,
        "{}",
        verdict(
            mountpoint,
            n(report, "open_for_writing"),
            uploads.len() as u64,
            pending,
            failed
        )
    );
    out
}

/// The answer to "is it safe to unmount?".
fn verdict(mountpoint: &str, writing: u64, in_flight: u64, pending: u64, failed: u64) -> String {
    if writing + in_flight + pending + failed == 0 {
        return "  safe to unmount: yes, nothing waits to be uploaded".to_string();
    }
    let mut why = Vec::new();
    if writing > 0 {
        why.push(format!(
            "{writing} file(s) open for writing (uploaded when closed)"
        ));
    }
    if in_flight > 0 {
        why.push(format!("{in_flight} upload(s) on the wire"));
    }
    if pending > 0 {
        why.push(format!("{pending} waiting in the spool"));
    }
    let mut line = format!("  safe to unmount: not yet: {}", why.join(", "));
    if writing + in_flight + pending > 0 {
        line.push_str(
            " (unmounting waits --unmount-wait for them; what is left resumes at the next mount)",
        );
    }
    if failed > 0 {
        if writing + in_flight + pending > 0 {
            line.push(';');
        } else {
            line = "  safe to unmount: yes, but".to_string();
        }
        line.push_str(&format!(
            " {failed} upload(s) refused, kept until you retry or drop them \
             (`confluencefs pending {mountpoint}`)"
        ));
    }
    line
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {}s", secs / 60, secs % 60),
        3600..=86_399 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

fn human_size(bytes: u64) -> String {
    super::pending::human_size(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_of_ours_are_found_by_type_or_source() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
45 27 0:40 / /tmp/st/m rw,nosuid,nodev,relatime - fuse confluencefs rw,user_id=1000,group_id=1000
46 27 0:41 / /mnt/my\\040wiki rw shared:7 - fuse.confluencefs https://x.atlassian.net rw,user_id=0,group_id=0
47 27 0:42 / /mnt/sshfs rw - fuse.sshfs host: rw,user_id=1000,group_id=1000
";
        let found = parse_mountinfo(mountinfo);
        assert_eq!(found.len(), 3, "every FUSE mount, ext4 left out: {found:?}");
        let (first, ours) = &found[0];
        assert!(*ours);
        assert_eq!(first.mountpoint, Path::new("/tmp/st/m"));
        assert_eq!((first.major, first.minor, first.owner), (0, 40, Some(1000)));
        let (second, ours) = &found[1];
        assert!(*ours, "fuse.confluencefs, whatever the source");
        assert_eq!(second.mountpoint, Path::new("/mnt/my wiki"));
        assert_eq!(second.owner, Some(0));
        assert!(
            !found[2].1,
            "sshfs is not ours unless a status file says so"
        );
    }

    #[test]
    fn the_verdict_names_what_waits() {
        assert!(verdict("/m", 0, 0, 0, 0).contains("yes, nothing waits"));
        let busy = verdict("/m", 0, 1, 2, 0);
        assert!(
            busy.contains("not yet: 1 upload(s) on the wire, 2 waiting"),
            "{busy}"
        );
        let refused = verdict("/m", 0, 0, 0, 3);
        assert!(
            refused.contains("yes, but 3 upload(s) refused"),
            "{refused}"
        );
        assert!(refused.contains("confluencefs pending /m"), "{refused}");
        let writing = verdict("/m", 2, 0, 0, 0);
        assert!(
            writing.contains("not yet: 2 file(s) open for writing"),
            "{writing}"
        );
    }

    #[test]
    fn a_report_without_a_status_file_says_why() {
        let mount = Mount {
            mountpoint: PathBuf::from("/nowhere/at/all"),
            major: 0,
            minor: u32::MAX,
            owner: None,
            status: None,
        };
        let report = report(&mount);
        assert_eq!(report["state"], "unknown");
        assert!(text(&report).contains("no status file"));
        assert_eq!(human_duration(3725), "1h 2m");
    }
}
