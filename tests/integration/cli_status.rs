//! `confluencefs status` against real mounts: its figures compared with the test server's
//! request log, the cache's hit rate, uploads in flight and refused, several mounts, `--watch`.
//!
//! A mount writes its status once a second, so every check polls until the figure it expects
//! shows (or a deadline passes): what is asserted is the figure, not the timing.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use confluencefs::confluence::Flavor;
use serde_json::{json, Value};

use crate::mount_write::{both, GUIDE};
use crate::mounted::Mounted;
use crate::support::{pattern, Server};

fn confluencefs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confluencefs"))
        .args(args)
        .output()
        .expect("confluencefs runs")
}

/// `status MOUNTPOINT --json`: the one mount's report.
fn status(mount: &Mounted) -> Value {
    let output = confluencefs(&["status", &mount.path.to_string_lossy(), "--json"]);
    assert!(
        output.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: Value = serde_json::from_slice(&output.stdout).expect("status prints JSON");
    let mounts = document["mounts"].as_array().expect("a list of mounts");
    assert_eq!(mounts.len(), 1, "{document}");
    mounts[0].clone()
}

/// Polls `status` until `wanted` holds of it; panics with the last report after 15 s.
fn status_until(mount: &Mounted, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let report = status(mount);
        if wanted(&report) {
            return report;
        }
        assert!(Instant::now() < deadline, "never {what}: {report:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every field of `report` (and of its objects) is named in docs/CONFIGURATION.md.
fn documented(report: &Value) {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/CONFIGURATION.md"
    ))
    .unwrap();
    let section = &docs[docs
        .find("`status --json`'s MOUNT")
        .expect("the fields' table")..];
    let mut keys = Vec::new();
    for (key, value) in report.as_object().unwrap() {
        keys.push(key.clone());
        if let Some(inner) = value.as_object() {
            keys.extend(inner.keys().cloned());
        }
    }
    for key in keys {
        assert!(
            section.contains(&format!("`{key}`")) || section.contains(&format!("\"{key}\"")),
            "{key} is not documented"
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Reads `path` through the mount after dropping the kernel's copy of its pages, so that the
/// read reaches the filesystem (a reopen otherwise keeps the page cache and asks nothing).
fn read_uncached(mount: &Mounted, path: &str) -> usize {
    mount
        .python(&format!(
            "fd = os.open(os.path.join(m, {path:?}), os.O_RDONLY)\n\
             os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\n\
             n = 0\n\
             while True:\n    b = os.read(fd, 1 << 20)\n    if not b: break\n    n += len(b)\n\
             print(n)"
        ))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn status_json_matches_the_server_log_and_the_cache() {
    both(|flavor| {
        let server = Server::start(flavor);
        let rt = runtime();
        // The boundary: `requests.made` counts every request of the mounting process from its
        // connect on, and the parent `mount` command sends none; so a log emptied before
        // `mount` holds exactly the requests the status counts.
        rt.block_on(server.clear_requests());
        // The cache's counters follow bytes read through the mount process; with passthrough
        // the kernel would read the second time from the disk cache's file itself, unseen.
        let mount = Mounted::new(&server, &["--no-passthrough"]);

        let first = status_until(&mount, "serving", |r| r["state"] == "serving");
        assert_eq!(first["site"], server.base_url().trim_end_matches('/'));
        let flavor_name = match flavor {
            Flavor::Cloud => "cloud",
            Flavor::DataCenter => "datacenter",
        };
        assert_eq!(first["flavor"], flavor_name);
        assert_eq!(first["user"], "Demo User");
        assert_eq!(first["mountpoint"], mount.path.to_string_lossy().as_ref());
        assert_eq!(first["read_path"], "none");
        assert_eq!(first["idle"], true);
        assert_eq!(first["responding"], true);
        assert!(first["cache"]["hit_rate"].is_null(), "{first:#}");
        assert!(first["requests"]["made"].as_u64().unwrap() >= 1);
        documented(&first);

        let file = "DOCS/DOCS Home/Guide/data.bin";
        assert_eq!(read_uncached(&mount, file), 300_000);
        let after_one = status_until(&mount, "a miss counted", |r| {
            r["cache"]["misses"].as_u64() >= Some(1)
        });
        let rate_one = after_one["cache"]["hit_rate"].as_f64().unwrap();
        assert_eq!(after_one["requests"]["downloads"].as_u64(), Some(1));
        let expected_path = match flavor {
            Flavor::Cloud => "media",
            Flavor::DataCenter => "direct",
        };
        assert_eq!(after_one["read_path"], expected_path);

        assert_eq!(read_uncached(&mount, file), 300_000);
        let after_two = status_until(&mount, "a hit counted", |r| {
            r["cache"]["memory_hits"].as_u64().unwrap_or(0)
                + r["cache"]["disk_hits"].as_u64().unwrap_or(0)
                >= 1
        });
        let rate_two = after_two["cache"]["hit_rate"].as_f64().unwrap();
        assert!(rate_two > rate_one, "{rate_one} → {rate_two}");
        assert_eq!(
            after_two["cache"]["misses"], after_one["cache"]["misses"],
            "the second read fetched nothing"
        );

        // Once the mount is quiet, its count and the server's log agree exactly.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let made = status(&mount)["requests"]["made"].as_u64().unwrap();
            let logged = rt.block_on(server.requests()).len() as u64;
            if made == logged {
                assert!(made >= 3, "connect, listings and a download: {made}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "status says {made} requests, the server logged {logged}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    });
}

#[test]
fn status_shows_uploads_in_flight_and_refused() {
    let server = Server::start(Flavor::Cloud);
    let rt = runtime();
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!("ls '{GUIDE}'"));
    let source = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(source.path(), pattern(2_000_000)).unwrap();

    // A slow upload: the server waits before it answers, so the request stays on the wire.
    rt.block_on(server.faults(json!({
        "path_contains": "/child/attachment", "method": "POST", "latency_ms": 4000
    })));
    let mut cp = Command::new("cp")
        .arg(source.path())
        .arg(mount.join(&format!("{GUIDE}/slow.bin")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let busy = status_until(&mount, "an upload in flight", |r| {
        r["uploads"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["bytes_sent"].as_u64() > Some(0)))
    });
    let upload = &busy["uploads"][0];
    assert_eq!(upload["name"], "slow.bin", "{busy:#}");
    assert_eq!(upload["size"].as_u64(), Some(2_000_000));
    assert!(upload["rate_bytes_per_s"].as_u64() > Some(0), "{busy:#}");
    assert_eq!(busy["idle"], false);
    let text = String::from_utf8_lossy(&confluencefs(&["status"]).stdout).into_owned();
    assert!(text.contains("uploading  slow.bin"), "{text}");
    assert!(text.contains("safe to unmount: not yet"), "{text}");
    assert!(cp.wait().unwrap().success(), "the slow upload arrives");
    rt.block_on(server.faults(json!({})));
    let done = status_until(&mount, "idle again", |r| r["idle"] == true);
    assert!(done["upload_bytes_sent"].as_u64() >= Some(2_000_000));
    assert!(done["requests"]["uploads"].as_u64() >= Some(1));

    // A refused upload stays in the spool, and the log's warning (with the file) shows.
    rt.block_on(server.faults(json!({"fail_next": [403]})));
    let denied = mount.sh(&format!("cp /etc/hostname '{GUIDE}/denied.txt'"));
    assert!(!denied.status.success());
    let refused = status_until(&mount, "a failed spool entry", |r| {
        r["spool"]["failed"].as_u64() == Some(1)
    });
    assert_eq!(refused["idle"], false);
    assert!(refused["spool"]["bytes"].as_u64() > Some(0));
    let refused = status_until(&mount, "the refusal among the errors", |r| {
        r["errors"].as_array().is_some_and(|errors| {
            errors.iter().any(|e| {
                let message = e["message"].as_str().unwrap_or("");
                message.contains("403") && message.contains("denied.txt")
            })
        })
    });
    let error = refused["errors"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(error["unix_ms"].as_u64() > Some(0));
    assert_eq!(error["level"], "WARN");
}

/// A file held open for writing is not uploaded yet: unmounting now would be too early.
#[test]
fn status_counts_files_open_for_writing() {
    let server = Server::start(Flavor::DataCenter);
    let mount = Mounted::new(&server, &[]);
    let mut open = std::fs::File::create(mount.join(&format!("{GUIDE}/draft.txt"))).unwrap();
    std::io::Write::write_all(&mut open, b"not closed yet").unwrap();
    let busy = status_until(&mount, "a file open for writing", |r| {
        r["open_for_writing"].as_u64() == Some(1)
    });
    documented(&busy);
    let text =
        String::from_utf8_lossy(&confluencefs(&["status", &mount.path.to_string_lossy()]).stdout)
            .into_owned();
    assert!(
        text.contains("safe to unmount: not yet: 1 file(s) open for writing"),
        "{text}"
    );
    drop(open);
    status_until(&mount, "no file open for writing", |r| {
        r["open_for_writing"].as_u64() == Some(0)
    });
    let text =
        String::from_utf8_lossy(&confluencefs(&["status", &mount.path.to_string_lossy()]).stdout)
            .into_owned();
    assert!(text.contains("safe to unmount: yes"), "{text}");
}

#[test]
fn status_without_a_mountpoint_lists_every_mount() {
    let cloud = Server::start(Flavor::Cloud);
    let datacenter = Server::start(Flavor::DataCenter);
    let first = Mounted::new(&cloud, &[]);
    let second = Mounted::new(&datacenter, &["--read-only"]);
    for mount in [&first, &second] {
        status_until(mount, "serving", |r| r["state"] == "serving");
    }
    let output = confluencefs(&["status", "--json"]);
    assert!(output.status.success());
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let listed: Vec<&Value> = document["mounts"].as_array().unwrap().iter().collect();
    let find = |path: &Path| {
        listed
            .iter()
            .find(|m| m["mountpoint"] == path.to_string_lossy().as_ref())
            .unwrap_or_else(|| panic!("{} not listed: {document:#}", path.display()))
    };
    assert_eq!(find(&first.path)["flavor"], "cloud");
    let read_only = find(&second.path);
    assert_eq!(read_only["flavor"], "datacenter");
    assert_eq!(read_only["read_only"], true);
    assert!(
        read_only["spool"].is_null(),
        "a read-only mount has no spool"
    );

    let text = String::from_utf8_lossy(&confluencefs(&["status"]).stdout).into_owned();
    for mount in [&first, &second] {
        assert!(
            text.contains(&format!("{}  (pid ", mount.path.display())),
            "{text}"
        );
    }

    let elsewhere = tempfile::tempdir().unwrap();
    let refused = confluencefs(&["status", &elsewhere.path().to_string_lossy()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a confluencefs mount"));
}

#[test]
fn watch_refreshes_until_interrupted() {
    let server = Server::start(Flavor::DataCenter);
    let mount = Mounted::new(&server, &[]);
    status_until(&mount, "serving", |r| r["state"] == "serving");
    let path = mount.path.to_string_lossy().into_owned();
    for command in ["status", "pending"] {
        let output = Command::new("timeout")
            .args(["2.5", env!("CARGO_BIN_EXE_confluencefs"), command])
            .args([path.as_str(), "--watch", "1"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(124), "ended only by timeout");
        let text = String::from_utf8_lossy(&output.stdout);
        let refreshes = text.matches("Every 1.0s: confluencefs").count();
        assert!(
            refreshes >= 2,
            "{command} --watch: {refreshes} refreshes: {text}"
        );
        assert!(text.contains("\x1b[2J"), "the screen is cleared");
        let body = match command {
            "status" => "safe to unmount: yes",
            _ => "nothing pending",
        };
        assert!(text.matches(body).count() >= 2, "{text}");
    }
}
