//! Which inodes the kernel serves from a local file itself (FUSE passthrough), under its rules.
//!
//! The kernel allows one I/O mode per inode at a time. While any open file of an inode is
//! passthrough, every further open of it must be passthrough on the same backing file, and an
//! open through the page cache fails; a passthrough open of an inode that has a file open
//! through the page cache fails too. Either failure reaches the program as EIO from `open`.
//! So each inode here is in one mode for as long as it has handles: the first open decides
//! (passthrough if the filesystem offered a file and the kernel took it), and the others
//! follow it. The backing ID is kept while the inode has passthrough handles, and closed with
//! the last one.
//!
//! Registering a backing file needs `CAP_SYS_ADMIN` and a backing filesystem that is not
//! stacked itself; the first refusal turns passthrough off for the mount, logged once, and
//! every file goes through us as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::BackingId;

/// The mode of each open inode, and which inode each handle is on.
#[derive(Default)]
pub(super) struct Backings {
    enabled: AtomicBool,
    /// Why passthrough is off, once it is (for the log and `status`).
    off_because: Mutex<Option<String>>,
    /// Opens answered with passthrough so far.
    opened: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    inodes: HashMap<u64, Mode>,
    handles: HashMap<u64, u64>,
}

enum Mode {
    Cached(u32),
    Passthrough { id: Arc<BackingId>, handles: u32 },
}

/// How to answer an open.
pub(super) enum Choice {
    Passthrough(Arc<BackingId>),
    Cached,
}

impl Backings {
    /// Passthrough as negotiated at INIT: `Err` says why it is off.
    pub(super) fn set_enabled(&self, negotiated: Result<(), String>) {
        match negotiated {
            Ok(()) => {
                self.enabled.store(true, Ordering::Release);
                tracing::info!("reads and writes of local files go through FUSE passthrough");
            }
            Err(reason) => self.turn_off(reason),
        }
    }

    /// `None` while passthrough is in use; otherwise why not.
    pub(super) fn off_because(&self) -> Option<String> {
        self.off_because.lock().unwrap().clone()
    }

    /// Opens answered with passthrough so far.
    pub(super) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn turn_off(&self, reason: String) {
        self.enabled.store(false, Ordering::Release);
        let mut off = self.off_because.lock().unwrap();
        if off.is_none() {
            tracing::info!(
                "FUSE passthrough is off: {reason}; every READ and WRITE goes through confluencefs"
            );
            *off = Some(reason);
        }
    }

    /// The mode of handle `handle` of `ino`, opened with `offer` as the filesystem's file for
    /// the kernel (if any); `register` makes a backing ID of a file.
    pub(super) fn choose(
        &self,
        ino: u64,
        handle: u64,
        offer: Option<std::fs::File>,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<BackingId>,
    ) -> Choice {
        let mut state = self.state.lock().unwrap();
        let choice = match state.inodes.get_mut(&ino) {
            Some(Mode::Passthrough { id, handles }) => {
                *handles += 1;
                Choice::Passthrough(id.clone())
            }
            Some(Mode::Cached(handles)) => {
                *handles += 1;
                Choice::Cached
            }
            None => {
                let registered = match offer {
                    Some(file) if self.enabled.load(Ordering::Acquire) => match register(&file) {
                        Ok(id) => Some(Arc::new(id)),
                        Err(err) => {
                            self.turn_off(format!("the kernel refused a backing file ({err})"));
                            None
                        }
                    },
                    _ => None,
                };
                match registered {
                    Some(id) => {
                        state.inodes.insert(
                            ino,
                            Mode::Passthrough {
                                id: id.clone(),
                                handles: 1,
                            },
                        );
                        Choice::Passthrough(id)
                    }
                    None => {
                        state.inodes.insert(ino, Mode::Cached(1));
                        Choice::Cached
                    }
                }
            }
        };
        state.handles.insert(handle, ino);
        if matches!(choice, Choice::Passthrough(_)) {
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        choice
    }

    /// Handle `handle` was released (or its open was never answered).
    pub(super) fn released(&self, handle: u64) {
        let mut state = self.state.lock().unwrap();
        let Some(ino) = state.handles.remove(&handle) else {
            return;
        };
        let last = match state.inodes.get_mut(&ino) {
            Some(Mode::Cached(handles)) | Some(Mode::Passthrough { handles, .. }) => {
                *handles = handles.saturating_sub(1);
                *handles == 0
            }
            None => false,
        };
        if last {
            // Dropping the last reference closes the backing ID.
            state.inodes.remove(&ino);
        }
    }
}
