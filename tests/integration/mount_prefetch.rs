//! Read-ahead across files (docs/PERFORMANCE.md "Read-ahead across files"): a reader going through a page's files one after
//! another finds the next ones fetched already, each file is still fetched once, and a single
//! file or files read out of order fetch nothing beyond themselves.

use std::time::Duration;

use confluencefs::confluence::Flavor;

use crate::mount_tree::seed_tree;
use crate::mounted::Mounted;
use crate::support::{write, Logged, Server};

const FILES: usize = 24;
const PAGE: &str = "DOCS/DOCS Home/Many";

/// A few hundred KiB each, every file with bytes of its own.
fn content(i: usize) -> Vec<u8> {
    let len = 150_000 + i * 1_000;
    (0..len).map(|at| ((at * 7 + i * 13) % 251) as u8).collect()
}

fn name(i: usize) -> String {
    format!("f{i:02}.bin")
}

fn seed(root: &std::path::Path) {
    seed_tree(root);
    for i in 0..FILES {
        write(root, &format!("DOCS/Many/{}", name(i)), &content(i));
    }
}

fn downloads(log: &[Logged]) -> Vec<&Logged> {
    log.iter()
        .filter(|r| r.path.contains("/download"))
        .collect()
}

fn describe(log: &[Logged]) -> String {
    log.iter()
        .map(|r| format!("{} {} {} -> {}", r.method, r.path, r.query, r.status))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads file `i` through the mount and checks its bytes.
fn read_file(mount: &Mounted, i: usize) {
    let bytes = std::fs::read(mount.join(&format!("{PAGE}/{}", name(i)))).unwrap();
    assert!(bytes == content(i), "{} has the wrong bytes", name(i));
}

/// Polls the server until it has logged `count` downloads (background fetches land on their
/// own time); returns the log.
async fn downloads_reach(server: &Server, count: usize) -> Vec<Logged> {
    for _ in 0..200 {
        let log = server.requests().await;
        if downloads(&log).len() >= count {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.requests().await;
    panic!(
        "expected {count} downloads, got {}:\n{}",
        downloads(&log).len(),
        describe(&log)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_a_page_file_by_file_finds_the_next_files_fetched() {
    let server = Server::start_seeded(Flavor::DataCenter, seed);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!("ls '{PAGE}' > /dev/null"));
    server.clear_requests().await;

    // The first two files in order: each costs its own request, and the second reveals the
    // order, so the eight after it are fetched in the background.
    read_file(&mount, 0);
    read_file(&mount, 1);
    let log = downloads_reach(&server, 2 + 8).await;
    assert_eq!(downloads(&log).len(), 10, "{}", describe(&log));

    // The next file costs nothing: it is there already. (Starting it moves the window on by
    // one file, which is the one request allowed here.)
    server.clear_requests().await;
    read_file(&mount, 2);
    let log = downloads_reach(&server, 1).await;
    assert_eq!(downloads(&log).len(), 1, "{}", describe(&log));
    assert!(
        log.iter().all(|r| r.path.ends_with(&name(10))),
        "only the window's new file:\n{}",
        describe(&log)
    );

    // The rest, in order: every file is fetched exactly once over the whole walk.
    for i in 3..FILES {
        read_file(&mount, i);
    }
    let log = server.requests().await;
    let all = downloads(&log).len() + 10;
    assert_eq!(all, FILES, "each file once:\n{}", describe(&log));
    assert_eq!(log.len(), downloads(&log).len(), "{}", describe(&log));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_of_a_page_fetches_each_file_once() {
    let server = Server::start_seeded(Flavor::DataCenter, seed);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!("stat '{PAGE}' > /dev/null"));
    let dest = tempfile::tempdir().unwrap();
    server.clear_requests().await;
    mount.sh_ok(&format!("rsync -a '{PAGE}/' '{}/'", dest.path().display()));
    for i in 0..FILES {
        let bytes = std::fs::read(dest.path().join(name(i))).unwrap();
        assert!(bytes == content(i), "{} copied wrong", name(i));
    }
    let log = server.requests().await;
    let fetched = downloads(&log);
    assert_eq!(fetched.len(), FILES, "{}", describe(&log));
    let mut paths: Vec<&str> = fetched.iter().map(|r| r.path.as_str()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(
        paths.len(),
        FILES,
        "a file fetched twice:\n{}",
        describe(&log)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn single_files_and_files_out_of_order_fetch_nothing_more() {
    let server = Server::start_seeded(Flavor::DataCenter, seed);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!("ls '{PAGE}' > /dev/null"));
    server.clear_requests().await;

    read_file(&mount, 5);
    read_file(&mount, 9);
    read_file(&mount, 3);
    read_file(&mount, 3);
    read_file(&mount, 12);
    // Anything fetched in the background would be on its way by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = server.requests().await;
    assert_eq!(downloads(&log).len(), 4, "{}", describe(&log));
    assert_eq!(log.len(), 4, "{}", describe(&log));
}
