//! Getting spooled bytes to the server exactly once.
//!
//! An upload is not idempotent: sending bytes that already landed makes a duplicate attachment
//! or an extra version. The client checks before it repeats a request *within* one call; this
//! module covers what lies beyond one call — a failure reported after the bytes arrived, a
//! process killed between the server's answer and the removal of the entry, a retry an hour
//! later. So an entry that may already be on the server (it failed before, or it was found in
//! the spool when the uploader started) is **checked first**:
//! - a new attachment: `find_attachment(container, filename)`; present with the same size means
//!   it was ours (done); present with another size means the name is taken, so the bytes become a
//!   new version of it; absent means upload;
//! - a new version: `get_attachment(id)`; a version past `base_version` with the same size means
//!   it was ours (done); otherwise upload a new version.
//!
//! One entry is never uploaded twice at once: an in-flight set hands a second caller (FLUSH
//! while the background retry runs, or the other way round) the outcome of the first instead
//! of a second request, and an `flock` on the entry keeps a second process sharing the spool (a
//! remount while the old process still drains) waiting; when it gets the entry, it checks first.
//! A caller that gives up mid-upload (a drain that timed out) leaves the entry checked-first too. Failures update the record (attempts, last error; `Failed` for a
//! permanent refusal, which the background leaves alone until `pending --retry`) and wait an
//! exponential backoff per entry: 1 s, 2 s, 4 s … capped at 5 minutes.
//!
//! Events report what happened in the background (the FLUSH caller gets its result directly).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch, Notify};

use super::entries::{EntryLock, Spool, SpoolError};
use super::record::{EntryState, SpoolEntry, UploadRecord, UploadTarget};
use super::upload_error::UploadError;
use crate::confluence::{
    may_have_landed, Attachment, Client, ClientError, NewAttachment, StreamLabels, StreamTarget,
    StreamedUpload, UploadSource,
};

/// The wait after the first failure; it doubles with every further failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts of one entry.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the background loop looks at the spool.
const TICK: Duration = Duration::from_secs(2);
/// How often an upload waiting for another process's hold on its entry looks again.
const LOCK_POLL: Duration = Duration::from_millis(100);
/// How many finished uploads are remembered, for a caller that asks after the entry is gone.
const REMEMBERED: usize = 1024;

/// The wait before the next attempt of an entry that has failed `attempts` times.
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (FIRST_BACKOFF * (1u32 << doublings)).min(MAX_BACKOFF)
}

/// The site string records carry: the client's REST base without a trailing slash.
pub fn site_of(client: &Client) -> String {
    client.base_url().as_str().trim_end_matches('/').to_string()
}

/// What the background work finished.
// One event per finished upload: their size does not matter, plain fields are easier to match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum UploadEvent {
    /// The bytes are on the server and the entry is gone.
    Done {
        /// The entry's id, gone from the spool now.
        id: String,
        /// The record the entry had.
        record: UploadRecord,
        /// The attachment as the server has it after the upload.
        attachment: Attachment,
    },
    /// A page text reached the server and the entry is gone.
    TextSaved {
        /// The entry's id, gone from the spool now.
        id: String,
        /// The record the entry had.
        record: UploadRecord,
        /// The page as the server has it after the save.
        page: crate::confluence::Page,
    },
    /// A permanent refusal; the entry stays, `Failed`.
    Failed {
        /// The entry's id.
        id: String,
        /// The entry's record, now in state `Failed`.
        record: UploadRecord,
        /// The errno the refusal maps to.
        errno: i32,
    },
}

type Outcome = Option<Result<Attachment, UploadError>>;

