//! Tests that change the state of the whole machine, and so run in a binary of their own:
//! cargo runs test binaries one after another, so nothing here overlaps the mounts of the
//! integration tests. `drop_caches` makes the kernel forget the inodes of every FUSE mount,
//! which would add lookups to the request budgets other tests count.

#[allow(dead_code)]
#[path = "../integration/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../integration/mounted.rs"]
mod mounted;

use std::process::Command;
use std::time::{Duration, Instant};

use confluencefs::confluence::Flavor;
use serde_json::Value;

use crate::mounted::Mounted;
use crate::support::{write, Server};

const ATTACHMENTS: usize = 10_000;
const HUGE: &str = "DOCS/DOCS Home/Huge";

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn seed_huge_page(root: &std::path::Path) {
    write(root, "DOCS/readme.txt", b"read me first\n");
    for i in 0..ATTACHMENTS {
        write(root, &format!("DOCS/Huge/f{i:05}.txt"), b"x\n");
    }
}

fn inodes(mount: &Mounted) -> u64 {
    let output = Command::new(env!("CARGO_BIN_EXE_confluencefs"))
        .args(["status", &mount.path.to_string_lossy(), "--json"])
        .output()
        .expect("confluencefs runs");
    assert!(output.status.success(), "status failed");
    let document: Value = serde_json::from_slice(&output.stdout).expect("status prints JSON");
    document["mounts"][0]["inodes"]
        .as_u64()
        .expect("the status has an inode count")
}

fn inodes_until(mount: &Mounted, what: &str, wanted: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = inodes(mount);
        if wanted(count) {
            return count;
        }
        assert!(Instant::now() < deadline, "never {what}: {count} inodes");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The kernel forgets what `ls -l` gave it when caches are dropped; once the listing's TTL
/// (1 s here) has passed, the mount's inode table is back near where it started. Needs root
/// for `drop_caches`, as CI has.
#[test]
fn dropped_caches_shrink_the_inode_table() {
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(root, "drop_caches needs root (CI runs the suite as root)");
    let server = Server::start_seeded(Flavor::DataCenter, seed_huge_page);
    let mount = Mounted::new(&server, &["--metadata-ttl", "1"]);
    mount.sh_ok(&format!("ls -l '{HUGE}' > /dev/null"));
    let peak = inodes_until(&mount, "the listing's inodes counted", |n| {
        n >= ATTACHMENTS as u64
    });
    let pid = mounted::mount_pid(&mount.path).expect("the mount's process");
    let rss_at_peak = rss_kib(pid);
    std::fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
    let after = inodes_until(&mount, "the inode table shrunk", |n| n < 100);
    assert!(after < peak / 100, "{peak} → {after}");
    // The memory goes back to the kernel too, not only to the allocator.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rss_after = rss_kib(pid);
    while rss_after + 4096 > rss_at_peak && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        rss_after = rss_kib(pid);
    }
    eprintln!("RSS {rss_at_peak} KiB with {peak} inodes, {rss_after} KiB with {after}");
    assert!(
        rss_after + 4096 <= rss_at_peak,
        "RSS {rss_at_peak} KiB with {peak} inodes, still {rss_after} KiB with {after}"
    );
    // What went is found again, under new numbers, with the same answers.
    let listed = mount.sh_ok(&format!("ls -l '{HUGE}' | grep -c 'f[0-9]*\\.txt$'"));
    assert_eq!(listed.trim(), ATTACHMENTS.to_string());
    assert_eq!(mount.sh_ok(&format!("cat '{HUGE}/f00042.txt'")), "x\n");
}
