//! Listings read ahead of a tree walk, through a real mount: a walk costs exactly the requests
//! it cost without read-ahead (every directory listed once), the listings of pages the walker
//! has not reached yet are fetched before it asks for them, and listing a page and one child
//! fetches nothing more. Timing is never asserted: the request log tells what was fetched when.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use confluencefs::confluence::Flavor;
use serde_json::json;

use crate::mounted::Mounted;
use crate::support::{write, Logged, Server};

const SECTIONS: usize = 4;
const PAGES: usize = 5;
const SUBPAGES: usize = 2;
/// Every page of the space: the home page, sections, their pages and those pages' subpages.
const ALL_PAGES: usize = 1 + SECTIONS * (1 + PAGES * (1 + SUBPAGES));
/// The subpages have no child pages, and their parents' listings say so (`childTypes`): each
/// costs one listing (its attachments) instead of two.
const LEAF_PAGES: usize = SECTIONS * PAGES * SUBPAGES;

const HOME: &str = "WALK/WALK Home";

/// WALK Home / S<s> / P<s>-<p> / Q<s>-<p>-<q>, one file in each page.
fn seed_walk(root: &std::path::Path) {
    write(root, "WALK/home.txt", b"home\n");
    for s in 0..SECTIONS {
        let section = format!("WALK/S{s}");
        write(root, &format!("{section}/s.txt"), b"section\n");
        for p in 0..PAGES {
            let page = format!("{section}/P{s}-{p}");
            write(root, &format!("{page}/p.txt"), b"page\n");
            for q in 0..SUBPAGES {
                write(root, &format!("{page}/Q{s}-{p}-{q}/q.txt"), b"subpage\n");
            }
        }
    }
}

fn describe(log: &[Logged]) -> String {
    log.iter()
        .map(|r| format!("{} {} {} -> {}", r.method, r.path, r.query, r.status))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The request log once the background has gone quiet: the same length for three looks in a
/// row, 100 ms apart (the read-ahead runs in the background).
async fn settled_requests(server: &Server) -> Vec<Logged> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = server.requests().await;
    let mut same = 0;
    while same < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = server.requests().await;
        same = if now.len() == log.len() { same + 1 } else { 0 };
        log = now;
    }
    log
}

async fn walk_costs_each_listing_once(flavor: Flavor) {
    let server = Server::start_seeded(flavor, seed_walk);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok("stat WALK > /dev/null");
    // Latency lets the read-ahead and the walker race for the same listings.
    server.faults(json!({"latency_ms": 5})).await;
    server.clear_requests().await;

    let files = mount.sh_ok("find WALK -type f ! -name '*.md' | wc -l");
    assert_eq!(files.trim(), ALL_PAGES.to_string());
    // The space's top-level pages, `@blog`, and two requests per page (child pages and
    // attachments), each once; one for a leaf page.
    let expected = 2 + 2 * (ALL_PAGES - LEAF_PAGES) + LEAF_PAGES;
    let log = settled_requests(&server).await;
    assert_eq!(log.len(), expected, "{flavor:?}:\n{}", describe(&log));
    let distinct: HashSet<(&str, &str, &str)> = log
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.query.as_str()))
        .collect();
    assert_eq!(distinct.len(), log.len(), "{flavor:?}:\n{}", describe(&log));

    server.clear_requests().await;
    mount.sh_ok("ls -lR WALK > /dev/null");
    let log = server.requests().await;
    assert!(log.is_empty(), "{flavor:?} ls -lR:\n{}", describe(&log));
    server.faults(json!({})).await;
}

async fn walk_reads_ahead_of_the_walker(flavor: Flavor) {
    let server = Server::start_seeded(flavor, seed_walk);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!(
        "ls '{HOME}' > /dev/null; ls '{HOME}/S0' > /dev/null"
    ));
    server.faults(json!({"latency_ms": 20})).await;
    server.clear_requests().await;

    // A second section listed: a walk. Everything below the home page that comes after S0 is
    // read ahead (it is fewer listings than the read-ahead bound).
    mount.sh_ok(&format!("ls '{HOME}/S1' > /dev/null"));
    let below_each_section = 2 * (1 + PAGES) + PAGES * SUBPAGES;
    let expected = below_each_section * (SECTIONS - 1);
    let log = settled_requests(&server).await;
    assert_eq!(log.len(), expected, "{flavor:?}:\n{}", describe(&log));

    // The walker finds them listed: no request.
    server.clear_requests().await;
    mount.sh_ok(&format!(
        "ls -lR '{HOME}/S1' '{HOME}/S{}' > /dev/null",
        SECTIONS - 1
    ));
    let log = server.requests().await;
    assert!(log.is_empty(), "{flavor:?}:\n{}", describe(&log));

    // S0 was listed before the walk was noticed: its pages were not read ahead.
    mount.sh_ok(&format!("ls '{HOME}/S0/P0-0' > /dev/null"));
    let log = server.requests().await;
    assert_eq!(log.len(), 2, "{flavor:?}:\n{}", describe(&log));
    server.faults(json!({})).await;
}

async fn a_page_and_one_child_read_nothing_ahead(flavor: Flavor) {
    let server = Server::start_seeded(flavor, seed_walk);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok("ls WALK > /dev/null");
    server.clear_requests().await;

    mount.sh_ok(&format!(
        "ls -l '{HOME}' > /dev/null; ls -l '{HOME}/S0' > /dev/null; ls -l '{HOME}/S0/P0-0' > /dev/null"
    ));
    // Three listings, two requests each, and nothing in the background.
    let log = settled_requests(&server).await;
    assert_eq!(log.len(), 6, "{flavor:?}:\n{}", describe(&log));

    // The same page listed again is not a second child.
    mount.sh_ok(&format!("ls -l '{HOME}/S0/P0-0' > /dev/null"));
    let log = settled_requests(&server).await;
    assert_eq!(log.len(), 6, "{flavor:?}:\n{}", describe(&log));
}

crate::both_flavors!(
    walk_costs_each_listing_once,
    walk_reads_ahead_of_the_walker,
    a_page_and_one_child_read_nothing_ahead
);
