//! Flat cost at scale through a real mount: `ls -l` of a page with 10,000 attachments costs
//! its listing and nothing per file. (That the inodes go again once the kernel forgets them is
//! in `tests/system`: `drop_caches` acts on every mount of the machine, so it runs alone.)

use confluencefs::confluence::Flavor;
use serde_json::json;

use crate::mount_tree::seed_tree;
use crate::mounted::Mounted;
use crate::support::{write, Server};

pub(crate) const ATTACHMENTS: usize = 10_000;
pub(crate) const HUGE: &str = "DOCS/DOCS Home/Huge";

pub(crate) fn seed_huge_page(root: &std::path::Path) {
    seed_tree(root);
    for i in 0..ATTACHMENTS {
        write(root, &format!("DOCS/Huge/f{i:05}.txt"), b"x\n");
    }
}

/// `ls -l` of 10,000 attachments on Data Center: ⌈10,000 / 200⌉ = 50 attachment listings,
/// fetched up to four at once (each page past the second is asked for before the page before it
/// has answered), and at most three past the end; nothing for child pages (the answer that found
/// the page said it has none); nothing per file. Every listing is slowed by 50 ms, so that pages asked for together are seen together.
#[tokio::test(flavor = "multi_thread")]
async fn ls_of_ten_thousand_attachments_costs_its_listing() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_huge_page);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!("stat '{HUGE}' > /dev/null"));
    server
        .faults(json!({"path_contains": "/child/attachment", "method": "GET", "latency_ms": 50}))
        .await;
    server.clear_requests().await;
    let listed = mount.sh_ok(&format!("ls -l '{HUGE}' | grep -c 'f[0-9]*\\.txt$'"));
    assert_eq!(listed.trim(), ATTACHMENTS.to_string());
    let log = server.requests().await;
    let attachments: Vec<_> = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/child/attachment"))
        .collect();
    let pages = ATTACHMENTS.div_ceil(200);
    assert!(
        (pages..=pages + 3).contains(&attachments.len()),
        "{} attachment listings",
        attachments.len()
    );
    let mut starts: Vec<usize> = attachments
        .iter()
        .map(|r| {
            r.query
                .split('&')
                .find_map(|p| p.strip_prefix("start="))
                .map_or(0, |s| s.parse().unwrap())
        })
        .collect();
    starts.sort_unstable();
    let expected: Vec<usize> = (0..attachments.len()).map(|i| i * 200).collect();
    assert_eq!(
        starts, expected,
        "each page asked for once, in the server's steps"
    );
    let most = attachments.iter().map(|r| r.concurrent).max().unwrap();
    assert!(most >= 3, "at most {most} listing pages in flight at once");
    assert_eq!(log.len(), attachments.len(), "{} requests", log.len());
}
