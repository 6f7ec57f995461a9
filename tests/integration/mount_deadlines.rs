//! No process is left stuck on the mount: a question to a slow server answers ETIMEDOUT after
//! `--op-timeout`, and a process killed while it waits is released at once instead of when the
//! server finally answers (the kernel waits for our reply uninterruptibly once it is read).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use confluencefs::confluence::Flavor;
use serde_json::json;

use crate::mount_tree::seed_tree;
use crate::mount_write::{ServerView, GUIDE};
use crate::mounted::{mount_command, Mounted};
use crate::support::Server;

#[test]
fn a_killed_reader_is_released_at_once() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    view.faults(json!({ "latency_ms": 8000 }));
    let mut reader = Command::new("cat")
        .arg(mount.join(&format!("{GUIDE}/notes.txt")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        reader.try_wait().unwrap().is_none(),
        "cat should be waiting"
    );
    let killed = Instant::now();
    reader.kill().unwrap();
    reader.wait().unwrap();
    let released = killed.elapsed();
    view.faults(json!({}));
    assert!(
        released < Duration::from_millis(1500),
        "a killed reader took {released:?} to go"
    );
    // The mount still answers.
    assert_eq!(
        std::fs::read(mount.join(&format!("{GUIDE}/notes.txt"))).unwrap(),
        b"hello notes\n"
    );
}

#[test]
fn a_question_past_the_deadline_answers_etimedout() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &["--op-timeout", "1"]);
    view.faults(json!({ "latency_ms": 4000 }));
    let started = Instant::now();
    let err = std::fs::metadata(mount.join(&format!("{GUIDE}/notes.txt"))).unwrap_err();
    let took = started.elapsed();
    view.faults(json!({}));
    assert_eq!(err.raw_os_error(), Some(libc::ETIMEDOUT), "{err}");
    assert!(took < Duration::from_millis(3000), "took {took:?}");
    assert!(mount.join(GUIDE).is_dir());
}

/// A warning given before a background mount is ready (a token file others can read) reaches
/// the user's terminal and the log file; it used to be lost.
#[test]
fn warnings_before_readiness_reach_the_user_and_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{}\n", crate::support::TOKEN)).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // The token file wins over the environment's token.
    let token = token.to_string_lossy().into_owned();
    let output = mount_command(
        &server.base_url(),
        mountpoint.path(),
        &cache,
        &["--token-file", &token],
    );
    let guard = MountGuard(mountpoint.path().to_path_buf());
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("chmod 600"),
        "the user was not told: {said:?}"
    );
    drop(guard);
    let log = std::fs::read_to_string(cache.join("confluencefs.log")).unwrap();
    assert!(log.contains("chmod 600"), "not in the log: {log}");
}

/// Unmounts even when the test panics.
struct MountGuard(std::path::PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        crate::mounted::unmount(&self.0);
    }
}

/// The log of a background mount rotates by size: it stays near `--log-max-size`, and the
/// generation before is kept as `NAME.1`.
#[test]
fn the_log_rotates_by_size() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // -vv: trace logging of listings without a cache writes plenty.
    let output = mount_command(
        &server.base_url(),
        mountpoint.path(),
        &cache,
        &["--log-max-size", "16K", "--metadata-ttl", "0", "-vv"],
    );
    let _guard = MountGuard(mountpoint.path().to_path_buf());
    assert!(output.status.success(), "{output:?}");
    let log = cache.join("confluencefs.log");
    let old = cache.join("confluencefs.log.1");
    let started = Instant::now();
    while !old.exists() && started.elapsed() < Duration::from_secs(20) {
        let _ = Command::new("ls")
            .arg("-lR")
            .arg(mountpoint.path())
            .stdout(Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(old.exists(), "no rotation in 20 s");
    let size = std::fs::metadata(&log).unwrap().len();
    // Checked every second: what one second of this logging writes at most, past the bound.
    assert!(size < 4 << 20, "the current log has {size} bytes");
    assert!(std::fs::metadata(&old).unwrap().len() > 16 << 10);
}

/// A listing that fails (the server answers 500 past the retries) is logged once, with the
/// request it concerned.
#[test]
fn a_failed_listing_is_logged_with_its_request() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    view.faults(json!({ "fail_next": vec![500; 12] }));
    let failed = mount.sh(&format!("ls '{GUIDE}'"));
    view.faults(json!({}));
    assert!(!failed.status.success());
    let log = std::fs::read_to_string(mount.cache_dir.join("confluencefs.log")).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("failed"))
        .collect();
    assert!(!lines.is_empty(), "nothing logged:\n{log}");
    assert!(
        lines.iter().any(|l| l.contains("/rest/api/")),
        "no request named: {lines:#?}"
    );
    assert!(
        !log.contains(crate::support::TOKEN),
        "the token is in the log"
    );
}

/// An `ls` of another page answers at once while twelve readers wait on slow downloads, and
/// the readers, killed, are released at once.
#[test]
fn an_unrelated_ls_answers_during_twelve_slow_downloads() {
    let server = Server::start_seeded(Flavor::DataCenter, |root| {
        seed_tree(root);
        for i in 0..12 {
            crate::support::write(
                root,
                &format!("DOCS/Slow/file-{i}.bin"),
                &crate::support::pattern(200_000 + i),
            );
        }
        crate::support::write(root, "DOCS/Other/other.txt", b"other\n");
    });
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    // Listed first: the point is the downloads, not the listing of their page.
    mount.sh_ok("ls 'DOCS/DOCS Home/Slow' > /dev/null");
    let latency = Duration::from_secs(4);
    view.faults(json!({"path_contains": "download", "latency_ms": latency.as_millis() as u64}));
    let mut readers: Vec<_> = (0..12)
        .map(|i| {
            Command::new("cat")
                .arg(mount.join(&format!("DOCS/DOCS Home/Slow/file-{i}.bin")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    for reader in &mut readers {
        assert!(
            reader.try_wait().unwrap().is_none(),
            "a reader was not held"
        );
    }
    let started = Instant::now();
    let listed = mount.sh_ok("ls 'DOCS/DOCS Home/Other'");
    let took = started.elapsed();
    assert_eq!(listed, "other.txt\n");
    let killed = Instant::now();
    for mut reader in readers {
        let _ = reader.kill();
        let _ = reader.wait();
    }
    let released = killed.elapsed();
    view.faults(json!({}));
    eprintln!("ls during 12 slow downloads: {took:?}; 12 killed readers released in {released:?}");
    assert!(took < Duration::from_secs(1), "ls took {took:?}");
    assert!(
        released < Duration::from_secs(2),
        "killed readers took {released:?}"
    );
}
