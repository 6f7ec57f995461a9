//! The upload spool against the test server: uploads of new files and versions, answers lost
//! after the bytes landed (no duplicate, no extra version), permanent refusals kept as failed,
//! a server outage ridden out by the background retry, `drain`, and `confluencefs pending`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use confluence_testserver::Config;
use confluencefs::confluence::{
    Attachment, Client, ContainerRef, Flavor, NewAttachment, UploadSource,
};
use confluencefs::spool::{
    site_of, EntryState, Spool, SpoolEntry, UploadEvent, UploadRecord, UploadTarget, Uploader,
};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::both_flavors;
use crate::support::{page_by_title, pattern, seed_basic, server_flavor, Server, DC_CONTEXT};

both_flavors!(
    new_file_then_new_version,
    lost_answer_of_a_new_file_makes_no_duplicate,
    lost_answer_of_a_version_makes_no_extra_version,
    too_large_is_kept_as_failed_efbig,
    forbidden_is_kept_as_failed_eacces,
    server_down_then_back,
    drain_returns_what_is_left,
    one_entry_is_uploaded_once_when_asked_twice,
    entries_of_another_site_are_left_alone,
    two_processes_sharing_a_spool_send_an_entry_once,
    a_cancelled_upload_is_checked_before_it_is_sent_again,
    bytes_cut_short_are_never_sent
);

struct Fixture {
    _work: tempfile::TempDir,
    work: std::path::PathBuf,
    spool: Arc<Spool>,
    client: Client,
}

impl Fixture {
    async fn new(server: &Server) -> Fixture {
        let work = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::open(&work.path().join("spool")).unwrap());
        Fixture {
            work: work.path().to_path_buf(),
            _work: work,
            spool,
            client: server.client().await,
        }
    }

    /// Stages `bytes` and admits them for `target` as `filename`.
    fn admit(&self, target: UploadTarget, filename: &str, bytes: &[u8]) -> SpoolEntry {
        let staged = self.work.join(format!("staged-{filename}"));
        std::fs::write(&staged, bytes).unwrap();
        let entry = self
            .spool
            .admit(&staged, record(&self.client, target, filename))
            .unwrap();
        std::fs::remove_file(&staged).unwrap();
        entry
    }

    fn uploader(&self) -> (Arc<Uploader>, UnboundedReceiver<UploadEvent>) {
        Uploader::new(self.client.clone(), self.spool.clone())
    }
}

fn record(client: &Client, target: UploadTarget, filename: &str) -> UploadRecord {
    UploadRecord {
        target,
        filename: filename.to_string(),
        comment: "written through confluencefs".into(),
        minor_edit: true,
        size: 0,
        display_path: format!("DOCS/DOCS Home/Guide/{filename}"),
        site: site_of(client),
        created_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
        attempts: 0,
        last_error: None,
        state: EntryState::Pending,
    }
}

async fn guide(client: &Client) -> ContainerRef {
    page_by_title(client, "DOCS", "Guide").await.container()
}

async fn bytes_of(client: &Client, attachment: &Attachment) -> Vec<u8> {
    client
        .download_range(attachment, attachment.version, 0, attachment.size)
        .await
        .unwrap()
        .to_vec()
}

async fn named(client: &Client, container: &ContainerRef, filename: &str) -> Vec<Attachment> {
    client
        .list_attachments(container)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.title == filename)
        .collect()
}

async fn next_event(events: &mut UnboundedReceiver<UploadEvent>) -> UploadEvent {
    tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("an upload event within 30 s")
        .expect("the uploader is alive")
}

