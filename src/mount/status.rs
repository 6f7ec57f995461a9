//! A running mount's status, written to a small file for `confluencefs status` to read.
//!
//! The mount process is the one place that knows every part (client, block cache, spool), so it
//! assembles the numbers; the parts only count, each in the layer that does the work
//! (`Client::traffic`, `BlockCache::stats`). Once a second, and when unmounting begins, the
//! document is written whole to `<runtime dir>/confluencefs/<major>:<minor>.json`, named after
//! the mount's device number, which `/proc/self/mountinfo` shows for every mount: `status`
//! finds the file of any mount without asking the mount anything, so a hung mount cannot hang
//! it. The file is written to a temporary name and renamed (a reader never sees half of it),
//! mode 0600 in a 0700 directory, and removed when the process ends. A file serves no other
//! purpose: it is never read back by the mount.
//!
//! The last warnings and errors come from the log itself: [`RecentErrors`] is a `tracing`
//! layer that keeps the last few events at WARN or above of our own modules, so `status`
//! shows what the log file says went wrong, with no second path for reporting errors.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cache::BlockCache;
use crate::confluence::{Client, Flavor};
use crate::fs::ConfluenceFs;

/// How many warnings and errors a status keeps.
const RECENT: usize = 5;

/// How often the status file is written.
pub(super) const STATUS_EVERY: Duration = Duration::from_secs(1);

/// What a mount says about itself (the file's contents; `status --json` adds the spool).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountStatus {
    /// The process serving the mount.
    pub pid: u32,
    /// Where it is mounted.
    pub mountpoint: String,
    /// `serving`, or `unmounting` (unmounted, finishing its uploads).
    pub state: String,
    /// The REST base URL.
    pub site: String,
    /// `cloud` or `datacenter`.
    pub flavor: String,
    /// The user's display name.
    pub user: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// When the mount became ready, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// When this document was written.
    pub updated_unix_ms: u64,
    /// Seconds since the mount became ready.
    pub uptime_s: u64,
    /// The block cache.
    pub cache: CacheStatus,
    /// HTTP requests since the process connected.
    pub requests: RequestStatus,
    /// How attachment bytes reach the mount: `direct` (from the site), `media` (Cloud's media
    /// host, after the site's redirect), or `none` (nothing downloaded yet).
    pub read_path: String,
    /// Whether the kernel reads and writes local files itself (FUSE passthrough).
    #[serde(default)]
    pub passthrough: PassthroughStatus,
    /// Upload requests on the wire now.
    pub uploads: Vec<UploadStatus>,
    /// Body bytes of every upload request so far.
    pub upload_bytes_sent: u64,
    /// The spool directory (writable mounts only).
    pub spool_dir: Option<String>,
    /// The last warnings and errors of the log, oldest first.
    pub errors: Vec<RecentError>,
    /// Inodes the mount knows now: what the kernel holds, what cached listings hold (bounded),
    /// and what open or unsaved files need (docs/PERFORMANCE.md, "The inode table").
    #[serde(default)]
    pub inodes: u64,
    /// Names in cached listings (bounded by 50,000).
    #[serde(default)]
    pub listed_names: u64,
    /// Files open for writing now: what they hold goes up when they close, not before.
    #[serde(default)]
    pub open_for_writing: u64,
}

/// The parts of a mount its status is read from.
pub(super) struct StatusParts {
    pub(super) client: Client,
    pub(super) cache: Arc<BlockCache>,
    pub(super) spool_dir: Option<PathBuf>,
    pub(super) mountpoint: PathBuf,
    pub(super) read_only: bool,
    pub(super) memory_limit_bytes: u64,
    pub(super) disk_limit_bytes: u64,
    pub(super) started: SystemTime,
    /// FUSE passthrough, from the adapter (`None` until the adapter exists).
    pub(super) passthrough: Option<crate::fuse::PassthroughReport>,
    /// The filesystem, for its inode count (set once it exists).
    pub(super) fs: Option<Arc<ConfluenceFs>>,
}

