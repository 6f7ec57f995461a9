//! The inode table shrinks through FORGET: the filesystem driven directly (lookup, forget,
//! open, create), so that what the kernel would send at memory pressure or `drop_caches` is
//! placed exactly. Dropping what nothing needs must not drop what something still does: an
//! open file, an upload in flight; and a name found again after its inode went still works.

use std::sync::Arc;
use std::time::Duration;

use confluencefs::confluence::Flavor;
use confluencefs::fs::inode::ROOT_INO;
use confluencefs::fs::ConfluenceFs;
use serde_json::json;

use crate::mount_tree::seed_tree;
use crate::support::{write, Server};

const FILES: usize = 300;
const BIG: &str = "DOCS/DOCS Home/Big";

fn seed(root: &std::path::Path) {
    seed_tree(root);
    for i in 0..FILES {
        write(
            root,
            &format!("DOCS/Big/f{i:03}.txt"),
            format!("file {i}\n").as_bytes(),
        );
    }
}

async fn direct(server: &Server, dirs: &tempfile::TempDir) -> Arc<ConfluenceFs> {
    crate::fs_direct::direct_fs(server, dirs.path(), 16 << 20).await
}

/// Looks up every component of `path` as the kernel does (each answer counted).
async fn walk_to(fs: &ConfluenceFs, path: &str) -> Vec<u64> {
    let mut inos = Vec::new();
    let mut ino = ROOT_INO;
    for part in path.split('/') {
        ino = fs.lookup_entry(ino, part).await.unwrap().ino;
        inos.push(ino);
    }
    inos
}

/// What the kernel does when it lets go of everything (`echo 2 > drop_caches`), then the
/// listings' TTL passing (their cache emptied), then a collection.
async fn kernel_and_listings_let_go(fs: &Arc<ConfluenceFs>, held: &[u64], dirs: &[u64]) {
    for ino in held {
        fs.forget(*ino, 1);
    }
    for dir in dirs {
        fs.invalidate_dir(*dir).await;
    }
    fs.collect_inodes().await;
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

/// A walk of a page with 300 files grows the table by 300 entries; once the kernel forgets
/// them and the page's listing is gone, the table is back where it started. Before FORGET was
/// implemented the count stayed at its peak.
#[tokio::test]
async fn the_inode_table_shrinks_when_the_kernel_forgets() {
    let server = Server::start_seeded(Flavor::DataCenter, seed);
    let dirs = tempfile::tempdir().unwrap();
    let fs = direct(&server, &dirs).await;
    let path = walk_to(&fs, BIG).await;
    let big = *path.last().unwrap();
    let before = fs.inode_count();
    let mut files = Vec::new();
    for i in 0..FILES {
        files.push(
            fs.lookup_entry(big, &format!("f{i:03}.txt"))
                .await
                .unwrap()
                .ino,
        );
    }
    let peak = fs.inode_count();
    assert!(peak >= before + FILES, "{before} → {peak}");

    // While the kernel holds them, nothing goes, listing or not.
    fs.invalidate_dir(big).await;
    fs.collect_inodes().await;
    assert!(fs.inode_count() >= before + FILES, "dropped while held");

    let mut held = files.clone();
    held.extend(&path);
    kernel_and_listings_let_go(&fs, &held, &[big]).await;
    let after = fs.inode_count();
    assert!(
        after < before,
        "the walk's inodes stay: {before} before, {peak} at the peak, {after} after"
    );
    // Dropped numbers answer ENOENT, never another object.
    assert!(fs.getattr(files[0]).await.is_err());
    assert!(fs.getattr(big).await.is_err());

    // Found again: a new number, the same file.
    let again = walk_to(&fs, &format!("{BIG}/f007.txt")).await;
    let file = *again.last().unwrap();
    assert!(
        !files.contains(&file),
        "a dropped number was handed out again"
    );
    let opened = fs.open(file, false).await.unwrap();
    assert_eq!(
        &fs.read(opened.handle, 0, 100).await.unwrap()[..],
        b"file 7\n"
    );
    fs.release(opened.handle);
}

/// Counting is the kernel's: two lookups need two forgets.
#[tokio::test]
async fn an_inode_stays_until_every_lookup_is_forgotten() {
    let server = Server::start_seeded(Flavor::DataCenter, seed);
    let dirs = tempfile::tempdir().unwrap();
    let fs = direct(&server, &dirs).await;
    let path = walk_to(&fs, &format!("{BIG}/f001.txt")).await;
    let file = *path.last().unwrap();
    let big = path[path.len() - 2];
    fs.lookup_entry(big, "f001.txt").await.unwrap();
    kernel_and_listings_let_go(&fs, &[file], &[big]).await;
    assert!(
        fs.getattr(file).await.is_ok(),
        "dropped with one lookup left"
    );
    kernel_and_listings_let_go(&fs, &[file], &[big]).await;
    assert!(
        fs.getattr(file).await.is_err(),
        "kept after its last forget"
    );
}

/// A file open across its FORGET keeps working through its handle, and goes with the handle.
#[tokio::test]
async fn a_file_open_across_a_forget_still_reads() {
    let server = Server::start_seeded(Flavor::DataCenter, seed);
    let dirs = tempfile::tempdir().unwrap();
    let fs = direct(&server, &dirs).await;
    let path = walk_to(&fs, &format!("{BIG}/f042.txt")).await;
    let file = *path.last().unwrap();
    let opened = fs.open(file, false).await.unwrap();
    kernel_and_listings_let_go(&fs, &path, &path).await;
    assert_eq!(fs.getattr(file).await.unwrap().size, 8);
    assert_eq!(
        &fs.read(opened.handle, 0, 100).await.unwrap()[..],
        b"file 42\n"
    );
    fs.release(opened.handle);
    fs.collect_inodes().await;
    assert!(
        fs.getattr(file).await.is_err(),
        "kept after its handle closed"
    );
}

/// A file whose upload is still on its way when the kernel forgets it is not dropped: the
/// upload lands, and the name found again is the uploaded file.
#[tokio::test]
async fn a_pending_upload_survives_a_forget() {
    let server = Server::start_seeded(Flavor::DataCenter, seed);
    let dirs = tempfile::tempdir().unwrap();
    let fs = direct(&server, &dirs).await;
    let path = walk_to(&fs, BIG).await;
    let big = *path.last().unwrap();
    server.faults(json!({ "latency_ms": 300 })).await;
    let (attr, handle) = fs.create(big, "late.txt", 0o644).await.unwrap();
    let handle = handle.handle;
    assert!(fs.remember_lookup(attr.ino));
    fs.write(handle, 0, b"late\n").await.unwrap();
    let flushing = {
        let fs = fs.clone();
        tokio::spawn(async move { fs.flush(handle).await })
    };
    let mut held = path.clone();
    held.push(attr.ino);
    kernel_and_listings_let_go(&fs, &held, &path).await;
    assert_eq!(
        fs.getattr(attr.ino).await.unwrap().size,
        5,
        "dropped mid-upload"
    );
    flushing.await.unwrap().unwrap();
    fs.release(handle);
    server.faults(json!({})).await;
    wait_for("the upload", || {
        std::fs::read_dir(dirs.path().join("spool"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    })
    .await;
    let again = walk_to(&fs, &format!("{BIG}/late.txt")).await;
    let opened = fs.open(*again.last().unwrap(), false).await.unwrap();
    assert_eq!(
        &fs.read(opened.handle, 0, 100).await.unwrap()[..],
        b"late\n"
    );
    fs.release(opened.handle);
}
