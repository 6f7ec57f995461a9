//! Keeping the site's records on disk with `--data`, without making writes slow.
//!
//! Every change bumps a generation number and wakes one writer task; the writer serialises the
//! whole store and replaces `state.json` atomically (write a temp file, rename). Changes that
//! arrive while a write is running are coalesced into the next write, so a burst of 1,000
//! uploads costs a handful of writes, not 1,000. A handler that changed something waits until
//! its generation is on disk before answering: once the client saw 200, a restart keeps it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use crate::store::{Snapshot, Store};

pub struct Persister {
    path: Option<PathBuf>,
    wanted: AtomicU64,
    written: watch::Sender<u64>,
    wake: Notify,
}

impl Persister {
    pub fn new(data_dir: Option<&Path>) -> Persister {
        Persister {
            path: data_dir.map(|d| d.join("state.json")),
            wanted: AtomicU64::new(0),
            written: watch::Sender::new(0),
            wake: Notify::new(),
        }
    }

    /// Reads the state file of a data dir, if there is one.
    pub fn load(data_dir: &Path) -> io::Result<Option<Snapshot>> {
        let path = data_dir.join("state.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records that the store changed; returns the generation to wait for.
    pub fn changed(&self) -> u64 {
        if self.path.is_none() {
            return 0;
        }
        let generation = self.wanted.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake.notify_one();
        generation
    }

    /// Waits until generation `generation` (or a later one) is on disk.
    pub async fn durable(&self, generation: u64) {
        if self.path.is_none() || generation == 0 {
            return;
        }
        let mut rx = self.written.subscribe();
        let _ = rx.wait_for(|w| *w >= generation).await;
    }

    /// Writes the store now, synchronously (after seeding, and at shutdown).
    pub fn write_now(&self, store: &Mutex<Store>) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let target = self.wanted.load(Ordering::SeqCst);
        let bytes = serialise(store)?;
        write_atomically(path, &bytes)?;
        self.written.send_modify(|w| *w = (*w).max(target));
        Ok(())
    }

    /// The writer task: runs until the runtime stops.
    pub async fn run(self: Arc<Self>, store: Arc<Mutex<Store>>) {
        let Some(path) = self.path.clone() else {
            return;
        };
        loop {
            self.wake.notified().await;
            let target = self.wanted.load(Ordering::SeqCst);
            if *self.written.borrow() >= target {
                continue;
            }
            let bytes = match serialise(&store) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("serialising state: {e}");
                    continue;
                }
            };
            let p = path.clone();
            let result = tokio::task::spawn_blocking(move || write_atomically(&p, &bytes)).await;
            match result {
                Ok(Ok(())) => self.written.send_modify(|w| *w = (*w).max(target)),
                Ok(Err(e)) => tracing::error!("writing {}: {e}", path.display()),
                Err(e) => tracing::error!("state writer panicked: {e}"),
            }
        }
    }
}

fn serialise(store: &Mutex<Store>) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(1 << 16);
    let guard = store.lock().unwrap_or_else(|p| p.into_inner());
    guard.write_snapshot(&mut out).map_err(io::Error::other)?;
    Ok(out)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
