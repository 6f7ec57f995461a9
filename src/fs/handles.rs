//! Open file and directory handles, and the files deleted while a handle still held them.
//!
//! A handle is either a reader pinned to one server version (its bytes come through the block
//! cache) or a handle on a file's staged bytes, which holds the file's [`FileCell`] itself:
//! a WRITE goes straight to the state its OPEN set up, never to whatever the inode maps to by
//! then. POSIX lets a program keep using a file after it is deleted (a temp file unlinked at
//! once, a reader of a file someone else deletes), so an unlinked inode with open handles is
//! an *orphan*: gone from every listing and from the server, still answering `fstat`, `read`
//! and `write` through its handles, and dropped from the inode table with its last handle.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cache::{CachedFile, VersionFile};

use super::dir::DirEntry;
use super::files::FileCell;

pub(crate) enum OpenFile {
    /// `start` is the inode until the handle's first read from offset 0, which may reveal a
    /// reader going through a directory file by file (`ahead_files`).
    Read {
        ino: u64,
        file: Arc<CachedFile>,
        start: Option<u64>,
    },
    /// A handle on the file's staged bytes: opened for writing, or a reader of a file with
    /// local bytes (what was written and closed is what is read back).
    Staged { cell: Arc<FileCell>, writable: bool },
    /// A reader of page text: the bytes rendered at open, the same for the whole handle.
    Text { ino: u64, bytes: bytes::Bytes },
}

impl OpenFile {
    fn ino(&self) -> u64 {
        match self {
            OpenFile::Read { ino, .. } | OpenFile::Text { ino, .. } => *ino,
            OpenFile::Staged { cell, .. } => cell.ino(),
        }
    }
}

#[derive(Default)]
struct Table {
    open: HashMap<u64, OpenFile>,
    orphans: HashSet<u64>,
    /// The version each file inode was last opened at: the kernel may keep its page cache
    /// only when the version has not changed since.
    opened_versions: HashMap<u64, u64>,
    /// Handles the kernel serves from a local file itself (`passthrough.rs`).
    passthrough: HashSet<u64>,
    /// The disk cache's files the kernel reads for handles, kept (and counted) until RELEASE.
    version_files: HashMap<u64, VersionFile>,
}

pub(crate) struct Handles {
    table: Mutex<Table>,
    /// Open directories: each a snapshot of its listing, so readdir pages through one list.
    dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    /// Handle numbers, also used as serials of local files and staging files.
    next: AtomicU64,
}

impl Default for Handles {
    fn default() -> Self {
        Handles {
            table: Mutex::default(),
            dirs: Mutex::default(),
            next: AtomicU64::new(1),
        }
    }
}

impl Handles {
    /// A number never handed out before in this mount.
    pub(crate) fn next_number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Records that `ino` was opened at `version`; whether it was last opened at the same one.
    pub(crate) fn opened_at(&self, ino: u64, version: u64) -> bool {
        let previous = self
            .table
            .lock()
            .unwrap()
            .opened_versions
            .insert(ino, version);
        previous == Some(version)
    }

    /// `ino` has local bytes now: the next reader's page cache must not be trusted.
    pub(crate) fn forget_version(&self, ino: u64) {
        self.table.lock().unwrap().opened_versions.remove(&ino);
    }

    pub(crate) fn insert_dir(&self, handle: u64, entries: Arc<Vec<DirEntry>>) {
        self.dirs.lock().unwrap().insert(handle, entries);
    }

    pub(crate) fn dir(&self, handle: u64) -> Option<Arc<Vec<DirEntry>>> {
        self.dirs.lock().unwrap().get(&handle).cloned()
    }

    pub(crate) fn remove_dir(&self, handle: u64) {
        self.dirs.lock().unwrap().remove(&handle);
    }

    pub(crate) fn insert(&self, handle: u64, open: OpenFile) {
        self.table.lock().unwrap().open.insert(handle, open);
    }

    /// Removes `handle`; the second value is true when it was the last handle of an orphan,
    /// whose inode can go now.
    pub(crate) fn remove(&self, handle: u64) -> Option<(OpenFile, bool)> {
        let mut table = self.table.lock().unwrap();
        table.version_files.remove(&handle);
        let open = table.open.remove(&handle)?;
        let ino = open.ino();
        let last_of_orphan = table.orphans.contains(&ino) && !open_on(&table, ino);
        if last_of_orphan {
            table.orphans.remove(&ino);
        }
        Some((open, last_of_orphan))
    }

