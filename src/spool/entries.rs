//! The spool directory: entries that survive crashes, written in an order that makes them so.
//!
//! One entry is one directory, `<dir>/<id>/`, holding `data` (the bytes) and `record.json`.
//! `admit` writes them in this order: the bytes (a hard link to the caller's staged file, or a
//! copy when linking is impossible), fsync of the bytes, the record through a temporary file and
//! a rename, fsync of the entry directory and of the spool directory. A crash at any point
//! leaves either nothing the spool counts as an entry (a directory without `record.json`,
//! removed as debris at the next `open`) or a whole entry. The record is only ever replaced by
//! a rename, so a reader sees the old record or the new one, never half of one.
//!
//! Ids start with the admission time in milliseconds, so the directory order is the age order
//! and `pending` can name entries briefly. Everything is private to the user: 0700 directories,
//! 0600 files (a linked data file is the caller's staged copy, made 0600 too).
//!
//! Only `open` removes debris; `inspect` (used by `confluencefs pending` while a mount may be
//! admitting) reads the same directory without touching what it does not understand. Two
//! mounts that share one spool at the same moment are not expected (the directory is per site
//! and user), but they are safe: `admit` holds the entry's lock (an `flock`) until the record
//! is written, uploads hold it while they send, and `open` leaves locked entries alone.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::record::{RecordFile, SpoolEntry, UploadRecord, FORMAT};

const DATA: &str = "data";
/// A copy of `data` on its way to replace it (`detach_data`).
const DETACHED: &str = "data.detached";
const RECORD: &str = "record.json";
/// Prefix of a record being written; the rename makes it `record.json`.
const RECORD_TEMP: &str = ".record.json.";

/// What went wrong with the spool directory or one of its entries.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SpoolError {
    /// Local I/O failed (the disk is full, the directory is gone …).
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A `record.json` that does not parse.
    #[error("spool record {path}: {detail}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// Why it was refused: the parser's error, or a format newer than this release reads.
        detail: String,
    },
    /// No entry with this id (it was uploaded or dropped).
    #[error("no spool entry {id}")]
    NoEntry {
        /// The id asked for.
        id: String,
    },
}

impl SpoolError {
    fn io(path: &Path, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    /// ENOSPC stays ENOSPC, so a full disk reaches the writer as such.
    pub fn errno(&self) -> i32 {
        match self {
            SpoolError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            SpoolError::Record { .. } => libc::EIO,
            SpoolError::NoEntry { .. } => libc::ENOENT,
        }
    }
}

/// An exclusive hold on one entry, across processes, released when dropped. The uploader holds
/// it while it sends an entry, so that two processes sharing a spool (a remount while the old
/// process still drains its queue) never send the same bytes twice.
#[derive(Debug)]
pub struct EntryLock {
    _dir: File,
}

/// A directory of upload entries.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Makes temp names and ids unique within the process.
    counter: AtomicU64,
}

