//! The filesystem without a kernel: `ConfluenceFs` driven through the calls the FUSE adapter
//! makes (lookup, create, write, flush, release, rename, unlink, truncate), against the
//! in-process test server. These run where `/dev/fuse` is missing, take milliseconds, and can
//! place two operations exactly where a kernel would only sometimes put them — a write that
//! arrives while the background upload of an empty file runs, a delete during it. The mount
//! tests stay for what only a kernel shows.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use confluencefs::cache::{BlockCache, CacheConfig};
use confluencefs::confluence::Flavor;
use confluencefs::fs::inode::ROOT_INO;
use confluencefs::fs::{ConfluenceFs, FsConfig, FsError, WriteConfig, Writer};
use confluencefs::spool::{Spool, Uploader};
use serde_json::json;

use crate::mount_tree::seed_tree;
use crate::support::Server;

/// A filesystem over `server`, as a writable mount builds it, with its spool in a temporary
/// directory.
struct Direct {
    fs: Arc<ConfluenceFs>,
    _dirs: tempfile::TempDir,
}

/// A filesystem on `server` with no kernel in between: its staging and spool under `dir`, a
/// memory cache of `memory_bytes`, the background uploader running.
pub(crate) async fn direct_fs(server: &Server, dir: &Path, memory_bytes: u64) -> Arc<ConfluenceFs> {
    let client = server.client().await;
    let cache = BlockCache::new(CacheConfig {
        memory_bytes,
        ..CacheConfig::default()
    })
    .unwrap();
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let spool = Arc::new(Spool::open(&dir.join("spool")).unwrap());
    let (uploader, events) = Uploader::new(client.clone(), spool.clone());
    let writer = Writer::new(WriteConfig::default(), staging, spool, uploader, events);
    let fs = Arc::new(ConfluenceFs::new(
        client,
        cache,
        FsConfig::default(),
        Some(writer),
    ));
    fs.start_background();
    fs
}

impl Direct {
    async fn new(server: &Server) -> Direct {
        let dirs = tempfile::tempdir().unwrap();
        let fs = direct_fs(server, dirs.path(), 64 << 20).await;
        Direct { fs, _dirs: dirs }
    }

    /// The inode at `path` (components separated by `/`).
    async fn ino(&self, path: &str) -> u64 {
        let mut ino = ROOT_INO;
        for part in path.split('/') {
            ino = self
                .fs
                .lookup(ino, part)
                .await
                .unwrap_or_else(|e| panic!("{path}: {part}: {e}"))
                .ino;
        }
        ino
    }

    async fn read_all(&self, ino: u64) -> Vec<u8> {
        let opened = self.fs.open(ino, false).await.unwrap();
        let mut out = Vec::new();
        loop {
            let bytes = self
                .fs
                .read(opened.handle, out.len() as u64, 1 << 20)
                .await
                .unwrap();
            if bytes.is_empty() {
                break;
            }
            out.extend_from_slice(&bytes);
        }
        self.fs.release(opened.handle);
        out
    }
}

const GUIDE: &str = "DOCS/DOCS Home/Guide";

/// The bytes of attachment `name` of the Guide page on the server, if it is there.
async fn on_server(server: &Server, name: &str) -> Option<Vec<u8>> {
    let client = server.client().await;
    let page = crate::support::page_by_title(&client, "DOCS", "Guide").await;
    let att = client
        .find_attachment(&page.container(), name)
        .await
        .unwrap()?;
    if att.size == 0 {
        return Some(Vec::new());
    }
    Some(
        client
            .download_range(&att, att.version, 0, att.size)
            .await
            .unwrap()
            .to_vec(),
    )
}

/// Waits until the background work of the filesystem settles (uploads after RELEASE).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

/// A write that arrives while the background upload of an empty file runs (the server is
/// slow) lands after it: nothing is lost.
#[tokio::test]
async fn a_write_during_the_empty_upload_lands_after_it() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    server.faults(json!({ "latency_ms": 200 })).await;
    let (attr, handle) = d.fs.create(guide, "new.txt", 0o644).await.unwrap();
    let handle = handle.handle;
    d.fs.flush(handle).await.unwrap();
    d.fs.release(handle); // the empty file starts uploading in the background
    tokio::time::sleep(Duration::from_millis(20)).await;
    let opened = d.fs.open(attr.ino, true).await.unwrap();
    d.fs.write(opened.handle, 0, b"hello\n").await.unwrap();
    d.fs.flush(opened.handle).await.unwrap();
    d.fs.release(opened.handle);
    server.faults(json!({})).await;
    settle().await;
    assert_eq!(d.read_all(attr.ino).await, b"hello\n");
    assert_eq!(on_server(&server, "new.txt").await.unwrap(), b"hello\n");
}

