//! The spool directory without a server: round trips, crash debris, modes, linked bytes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::confluence::ContainerRef;

fn record(name: &str, created: u64) -> UploadRecord {
    UploadRecord {
        target: UploadTarget::New {
            container: ContainerRef::page("42"),
        },
        filename: name.to_string(),
        comment: "saved by confluencefs".into(),
        minor_edit: true,
        size: 0,
        display_path: format!("DOCS/Home/{name}"),
        site: "http://wiki.example/confluence".into(),
        created_unix_ms: created,
        attempts: 0,
        last_error: None,
        state: EntryState::Pending,
    }
}

fn staged(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn admit_list_update_remove() {
    let work = tempfile::tempdir().unwrap();
    let spool = Spool::open(&work.path().join("spool")).unwrap();
    let a = spool
        .admit(&staged(work.path(), "a", b"first"), record("a.txt", 1000))
        .unwrap();
    let mut version = record("b.txt", 2000);
    version.target = UploadTarget::Version {
        container: ContainerRef::blog_post("7"),
        attachment_id: "att9".into(),
        base_version: 3,
    };
    let b = spool
        .admit(&staged(work.path(), "b", b"second!"), version.clone())
        .unwrap();
    assert_eq!(a.record.size, 5, "admit records the size of the bytes");
    assert_eq!(std::fs::read(&b.data_path).unwrap(), b"second!");

    let listed = spool.list().unwrap();
    let ids: Vec<_> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [a.id.as_str(), b.id.as_str()], "oldest first");
    assert_eq!(listed[1].record.target, version.target);

    let mut failed = listed[0].clone();
    failed.record.attempts = 2;
    failed.record.last_error = Some("403".into());
    failed.record.state = EntryState::Failed {
        errno: libc::EACCES,
        reason: "no permission".into(),
    };
    spool.update(&failed).unwrap();
    let again = spool.get(&a.id).unwrap();
    assert_eq!(again.record.attempts, 2);
    assert_eq!(again.record.state, failed.record.state);

    spool.remove(&a.id).unwrap();
    spool.remove(&a.id).unwrap(); // already gone is fine
    assert!(matches!(
        spool.update(&failed),
        Err(SpoolError::NoEntry { .. })
    ));
    let listed = spool.list().unwrap();
    let left: Vec<_> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(left, [b.id.as_str()]);
}

#[test]
fn records_survive_a_reopen() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("spool");
    let id = {
        let spool = Spool::open(&dir).unwrap();
        let entry = spool
            .admit(&staged(work.path(), "x", b"kept"), record("x.bin", 5))
            .unwrap();
        entry.id
    };
    let spool = Spool::open(&dir).unwrap();
    let entries = spool.list().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, id);
    assert_eq!(entries[0].record.filename, "x.bin");
    assert_eq!(std::fs::read(&entries[0].data_path).unwrap(), b"kept");
}

#[test]
fn debris_is_removed_at_open_but_not_by_inspect() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("spool");
    let kept = {
        let spool = Spool::open(&dir).unwrap();
        spool
            .admit(&staged(work.path(), "k", b"k"), record("k", 1))
            .unwrap()
    };
    // A crash before the record was written, and one during a record update.
    let half = dir.join("0000000000002-abcdef");
    std::fs::create_dir(&half).unwrap();
    std::fs::write(half.join("data"), b"half").unwrap();
    let temp = dir.join(&kept.id).join(".record.json.99.1");
    std::fs::write(&temp, b"{\"trunc").unwrap();

    // An admission in progress in another process holds its entry's lock: not debris.
    let busy = dir.join("0000000000003-123456");
    std::fs::create_dir(&busy).unwrap();
    let hold = Spool::inspect(&dir)
        .try_lock("0000000000003-123456")
        .unwrap()
        .unwrap();

    let inspected = Spool::inspect(&dir);
    assert_eq!(inspected.list().unwrap().len(), 1);
    assert!(half.exists() && temp.exists(), "inspect touches nothing");

    let spool = Spool::open(&dir).unwrap();
    assert!(busy.exists(), "a locked entry is left alone");
    drop(hold);
    assert!(!half.exists(), "entry without a record removed");
    assert!(!temp.exists(), "temporary record removed");
    let entries = spool.list().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, kept.id);
}