/// Bytes admitted without an `fsync` that a crash left shorter than their record are kept as
/// failed (EIO), not uploaded.
async fn bytes_cut_short_are_never_sent(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, _events) = f.uploader();
    let staged = f.work.join("staged-short");
    std::fs::write(&staged, pattern(50_000)).unwrap();
    let entry = f
        .spool
        .admit_unsynced(
            &staged,
            record(
                &f.client,
                UploadTarget::New {
                    container: container.clone(),
                },
                "short.bin",
            ),
        )
        .unwrap();
    assert_eq!(entry.record.size, 50_000);
    // What a power cut before writeback can leave: the bytes cut short.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&entry.data_path)
        .unwrap()
        .set_len(20_000)
        .unwrap();
    server.clear_requests().await;

    let err = uploader.upload(&entry).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(
        server.requests().await.iter().all(|r| r.method != "POST"),
        "nothing sent"
    );
    let kept = f.spool.get(&entry.id).unwrap();
    assert!(
        matches!(kept.record.state, EntryState::Failed { errno, .. } if errno == libc::EIO),
        "{:?}",
        kept.record.state
    );
    assert!(named(&f.client, &container, "short.bin").await.is_empty());
}

async fn new_file_then_new_version(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, _events) = f.uploader();

    let first = pattern(70_000);
    let entry = f.admit(
        UploadTarget::New {
            container: container.clone(),
        },
        "spooled.bin",
        &first,
    );
    let created = uploader.upload(&entry).await.unwrap();
    assert_eq!(created.title, "spooled.bin");
    assert_eq!(created.size, first.len() as u64);
    assert_eq!(bytes_of(&f.client, &created).await, first);
    assert!(f.spool.list().unwrap().is_empty(), "the entry is removed");

    let second = b"a shorter second version".to_vec();
    let entry = f.admit(
        UploadTarget::Version {
            container: container.clone(),
            attachment_id: created.id.clone(),
            base_version: created.version,
        },
        "spooled.bin",
        &second,
    );
    let updated = uploader.upload(&entry).await.unwrap();
    assert_eq!(updated.id, created.id, "same attachment");
    assert_eq!(updated.version, created.version + 1);
    let current = f.client.get_attachment(&created.id).await.unwrap();
    assert_eq!(bytes_of(&f.client, &current).await, second);
    assert!(f.spool.list().unwrap().is_empty());
    assert_eq!(named(&f.client, &container, "spooled.bin").await.len(), 1);
}

async fn lost_answer_of_a_new_file_makes_no_duplicate(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let bytes = pattern(12_345);
    let entry = f.admit(
        UploadTarget::New {
            container: container.clone(),
        },
        "landed.bin",
        &bytes,
    );
    // The bytes reached the server, but the process died before the entry was removed.
    let landed = f
        .client
        .upload_attachment(
            &container,
            NewAttachment::from_bytes("landed.bin", bytes.clone()),
            true,
        )
        .await
        .unwrap();

    let (uploader, mut events) = f.uploader();
    uploader.spawn_retries();
    match next_event(&mut events).await {
        UploadEvent::Done { id, attachment, .. } => {
            assert_eq!(id, entry.id);
            assert_eq!(attachment.id, landed.id);
        }
        other => panic!("unexpected {other:?}"),
    }
    let found = named(&f.client, &container, "landed.bin").await;
    assert_eq!(found.len(), 1, "no duplicate: {found:?}");
    assert_eq!(found[0].version, 1, "no extra version");
    assert!(f.spool.list().unwrap().is_empty());
}