/// A delete during that background upload is the last word: nothing is on the server after.
#[tokio::test]
async fn a_delete_during_the_empty_upload_wins() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    server.faults(json!({ "latency_ms": 200 })).await;
    let (_, handle) = d.fs.create(guide, "gone.txt", 0o644).await.unwrap();
    let handle = handle.handle;
    d.fs.flush(handle).await.unwrap();
    d.fs.release(handle);
    tokio::time::sleep(Duration::from_millis(20)).await;
    d.fs.unlink(guide, "gone.txt").await.unwrap();
    server.faults(json!({})).await;
    settle().await;
    assert!(matches!(
        d.fs.lookup(guide, "gone.txt").await,
        Err(FsError::NotFound)
    ));
    assert_eq!(on_server(&server, "gone.txt").await, None);
}

/// A rename during it moves what landed, and makes no extra version.
#[tokio::test]
async fn a_rename_during_the_empty_upload_moves_what_landed() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    server.faults(json!({ "latency_ms": 200 })).await;
    let (_, handle) = d.fs.create(guide, "from.txt", 0o644).await.unwrap();
    let handle = handle.handle;
    d.fs.flush(handle).await.unwrap();
    d.fs.release(handle);
    tokio::time::sleep(Duration::from_millis(20)).await;
    d.fs.rename(guide, "from.txt", guide, "to.txt", false)
        .await
        .unwrap();
    server.faults(json!({})).await;
    settle().await;
    assert_eq!(on_server(&server, "from.txt").await, None);
    assert_eq!(on_server(&server, "to.txt").await.unwrap(), b"");
    let client = server.client().await;
    let page = crate::support::page_by_title(&client, "DOCS", "Guide").await;
    let to = client
        .find_attachment(&page.container(), "to.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(to.version, 1);
}

/// A failed upload stays in the spool; a newer write supersedes it (the server never gets the
/// old bytes after the new ones), and a delete takes it back (nothing comes back later).
#[tokio::test]
async fn a_waiting_retry_is_superseded_by_newer_bytes_and_by_a_delete() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    let (attr, handle) = d.fs.create(guide, "retry.txt", 0o644).await.unwrap();
    let handle = handle.handle;
    d.fs.write(handle, 0, b"old").await.unwrap();
    server
        .faults(json!({ "fail_next": vec![503; 12], "retry_after": 0 }))
        .await;
    let err = d.fs.flush(handle).await.unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    server.faults(json!({})).await;
    d.fs.write(handle, 0, b"new bytes").await.unwrap();
    d.fs.flush(handle).await.unwrap();
    d.fs.release(handle);
    settle().await;
    assert_eq!(on_server(&server, "retry.txt").await.unwrap(), b"new bytes");
    assert_eq!(d.read_all(attr.ino).await, b"new bytes");

    let (_, handle) = d.fs.create(guide, "doomed.txt", 0o644).await.unwrap();
    let handle = handle.handle;
    d.fs.write(handle, 0, b"doomed").await.unwrap();
    server
        .faults(json!({ "fail_next": vec![503; 12], "retry_after": 0 }))
        .await;
    assert!(d.fs.flush(handle).await.is_err());
    d.fs.release(handle);
    server.faults(json!({})).await;
    d.fs.unlink(guide, "doomed.txt").await.unwrap();
    // Past the uploader's first retry (1 s backoff, 2 s tick).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(on_server(&server, "doomed.txt").await, None);
    assert_eq!(on_server(&server, "retry.txt").await.unwrap(), b"new bytes");
}

/// `truncate` by inode with no handle open is uploaded at once; FLUSH answers the upload's
/// errno (413 → EFBIG) and the file stays readable locally.
#[tokio::test]
async fn truncate_without_a_handle_uploads_and_flush_answers_the_refusal() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    let notes = d.ino(&format!("{GUIDE}/notes.txt")).await;
    d.fs.truncate(notes, 5).await.unwrap();
    assert_eq!(on_server(&server, "notes.txt").await.unwrap(), b"hello");

    let (attr, handle) = d.fs.create(guide, "big.txt", 0o644).await.unwrap();
    let handle = handle.handle;
    d.fs.write(handle, 0, b"refused").await.unwrap();
    // The upload only: the file's mode, written as a property a moment after its creation,
    // must not take the refusal.
    server
        .faults(json!({
            "fail_next": [413], "path_contains": "/child/attachment", "method": "POST"
        }))
        .await;
    let err = d.fs.flush(handle).await.unwrap_err();
    assert_eq!(err.errno(), libc::EFBIG, "{err}");
    assert_eq!(d.read_all(attr.ino).await, b"refused");
    d.fs.release(handle);
}

/// A file deleted while open keeps answering through its handles.
#[tokio::test]
async fn a_deleted_open_file_keeps_its_bytes() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    let notes = d.ino(&format!("{GUIDE}/notes.txt")).await;
    let reader = d.fs.open(notes, false).await.unwrap();
    d.fs.unlink(guide, "notes.txt").await.unwrap();
    assert_eq!(d.fs.getattr(notes).await.unwrap().nlink, 0);
    let bytes = d.fs.read(reader.handle, 0, 100).await.unwrap();
    assert_eq!(&bytes[..], b"hello notes\n");
    d.fs.release(reader.handle);
    settle().await;
    assert!(d.fs.getattr(notes).await.is_err());
    assert_eq!(on_server(&server, "notes.txt").await, None);
}

