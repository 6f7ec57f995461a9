//! Request budgets (docs/PERFORMANCE.md "Request budgets"), pinned by counting the test server's requests,
//! and what the metadata TTL promises: changes on the server show up after it, and a file is
//! never served from another version's bytes.

use std::time::Duration;

use confluencefs::confluence::{ContentKind, Flavor, NewAttachment, UploadSource};

use crate::mount_tree::seed_tree;
use crate::mounted::Mounted;
use crate::support::{page_by_title, write, Logged, Server};

const ATTACHMENTS: usize = 600;

fn seed_big_page(root: &std::path::Path) {
    seed_tree(root);
    for i in 0..ATTACHMENTS {
        write(
            root,
            &format!("DOCS/Big/f{i:03}.txt"),
            format!("file {i}\n").as_bytes(),
        );
    }
}

fn describe(log: &[Logged]) -> String {
    log.iter()
        .map(|r| format!("{} {} {} -> {}", r.method, r.path, r.query, r.status))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_attachment_listing(r: &Logged) -> bool {
    r.method == "GET" && (r.path.ends_with("/attachments") || r.path.ends_with("/child/attachment"))
}

async fn budgets(flavor: Flavor) {
    let server = Server::start_seeded(flavor, seed_big_page);
    server.clear_requests().await;
    let mount = Mounted::new(&server, &[]);

    // Mounting costs the credential check (who am I) and the flavor probe (is there a v2).
    let log = server.requests().await;
    assert!(log.len() <= 2, "{flavor:?} mount cost:\n{}", describe(&log));
    assert!(log
        .iter()
        .any(|r| r.path.ends_with("/rest/api/user/current")));

    // Reaching the page by name lists nothing on the way.
    mount.sh_ok("stat 'DOCS/DOCS Home/Big' > /dev/null");
    server.clear_requests().await;

    // `ls -l` of a page with 600 attachments: ⌈600 / largest page size⌉ attachment requests,
    // nothing per file, and nothing for its child pages: the answer that found the page said
    // it has none (`childTypes`).
    mount.sh_ok("ls -l 'DOCS/DOCS Home/Big' > /dev/null");
    let log = server.requests().await;
    let cap = match flavor {
        Flavor::Cloud => 250,
        Flavor::DataCenter => 200,
    };
    let listing_requests = log.iter().filter(|r| is_attachment_listing(r)).count();
    assert_eq!(
        listing_requests,
        ATTACHMENTS.div_ceil(cap),
        "{flavor:?}:\n{}",
        describe(&log)
    );
    assert_eq!(
        log.len(),
        listing_requests,
        "{flavor:?}:\n{}",
        describe(&log)
    );

    // A second `ls -l` inside the TTL costs nothing.
    server.clear_requests().await;
    mount.sh_ok("ls -l 'DOCS/DOCS Home/Big' > /dev/null; ls -lR DOCS > /dev/null");
    let after_first = server.requests().await;
    server.clear_requests().await;
    mount.sh_ok("ls -lR DOCS > /dev/null");
    let log = server.requests().await;
    assert!(
        log.is_empty(),
        "{flavor:?} warm ls -lR:\n{}",
        describe(&log)
    );
    assert!(
        !after_first.is_empty(),
        "the first ls -lR of DOCS listed what it had not seen"
    );

    // A file read twice is fetched once; the second read costs nothing.
    server.clear_requests().await;
    mount.sh_ok("cat 'DOCS/DOCS Home/Big/f007.txt' > /dev/null");
    let first = server.requests().await.len();
    assert!((1..=2).contains(&first), "{flavor:?}: {first} requests");
    server.clear_requests().await;
    let again = mount.sh_ok("cat 'DOCS/DOCS Home/Big/f007.txt'");
    assert_eq!(again, "file 7\n");
    let log = server.requests().await;
    assert!(
        log.is_empty(),
        "{flavor:?} cached read:\n{}",
        describe(&log)
    );

    // One name in a directory that was never listed: one request for a file…
    let fresh = Mounted::new(&server, &[]);
    fresh.sh_ok("stat 'DOCS/DOCS Home' > /dev/null");
    server.clear_requests().await;
    fresh.sh_ok("stat 'DOCS/DOCS Home/readme.txt' > /dev/null");
    let log = server.requests().await;
    assert_eq!(log.len(), 1, "{flavor:?} one lookup:\n{}", describe(&log));

    // …and a miss costs two (file, then page), after which it is remembered.
    server.clear_requests().await;
    let probe = fresh.sh("stat 'DOCS/DOCS Home/.hidden'");
    assert!(!probe.status.success());
    let log = server.requests().await;
    assert_eq!(log.len(), 2, "{flavor:?} miss:\n{}", describe(&log));
    server.clear_requests().await;
    for name in [".hidden", ".hidden", ".hidden"] {
        assert!(!fresh
            .sh(&format!("stat 'DOCS/DOCS Home/{name}'"))
            .status
            .success());
    }
    let log = server.requests().await;
    assert!(
        log.is_empty(),
        "{flavor:?} cached miss:\n{}",
        describe(&log)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_budgets_cloud() {
    budgets(Flavor::Cloud).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_budgets_datacenter() {
    budgets(Flavor::DataCenter).await;
}

async fn ttl(flavor: Flavor) {
    let server = Server::start_seeded(flavor, seed_tree);
    let mount = Mounted::new(&server, &["--metadata-ttl", "1"]);
    let guide = "DOCS/DOCS Home/Guide";
    assert!(!mount.sh_ok(&format!("ls '{guide}'")).contains("new.txt"));
    assert_eq!(
        mount.sh_ok(&format!("cat '{guide}/notes.txt'")),
        "hello notes\n"
    );

    let client = server.client().await;
    let page = page_by_title(&client, "DOCS", "Guide").await;
    let notes = client
        .find_attachment(&page.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();
    client
        .upload_new_version(
            &notes,
            UploadSource::Bytes(b"notes v2, longer than before\n".to_vec().into()),
            None,
            true,
        )
        .await
        .unwrap();
    client
        .upload_attachment(
            &page.container(),
            NewAttachment::from_bytes("new.txt", b"brand new\n".to_vec()),
            true,
        )
        .await
        .unwrap();
    let chapter = page_by_title(&client, "DOCS", "Chapter One").await;
    client.trash_content(&chapter.id).await.unwrap();
    let created = client
        .create_page("DOCS", ContentKind::Page, Some(&page.id), "Appendix")
        .await
        .unwrap();
    assert_eq!(created.title, "Appendix");

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let names = mount.sh_ok(&format!("ls '{guide}'"));
    assert!(names.contains("new.txt"), "{flavor:?}: {names}");
    assert!(names.contains("Appendix"), "{flavor:?}: {names}");
    assert!(!names.contains("Chapter One"), "{flavor:?}: {names}");
    assert_eq!(
        mount.sh_ok(&format!("cat '{guide}/new.txt'")),
        "brand new\n"
    );
    assert_eq!(
        mount.sh_ok(&format!("cat '{guide}/notes.txt'")),
        "notes v2, longer than before\n",
        "{flavor:?}: the new version, never the old bytes"
    );
    let size = mount.sh_ok(&format!("stat -c %s '{guide}/notes.txt'"));
    assert_eq!(size.trim(), "29");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_changes_show_after_the_ttl_cloud() {
    ttl(Flavor::Cloud).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_changes_show_after_the_ttl_datacenter() {
    ttl(Flavor::DataCenter).await;
}

/// A page whose parent's listing said it has no child pages is listed without asking for them,
/// and that listing is as old as the parent's answer: it goes when that answer's TTL is over,
/// not a TTL after it was made, so a child page made on the server meanwhile shows up in time.
/// A file copied in through the mount shows at once and stays, also in a page with nothing in
/// it that was not listed before the copy (what its parent's answer said is then out of date).
async fn leaf_pages_cost_no_child_listing_and_age_with_their_parent(flavor: Flavor) {
    let server = Server::start_seeded(flavor, seed_tree);
    let client = server.client().await;
    let guide_page = page_by_title(&client, "DOCS", "Guide").await;
    for title in ["Empty", "Vacant"] {
        client
            .create_page("DOCS", ContentKind::Page, Some(&guide_page.id), title)
            .await
            .unwrap();
    }
    let mount = Mounted::new(&server, &["--metadata-ttl", "2"]);
    let guide = "DOCS/DOCS Home/Guide";
    let chapter = format!("{guide}/Chapter One");
    mount.sh_ok(&format!("ls '{guide}' > /dev/null"));
    server.clear_requests().await;
    assert_eq!(mount.sh_ok(&format!("ls -A '{guide}/Empty'")), "");
    let log = server.requests().await;
    assert!(log.is_empty(), "{flavor:?}:\n{}", describe(&log));
    mount.sh_ok(&format!("ls '{guide}' > /dev/null"));
    let listed = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    mount.sh_ok(&format!(
        "cp '{guide}/notes.txt' '{guide}/Vacant/copied.txt'"
    ));
    let names = mount.sh_ok(&format!("ls '{guide}/Vacant'"));
    assert_eq!(names, "copied.txt\n", "{flavor:?}");
    let vacant = page_by_title(&client, "DOCS", "Vacant").await;
    let copied = client
        .find_attachment(&vacant.container(), "copied.txt")
        .await
        .unwrap();
    assert!(copied.is_some(), "{flavor:?}: the server has the copy");

    server.clear_requests().await;
    let names = mount.sh_ok(&format!("ls '{chapter}'"));
    assert!(names.contains("ch1.txt"), "{flavor:?}: {names}");
    let log = server.requests().await;
    assert!(
        !log.is_empty() && log.iter().all(is_attachment_listing),
        "{flavor:?}: only its attachments are asked for:\n{}",
        describe(&log)
    );

    let parent = page_by_title(&client, "DOCS", "Chapter One").await;
    client
        .create_page("DOCS", ContentKind::Page, Some(&parent.id), "Deeper")
        .await
        .unwrap();
    // Past the parent's answer's TTL, well inside a TTL from the leaf's own listing.
    tokio::time::sleep(Duration::from_millis(2300).saturating_sub(listed.elapsed())).await;
    let names = mount.sh_ok(&format!("ls '{chapter}'"));
    assert!(names.contains("Deeper"), "{flavor:?}: {names}");

    mount.sh_ok(&format!("echo mine > '{chapter}/mine.txt'"));
    let names = mount.sh_ok(&format!("ls '{chapter}'"));
    assert!(names.contains("mine.txt"), "{flavor:?}: {names}");
    let fresh = Mounted::new(&server, &[]);
    assert_eq!(fresh.sh_ok(&format!("cat '{chapter}/mine.txt'")), "mine\n");
}

crate::both_flavors!(leaf_pages_cost_no_child_listing_and_age_with_their_parent);

/// `cp -r` of many files into a page: one upload per file, and lookups that stop costing
/// requests once the page has been asked about a few times (it is listed instead).
#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_copy_costs_one_request_per_file() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok("stat 'DOCS/DOCS Home/Guide' > /dev/null");
    let src = tempfile::tempdir().unwrap();
    for i in 0..30 {
        std::fs::write(
            src.path().join(format!("f{i:02}.txt")),
            format!("file {i}\n"),
        )
        .unwrap();
    }
    server.clear_requests().await;
    mount.sh_ok(&format!(
        "cp {}/* 'DOCS/DOCS Home/Guide/'",
        src.path().display()
    ));
    let log = server.requests().await;
    let uploads = log.iter().filter(|r| r.method == "POST").count();
    assert_eq!(uploads, 30, "{}", describe(&log));
    assert!(
        log.len() <= 30 + 8,
        "{} requests:\n{}",
        log.len(),
        describe(&log)
    );
    server.clear_requests().await;
    mount.sh_ok("ls -l 'DOCS/DOCS Home/Guide' > /dev/null");
    assert!(
        server.requests().await.is_empty(),
        "our uploads are in the cached listing"
    );
}

/// A file read whole from its start (`cat`, `cp`) is fetched in one range request up to the
/// whole-file size (16 MiB), not in a ramp-up from two blocks; on Cloud that range costs the
/// redirect to the media host on top.
async fn whole_file(flavor: Flavor) {
    let size = 12 << 20;
    let bytes: Vec<u8> = (0..size).map(|at: usize| (at % 251) as u8).collect();
    let server = Server::start_seeded(flavor, |root| {
        seed_tree(root);
        write(root, "DOCS/Guide/whole.bin", &bytes);
    });
    let mount = Mounted::new(&server, &[]);
    let path = "DOCS/DOCS Home/Guide/whole.bin";
    mount.sh_ok(&format!("stat '{path}' > /dev/null"));
    server.clear_requests().await;
    let copy = tempfile::tempdir().unwrap();
    let dest = copy.path().join("whole.bin");
    mount.sh_ok(&format!("cp '{path}' '{}'", dest.display()));
    assert!(std::fs::read(&dest).unwrap() == bytes, "copied wrong");
    let log = server.requests().await;
    let want = match flavor {
        Flavor::Cloud => 2,
        Flavor::DataCenter => 1,
    };
    assert_eq!(log.len(), want, "{flavor:?}:\n{}", describe(&log));
    let fetched: u64 = log.iter().map(|r| r.bytes).sum();
    assert_eq!(fetched, size as u64, "{flavor:?}:\n{}", describe(&log));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_file_read_is_one_range_cloud() {
    whole_file(Flavor::Cloud).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_file_read_is_one_range_datacenter() {
    whole_file(Flavor::DataCenter).await;
}

/// A large file on Cloud: the ranges the read-ahead starts together find no media link yet;
/// one of them asks for the redirect and the others wait for it, so the whole read costs one
/// redirect, not one per range started before the first answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_cloud_read_costs_one_redirect() {
    let size = 48 << 20;
    let bytes: Vec<u8> = (0..size).map(|at: usize| (at % 253) as u8).collect();
    let server = Server::start_seeded(Flavor::Cloud, |root| {
        seed_tree(root);
        write(root, "DOCS/Guide/large.bin", &bytes);
    });
    let mount = Mounted::new(&server, &[]);
    let path = "DOCS/DOCS Home/Guide/large.bin";
    mount.sh_ok(&format!("stat '{path}' > /dev/null"));
    // The media host answers slowly, so the read-ahead's ranges overlap the first answer.
    server.faults(serde_json::json!({"latency_ms": 30})).await;
    server.clear_requests().await;
    let copy = tempfile::tempdir().unwrap();
    let dest = copy.path().join("large.bin");
    mount.sh_ok(&format!("cp '{path}' '{}'", dest.display()));
    assert!(std::fs::read(&dest).unwrap() == bytes, "copied wrong");
    let log = server.requests().await;
    let redirects = log.iter().filter(|r| r.status == 302).count();
    assert_eq!(redirects, 1, "{}", describe(&log));
}