async fn lost_answer_of_a_version_makes_no_extra_version(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let notes = f
        .client
        .find_attachment(&container, "notes.txt")
        .await
        .unwrap()
        .unwrap();
    let bytes = b"notes, edited through the mount\n".to_vec();
    let entry = f.admit(
        UploadTarget::Version {
            container: container.clone(),
            attachment_id: notes.id.clone(),
            base_version: notes.version,
        },
        "notes.txt",
        &bytes,
    );
    f.client
        .upload_new_version(
            &notes,
            UploadSource::Bytes(bytes.clone().into()),
            None,
            true,
        )
        .await
        .unwrap();

    let (uploader, mut events) = f.uploader();
    uploader.spawn_retries();
    match next_event(&mut events).await {
        UploadEvent::Done { id, attachment, .. } => {
            assert_eq!(id, entry.id);
            assert_eq!(attachment.version, notes.version + 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    let now = f.client.get_attachment(&notes.id).await.unwrap();
    assert_eq!(now.version, notes.version + 1, "exactly one new version");
    assert_eq!(bytes_of(&f.client, &now).await, bytes);
}

async fn too_large_is_kept_as_failed_efbig(flavor: Flavor) {
    let seed = tempfile::tempdir().unwrap();
    seed_basic(seed.path());
    let config = Config {
        flavor: server_flavor(flavor),
        context_path: context(flavor),
        seed_dir: Some(seed.path().to_path_buf()),
        max_attachment_size: Some(1000),
        ..Default::default()
    };
    let server = Server::start_with(flavor, config, vec![seed]);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, _events) = f.uploader();
    let entry = f.admit(UploadTarget::New { container }, "big.bin", &pattern(5000));
    let error = uploader.upload(&entry).await.unwrap_err();
    assert_eq!(error.errno(), libc::EFBIG, "{error}");
    assert!(error.is_permanent());
    let kept = f.spool.list().unwrap();
    assert_eq!(kept.len(), 1, "the bytes stay in the spool");
    assert_eq!(kept[0].record.attempts, 1);
    assert!(matches!(
        kept[0].record.state,
        EntryState::Failed { errno, .. } if errno == libc::EFBIG
    ));
    assert_eq!(std::fs::read(&kept[0].data_path).unwrap(), pattern(5000));
}

async fn forbidden_is_kept_as_failed_eacces(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, _events) = f.uploader();
    let entry = f.admit(UploadTarget::New { container }, "secret.txt", b"no");
    server.faults(json!({"fail_next": [403]})).await;
    let error = uploader.upload(&entry).await.unwrap_err();
    assert_eq!(error.errno(), libc::EACCES, "{error}");
    let kept = f.spool.get(&entry.id).unwrap();
    assert!(matches!(
        kept.record.state,
        EntryState::Failed { errno, .. } if errno == libc::EACCES
    ));
    assert!(kept.record.last_error.is_some());
}

async fn server_down_then_back(flavor: Flavor) {
    let (seed, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    seed_basic(seed.path());
    let server = persistent_server(flavor, seed.path(), data.path(), None);
    let addr: SocketAddr = server
        .root_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, mut events) = f.uploader();
    drop(server);

    let bytes = pattern(40_000);
    let entry = f.admit(
        UploadTarget::New {
            container: container.clone(),
        },
        "outage.bin",
        &bytes,
    );
    let error = uploader.upload(&entry).await.unwrap_err();
    assert_eq!(error.errno(), libc::EIO, "{error}");
    assert!(!error.is_permanent());
    let kept = f.spool.get(&entry.id).unwrap();
    assert_eq!(kept.record.state, EntryState::Pending);
    assert_eq!(kept.record.attempts, 1);

    let _back = persistent_server(flavor, seed.path(), data.path(), Some(addr));
    uploader.spawn_retries();
    match next_event(&mut events).await {
        UploadEvent::Done { id, attachment, .. } => {
            assert_eq!(id, entry.id);
            assert_eq!(bytes_of(&f.client, &attachment).await, bytes);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(f.spool.list().unwrap().is_empty());
    assert_eq!(named(&f.client, &container, "outage.bin").await.len(), 1);
}

async fn drain_returns_what_is_left(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, _events) = f.uploader();
    let good = f.admit(
        UploadTarget::New {
            container: container.clone(),
        },
        "good.txt",
        b"good",
    );
    let missing_page = f.admit(
        UploadTarget::New {
            container: ContainerRef::page("987654321"),
        },
        "orphan.txt",
        b"orphan",
    );
    let left = uploader.drain(Duration::from_secs(30)).await;
    let ids: Vec<_> = left.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [missing_page.id.as_str()], "good {} is gone", good.id);
    assert!(
        matches!(
            left[0].record.state,
            EntryState::Failed { errno, .. } if errno == libc::ENOENT
        ),
        "{:?}",
        left[0].record
    );
    assert_eq!(named(&f.client, &container, "good.txt").await.len(), 1);
}

async fn one_entry_is_uploaded_once_when_asked_twice(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, mut events) = f.uploader();
    let entry = f.admit(
        UploadTarget::New {
            container: container.clone(),
        },
        "twice.bin",
        &pattern(200_000),
    );
    // FLUSH from two descriptors, and the background loop, all at once.
    uploader.spawn_retries();
    uploader.nudge();
    let (a, b) = tokio::join!(uploader.upload(&entry), uploader.upload(&entry));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.id, b.id);
    let found = named(&f.client, &container, "twice.bin").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].version, 1, "one upload, not two");
    assert!(f.spool.list().unwrap().is_empty());
    let log = server.requests().await;
    let posts = log.iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "{log:#?}");
    // A later FLUSH of the same (now uploaded) entry gets the same answer, with no request.
    server.clear_requests().await;
    assert_eq!(uploader.upload(&entry).await.unwrap().id, a.id);
    assert!(server.requests().await.is_empty());
    assert!(events.try_recv().is_err(), "FLUSH results are not events");
}