impl StatusParts {
    /// The status now.
    fn status(&self, unmounting: bool) -> MountStatus {
        let now = SystemTime::now();
        let cache = self.cache.stats();
        let hits = cache.memory_hits + cache.disk_hits;
        let traffic = self.client.traffic();
        let read_path = if traffic.media_requests > 0 {
            "media"
        } else if traffic.direct_downloads > 0 {
            "direct"
        } else {
            "none"
        };
        MountStatus {
            pid: std::process::id(),
            mountpoint: self.mountpoint.display().to_string(),
            state: if unmounting { "unmounting" } else { "serving" }.to_string(),
            site: self.client.base_url().to_string(),
            flavor: match self.client.flavor() {
                Flavor::Cloud => "cloud",
                Flavor::DataCenter => "datacenter",
            }
            .to_string(),
            user: self.client.current_user().name().to_string(),
            read_only: self.read_only,
            started_unix_ms: unix_ms(self.started),
            updated_unix_ms: unix_ms(now),
            uptime_s: now
                .duration_since(self.started)
                .unwrap_or_default()
                .as_secs(),
            cache: CacheStatus {
                memory_bytes: cache.memory_bytes,
                memory_limit_bytes: self.memory_limit_bytes,
                disk_bytes: cache.disk_bytes,
                disk_limit_bytes: self.disk_limit_bytes,
                memory_hits: cache.memory_hits,
                disk_hits: cache.disk_hits,
                misses: cache.misses,
                hit_rate: (hits + cache.misses > 0)
                    .then(|| hits as f64 / (hits + cache.misses) as f64),
            },
            requests: RequestStatus {
                made: traffic.requests,
                retried: traffic.retries,
                media: traffic.media_requests,
                downloads: traffic.direct_downloads,
                uploads: traffic.upload_requests,
            },
            read_path: read_path.to_string(),
            passthrough: match &self.passthrough {
                Some(report) => PassthroughStatus {
                    on: report.off_because().is_none(),
                    off_because: report.off_because(),
                    opened: report.opened(),
                },
                None => PassthroughStatus::default(),
            },
            uploads: traffic
                .uploads
                .iter()
                .map(|upload| {
                    let ms = upload.elapsed.as_millis() as u64;
                    UploadStatus {
                        name: upload.name.clone(),
                        size: upload.size,
                        bytes_sent: upload.sent,
                        elapsed_ms: ms,
                        rate_bytes_per_s: upload.sent.saturating_mul(1000) / ms.max(1),
                    }
                })
                .collect(),
            upload_bytes_sent: traffic.upload_bytes,
            spool_dir: self.spool_dir.as_ref().map(|d| d.display().to_string()),
            errors: recent_errors(),
            inodes: self.fs.as_ref().map_or(0, |fs| fs.inode_count() as u64),
            listed_names: self.fs.as_ref().map_or(0, |fs| fs.listed_names()),
            open_for_writing: self.fs.as_ref().map_or(0, |fs| fs.open_for_writing()),
        }
    }
}

/// Writes a mount's status file every [`STATUS_EVERY`] until dropped (which removes it).
pub(super) struct StatusWriter {
    shared: Option<Arc<(StatusParts, StatusFile, AtomicBool)>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl StatusWriter {
    /// Starts writing the status of the mount at `parts.mountpoint`.
    pub(super) fn start(runtime: &tokio::runtime::Runtime, parts: StatusParts) -> StatusWriter {
        use std::os::unix::fs::MetadataExt;
        let file = std::fs::metadata(&parts.mountpoint)
            .ok()
            .and_then(|metadata| StatusFile::new(metadata.dev()));
        let Some(file) = file else {
            return StatusWriter {
                shared: None,
                task: None,
            };
        };
        tracing::debug!(path = %file.path().display(), "status file");
        let shared = Arc::new((parts, file, AtomicBool::new(false)));
        let writer = shared.clone();
        let task = runtime.spawn(async move {
            let mut every = tokio::time::interval(STATUS_EVERY);
            loop {
                every.tick().await;
                let (parts, file, unmounting) = &*writer;
                parts.cache.count_memory().await;
                file.write(&parts.status(unmounting.load(Ordering::Relaxed)));
            }
        });
        StatusWriter {
            shared: Some(shared),
            task: Some(task),
        }
    }

    /// Unmounting has begun: said at once, and in every write until the process ends.
    pub(super) fn unmounting(&self) {
        if let Some(shared) = &self.shared {
            let (parts, file, unmounting) = &**shared;
            unmounting.store(true, Ordering::Relaxed);
            file.write(&parts.status(true));
        }
    }
}

impl Drop for StatusWriter {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        // Not left to the task's copy, which goes whenever the runtime drops the aborted task.
        if let Some(shared) = self.shared.take() {
            let _ = std::fs::remove_file(shared.1.path());
        }
    }
}

