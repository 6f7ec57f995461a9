//! Modes, times and chosen names that outlive the mount, in one content property per object.
//!
//! Confluence has no field for a mode or a time a user sets, and wants page titles unique in a
//! space. Both go into the property `confluencefs` of the page or attachment (its value holds
//! only what differs from what Confluence shows: `name`, `mode`, `mtime_ms` with the version it
//! belongs to), which every listing already brings along (`metadata.properties.confluencefs`),
//! so showing them costs nothing. Writing costs one request per object and burst: `chmod`,
//! `utimens` and `chown` land in memory (`overrides`) and the property is written once the
//! object has been quiet for a moment, after its upload when it has one coming, and at unmount
//! for whatever is left. A scratch file's attributes travel with its inode to the name it is
//! renamed to. Names are written at once, since a page without its name shows its title.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fs_error::FsError;
use super::inode::Node;
use super::ConfluenceFs;
use crate::confluence::{ClientError, FsProperty, FS_PROPERTY};

/// How long an object's attributes must stay unchanged before they are written.
const QUIET: Duration = Duration::from_millis(700);

/// After a failed write (the server away), the next try.
const RETRY: Duration = Duration::from_secs(5);

/// Objects whose attributes wait to be written, each with the time it may be.
/// What a user set of an object's mode and time, shown at once and written to its property.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Overrides {
    /// Permission bits set by `chmod` or given at creation.
    pub(crate) mode: Option<u16>,
    /// A modification time set by `utimens`.
    pub(crate) mtime: Option<SystemTime>,
}

#[derive(Default)]
pub(crate) struct AttrWrites {
    /// Modes and times set by tools, by inode: shown at once, kept on the server once written.
    pub(crate) overrides: Mutex<HashMap<u64, Overrides>>,
    due: Mutex<HashMap<u64, Instant>>,
    running: AtomicBool,
}

impl AttrWrites {
    /// What a user set of `ino`'s mode and time (nothing when nothing was set).
    /// Inodes with modes or times not yet on the server (set, or waiting for their write).
    pub(crate) fn unwritten(&self) -> Vec<u64> {
        let mut inos: Vec<u64> = self.overrides.lock().unwrap().keys().copied().collect();
        inos.extend(self.due.lock().unwrap().keys().copied());
        inos
    }

    pub(crate) fn overrides_of(&self, ino: u64) -> Overrides {
        self.overrides
            .lock()
            .unwrap()
            .get(&ino)
            .copied()
            .unwrap_or_default()
    }
}

/// What one attempt at writing an object's property did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// Written, or nothing to write.
    Done,
    /// Not now: the object is not on the server yet, or new bytes are on their way.
    Later,
}

/// The default permission bits of a file or directory on a writable mount.
pub(crate) fn default_mode(is_dir: bool) -> u16 {
    if is_dir {
        0o755
    } else {
        0o644
    }
}

fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn from_millis(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// The mode and modification time the property gives an object at `version`, if any.
pub(crate) fn kept(fs: Option<&FsProperty>, version: u64) -> (Option<u16>, Option<SystemTime>) {
    let Some(fs) = fs else {
        return (None, None);
    };
    let mode = fs.mode.map(|m| (m & 0o7777) as u16);
    let mtime = match (fs.mtime_ms, fs.mtime_version) {
        (Some(ms), Some(v)) if v == version => Some(from_millis(ms)),
        _ => None,
    };
    (mode, mtime)
}

impl ConfluenceFs {
    /// New bytes have the time they are written, not one set before them.
    pub(crate) fn bytes_changed(&self, ino: u64) {
        if let Some(slot) = self.attributes.overrides.lock().unwrap().get_mut(&ino) {
            slot.mtime = None;
        }
    }

    /// Remembers that `ino`'s attributes changed; they are written once it has been quiet.
    pub(crate) fn schedule_attr_write(self: &Arc<Self>, ino: u64) {
        self.attributes
            .due
            .lock()
            .unwrap()
            .insert(ino, Instant::now() + QUIET);
        if !self.attributes.running.swap(true, Ordering::AcqRel) {
            let fs = Arc::clone(self);
            tokio::spawn(async move { fs.attr_write_loop().await });
        }
    }

    async fn attr_write_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(QUIET / 2).await;
            let now = Instant::now();
            let ready: Vec<u64> = {
                let mut due = self.attributes.due.lock().unwrap();
                let ready: Vec<u64> = due
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(ino, _)| *ino)
                    .collect();
                for ino in &ready {
                    due.remove(ino);
                }
                ready
            };
            for ino in ready {
                let again = match self.write_fs_property(ino, None, false).await {
                    Ok(Written::Done) => None,
                    Ok(Written::Later) => Some(QUIET),
                    Err(FsError::NotFound) => None,
                    Err(err) => {
                        tracing::warn!(ino, "keeping mode and time on the server failed: {err}");
                        Some(RETRY)
                    }
                };
                if let Some(wait) = again {
                    let mut due = self.attributes.due.lock().unwrap();
                    due.entry(ino).or_insert(Instant::now() + wait);
                }
            }
            if self.attributes.due.lock().unwrap().is_empty() {
                self.attributes.running.store(false, Ordering::Release);
                // Something scheduled between the check and the store starts no loop of its
                // own (it saw `running`), so this one carries on for it.
                let more = !self.attributes.due.lock().unwrap().is_empty();
                if !more || self.attributes.running.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        }
    }

    /// Writes every waiting change now (at unmount, after the uploads): what cannot be written
    /// (a scratch file never renamed, a file never uploaded) is dropped with a note in the log.
    pub async fn flush_attributes(&self) {
        let waiting: Vec<u64> = self
            .attributes
            .due
            .lock()
            .unwrap()
            .drain()
            .map(|(ino, _)| ino)
            .collect();
        for ino in waiting {
            match self.write_fs_property(ino, None, true).await {
                Ok(Written::Done) | Err(FsError::NotFound) => {}
                Ok(Written::Later) => {
                    tracing::info!(
                        ino,
                        "mode and time of a file that never reached the server are dropped"
                    )
                }
                Err(err) => tracing::warn!(ino, "mode and time not kept: {err}"),
            }
        }
    }

    /// Brings the `confluencefs` property of `ino`'s object in line with what the user set:
    /// modes and times from `overrides`, and `name` when given (`Some(None)` clears it). One
    /// request when the property's version is known (listings bring it), none when nothing
    /// differs. `now` writes even while new bytes wait to go up (at unmount they have gone).
    pub(crate) async fn write_fs_property(
        &self,
        ino: u64,
        name: Option<Option<String>>,
        now: bool,
    ) -> Result<Written, FsError> {
        let entry = self.entry(ino)?;
        let (id, current, version, is_dir) = match &entry.node {
            Node::Page(page) => (page.id.clone(), page.fs.clone(), page.version, true),
            Node::Attachment(att) => {
                if !now && self.files.has_staged(ino) {
                    return Ok(Written::Later);
                }
                (att.id.clone(), att.fs.clone(), att.version, false)
            }
            Node::Local(_) => return Ok(Written::Later),
            _ => return Ok(Written::Done),
        };
        let overrides = self.attributes.overrides_of(ino);
        let base = current.clone().unwrap_or_default();
        let mut want = base.clone();
        if want.mtime_version != Some(version) {
            // A time set for an older version no longer holds.
            want.mtime_ms = None;
            want.mtime_version = None;
        }
        if let Some(mode) = overrides.mode {
            want.mode = (mode != default_mode(is_dir)).then_some(u32::from(mode));
        }
        if let Some(mtime) = overrides.mtime {
            want.mtime_ms = Some(millis(mtime));
            want.mtime_version = Some(version);
        }
        if let Some(name) = name {
            want.name = name;
        }
        let stale_only = {
            let mut trimmed = base.clone();
            if trimmed.mtime_version != Some(version) {
                trimmed.mtime_ms = None;
                trimmed.mtime_version = None;
            }
            trimmed.same_values(&want)
        };
        if base.same_values(&want) || (stale_only && current.is_some()) {
            return Ok(Written::Done);
        }
        let written = match current {
            Some(known) => {
                self.client
                    .set_property_at(&id, FS_PROPERTY, want.to_value(), known.version)
                    .await
            }
            None => {
                self.client
                    .set_property(&id, FS_PROPERTY, want.to_value())
                    .await
            }
        };
        let property = match written {
            Ok(property) => property,
            Err(ClientError::NotFound { .. }) => return Err(FsError::NotFound),
            Err(err) => return Err(err.into()),
        };
        want.version = property.version;
        self.tree.inodes.set_fs_property(ino, want);
        // What was written is now what the object says; a change made meanwhile stays.
        let mut all = self.attributes.overrides.lock().unwrap();
        if all.get(&ino).copied() == Some(overrides) {
            all.remove(&ino);
        }
        Ok(Written::Done)
    }
}
