//! What the kernel wrote to a staging file without us: the bookkeeping of FUSE passthrough
//! beside each file's lock.
//!
//! Through passthrough the kernel writes a file's staging file itself, and no WRITE tells us.
//! So whoever takes a file's lock first compares the staging file's size and modification time
//! with what was seen last ([`observe`]); a difference is a write like any other. This part
//! knows only the staging file (`staged.rs`); when files are handed to the kernel, and what
//! follows for uploads, is in `passthrough.rs`.

use std::os::unix::fs::MetadataExt;

use super::staged::Staged;

/// How the staging file looked when we last looked at it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Seen {
    size: u64,
    mtime: (i64, i64),
}

impl Seen {
    fn of(meta: &std::fs::Metadata) -> Seen {
        Seen {
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// The passthrough side of one file, beside its lock (`FileCell`): read without waiting for
/// an upload that holds the lock.
#[derive(Default)]
pub(crate) struct Passthrough {
    /// Handles the kernel serves from the staging file.
    handles: u32,
    /// A second descriptor of the staging file, for `stat` while the lock is held elsewhere.
    live: Option<std::fs::File>,
    /// Set while writes we do not see may have happened since.
    seen: Option<Seen>,
    /// A descriptor kept from the last offer, to become `live` if the kernel takes it.
    spare: Option<std::fs::File>,
    /// `--max-file-size`: past it the file is refused at close.
    limit: u64,
}

impl Passthrough {
    /// A file was offered to the kernel: keeps a descriptor of it, to watch it by if taken.
    pub(crate) fn offered(&mut self, staged: &Staged) {
        if self.live.is_none() {
            self.spare = staged.file.try_clone().ok();
        }
    }

    /// The kernel took the offer for one more handle; past `limit` bytes the file is refused.
    pub(crate) fn started(&mut self, limit: u64) {
        self.handles += 1;
        self.limit = limit;
        if self.live.is_none() {
            self.live = self.spare.take();
        }
        if self.seen.is_none() {
            if let Some(meta) = self.live.as_ref().and_then(|f| f.metadata().ok()) {
                self.seen = Some(Seen::of(&meta));
            }
        }
    }

    /// One passthrough handle fewer.
    pub(crate) fn ended(&mut self) {
        self.handles = self.handles.saturating_sub(1);
    }

    /// Whether the kernel may be writing the staging file now.
    pub(crate) fn active(&self) -> bool {
        self.handles > 0
    }

    /// The staging file's current size, when the kernel may be writing it.
    pub(crate) fn live_size(&self) -> Option<u64> {
        let live = self.live.as_ref()?;
        live.metadata().ok().map(|meta| meta.len())
    }
}

/// Brings `staged` up to date with what the kernel wrote to it since the last look; called by
/// whoever takes the file's lock (`files.rs`).
pub(crate) fn observe(passthrough: &mut Passthrough, staged: Option<&mut Staged>) {
    if staged.is_none() {
        // Nothing staged, nothing to offer. (An offer stands while the file is staged: the
        // kernel may take it after someone else took the lock, and it must be watched then.)
        passthrough.spare = None;
    }
    let Some(seen) = passthrough.seen else {
        return;
    };
    let Some(staged) = staged else {
        return;
    };
    if let Ok(meta) = staged.file.metadata() {
        let now = Seen::of(&meta);
        if now != seen {
            staged.kernel_wrote(now.size);
            staged.too_large = now.size > passthrough.limit;
            passthrough.seen = Some(now);
        }
    }
    if passthrough.handles == 0 {
        // The last passthrough handle is gone and what it wrote has been taken in.
        passthrough.seen = None;
        passthrough.live = None;
    }
}

/// After our own change of the staging file: the change is not the kernel's.
pub(crate) fn look_again(passthrough: &mut Passthrough, staged: &Staged) {
    if passthrough.seen.is_some() {
        if let Ok(meta) = staged.file.metadata() {
            passthrough.seen = Some(Seen::of(&meta));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::{look_again, observe, Passthrough};
    use crate::fs::staged::Staged;

    pub(super) fn staged(dir: &std::path::Path) -> Staged {
        let path = dir.join("staged");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        Staged {
            path,
            file,
            size: 0,
            covered: 0,
            base: None,
            dirty: false,
            written: false,
            shared: false,
            too_large: false,
            appending: true,
            early: None,
            early_tried: false,
        }
    }

    #[test]
    fn the_kernels_writes_are_found_and_ours_are_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut staged = staged(dir.path());
        let mut passthrough = Passthrough::default();
        passthrough.offered(&staged);
        passthrough.started(10);

        observe(&mut passthrough, Some(&mut staged));
        assert!(!staged.dirty, "nothing written yet");

        // The kernel writes (here: we do, behind the bookkeeping's back).
        staged.file.write_all_at(b"12345", 0).unwrap();
        observe(&mut passthrough, Some(&mut staged));
        assert!(staged.dirty && staged.written);
        assert_eq!((staged.size, staged.covered), (5, 5));
        assert!(!staged.too_large);

        // A rewrite of the same size is a write too (fine-grained modification times).
        staged.dirty = false;
        staged.file.write_all_at(b"abcde", 0).unwrap();
        observe(&mut passthrough, Some(&mut staged));
        assert!(staged.dirty, "a same-size rewrite was missed");

        // Our own truncation, looked at again, is not the kernel's.
        staged.dirty = false;
        staged.written = false;
        staged.file.set_len(2).unwrap();
        look_again(&mut passthrough, &staged);
        observe(&mut passthrough, Some(&mut staged));
        assert!(!staged.dirty && !staged.written);

        // Past the limit the file is refused.
        staged.file.write_all_at(&[0; 11], 0).unwrap();
        observe(&mut passthrough, Some(&mut staged));
        assert!(staged.too_large);

        // The last handle closed: what it wrote is taken in once, then nothing is watched.
        passthrough.ended();
        staged.dirty = false;
        staged.file.write_all_at(b"z", 20).unwrap();
        observe(&mut passthrough, Some(&mut staged));
        assert!(staged.dirty);
        staged.dirty = false;
        staged.file.write_all_at(b"y", 30).unwrap();
        observe(&mut passthrough, Some(&mut staged));
        assert!(
            !staged.dirty,
            "nobody writes behind our back without a handle"
        );
        assert_eq!(passthrough.live_size(), None);
    }
}

#[cfg(test)]
mod offer_tests {
    use std::os::unix::fs::FileExt;

    use super::{observe, Passthrough};

    /// Between an offer and the kernel taking it, someone else may take the file's lock (an
    /// upload finishing, a `truncate`, a second `open`): the offer must survive that look, or
    /// the kernel's writes that follow are never found.
    #[test]
    fn an_offer_survives_a_look_before_the_kernel_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut staged = super::tests::staged(dir.path());
        let mut passthrough = Passthrough::default();
        passthrough.offered(&staged);
        observe(&mut passthrough, Some(&mut staged));
        passthrough.started(u64::MAX);

        staged
            .file
            .write_all_at(b"written by the kernel", 0)
            .unwrap();
        observe(&mut passthrough, Some(&mut staged));
        assert!(staged.dirty, "the kernel's write was missed");
        assert_eq!(staged.size, 21);
    }
}
