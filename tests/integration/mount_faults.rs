//! A mount against a server that misbehaves: goes away and comes back, rate-limits, answers 5xx,
//! cuts connections mid-body; and mounts that must be refused before anything is mounted.

use std::net::SocketAddr;
use std::path::Path;

use confluence_testserver::Config;
use confluencefs::confluence::Flavor;
use serde_json::json;

use crate::mount_tree::seed_tree;
use crate::mounted::{is_mounted, mount_command, Mounted};
use crate::support::{pattern, server_flavor, Server, DC_CONTEXT};

const BIG: usize = 3 * 1024 * 1024 + 12_345;

/// A server whose content lives in `data` so that it can be stopped and started again. The
/// seed directory must outlive both: the server refers to seeded files instead of copying them.
pub(crate) fn persistent_server(
    flavor: Flavor,
    seed: &Path,
    data: &Path,
    listen: Option<SocketAddr>,
) -> Server {
    let first_start = listen.is_none();
    let config = Config {
        flavor: server_flavor(flavor),
        context_path: if flavor == Flavor::DataCenter {
            DC_CONTEXT.to_string()
        } else {
            String::new()
        },
        listen: listen.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data.to_path_buf()),
        seed_dir: first_start.then(|| seed.to_path_buf()),
        ..Default::default()
    };
    Server::start_with(flavor, config, Vec::new())
}

pub(crate) fn listen_addr(server: &Server) -> SocketAddr {
    let root = server.root_url();
    root.trim_start_matches("http://").parse().unwrap()
}

#[test]
fn cached_files_stay_readable_while_the_server_is_down() {
    for flavor in [Flavor::Cloud, Flavor::DataCenter] {
        let (seed, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        seed_tree(seed.path());
        let server = persistent_server(flavor, seed.path(), data.path(), None);
        let addr = listen_addr(&server);
        let mount = Mounted::new(&server, &[]);
        let guide = "DOCS/DOCS Home/Guide";
        mount.sh_ok(&format!(
            "cat '{guide}/big.bin' > /dev/null; ls -l '{guide}/Chapter One'"
        ));

        drop(server);
        let cached = std::fs::read(mount.join(&format!("{guide}/big.bin"))).unwrap();
        assert!(cached == pattern(BIG), "{flavor:?}: cached bytes differ");
        let uncached = mount.sh(&format!("cat '{guide}/Chapter One/ch1.txt'"));
        assert!(
            !uncached.status.success(),
            "{flavor:?}: read without a server"
        );
        let err = String::from_utf8_lossy(&uncached.stderr);
        assert!(err.contains("Input/output error"), "{flavor:?}: {err}");

        let _back = persistent_server(flavor, seed.path(), data.path(), Some(addr));
        let again = mount.sh(&format!("cat '{guide}/Chapter One/ch1.txt'"));
        let log = std::fs::read_to_string(mount.cache_dir.join("confluencefs.log"));
        assert_eq!(
            String::from_utf8_lossy(&again.stdout),
            "chapter one\n",
            "{flavor:?}: the mount recovers when the server is back; log: {log:?}"
        );
    }
}

#[test]
fn disk_cache_serves_a_remount_without_requests() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let cache = tempfile::tempdir().unwrap();
    let big = "DOCS/DOCS Home/Guide/big.bin";
    {
        let mount = Mounted::with_cache(&server, &[], cache.path(), None);
        mount.sh_ok(&format!("cat '{big}' > /dev/null"));
    }
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    mount.sh_ok(&format!("stat '{big}' > /dev/null"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(server.clear_requests());
    let bytes = std::fs::read(mount.join(big)).unwrap();
    assert!(bytes == pattern(BIG));
    let log = runtime.block_on(server.requests());
    assert!(
        log.is_empty(),
        "a remount re-downloaded cached blocks: {log:?}"
    );

    // Blocks are private to the mounting user.
    let modes = std::process::Command::new("sh")
        .arg("-c")
        .arg("find . -exec stat -c %a {} + | sort -u")
        .current_dir(cache.path())
        .output()
        .unwrap();
    let modes = String::from_utf8_lossy(&modes.stdout);
    for mode in modes.lines() {
        assert!(mode == "700" || mode == "600", "cache mode {mode}");
    }
}

#[test]
fn faults_are_absorbed_without_reaching_the_reader() {
    for flavor in [Flavor::Cloud, Flavor::DataCenter] {
        let server = Server::start_seeded(flavor, seed_tree);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mount = Mounted::new(&server, &[]);
        let big = "DOCS/DOCS Home/Guide/big.bin";
        mount.sh_ok(&format!("stat '{big}' > /dev/null"));

        runtime
            .block_on(server.faults(json!({"fail_next": [429, 503, 500, 502], "retry_after": 0})));
        mount.sh_ok("ls -lR ENG > /dev/null");
        let bytes = std::fs::read(mount.join(big)).unwrap();
        assert!(bytes == pattern(BIG), "{flavor:?}: bytes after 429/5xx");

        let fresh = Mounted::new(&server, &["--memory-cache-size", "0", "--cache-size", "0"]);
        fresh.sh_ok(&format!("stat '{big}' > /dev/null"));
        runtime.block_on(server.faults(json!({"reset_next": 3})));
        let bytes = std::fs::read(fresh.join(big)).unwrap();
        assert!(bytes == pattern(BIG), "{flavor:?}: bytes after resets");
        runtime.block_on(server.faults(json!({})));

        let limited = Mounted::new(&server, &[]);
        runtime.block_on(server.faults(json!({"rate_limit_per_s": 5})));
        limited.sh_ok("ls -lR . > /dev/null");
        let bytes = std::fs::read(limited.join(big)).unwrap();
        assert!(
            bytes == pattern(BIG),
            "{flavor:?}: bytes under a rate limit"
        );
        runtime.block_on(server.faults(json!({})));
    }
}

#[test]
fn bad_urls_credentials_and_mountpoints_are_refused_with_one_line() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let cache = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let refuse = |url: &str, mp: &Path, args: &[&str], expect: &str| {
        let was_mounted = is_mounted(mp);
        let output = mount_command(url, mp, cache.path(), args);
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{url} {args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(expect), "expected {expect:?} in {err:?}");
        assert_eq!(
            is_mounted(mp),
            was_mounted,
            "a refused mount changed what is mounted"
        );
    };

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    refuse(
        &format!("http://127.0.0.1:{port}/wiki"),
        mountpoint.path(),
        &[],
        &format!("127.0.0.1:{port}"),
    );
    refuse(
        &server.base_url(),
        mountpoint.path(),
        &["--user", "nobody@example.com"],
        "refused the credentials of nobody@example.com",
    );
    refuse(
        &server.base_url(),
        &mountpoint.path().join("missing"),
        &[],
        "is not usable",
    );
    std::fs::write(mountpoint.path().join("file"), b"x").unwrap();
    refuse(&server.base_url(), mountpoint.path(), &[], "is not empty");
    std::fs::remove_file(mountpoint.path().join("file")).unwrap();
    refuse(
        &server.base_url(),
        mountpoint.path(),
        &["-o", "bogus"],
        "unknown mount option",
    );

    let mounted = Mounted::new(&server, &[]);
    refuse(&server.base_url(), &mounted.path, &[], "busy");
    assert!(
        is_mounted(&mounted.path),
        "the first mount survives the refused second"
    );
}