/// FUSE passthrough: files being written, and versions wholly in the disk cache where nobody
/// can write them, go between the program and a local file in the kernel, without passing
/// through the mount process.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PassthroughStatus {
    /// In use: the kernel took the capability and has not refused a file.
    pub on: bool,
    /// Why not, when it is off.
    pub off_because: Option<String>,
    /// Opens served from a local file so far.
    pub opened: u64,
}

/// The block cache's size and success.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheStatus {
    /// Bytes of blocks in memory.
    pub memory_bytes: u64,
    /// The memory bound (`--memory-cache-size`).
    pub memory_limit_bytes: u64,
    /// Bytes of block files on disk.
    pub disk_bytes: u64,
    /// The disk bound (`--cache-size`; 0: no disk tier).
    pub disk_limit_bytes: u64,
    /// Blocks reads found in memory.
    pub memory_hits: u64,
    /// Blocks loaded from disk.
    pub disk_hits: u64,
    /// Blocks fetched from the server.
    pub misses: u64,
    /// (memory + disk hits) / (hits + misses); `None` before the first block was read.
    pub hit_rate: Option<f64>,
}

/// The client's requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestStatus {
    /// Every HTTP request sent, each attempt and redirect hop counted.
    pub made: u64,
    /// Attempts that failed and were tried again.
    pub retried: u64,
    /// Requests to Cloud's media host.
    pub media: u64,
    /// Download requests to the site itself.
    pub downloads: u64,
    /// Upload requests.
    pub uploads: u64,
}

/// One upload request on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UploadStatus {
    /// The attachment's filename.
    pub name: String,
    /// Its size; `None` while a file still being written is streamed.
    pub size: Option<u64>,
    /// Bytes sent by this attempt.
    pub bytes_sent: u64,
    /// Milliseconds this attempt has run.
    pub elapsed_ms: u64,
    /// `bytes_sent` per second of `elapsed_ms`.
    pub rate_bytes_per_s: u64,
}

/// A warning or error of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecentError {
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// `WARN` or `ERROR`.
    pub level: String,
    /// The message and its fields, as the log shows them.
    pub message: String,
}

/// The last warnings and errors of this process.
static RECENT_ERRORS: Mutex<VecDeque<RecentError>> = Mutex::new(VecDeque::new());

/// A `tracing` layer that keeps the last few events at WARN or above of confluencefs's own
/// modules (filter it to WARN where it is installed).
pub struct RecentErrors;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RecentErrors {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let metadata = event.metadata();
        if *metadata.level() > tracing::Level::WARN
            || !metadata.target().starts_with("confluencefs")
        {
            return;
        }
        let mut text = EventText::default();
        event.record(&mut text);
        let mut recent = RECENT_ERRORS.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(RecentError {
            unix_ms: unix_ms(SystemTime::now()),
            level: metadata.level().to_string(),
            message: text.finish(),
        });
    }
}

/// An event as one line: the message, then `key=value` for each other field.
#[derive(Default)]
struct EventText {
    message: String,
    fields: String,
}

