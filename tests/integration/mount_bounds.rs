//! Resource bounds of a real mount: a disk cache on a small filesystem leaves room for the
//! files being written.

use std::path::{Path, PathBuf};
use std::process::Command;

use confluencefs::confluence::Flavor;

use crate::mount_write::{ServerView, GUIDE};
use crate::mounted::Mounted;
use crate::support::{pattern, seed_basic, write, Server};

const MIB: usize = 1 << 20;

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped, even on a panic.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "cannot mount a tmpfs (are we root?)");
        Tmpfs { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Bytes used on the filesystem holding `path`, as `df` counts them.
fn used_bytes(path: &Path) -> u64 {
    let output = Command::new("df")
        .args(["--output=used", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

/// Opens served through FUSE passthrough so far, from the mount's status (written each second).
fn passthrough_opened(mount: &Mounted) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let output = Command::new(env!("CARGO_BIN_EXE_confluencefs"))
        .args(["status", &mount.path.to_string_lossy(), "--json"])
        .output()
        .unwrap();
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    document["mounts"][0]["passthrough"]["opened"]
        .as_u64()
        .expect("the status says how many opens went through passthrough")
}

/// The bytes used under `dir` once they have not changed for half a second (at most 10 s).
fn settled_usage(dir: &std::path::Path) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = used_bytes(dir);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = used_bytes(dir);
        if now == last || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[test]
fn a_small_cache_disk_still_takes_a_write_after_a_big_read() {
    let server = Server::start_seeded(Flavor::DataCenter, |root| {
        seed_basic(root);
        write(root, "DOCS/Big/big.bin", &pattern(50 * MIB));
    });
    let view = ServerView::new(&server);
    let tmpfs = Tmpfs::new("20m");
    let mount = Mounted::with_cache(&server, &[], &tmpfs.path(), None);

    // 50 MiB through a cache whose disk holds 20.
    let sum = mount.sh_ok("cksum < 'DOCS/DOCS Home/Big/big.bin'");
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("big.bin"), pattern(50 * MIB)).unwrap();
    let expected = Command::new("sh")
        .arg("-c")
        .arg("cksum < big.bin")
        .current_dir(local.path())
        .output()
        .unwrap();
    assert_eq!(sum, String::from_utf8_lossy(&expected.stdout));
    let after_read = used_bytes(&tmpfs.path());
    eprintln!("cache directory after reading 50 MiB: {after_read} bytes used of 20 MiB");

    // Then a 2 MiB file is written through the mount and reaches the server.
    let two = local.path().join("two.bin");
    std::fs::write(&two, pattern(2 * MIB)).unwrap();
    mount.sh_ok(&format!("cp '{}' '{GUIDE}/'", two.display()));
    let uploaded = view.attachment("Guide", "two.bin");
    assert_eq!(uploaded.size, 2 * MIB as u64);
    assert!(
        view.bytes(&uploaded) == pattern(2 * MIB),
        "the server has other bytes"
    );
    drop(mount);
}

/// A file larger than the free space the cache leaves (a quarter of the filesystem) still
/// gets written: the disk cache gives blocks back when the staging file meets a full disk.
#[test]
fn the_cache_gives_space_back_to_a_write_that_needs_it() {
    let server = Server::start_seeded(Flavor::DataCenter, |root| {
        seed_basic(root);
        write(root, "DOCS/Big/big.bin", &pattern(50 * MIB));
    });
    let view = ServerView::new(&server);
    let tmpfs = Tmpfs::new("20m");
    let mount = Mounted::with_cache(&server, &[], &tmpfs.path(), None);
    mount.sh_ok("cat 'DOCS/DOCS Home/Big/big.bin' > /dev/null");
    // The disk cache's writer may still be putting the file's blocks down: the test starts
    // from the cache as full as it gets.
    let after_read = settled_usage(&tmpfs.path());
    let local = tempfile::tempdir().unwrap();
    let eight = local.path().join("eight.bin");
    std::fs::write(&eight, pattern(9 * MIB)).unwrap();
    assert!(
        after_read + 9 * MIB as u64 > 20 * MIB as u64,
        "the test needs a cache that leaves less than 9 MiB free ({after_read} used)"
    );
    let copied = mount.sh(&format!("cp '{}' '{GUIDE}/'", eight.display()));
    if !copied.status.success() {
        let log =
            std::fs::read_to_string(tmpfs.path().join("confluencefs.log")).unwrap_or_default();
        let df = Command::new("df").arg(tmpfs.path()).output().unwrap();
        let du = Command::new("du")
            .arg("-a")
            .arg(tmpfs.path())
            .output()
            .unwrap();
        panic!(
            "cp failed: {}\n{}\n{}\n{}",
            String::from_utf8_lossy(&copied.stderr),
            String::from_utf8_lossy(&df.stdout),
            String::from_utf8_lossy(&du.stdout),
            log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
        );
    }
    let uploaded = view.attachment("Guide", "eight.bin");
    assert_eq!(uploaded.size, 9 * MIB as u64);
    assert!(view.bytes(&uploaded) == pattern(9 * MIB));
    // Short of room, the file went through the mount process, where the cache yields before a
    // write fails; the kernel's own writes (FUSE passthrough) could not wait for it.
    assert_eq!(passthrough_opened(&mount), 0);
    drop(mount);
}
