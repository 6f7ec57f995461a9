//! A file's bytes while it is written: a staging file on local disk, and what is known about it.
//!
//! The staging file holds the new bytes, never memory, so a 5 GiB copy is fine. Bytes not yet
//! written stand for the base version's, which are copied in only when something needs them
//! (`covered`). A `Staged` belongs to its file's `FileState` (`files.rs`) and changes only
//! under that file's lock; the operations on it are in `write.rs`.

use std::path::PathBuf;

use super::early::EarlyUpload;
use crate::confluence::Attachment;

/// The local copy of a file being written.
pub(crate) struct Staged {
    pub(super) path: PathBuf,
    pub(super) file: std::fs::File,
    pub(super) size: u64,
    /// Bytes before this offset are ours (written, or known to be empty).
    pub(super) covered: u64,
    /// The attachment version whose bytes stand in for everything not covered yet.
    pub(super) base: Option<Attachment>,
    pub(super) dirty: bool,
    /// Bytes were written since the last upload. An empty file that no write made (a new
    /// file, a truncation to 0) waits for RELEASE: a shell's `> file` sends FLUSH before its
    /// first write (it dup2s and closes the descriptor), and uploading then would add an empty
    /// version before the real one.
    pub(super) written: bool,
    /// The staging file is also the spool's: copy it before changing it.
    pub(super) shared: bool,
    /// A write went past `--max-file-size`: the file is refused whole (EFBIG at close too)
    /// rather than uploaded cut short.
    pub(super) too_large: bool,
    /// Every byte was written in order from an empty file (see `early.rs`).
    pub(super) appending: bool,
    /// The upload that started while the file was being written, if one did.
    pub(super) early: Option<EarlyUpload>,
    /// Whether this run of appending writes has had its chance to start an early upload.
    pub(super) early_tried: bool,
}

impl Staged {
    /// Staged bytes that are already a whole copy of `base` (the disk cache's file of it,
    /// adopted): nothing stands for the server's bytes, nothing is changed yet.
    pub(crate) fn complete_copy(path: PathBuf, file: std::fs::File, base: Attachment) -> Staged {
        Staged {
            path,
            file,
            size: base.size,
            covered: base.size,
            base: Some(base),
            dirty: false,
            written: false,
            shared: false,
            too_large: false,
            appending: false,
            early: None,
            early_tried: false,
        }
    }

    /// A file that did not exist before: uploading it empty is still a change.
    pub(crate) fn mark_new(&mut self) {
        self.dirty = true;
    }

    /// Its bytes must go up even though no write touched them (a rename over a file).
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
        self.written = true;
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The bookkeeping of a write of `offset..end` that reached the staging file.
    pub(super) fn wrote(&mut self, offset: u64, end: u64) {
        if offset != self.size {
            self.appending = false;
        }
        if offset <= self.covered {
            self.covered = self.covered.max(end);
        }
        self.size = self.size.max(end);
        self.dirty = true;
        self.written = true;
        match &self.early {
            Some(early) if self.appending => early.upload.grow(self.size),
            Some(_) => self.give_up_early(),
            None => {}
        }
    }

    /// Whether the staging file holds every byte (nothing stands for a server version's).
    pub(crate) fn complete(&self) -> bool {
        self.base.is_none() || self.covered >= self.size
    }

    /// The kernel wrote the staging file itself (passthrough): it is `size` long now, and
    /// every byte of it is ours.
    pub(crate) fn kernel_wrote(&mut self, size: u64) {
        self.size = size;
        self.covered = size;
        self.base = None;
        self.dirty = true;
        self.written = true;
        self.appending = false;
        self.give_up_early();
    }

    /// Whether a write ending at `end` should be the one that starts an early upload.
    pub(super) fn may_start_early(&self, offset: u64, end: u64) -> bool {
        self.early.is_none()
            && !self.early_tried
            && self.appending
            && offset == self.size
            && end >= super::early::START_AFTER
    }

    /// The bytes no longer grow front to back: the early upload, if any, must not complete.
    pub(super) fn give_up_early(&mut self) {
        if let Some(early) = self.early.take() {
            tracing::debug!("early upload given up");
            early.upload.abandon();
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
