//! Flat cost at scale through a real mount: `ls -l` of a page with 10,000 attachments costs
//! its listing and nothing per file. (That the inodes go again once the kernel forgets them is
//! in `tests/system`: `drop_caches` acts on every mount of the machine, so it runs alone.)

use confluencefs::confluence::Flavor;

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

/// `ls -l` of 10,000 attachments on Data Center: ⌈10,000 / 200⌉ = 50 attachment listings and
/// one for the child pages; nothing per file.
#[tokio::test(flavor = "multi_thread")]
async fn ls_of_ten_thousand_attachments_costs_its_listing() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_huge_page);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!("stat '{HUGE}' > /dev/null"));
    server.clear_requests().await;
    let listed = mount.sh_ok(&format!("ls -l '{HUGE}' | grep -c 'f[0-9]*\\.txt$'"));
    assert_eq!(listed.trim(), ATTACHMENTS.to_string());
    let log = server.requests().await;
    let attachments = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/child/attachment"))
        .count();
    assert_eq!(
        attachments,
        ATTACHMENTS.div_ceil(200),
        "{} requests",
        log.len()
    );
    assert_eq!(log.len(), attachments + 1, "{} requests", log.len());
}