    /// Runs `f` on the handle, if it exists.
    pub(crate) fn with<T>(&self, handle: u64, f: impl FnOnce(&mut OpenFile) -> T) -> Option<T> {
        self.table.lock().unwrap().open.get_mut(&handle).map(f)
    }

    /// The file state a staged handle holds; `writable` asks for a handle opened for writing.
    pub(crate) fn staged_cell(&self, handle: u64, writable: bool) -> Option<Arc<FileCell>> {
        match self.table.lock().unwrap().open.get(&handle)? {
            OpenFile::Staged {
                cell,
                writable: opened_for_writing,
            } if *opened_for_writing || !writable => Some(cell.clone()),
            _ => None,
        }
    }

    /// The name of `ino` is gone: true if handles still hold it (it is an orphan now), false
    /// if nothing does and the inode can go at once.
    pub(crate) fn orphan_if_open(&self, ino: u64) -> bool {
        let mut table = self.table.lock().unwrap();
        if open_on(&table, ino) {
            table.orphans.insert(ino);
            true
        } else {
            false
        }
    }

    /// Turns the readers of `ino`'s server bytes into readers of its staged bytes (which hold
    /// the whole file): the server copy is about to go, or the disk cache's file the kernel
    /// reads became the staging file. Returns how many there were, and how many of them the
    /// kernel serves itself (passthrough). Their disk cache files are let go.
    pub(crate) fn restage_readers(&self, ino: u64, cell: &Arc<FileCell>) -> (u32, u32) {
        let mut table = self.table.lock().unwrap();
        let table = &mut *table;
        let (mut moved, mut kernel) = (0, 0);
        for (handle, open) in table.open.iter_mut() {
            if matches!(open, OpenFile::Read { ino: i, .. } if *i == ino) {
                *open = OpenFile::Staged {
                    cell: cell.clone(),
                    writable: false,
                };
                table.version_files.remove(handle);
                moved += 1;
                if table.passthrough.contains(handle) {
                    kernel += 1;
                }
            }
        }
        (moved, kernel)
    }

    /// Whether any handle of `ino` is open.
    pub(crate) fn is_open(&self, ino: u64) -> bool {
        open_on(&self.table.lock().unwrap(), ino)
    }

    /// The disk cache file a reader of `ino` was handed for the kernel, taken from its handle
    /// (at most one reader of a file is: the first, `read.rs`), with that handle.
    pub(crate) fn take_version_file(&self, ino: u64) -> Option<(u64, VersionFile)> {
        let mut table = self.table.lock().unwrap();
        let handle = *table.version_files.keys().find(|handle| {
            matches!(table.open.get(handle), Some(OpenFile::Read { ino: i, .. }) if *i == ino)
        })?;
        let file = table.version_files.remove(&handle)?;
        Some((handle, file))
    }

    /// Whether a reader of the server bytes of `ino` is open.
    pub(crate) fn has_reader(&self, ino: u64) -> bool {
        let table = self.table.lock().unwrap();
        table
            .open
            .values()
            .any(|open| matches!(open, OpenFile::Read { ino: i, .. } if *i == ino))
    }

    /// Keeps `file` until `handle` is released: the kernel may read it for the handle.
    pub(crate) fn keep_version_file(&self, handle: u64, file: VersionFile) {
        self.table
            .lock()
            .unwrap()
            .version_files
            .insert(handle, file);
    }

    pub(crate) fn mark_passthrough(&self, handle: u64) {
        self.table.lock().unwrap().passthrough.insert(handle);
    }

    /// Whether `handle` was a passthrough handle (it is not any more).
    pub(crate) fn unmark_passthrough(&self, handle: u64) -> bool {
        self.table.lock().unwrap().passthrough.remove(&handle)
    }

    /// Files with a handle open for writing now.
    pub(crate) fn open_for_writing(&self) -> u64 {
        let table = self.table.lock().unwrap();
        let writing: HashSet<u64> = table
            .open
            .values()
            .filter_map(|open| match open {
                OpenFile::Staged {
                    cell,
                    writable: true,
                } => Some(cell.ino()),
                _ => None,
            })
            .collect();
        writing.len() as u64
    }

    /// Inodes with an open handle, and files deleted while one was open.
    pub(crate) fn in_use(&self) -> HashSet<u64> {
        let table = self.table.lock().unwrap();
        let open = table.open.values().map(OpenFile::ino);
        open.chain(table.orphans.iter().copied()).collect()
    }

    pub(crate) fn is_orphan(&self, ino: u64) -> bool {
        self.table.lock().unwrap().orphans.contains(&ino)
    }
}

fn open_on(table: &Table, ino: u64) -> bool {
    table.open.values().any(|open| open.ino() == ino)
}