async fn entries_of_another_site_are_left_alone(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, _events) = f.uploader();
    let staged = f.work.join("elsewhere");
    std::fs::write(&staged, b"for another wiki").unwrap();
    let mut other = record(&f.client, UploadTarget::New { container }, "elsewhere.txt");
    other.site = "https://other.example/wiki".into();
    let entry = f.spool.admit(&staged, other).unwrap();
    server.clear_requests().await;
    let error = uploader.upload(&entry).await.unwrap_err();
    assert!(error.to_string().contains("other.example"), "{error}");
    let left = uploader.drain(Duration::from_secs(5)).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].record.state, EntryState::Pending);
    assert_eq!(left[0].record.attempts, 0);
    assert!(server.requests().await.is_empty(), "nothing was sent");
}

async fn two_processes_sharing_a_spool_send_an_entry_once(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let entry = f.admit(
        UploadTarget::New {
            container: container.clone(),
        },
        "shared.bin",
        &pattern(300_000),
    );
    // A remount while the old process still drains: two uploaders, one spool directory (the
    // entry lock is per open file, so two spool handles in one process stand for two).
    let (old, _old_events) = f.uploader();
    let other_spool = Arc::new(Spool::inspect(f.spool.dir()));
    let (new, _new_events) = Uploader::new(f.client.clone(), other_spool);
    let (left_old, left_new) = tokio::join!(
        old.drain(Duration::from_secs(30)),
        new.drain(Duration::from_secs(30))
    );
    assert!(left_old.is_empty() && left_new.is_empty());
    let found = named(&f.client, &container, "shared.bin").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].version, 1, "sent once, not twice");
    let log = server.requests().await;
    let posts = log.iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "{log:#?}");
    assert!(f.spool.get(&entry.id).is_err());
}

async fn a_cancelled_upload_is_checked_before_it_is_sent_again(flavor: Flavor) {
    let server = Server::start(flavor);
    let f = Fixture::new(&server).await;
    let container = guide(&f.client).await;
    let (uploader, _events) = f.uploader();
    let bytes = pattern(50_000);
    let entry = f.admit(
        UploadTarget::New {
            container: container.clone(),
        },
        "cancelled.bin",
        &bytes,
    );
    // A FLUSH whose caller went away mid-upload (or a drain that timed out).
    server.faults(json!({"latency_ms": 1500})).await;
    let cut = tokio::time::timeout(Duration::from_millis(300), uploader.upload(&entry)).await;
    assert!(cut.is_err(), "the upload was cut off");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    server.faults(json!({})).await;
    server.clear_requests().await;

    let uploaded = uploader.upload(&entry).await.unwrap();
    assert_eq!(bytes_of(&f.client, &uploaded).await, bytes);
    let log = server.requests().await;
    assert_eq!(
        log[0].method, "GET",
        "looked before sending again: {log:#?}"
    );
    let found = named(&f.client, &container, "cancelled.bin").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].version, 1, "{found:?}");
}