impl Spool {
    /// Opens (creating it 0700) the spool at `dir`, and removes debris of crashes: entry
    /// directories without `record.json` and temporary record files. Call it once per spool
    /// and process, before anything is admitted.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(|e| SpoolError::io(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| SpoolError::io(dir, e))?;
        let spool = Spool::inspect(dir);
        spool.remove_debris()?;
        Ok(spool)
    }

    /// The spool at `dir` as it is, for reading and editing records: nothing is created or
    /// cleaned (a mount may be admitting an entry right now).
    pub fn inspect(dir: &Path) -> Spool {
        Spool {
            dir: dir.to_path_buf(),
            counter: AtomicU64::new(0),
        }
    }

    /// The spool's directory: one subdirectory per entry.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Durably takes the bytes of `data` with `record`. Only after this returns may the caller
    /// report success for the write. `data` is hard-linked when possible: the caller must not
    /// write to that file afterwards (it may replace it, e.g. by a copy and a rename).
    /// `record.size` is set to the size of the bytes taken, whatever the caller wrote there.
    pub fn admit(&self, data: &Path, record: UploadRecord) -> Result<SpoolEntry, SpoolError> {
        self.admit_with(data, record, true)
    }

    /// [`admit`](Self::admit), except that the bytes are not flushed to the disk: the caller
    /// does that (`fsync` of the file it gave), alongside the upload, and may answer success
    /// only once either has finished. The record is durable, so an interrupted upload resumes;
    /// bytes that a power cut left short are refused at the next attempt (their length is not
    /// the record's), never sent.
    pub fn admit_unsynced(
        &self,
        data: &Path,
        record: UploadRecord,
    ) -> Result<SpoolEntry, SpoolError> {
        self.admit_with(data, record, false)
    }

    fn admit_with(
        &self,
        data: &Path,
        mut record: UploadRecord,
        sync_data: bool,
    ) -> Result<SpoolEntry, SpoolError> {
        // Held until the record is written, so that no `open` elsewhere takes it for debris.
        let (id, entry_dir, _hold) = self.new_entry_dir(record.created_unix_ms)?;
        let result = self.fill_entry(&entry_dir, data, &mut record, sync_data);
        if result.is_err() {
            // Nothing was promised yet; leave no half entry behind.
            let _ = fs::remove_dir_all(&entry_dir);
        }
        result?;
        Ok(SpoolEntry {
            id,
            record,
            data_path: entry_dir.join(DATA),
        })
    }

    fn new_entry_dir(
        &self,
        created_unix_ms: u64,
    ) -> Result<(String, PathBuf, EntryLock), SpoolError> {
        loop {
            let salt = rand::random::<u32>() & 0xff_ffff;
            let id = format!("{created_unix_ms:013}-{salt:06x}");
            let path = self.dir.join(&id);
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(SpoolError::io(&path, e)),
            }
            match self.try_lock(&id) {
                Ok(Some(hold)) => return Ok((id, path, hold)),
                // Another process's `open` took it for debris first: it is its to remove.
                Ok(None) | Err(SpoolError::NoEntry { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
    }

    fn fill_entry(
        &self,
        entry_dir: &Path,
        data: &Path,
        record: &mut UploadRecord,
        sync_data: bool,
    ) -> Result<(), SpoolError> {
        let target = entry_dir.join(DATA);
        let mut sync_data = sync_data;
        if let Err(error) = fs::hard_link(data, &target) {
            tracing::debug!(%error, "cannot link {} into the spool; copying", data.display());
            copy_private(data, &target)?;
            // The caller's fsync covers its own file, not this copy.
            sync_data = true;
        }
        let file = File::open(&target).map_err(|e| SpoolError::io(&target, e))?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| SpoolError::io(&target, e))?;
        if sync_data {
            file.sync_all().map_err(|e| SpoolError::io(&target, e))?;
        }
        record.size = file
            .metadata()
            .map_err(|e| SpoolError::io(&target, e))?
            .len();
        self.write_record(entry_dir, record)?;
        sync_dir(&self.dir)
    }

    /// Gives `entry` bytes of its own, on the disk: its data was linked from a file that may
    /// still change (one the kernel writes itself through FUSE passthrough). The copy replaces
    /// the link in one rename, so the entry always has whole bytes.
    pub fn detach_data(&self, entry: &SpoolEntry) -> Result<(), SpoolError> {
        let target = &entry.data_path;
        let entry_dir = target.parent().unwrap_or(&self.dir);
        let copy = entry_dir.join(DETACHED);
        let _ = fs::remove_file(&copy); // left by a crash in the middle of an earlier one
        copy_private(target, &copy)?;
        let file = File::open(&copy).map_err(|e| SpoolError::io(&copy, e))?;
        file.sync_all().map_err(|e| SpoolError::io(&copy, e))?;
        let size = file.metadata().map_err(|e| SpoolError::io(&copy, e))?.len();
        fs::rename(&copy, target).map_err(|e| SpoolError::io(target, e))?;
        // The record as it is now (the failed attempt wrote its error into it), new size.
        let mut record = self.get(&entry.id)?.record;
        record.size = size;
        self.write_record(entry_dir, &record)?;
        sync_dir(entry_dir)
    }

    /// Every entry with a readable record, oldest first. Directories without a record (an
    /// admission in progress) and unreadable records are skipped, with a warning for the latter.
    pub fn list(&self) -> Result<Vec<SpoolEntry>, SpoolError> {
        let reader = match fs::read_dir(&self.dir) {
            Ok(reader) => reader,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SpoolError::io(&self.dir, e)),
        };
        let mut entries = Vec::new();
        for item in reader {
            let item = item.map_err(|e| SpoolError::io(&self.dir, e))?;
            let Some(id) = entry_id(&item) else { continue };
            match self.get(&id) {
                Ok(entry) => entries.push(entry),
                Err(SpoolError::NoEntry { .. }) => {}
                Err(error) => tracing::warn!(%error, "skipping a spool entry"),
            }
        }
        entries.sort_by(|a, b| {
            (a.record.created_unix_ms, &a.id).cmp(&(b.record.created_unix_ms, &b.id))
        });
        Ok(entries)
    }

    /// The entry `id` as it is on disk now.
    pub fn get(&self, id: &str) -> Result<SpoolEntry, SpoolError> {
        let entry_dir = self.entry_dir(id)?;
        let path = entry_dir.join(RECORD);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SpoolError::NoEntry { id: id.to_string() })
            }
            Err(e) => return Err(SpoolError::io(&path, e)),
        };
        let file: RecordFile = serde_json::from_slice(&bytes).map_err(|e| SpoolError::Record {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if file.format > FORMAT {
            return Err(SpoolError::Record {
                path,
                detail: format!("format {} is newer than this release reads", file.format),
            });
        }
        Ok(SpoolEntry {
            id: id.to_string(),
            record: file.record,
            data_path: entry_dir.join(DATA),
        })
    }

    /// Rewrites the entry's record atomically. An entry that is gone is `NoEntry`.
    pub fn update(&self, entry: &SpoolEntry) -> Result<(), SpoolError> {
        let entry_dir = self.entry_dir(&entry.id)?;
        if !entry_dir.join(RECORD).exists() {
            return Err(SpoolError::NoEntry {
                id: entry.id.clone(),
            });
        }
        self.write_record(&entry_dir, &entry.record)
    }

    /// Deletes the entry and its bytes. Removing an entry that is already gone is not an error.
    pub fn remove(&self, id: &str) -> Result<(), SpoolError> {
        let entry_dir = self.entry_dir(id)?;
        // The record goes first: from then on the directory is debris, never a half entry.
        match fs::remove_file(entry_dir.join(RECORD)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SpoolError::io(&entry_dir, e)),
        }
        match fs::remove_dir_all(&entry_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SpoolError::io(&entry_dir, e)),
        }
        sync_dir(&self.dir)
    }

    /// Takes the entry's lock if no one (in this or another process) holds it; `None` if
    /// someone does. An `flock` on the entry directory: the kernel drops it when its holder
    /// dies, so a killed mount never leaves an entry locked.
    pub fn try_lock(&self, id: &str) -> Result<Option<EntryLock>, SpoolError> {
        let entry_dir = self.entry_dir(id)?;
        let dir = match File::open(&entry_dir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SpoolError::NoEntry { id: id.to_string() })
            }
            Err(e) => return Err(SpoolError::io(&entry_dir, e)),
        };
        // SAFETY: flock reads no memory; the descriptor is owned by `dir` and open for the call.
        let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(EntryLock { _dir: dir }));
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(SpoolError::io(&entry_dir, error))
        }
    }

    fn entry_dir(&self, id: &str) -> Result<PathBuf, SpoolError> {
        // An id is one path component of ours; anything else would reach outside the spool.
        if id.is_empty() || id.starts_with('.') || id.contains('/') {
            return Err(SpoolError::NoEntry { id: id.to_string() });
        }
        Ok(self.dir.join(id))
    }

    /// Temp file, fsync, rename over `record.json`, fsync of the entry directory.
    fn write_record(&self, entry_dir: &Path, record: &UploadRecord) -> Result<(), SpoolError> {
        let file = RecordFile {
            format: FORMAT,
            record: record.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| SpoolError::Record {
            path: entry_dir.join(RECORD),
            detail: e.to_string(),
        })?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let temp = entry_dir.join(format!("{RECORD_TEMP}{}.{n}", std::process::id()));
        let written = (|| {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            out.write_all(&json)?;
            out.sync_all()?;
            fs::rename(&temp, entry_dir.join(RECORD))
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(SpoolError::io(&temp, e));
        }
        sync_dir(entry_dir)
    }

    fn remove_debris(&self) -> Result<(), SpoolError> {
        let reader = fs::read_dir(&self.dir).map_err(|e| SpoolError::io(&self.dir, e))?;
        for item in reader {
            let item = item.map_err(|e| SpoolError::io(&self.dir, e))?;
            let Some(id) = entry_id(&item) else { continue };
            let entry_dir = self.dir.join(&id);
            // Held elsewhere: being admitted or uploaded by a live process, not debris.
            let Ok(Some(_hold)) = self.try_lock(&id) else {
                continue;
            };
            if !entry_dir.join(RECORD).exists() {
                tracing::info!("removing {} (an admission that did not finish)", id);
                fs::remove_dir_all(&entry_dir).map_err(|e| SpoolError::io(&entry_dir, e))?;
                continue;
            }
            let inner = fs::read_dir(&entry_dir).map_err(|e| SpoolError::io(&entry_dir, e))?;
            for file in inner.flatten() {
                if file.file_name().to_string_lossy().starts_with(RECORD_TEMP) {
                    let _ = fs::remove_file(file.path());
                }
            }
        }
        sync_dir(&self.dir)
    }
}

/// The id of a directory entry of the spool that can be an upload entry.
fn entry_id(item: &fs::DirEntry) -> Option<String> {
    let name = item.file_name().into_string().ok()?;
    let is_dir = item.file_type().ok()?.is_dir();
    (is_dir && !name.starts_with('.')).then_some(name)
}

/// Copies `from` to a new 0600 file `to` (contents only; `fill_entry` fsyncs it).
fn copy_private(from: &Path, to: &Path) -> Result<(), SpoolError> {
    let mut source = File::open(from).map_err(|e| SpoolError::io(from, e))?;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| SpoolError::io(to, e))?;
    std::io::copy(&mut source, &mut out).map_err(|e| SpoolError::io(to, e))?;
    Ok(())
}

/// Makes a directory's entries (creations, renames, removals) durable.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SpoolError::io(dir, e))
}