/// Request budgets of lookups in a page that was not listed: a file costs one request, a
/// miss two, and from the third name the page is listed instead.
#[tokio::test]
async fn lookups_in_an_unlisted_page_keep_their_budget() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    server.clear_requests().await;
    d.fs.lookup(guide, "notes.txt").await.unwrap();
    assert_eq!(server.requests().await.len(), 1);
    server.clear_requests().await;
    assert!(d.fs.lookup(guide, "missing.txt").await.is_err());
    assert_eq!(server.requests().await.len(), 2);
    server.clear_requests().await;
    assert!(d.fs.lookup(guide, "missing.txt").await.is_err());
    assert_eq!(server.requests().await.len(), 0, "a miss is remembered");
    d.fs.lookup(guide, "big.bin").await.unwrap();
    d.fs.lookup(guide, "Chapter One").await.unwrap();
    let listed = server.requests().await.len();
    assert!(
        listed <= 3,
        "{listed} requests for the third name and after"
    );

    // A file manager's probe lists the page: at most what a miss costs (here one request, its
    // attachments: the answer that found the page said it has no child pages), and the next
    // names are free.
    let chapter = d.ino(&format!("{GUIDE}/Chapter One")).await;
    server.clear_requests().await;
    assert!(d.fs.lookup(chapter, ".directory").await.is_err());
    let log = server.requests().await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert!(log[0].path.ends_with("/child/attachment"), "{log:#?}");
    assert!(d.fs.lookup(chapter, ".hidden").await.is_err());
    assert!(d.fs.lookup(chapter, "nothing.txt").await.is_err());
    assert_eq!(server.requests().await.len(), 1);
}

/// vim's save in the directory: move the file aside, write it anew, delete the backup: one new
/// version of the same attachment.
#[tokio::test]
async fn an_editor_save_is_one_new_version() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    let client = server.client().await;
    let page = crate::support::page_by_title(&client, "DOCS", "Guide").await;
    let before = client
        .find_attachment(&page.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();
    d.fs.rename(guide, "notes.txt", guide, "notes.txt~", false)
        .await
        .unwrap();
    let (_, handle) = d.fs.create(guide, "notes.txt", 0o644).await.unwrap();
    let handle = handle.handle;
    d.fs.write(handle, 0, b"edited\n").await.unwrap();
    d.fs.flush(handle).await.unwrap();
    d.fs.release(handle);
    d.fs.unlink(guide, "notes.txt~").await.unwrap();
    settle().await;
    let after = client
        .find_attachment(&page.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!(after.version, before.version + 1);
    assert_eq!(on_server(&server, "notes.txt").await.unwrap(), b"edited\n");
    assert_eq!(on_server(&server, "notes.txt~").await, None);
}

/// The names directory `dir` lists now.
async fn listed(fs: &Arc<ConfluenceFs>, dir: u64) -> Vec<String> {
    let handle = fs.opendir(dir).await.unwrap();
    let names = fs
        .readdir(handle)
        .unwrap()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    fs.releasedir(handle);
    names
}

/// A file whose upload lands while the listing of its directory is being fetched, after the
/// server answered the part of the listing that would name it: our own edit found no listing
/// to add the file to, and the fetched listing does not know it. The file is listed and found
/// all the same, then and later (it was missing from listings for the TTL, and lookups said
/// ENOENT).
#[tokio::test]
async fn a_file_uploaded_while_its_directory_is_listed_is_listed() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let d = Direct::new(&server).await;
    let guide = d.ino(GUIDE).await;
    let (_, opened) = d.fs.create(guide, "new.txt", 0o644).await.unwrap();
    d.fs.write(opened.handle, 0, b"hello\n").await.unwrap();
    // The listing: the attachments answered at once (without new.txt), the child pages late.
    server
        .faults(json!({"latency_ms": 500, "path_contains": "/child/page", "method": "GET"}))
        .await;
    server.clear_requests().await;
    let fs = d.fs.clone();
    let first = tokio::spawn(async move { listed(&fs, guide).await });
    for _ in 0..200 {
        let answered =
            server.requests().await.iter().any(|r| {
                r.method == "GET" && r.path.ends_with("/child/attachment") && r.status != 0
            });
        if answered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The upload lands while the child pages are still on their way.
    d.fs.flush(opened.handle).await.unwrap();
    d.fs.release(opened.handle);
    let first = first.await.unwrap();
    server.faults(json!({})).await;
    assert!(first.contains(&"new.txt".to_string()), "{first:?}");
    let again = listed(&d.fs, guide).await;
    assert!(again.contains(&"new.txt".to_string()), "{again:?}");
    d.fs.lookup(guide, "new.txt").await.unwrap();
    assert_eq!(on_server(&server, "new.txt").await.unwrap(), b"hello\n");
}