#[test]
fn pending_lists_retries_and_drops() {
    let cache = tempfile::tempdir().unwrap();
    let spool = Spool::open(&cache.path().join("wiki.example-0123456789abcdef/spool")).unwrap();
    let staged = cache.path().join("staged");
    std::fs::write(&staged, vec![7u8; 3000]).unwrap();
    let mut record = UploadRecord {
        target: UploadTarget::New {
            container: ContainerRef::page("42"),
        },
        filename: "report.pdf".into(),
        comment: String::new(),
        minor_edit: true,
        size: 0,
        display_path: "DOCS/Home/report.pdf".into(),
        site: "http://wiki.example/confluence".into(),
        created_unix_ms: 1_000,
        attempts: 3,
        last_error: Some("Confluence answered 403: not allowed".into()),
        state: EntryState::Failed {
            errno: libc::EACCES,
            reason: "not allowed".into(),
        },
    };
    let failed = spool.admit(&staged, record.clone()).unwrap();
    record.display_path = "DOCS/Home/waiting.txt".into();
    record.state = EntryState::Pending;
    let waiting = spool.admit(&staged, record).unwrap();

    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_confluencefs"))
            .arg("pending")
            .arg("--cache-dir")
            .arg(cache.path())
            .args(args)
            .output()
            .unwrap()
    };
    let pending = |args: &[&str]| {
        let out = run(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "pending {args:?}: {text}{err}");
        text
    };

    let listing = pending(&[]);
    for wanted in [
        failed.id.as_str(),
        "DOCS/Home/report.pdf",
        "failed (EACCES)",
        "403: not allowed",
        "2.9 KiB",
        "2 entries (1 pending, 1 failed)",
    ] {
        assert!(listing.contains(wanted), "{wanted:?} in {listing}");
    }

    // The random suffix is enough to name an entry.
    let suffix = failed.id.rsplit('-').next().unwrap();
    let retried = pending(&["--retry", suffix]);
    assert!(retried.contains("retrying"), "{retried}");
    let now = spool.get(&failed.id).unwrap();
    assert_eq!(now.record.state, EntryState::Pending);
    assert_eq!(now.record.attempts, 0);

    // While a mount sends an entry (it holds the entry's lock), it shows so and is not dropped.
    let held = spool.try_lock(&waiting.id).unwrap().expect("free");
    assert!(pending(&[]).contains("uploading"));
    let refused = run(&["--drop", &waiting.id]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("being uploaded"));
    drop(held);

    let dropped = pending(&["--drop", &waiting.id]);
    assert!(dropped.contains("dropping") && dropped.contains("waiting.txt"));
    assert!(spool.get(&waiting.id).is_err());
    pending(&["--drop", &failed.id]);
    assert!(pending(&[]).contains("nothing pending"));
}

fn context(flavor: Flavor) -> String {
    if flavor == Flavor::DataCenter {
        DC_CONTEXT.to_string()
    } else {
        String::new()
    }
}

/// A server whose content lives in `data` so that it can be stopped and started again on the
/// same address; `seed` must outlive both starts.
fn persistent_server(
    flavor: Flavor,
    seed: &Path,
    data: &Path,
    listen: Option<SocketAddr>,
) -> Server {
    let config = Config {
        flavor: server_flavor(flavor),
        context_path: context(flavor),
        listen: listen.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data.to_path_buf()),
        seed_dir: listen.is_none().then(|| seed.to_path_buf()),
        ..Default::default()
    };
    Server::start_with(flavor, config, Vec::new())
}