/// Delivers spool entries to the server exactly once: uploads on request, retries in the
/// background, and drains at unmount. One per mount.
pub struct Uploader {
    client: Client,
    spool: Arc<Spool>,
    site: String,
    events: mpsc::UnboundedSender<UploadEvent>,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// How many uploads are in flight (`drain` waits for 0).
    busy: watch::Sender<usize>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    in_flight: HashMap<String, watch::Receiver<Outcome>>,
    /// Entries that may be on the server already: found at start, or cut off mid-upload.
    suspects: HashSet<String>,
    /// Entries that failed here: the attempts count they failed at, and when they are due.
    next_try: HashMap<String, (u32, Instant)>,
    finished: HashMap<String, Attachment>,
    finished_order: VecDeque<String>,
    started: bool,
    warned_site: HashSet<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The right to upload one entry; dropping it ends the in-flight mark.
struct Claim {
    shared: Arc<Shared>,
    id: String,
    tx: watch::Sender<Outcome>,
    /// Bytes may be on their way: a claim dropped in this state (a cancelled FLUSH, a drain
    /// that timed out) makes the entry a suspect, checked before the next attempt.
    sending: bool,
}

impl Claim {
    fn finish(mut self, outcome: &Result<Attachment, UploadError>) {
        self.sending = false;
        self.tx.send_replace(Some(outcome.clone()));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.in_flight.remove(&self.id);
        if self.sending {
            state.suspects.insert(self.id.clone());
        }
        let busy = state.in_flight.len();
        drop(state);
        self.shared.busy.send_replace(busy);
    }
}

enum Slot {
    Claimed(Claim),
    Busy(watch::Receiver<Outcome>),
}

impl Uploader {
    /// Every entry already in the spool is taken to be possibly on the server (checked first).
    pub fn new(
        client: Client,
        spool: Arc<Spool>,
    ) -> (Arc<Uploader>, mpsc::UnboundedReceiver<UploadEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let mut state = State::default();
        match spool.list() {
            Ok(entries) => state.suspects.extend(entries.into_iter().map(|e| e.id)),
            Err(error) => tracing::warn!(%error, "cannot list the spool"),
        }
        let uploader = Uploader {
            site: site_of(&client),
            client,
            spool,
            events,
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                busy: watch::Sender::new(0),
                wake: Notify::new(),
            }),
        };
        (Arc::new(uploader), receiver)
    }

    /// The spool this uploader delivers.
    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
    }

    /// The site string this uploader accepts in records (see [`site_of`]).
    pub fn site(&self) -> &str {
        &self.site
    }

    /// Uploads one admitted entry now (FLUSH waits for this). Success removes the entry and
    /// returns the attachment; failure updates the record and keeps the entry. If the entry is
    /// being uploaded already, waits for that upload and returns its outcome.
    pub async fn upload(&self, entry: &SpoolEntry) -> Result<Attachment, UploadError> {
        loop {
            match self.claim(&entry.id) {
                Slot::Busy(mut rx) => {
                    if let Ok(outcome) = rx.wait_for(Option::is_some).await {
                        if let Some(result) = outcome.clone() {
                            return result;
                        }
                    }
                    // That upload was cancelled: try ourselves.
                }
                Slot::Claimed(claim) => {
                    let fresh = match self.spool.get(&entry.id) {
                        Ok(fresh) => fresh,
                        Err(SpoolError::NoEntry { id }) => {
                            // Uploaded a moment ago (or dropped by the user).
                            let done = self.shared.lock().finished.get(&id).cloned();
                            return done.ok_or(UploadError::Spool(SpoolError::NoEntry { id }));
                        }
                        Err(error) => return Err(UploadError::Spool(error)),
                    };
                    return self.attempt(claim, &fresh).await;
                }
            }
        }
    }

    /// Takes entry `id` back before it is delivered: the file it holds was deleted, renamed or
    /// written again since, and the newer state supersedes it. An attempt in flight is waited
    /// for, not cut off. Returns the attachment if the bytes reached the server (by that
    /// attempt, or by an earlier one whose answer was lost), so the caller acts on what is
    /// there; otherwise the entry is gone and nothing of it will reach the server.
    pub async fn withdraw(&self, id: &str) -> Result<Option<Attachment>, UploadError> {
        loop {
            match self.claim(id) {
                Slot::Busy(mut rx) => {
                    let _ = rx.wait_for(Option::is_some).await;
                }
                Slot::Claimed(_claim) => {
                    let entry = match self.spool.get(id) {
                        Ok(entry) => entry,
                        Err(SpoolError::NoEntry { .. }) => {
                            return Ok(self.shared.lock().finished.get(id).cloned());
                        }
                        Err(error) => return Err(UploadError::Spool(error)),
                    };
                    let Some((_lock, entry)) = self.lock_entry(&entry).await? else {
                        return self.landed(&entry).await;
                    };
                    let suspect = entry.record.attempts > 0 || {
                        let state = self.shared.lock();
                        state.suspects.contains(id) || state.next_try.contains_key(id)
                    };
                    let landed = if suspect {
                        self.landed(&entry).await?
                    } else {
                        None
                    };
                    match self.spool.remove(id) {
                        Ok(()) | Err(SpoolError::NoEntry { .. }) => {}
                        Err(error) => return Err(UploadError::Spool(error)),
                    }
                    let mut state = self.shared.lock();
                    state.next_try.remove(id);
                    state.suspects.remove(id);
                    if let Some(attachment) = &landed {
                        remember(&mut state, id, attachment);
                    }
                    return Ok(landed);
                }
            }
        }
    }

    /// Starts the background loop (once): entries left from before at once, then every few
    /// seconds whatever is `Pending`, not in flight and past its backoff.
    pub fn spawn_retries(self: &Arc<Self>) {
        {
            let mut state = self.shared.lock();
            if state.started {
                return;
            }
            state.started = true;
        }
        let weak = Arc::downgrade(self);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            loop {
                match weak.upgrade() {
                    Some(uploader) => uploader.retry_round(),
                    None => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = shared.wake.notified() => {}
                }
            }
        });
    }

    /// Gives every `Pending` entry one more try now (backoff ignored) and waits until nothing
    /// is in flight, for at most `timeout`. Returns the entries left.
    pub async fn drain(&self, timeout: Duration) -> Vec<SpoolEntry> {
        let work = async {
            let entries = self.spool.list().unwrap_or_default();
            let tries = entries
                .iter()
                .filter(|e| e.record.state == EntryState::Pending && self.same_site(&e.record))
                .filter(|e| !matches!(e.record.target, UploadTarget::PageText { .. }))
                .map(|e| self.upload(e));
            futures_util::future::join_all(tries).await;
            for text in entries.iter().filter(|e| {
                e.record.state == EntryState::Pending
                    && self.same_site(&e.record)
                    && matches!(e.record.target, UploadTarget::PageText { .. })
            }) {
                if let Slot::Claimed(claim) = self.claim(&text.id) {
                    if let Some(event) = self.text_attempt(text).await {
                        let _ = self.events.send(event);
                    }
                    drop(claim);
                }
            }
            let mut busy = self.shared.busy.subscribe();
            let _ = busy.wait_for(|n| *n == 0).await;
        };
        if tokio::time::timeout(timeout, work).await.is_err() {
            tracing::warn!(?timeout, "uploads still running when the drain ended");
        }
        self.spool.list().unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot list the spool");
            Vec::new()
        })
    }

    /// Wakes the background loop now and makes every waiting entry due.
    pub fn nudge(&self) {
        let now = Instant::now();
        for (_, at) in self.shared.lock().next_try.values_mut() {
            *at = now;
        }
        self.shared.wake.notify_one();
    }

    fn claim(&self, id: &str) -> Slot {
        let mut state = self.shared.lock();
        if let Some(rx) = state.in_flight.get(id) {
            return Slot::Busy(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        state.in_flight.insert(id.to_string(), rx);
        let busy = state.in_flight.len();
        drop(state);
        self.shared.busy.send_replace(busy);
        Slot::Claimed(Claim {
            shared: self.shared.clone(),
            id: id.to_string(),
            tx,
            sending: false,
        })
    }

    fn same_site(&self, record: &UploadRecord) -> bool {
        record.site.trim_end_matches('/') == self.site
    }

    fn retry_round(self: &Arc<Self>) {
        let entries = match self.spool.list() {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, "cannot list the spool");
                return;
            }
        };
        let now = Instant::now();
        for entry in entries {
            if entry.record.state != EntryState::Pending {
                continue;
            }
            if !self.same_site(&entry.record) {
                if self.shared.lock().warned_site.insert(entry.id.clone()) {
                    tracing::warn!(
                        id = %entry.id,
                        site = %entry.record.site,
                        "spool entry of another site left alone"
                    );
                }
                continue;
            }
            let due = {
                let state = self.shared.lock();
                match state.next_try.get(&entry.id) {
                    Some((attempts, at)) if *attempts == entry.record.attempts => *at <= now,
                    // The record changed elsewhere (`pending --retry`): try now.
                    Some(_) => true,
                    // Admitted here and not tried: give its FLUSH the first go.
                    None => {
                        state.suspects.contains(&entry.id)
                            || age(&entry.record) >= FIRST_BACKOFF
                            || entry.record.attempts > 0
                    }
                }
            };
            if !due {
                continue;
            }
            let Slot::Claimed(claim) = self.claim(&entry.id) else {
                continue;
            };
            let uploader = self.clone();
            tokio::spawn(async move { uploader.background_attempt(claim).await });
        }
    }

    async fn background_attempt(&self, claim: Claim) {
        let id = claim.id.clone();
        // Re-read: the entry may have been uploaded, dropped or failed since it was listed.
        let fresh = match self.spool.get(&id) {
            Ok(fresh) if fresh.record.state == EntryState::Pending => fresh,
            _ => return,
        };
        if matches!(fresh.record.target, UploadTarget::PageText { .. }) {
            if let Some(event) = self.text_attempt(&fresh).await {
                let _ = self.events.send(event);
            }
            drop(claim);
            return;
        }
        let event = match self.attempt(claim, &fresh).await {
            Ok(attachment) => {
                tracing::info!(%id, path = %fresh.record.display_path, "uploaded from the spool");
                UploadEvent::Done {
                    id,
                    record: fresh.record,
                    attachment,
                }
            }
            Err(error) if error.is_permanent() => {
                tracing::warn!(%id, path = %fresh.record.display_path, %error, "upload refused");
                let record = self
                    .spool
                    .get(&id)
                    .map(|e| e.record)
                    .unwrap_or(fresh.record);
                UploadEvent::Failed {
                    id,
                    record,
                    errno: error.errno(),
                }
            }
            Err(error) => {
                tracing::info!(%id, %error, "upload failed; will retry");
                return;
            }
        };
        let _ = self.events.send(event);
    }

    /// One attempt at a page text entry (`text_saves.rs`), with the same bookkeeping as an
    /// upload's: gone when saved, `Failed` on a conflict or a refusal, retried otherwise.
    async fn text_attempt(&self, entry: &SpoolEntry) -> Option<UploadEvent> {
        let id = entry.id.clone();
        let mut failed = entry.clone();
        failed.record.attempts += 1;
        let merge = matches!(
            entry.record.target,
            UploadTarget::PageText { merge: true, .. }
        );
        match super::text_saves::deliver_text(&self.client, entry, merge).await {
            Ok(super::text_saves::TextOutcome::Saved(page)) => {
                let _ = self.spool.remove(&id);
                self.shared.lock().next_try.remove(&id);
                tracing::info!(%id, path = %entry.record.display_path, "page text saved from the spool");
                return Some(UploadEvent::TextSaved {
                    id,
                    record: entry.record.clone(),
                    page: *page,
                });
            }
            Ok(super::text_saves::TextOutcome::Conflict { current }) => {
                if let UploadTarget::PageText { base_version, .. } = &entry.record.target {
                    failed.record.state = super::text_saves::conflict_state(*base_version, current);
                }
            }
            Err(error) => {
                failed.record.last_error = Some(error.to_string());
                if error.is_permanent() {
                    failed.record.state = EntryState::Failed {
                        errno: error.errno(),
                        reason: error.to_string(),
                    };
                }
            }
        }
        if let Err(update) = self.spool.update(&failed) {
            tracing::warn!(%id, %update, "cannot update the record");
        }
        let due = Instant::now() + backoff(failed.record.attempts);
        self.shared
            .lock()
            .next_try
            .insert(id.clone(), (failed.record.attempts, due));
        match failed.record.state {
            EntryState::Failed { errno, .. } => Some(UploadEvent::Failed {
                id,
                record: failed.record,
                errno,
            }),
            EntryState::Pending => None,
        }
    }

    /// One attempt with its bookkeeping: the record, the backoff, the in-flight outcome.
    async fn attempt(
        &self,
        mut claim: Claim,
        entry: &SpoolEntry,
    ) -> Result<Attachment, UploadError> {
        let result = self.attempt_inner(&mut claim, entry).await;
        claim.finish(&result);
        result
    }

    async fn attempt_inner(
        &self,
        claim: &mut Claim,
        entry: &SpoolEntry,
    ) -> Result<Attachment, UploadError> {
        let record = &entry.record;
        if !self.same_site(record) {
            return Err(UploadError::OtherSite {
                id: entry.id.clone(),
                entry_site: record.site.clone(),
                client_site: self.site.clone(),
            });
        }
        // Another process sharing this spool may be sending it: wait for it, then look again.
        let (_lock, entry) = match self.lock_entry(entry).await? {
            Some(locked) => locked,
            None => return self.delivered_elsewhere(entry).await,
        };
        let entry = &entry;
        let record = &entry.record;
        let check_first = record.attempts > 0 || {
            let state = self.shared.lock();
            state.suspects.contains(&entry.id) || state.next_try.contains_key(&entry.id)
        };
        claim.sending = true;
        let delivery = match complete(entry) {
            Ok(()) => self.deliver(entry, check_first).await,
            Err(error) => Err(error),
        };
        match delivery {
            Ok(attachment) => {
                self.delivered(&entry.id, &attachment);
                Ok(attachment)
            }
            Err(error) => {
                let mut failed = entry.clone();
                failed.record.attempts += 1;
                failed.record.last_error = Some(error.to_string());
                if error.is_permanent() {
                    failed.record.state = EntryState::Failed {
                        errno: error.errno(),
                        reason: error.to_string(),
                    };
                }
                match self.spool.update(&failed) {
                    Ok(()) | Err(SpoolError::NoEntry { .. }) => {}
                    Err(update) => {
                        tracing::warn!(id = %entry.id, %update, "cannot update the record")
                    }
                }
                let due = Instant::now() + backoff(failed.record.attempts);
                self.shared
                    .lock()
                    .next_try
                    .insert(entry.id.clone(), (failed.record.attempts, due));
                Err(error)
            }
        }
    }

    /// The bookkeeping of an entry that reached the server: gone from the spool, remembered.
    fn delivered(&self, id: &str, attachment: &Attachment) {
        let removed = self.spool.remove(id);
        let mut state = self.shared.lock();
        state.next_try.remove(id);
        state.warned_site.remove(id);
        if let Err(error) = removed {
            // The next attempt will find it on the server rather than send it again.
            tracing::warn!(%id, %error, "uploaded, but cannot remove the entry");
            state.suspects.insert(id.to_string());
        } else {
            state.suspects.remove(id);
        }
        remember(&mut state, id, attachment);
    }

    /// Starts sending the bytes of a file still being written (`written` so far, read back from
    /// `path` as it grows), to the destination its spool entry will have at close. The upload
    /// ends in [`Uploader::upload_streamed`] once the entry is admitted, or is abandoned.
    #[allow(clippy::too_many_arguments)]
    pub fn start_early(
        &self,
        target: &UploadTarget,
        filename: &str,
        media_type: Option<String>,
        comment: &str,
        minor_edit: bool,
        path: &std::path::Path,
        written: u64,
        max_size: u64,
    ) -> StreamedUpload {
        let stream_target = match target {
            UploadTarget::New { container } => StreamTarget::New(container.clone()),
            UploadTarget::Version {
                container,
                attachment_id,
                ..
            } => StreamTarget::Version {
                container: container.clone(),
                attachment_id: attachment_id.clone(),
            },
            // Never asked for (texts are saved whole, `text_saves.rs`); an attachment of the
            // page would be the wrong place, so the stream goes nowhere useful and is refused.
            UploadTarget::PageText { page_id, kind, .. } => {
                StreamTarget::New(crate::confluence::ContainerRef {
                    kind: *kind,
                    id: page_id.clone(),
                })
            }
        };
        let labels = StreamLabels {
            media_type: media_type
                .unwrap_or_else(|| crate::confluence::guess_media_type(filename).to_string()),
            filename: filename.to_string(),
            comment: Some(comment.to_string()).filter(|c| !c.is_empty()),
            minor_edit,
        };
        self.client.start_streamed_upload(
            stream_target,
            labels,
            path.to_path_buf(),
            written,
            max_size,
        )
    }

    /// Uploads an admitted entry whose bytes are on their way already in `streamed` (sent
    /// while the file was written): waits for the server's answer. If another upload of the
    /// entry is in flight, the stream is given up for it; if the stream fails, an ordinary
    /// attempt follows, checked first when the failed request may have landed.
    pub async fn upload_streamed(
        &self,
        entry: &SpoolEntry,
        streamed: StreamedUpload,
    ) -> Result<Attachment, UploadError> {
        let mut claim = match self.claim(&entry.id) {
            Slot::Claimed(claim) => claim,
            Slot::Busy(_) => {
                streamed.abandon();
                return self.upload(entry).await;
            }
        };
        let Ok(Some(lock)) = self.spool.try_lock(&entry.id) else {
            streamed.abandon();
            return self.attempt(claim, entry).await;
        };
        claim.sending = true;
        match streamed.finish(entry.record.size).await {
            Ok(attachment) => {
                self.delivered(&entry.id, &attachment);
                let result = Ok(attachment);
                claim.finish(&result);
                result
            }
            Err(error) => {
                tracing::info!(id = %entry.id, %error, "the streamed upload failed; sending the file");
                if may_have_landed(&error) {
                    self.shared.lock().suspects.insert(entry.id.clone());
                }
                drop(lock);
                self.attempt(claim, entry).await
            }
        }
    }

    /// The entry's cross-process lock and the entry as it is once the lock is ours; `None` if
    /// the entry went away meanwhile.
    async fn lock_entry(
        &self,
        entry: &SpoolEntry,
    ) -> Result<Option<(EntryLock, SpoolEntry)>, UploadError> {
        let mut waited = false;
        loop {
            match self.spool.try_lock(&entry.id) {
                Ok(Some(lock)) if !waited => return Ok(Some((lock, entry.clone()))),
                Ok(Some(lock)) => {
                    // The other holder may have died mid-upload: check before sending.
                    self.shared.lock().suspects.insert(entry.id.clone());
                    return match self.spool.get(&entry.id) {
                        Ok(fresh) => Ok(Some((lock, fresh))),
                        Err(SpoolError::NoEntry { .. }) => Ok(None),
                        Err(error) => Err(UploadError::Spool(error)),
                    };
                }
                Ok(None) => {
                    waited = true;
                    tokio::time::sleep(LOCK_POLL).await;
                }
                Err(SpoolError::NoEntry { .. }) => return Ok(None),
                Err(error) => return Err(UploadError::Spool(error)),
            }
        }
    }

    /// The entry vanished while we waited for it: another process uploaded it (find it), or
    /// the user dropped it.
    async fn delivered_elsewhere(&self, entry: &SpoolEntry) -> Result<Attachment, UploadError> {
        self.landed(entry).await?.ok_or_else(|| {
            UploadError::Spool(SpoolError::NoEntry {
                id: entry.id.clone(),
            })
        })
    }

    /// The attachment the entry's bytes became, if they are on the server: the same name (or a
    /// version past the base) with the same size.
    async fn landed(&self, entry: &SpoolEntry) -> Result<Option<Attachment>, UploadError> {
        let record = &entry.record;
        let found = match &record.target {
            UploadTarget::New { container } => {
                self.client
                    .find_attachment(container, &record.filename)
                    .await?
            }
            UploadTarget::Version {
                attachment_id,
                base_version,
                ..
            } => Some(self.client.get_attachment(attachment_id).await?)
                .filter(|current| current.version > *base_version),
            UploadTarget::PageText { .. } => None,
        };
        Ok(found.filter(|attachment| attachment.size == record.size))
    }

    /// The requests of one attempt, checking first when the bytes may be there already.
    async fn deliver(
        &self,
        entry: &SpoolEntry,
        check_first: bool,
    ) -> Result<Attachment, UploadError> {
        let record = &entry.record;
        match &record.target {
            UploadTarget::New { container } => {
                if check_first {
                    match self
                        .client
                        .find_attachment(container, &record.filename)
                        .await?
                    {
                        Some(found) if found.size == record.size => {
                            tracing::info!(id = %entry.id, "already on the server");
                            return Ok(found);
                        }
                        Some(found) => return self.new_version(&found, entry).await,
                        None => {}
                    }
                }
                let file = NewAttachment {
                    filename: record.filename.clone(),
                    source: UploadSource::Path(entry.data_path.clone()),
                    media_type: None,
                    comment: comment(record).map(str::to_string),
                };
                match self
                    .client
                    .upload_attachment(container, file, record.minor_edit)
                    .await
                {
                    Err(ClientError::AlreadyExists { .. }) => {
                        // The name was taken meanwhile: the user wrote that path, so the bytes
                        // become its next version.
                        match self
                            .client
                            .find_attachment(container, &record.filename)
                            .await?
                        {
                            Some(found) => self.new_version(&found, entry).await,
                            None => Err(UploadError::Client(Arc::new(ClientError::Config(
                                format!("{} is said to exist but is not found", record.filename),
                            )))),
                        }
                    }
                    other => Ok(other?),
                }
            }
            UploadTarget::Version {
                attachment_id,
                base_version,
                ..
            } => {
                let current = self.client.get_attachment(attachment_id).await?;
                if check_first && current.version > *base_version && current.size == record.size {
                    tracing::info!(id = %entry.id, "version already on the server");
                    return Ok(current);
                }
                self.new_version(&current, entry).await
            }
            UploadTarget::PageText { .. } => Err(UploadError::Client(Arc::new(
                ClientError::Config("a page text is not an attachment upload".into()),
            ))),
        }
    }

    async fn new_version(
        &self,
        current: &Attachment,
        entry: &SpoolEntry,
    ) -> Result<Attachment, UploadError> {
        let record = &entry.record;
        Ok(self
            .client
            .upload_new_version(
                current,
                UploadSource::Path(entry.data_path.clone()),
                comment(record),
                record.minor_edit,
            )
            .await?)
    }
}

/// Whether the spooled bytes are all there (`admit_unsynced` leaves them to the page cache
/// until their `fsync`; a power cut in between can leave them short).
fn complete(entry: &SpoolEntry) -> Result<(), UploadError> {
    let found = match std::fs::metadata(&entry.data_path) {
        Ok(meta) => meta.len(),
        // Unreadable bytes are the client's error to report, as before.
        Err(_) => return Ok(()),
    };
    if found == entry.record.size {
        Ok(())
    } else {
        Err(UploadError::Incomplete {
            id: entry.id.clone(),
            expected: entry.record.size,
            found,
        })
    }
}

fn comment(record: &UploadRecord) -> Option<&str> {
    Some(record.comment.as_str()).filter(|c| !c.is_empty())
}

fn age(record: &UploadRecord) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Duration::from_millis(now.saturating_sub(record.created_unix_ms))
}

fn remember(state: &mut State, id: &str, attachment: &Attachment) {
    if state
        .finished
        .insert(id.to_string(), attachment.clone())
        .is_none()
    {
        state.finished_order.push_back(id.to_string());
    }
    while state.finished_order.len() > REMEMBERED {
        if let Some(old) = state.finished_order.pop_front() {
            state.finished.remove(&old);
        }
    }
}