impl EventText {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl tracing::field::Visit for EventText {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push_str(&format!(" {}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

/// The warnings and errors kept so far, oldest first.
pub(super) fn recent_errors() -> Vec<RecentError> {
    RECENT_ERRORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The name of the status file of the mount whose device is `major:minor`.
pub fn file_name(major: u32, minor: u32) -> String {
    format!("{major}:{minor}.json")
}

/// Where the status files of user `uid` may be, in the order a mount tries them:
/// `$XDG_RUNTIME_DIR/confluencefs` (only for the user running this, whose variable it is),
/// `/run/user/UID/confluencefs`, then `confluencefs-UID` in the system temporary directory.
pub fn status_dirs(uid: u32) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // SAFETY: getuid cannot fail and touches no memory.
    if uid == unsafe { libc::getuid() } {
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            if runtime.is_absolute() {
                dirs.push(runtime.join("confluencefs"));
            }
        }
    }
    dirs.push(PathBuf::from(format!("/run/user/{uid}/confluencefs")));
    dirs.push(std::env::temp_dir().join(format!("confluencefs-{uid}")));
    dirs
}

/// Writes a mount's status file, and removes it when dropped.
pub(super) struct StatusFile {
    path: PathBuf,
}

impl StatusFile {
    /// The status file of the mount whose device is `dev`, in the first of [`status_dirs`]
    /// whose parent exists and that is (or can be made) a private directory of ours. `None`
    /// (and a log line) when there is none: the mount works without it.
    pub(super) fn new(dev: u64) -> Option<StatusFile> {
        // SAFETY: getuid cannot fail and touches no memory.
        let uid = unsafe { libc::getuid() };
        let name = file_name(libc::major(dev), libc::minor(dev));
        for dir in status_dirs(uid) {
            if dir.parent().is_some_and(Path::is_dir) && private_dir(&dir, uid) {
                return Some(StatusFile {
                    path: dir.join(name),
                });
            }
        }
        tracing::warn!(
            "no directory for the status file; `confluencefs status` will not see this mount"
        );
        None
    }

    /// Where the file is.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `status`, atomically. A failure is logged at debug level only:
    /// it repeats every second and costs the mount nothing.
    pub(super) fn write(&self, status: &MountStatus) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let temporary = self
            .path
            .with_extension(format!("json.{}.tmp", std::process::id()));
        let written = serde_json::to_vec_pretty(status)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&temporary)?;
                file.write_all(&bytes)?;
                std::fs::rename(&temporary, &self.path)
            });
        if let Err(err) = written {
            tracing::debug!(path = %self.path.display(), "cannot write the status file: {err}");
            let _ = std::fs::remove_file(&temporary);
        }
    }
}

impl Drop for StatusFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `dir` is (after creating it if need be) a real directory owned by `uid` with mode
/// 0700: in a shared temporary directory, someone else may have put something there first.
fn private_dir(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let _ = std::fs::DirBuilder::new().mode(0o700).create(dir);
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.is_dir() && metadata.uid() == uid => {
            metadata.mode() & 0o777 == 0o700
                || std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn warnings_of_our_modules_are_kept_last_few() {
        let subscriber = tracing_subscriber::registry().with(RecentErrors);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            for n in 0..RECENT + 2 {
                tracing::warn!(path = "a/b.txt", "upload refused {n}");
            }
        });
        let kept = recent_errors();
        assert_eq!(kept.len(), RECENT);
        assert_eq!(kept[RECENT - 1].message, "upload refused 6 path=a/b.txt");
        assert_eq!(kept[RECENT - 1].level, "WARN");
        assert!(kept.iter().all(|e| !e.message.contains("not kept")));
    }

    #[test]
    fn the_file_is_replaced_whole_and_removed_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(0, 77));
        let file = StatusFile { path: path.clone() };
        let status = MountStatus {
            pid: 1,
            mountpoint: "/mnt".into(),
            state: "serving".into(),
            site: "https://x".into(),
            flavor: "cloud".into(),
            user: "me".into(),
            read_only: false,
            started_unix_ms: 1,
            updated_unix_ms: 2,
            uptime_s: 0,
            cache: CacheStatus {
                memory_bytes: 0,
                memory_limit_bytes: 0,
                disk_bytes: 0,
                disk_limit_bytes: 0,
                memory_hits: 0,
                disk_hits: 0,
                misses: 0,
                hit_rate: None,
            },
            requests: RequestStatus {
                made: 3,
                retried: 0,
                media: 0,
                downloads: 0,
                uploads: 0,
            },
            read_path: "none".into(),
            passthrough: PassthroughStatus {
                on: true,
                off_because: None,
                opened: 2,
            },
            uploads: Vec::new(),
            upload_bytes_sent: 0,
            spool_dir: None,
            errors: Vec::new(),
            inodes: 3,
            listed_names: 2,
            open_for_writing: 1,
        };
        file.write(&status);
        let read: MountStatus = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(read, status);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn a_directory_of_someone_else_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        // SAFETY: getuid cannot fail and touches no memory.
        let uid = unsafe { libc::getuid() };
        assert!(private_dir(&ours, uid));
        assert!(!private_dir(&ours, uid + 1));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        assert!(!private_dir(&link, uid), "a symlink is not followed");
    }
}
