//! Keeping the site's records on disk with `--data`, without making writes slow.
//!
//! The data dir holds a snapshot (`state.json`, replaced atomically) and a journal
//! (`journal.jsonl`): every change appends one line carrying only the records it touched, so
//! a write costs what it changed, not the size of the site (a seeded 20,000-attachment site
//! would otherwise rewrite megabytes per upload). At startup and shutdown, and whenever the
//! journal outgrows the snapshot, the snapshot is rewritten and the journal emptied.
//!
//! Changes bump a generation number and wake one writer task; changes arriving while a write
//! runs are coalesced into the next line. A handler that changed something waits until its
//! generation is written before answering: once the client saw 200, a restart keeps it.
//! Replaying is idempotent (lines are full records, applied in order), so a crash between
//! replacing the snapshot and emptying the journal loses nothing.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use crate::store::{Changes, Snapshot, Store};

const SNAPSHOT: &str = "state.json";
const JOURNAL: &str = "journal.jsonl";

pub(crate) struct Persister {
    dir: Option<PathBuf>,
    wanted: AtomicU64,
    written: watch::Sender<u64>,
    wake: Notify,
    journal_bytes: AtomicU64,
    snapshot_bytes: AtomicU64,
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {e}", path.display()),
    )
}

impl Persister {
    pub(crate) fn new(data_dir: Option<&Path>) -> Persister {
        Persister {
            dir: data_dir.map(Path::to_path_buf),
            wanted: AtomicU64::new(0),
            written: watch::Sender::new(0),
            wake: Notify::new(),
            journal_bytes: AtomicU64::new(0),
            snapshot_bytes: AtomicU64::new(0),
        }
    }

    /// Reads the snapshot and replays the journal of a data dir, if it has a snapshot.
    pub(crate) fn load(data_dir: &Path) -> io::Result<Option<Store>> {
        let path = data_dir.join(SNAPSHOT);
        let snapshot: Snapshot = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| invalid(&path, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut store = Store::from_snapshot(snapshot);
        let journal = data_dir.join(JOURNAL);
        match std::fs::File::open(&journal) {
            Ok(f) => {
                for line in io::BufReader::new(f).lines() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Changes>(&line) {
                        Ok(changes) => store.apply_changes(changes),
                        // A torn last line from a crash mid-append: everything before it holds.
                        Err(e) => {
                            tracing::warn!("{}: ignoring unreadable line: {e}", journal.display());
                            break;
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Some(store))
    }

    /// Records that the store changed; returns the generation to wait for.
    pub(crate) fn changed(&self) -> u64 {
        if self.dir.is_none() {
            return 0;
        }
        let generation = self.wanted.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake.notify_one();
        generation
    }

    /// Waits until generation `generation` (or a later one) is on disk.
    pub(crate) async fn durable(&self, generation: u64) {
        if self.dir.is_none() || generation == 0 {
            return;
        }
        let mut rx = self.written.subscribe();
        let _ = rx.wait_for(|w| *w >= generation).await;
    }

    /// Writes a full snapshot now and empties the journal (after seeding, and at shutdown).
    pub(crate) fn write_now(&self, store: &Mutex<Store>) -> io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let target = self.wanted.load(Ordering::SeqCst);
        let bytes = {
            let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
            let mut out = Vec::with_capacity(1 << 16);
            guard.write_snapshot(&mut out).map_err(io::Error::other)?;
            guard.clear_changes();
            out
        };
        write_snapshot_files(dir, &bytes)?;
        self.snapshot_bytes
            .store(bytes.len() as u64, Ordering::SeqCst);
        self.journal_bytes.store(0, Ordering::SeqCst);
        self.written.send_modify(|w| *w = (*w).max(target));
        Ok(())
    }

    /// The writer task: runs until the runtime stops.
    pub(crate) async fn run(self: Arc<Self>, store: Arc<Mutex<Store>>) {
        if self.dir.is_none() {
            return;
        }
        loop {
            self.wake.notified().await;
            let target = self.wanted.load(Ordering::SeqCst);
            if *self.written.borrow() >= target {
                continue;
            }
            let compact = self.journal_bytes.load(Ordering::SeqCst)
                > self.snapshot_bytes.load(Ordering::SeqCst).max(8 << 20);
            let me = self.clone();
            let st = store.clone();
            let result = tokio::task::spawn_blocking(move || {
                if compact {
                    me.write_now(&st)
                } else {
                    me.append(&st)
                }
            })
            .await;
            match result {
                Ok(Ok(())) => self.written.send_modify(|w| *w = (*w).max(target)),
                Ok(Err(e)) => tracing::error!("persisting state: {e}"),
                Err(e) => tracing::error!("state writer panicked: {e}"),
            }
        }
    }

    fn append(&self, store: &Mutex<Store>) -> io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let line = {
            let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
            match guard.take_changes() {
                None => return Ok(()),
                Some(r) => r.map_err(io::Error::other)?,
            }
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(JOURNAL))?;
        let mut buf = line;
        buf.push(b'\n');
        f.write_all(&buf)?;
        self.journal_bytes
            .fetch_add(buf.len() as u64, Ordering::SeqCst);
        Ok(())
    }
}

fn write_snapshot_files(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let path = dir.join(SNAPSHOT);
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    match std::fs::remove_file(dir.join(JOURNAL)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Blob, FileVersion};

    #[test]
    fn journal_replays_over_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(Store::new()));
        let p = Persister::new(Some(dir.path()));
        let home = store.lock().unwrap().create_space("A", "A", 0).unwrap();
        p.write_now(&store).unwrap();
        let file = FileVersion {
            file_id: "f".into(),
            size: 1,
            media_type: "text/plain".into(),
            blob: Blob::Stored,
        };
        let att = store
            .lock()
            .unwrap()
            .add_attachment(home, "x.txt", file, "", false, 0)
            .unwrap();
        p.append(&store).unwrap();
        store.lock().unwrap().trash(att).unwrap();
        store.lock().unwrap().purge(att).unwrap();
        p.append(&store).unwrap();
        let journal = std::fs::read_to_string(dir.path().join(JOURNAL)).unwrap();
        assert_eq!(journal.lines().count(), 2);
        let loaded = Persister::load(dir.path()).unwrap().unwrap();
        assert!(loaded.get(att).is_none());
        assert!(loaded.get(home).is_some());
        // The id counter moved on: a new record never reuses a purged id.
        let mut loaded = loaded;
        assert!(loaded.alloc_id() > att);
    }
}