#[test]
fn everything_is_private() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("spool");
    let spool = Spool::open(&dir).unwrap();
    let source = staged(work.path(), "m", b"mode");
    std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o644)).unwrap();
    let entry = spool.admit(&source, record("m", 1)).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(entry.data_path.parent().unwrap()), 0o700);
    assert_eq!(mode(&entry.data_path), 0o600);
    assert_eq!(mode(&entry.data_path.with_file_name("record.json")), 0o600);
}

#[test]
fn linked_bytes_survive_the_caller_replacing_its_file() {
    let work = tempfile::tempdir().unwrap();
    let spool = Spool::open(&work.path().join("spool")).unwrap();
    let staging = staged(work.path(), "staging", b"version one");
    let entry = spool.admit(&staging, record("doc.txt", 1)).unwrap();
    // Copy-on-write as the filesystem does it: new bytes go to a copy renamed over the file.
    let copy = staged(work.path(), "staging.new", b"version two, longer");
    std::fs::rename(&copy, &staging).unwrap();
    std::fs::remove_file(&staging).unwrap();
    assert_eq!(std::fs::read(&entry.data_path).unwrap(), b"version one");
}

#[test]
fn admit_of_a_missing_file_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("spool");
    let spool = Spool::open(&dir).unwrap();
    let missing = work.path().join("nope");
    assert!(spool.admit(&missing, record("n", 1)).is_err());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn ids_cannot_leave_the_spool() {
    let work = tempfile::tempdir().unwrap();
    let spool = Spool::open(&work.path().join("spool")).unwrap();
    for id in ["..", "../x", "", ".hidden"] {
        assert!(matches!(spool.get(id), Err(SpoolError::NoEntry { .. })));
        assert!(spool.remove(id).is_err());
    }
}

#[test]
fn backoff_doubles_to_five_minutes() {
    let secs: Vec<u64> = [1, 2, 3, 4, 9, 10, 50]
        .into_iter()
        .map(|n| backoff(n).as_secs())
        .collect();
    assert_eq!(secs, [1, 2, 4, 8, 256, 300, 300]);
    assert_eq!(backoff(0), Duration::from_secs(1));
}

#[test]
fn errnos_and_permanence() {
    use crate::confluence::{ClientError, RequestLine};
    let line = || RequestLine {
        method: reqwest::Method::POST,
        url: "http://x/rest/api/content/1/child/attachment".into(),
    };
    let service = |status| {
        UploadError::from(ClientError::Service {
            status,
            message: "no".into(),
            request: line(),
        })
    };
    for (status, errno, permanent) in [
        (400, libc::EINVAL, true),
        (401, libc::EACCES, true),
        (403, libc::EACCES, true),
        (404, libc::ENOENT, true),
        (413, libc::EFBIG, true),
        (429, libc::EIO, false),
        (500, libc::EIO, false),
        (503, libc::EIO, false),
    ] {
        let err = service(status);
        assert_eq!(
            (err.errno(), err.is_permanent()),
            (errno, permanent),
            "{status}"
        );
    }
    let too_large = UploadError::from(ClientError::TooLarge {
        status: 404,
        message: "exceeds the maximum".into(),
        request: line(),
    });
    assert_eq!(too_large.errno(), libc::EFBIG);
    assert!(too_large.is_permanent());
    let transport = UploadError::from(ClientError::Transport {
        request: line(),
        detail: "reset".into(),
        source: None,
    });
    assert_eq!(transport.errno(), libc::EIO);
    assert!(!transport.is_permanent());
    let full = UploadError::Spool(SpoolError::Io {
        path: "/x".into(),
        source: std::sync::Arc::new(std::io::Error::from_raw_os_error(libc::ENOSPC)),
    });
    assert_eq!(full.errno(), libc::ENOSPC);
}
