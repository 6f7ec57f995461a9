//! Nothing lost, nothing resurrected: the sequences that used to race our own background work.
//!
//! Each test runs an operation right after a close (no gap, a millisecond, and with the server
//! slowed down), then checks three views: the mount, the server through REST, and a fresh
//! mount with an empty cache. A file that ends up empty is uploaded after its last close in
//! the background; before every file had one owner, a write, delete, rename or truncation that
//! arrived during that upload was lost or undone.

use std::process::Command;

use confluencefs::confluence::Flavor;
use serde_json::json;

use crate::mount_tree::seed_tree;
use crate::mount_write::{ServerView, GUIDE};
use crate::mounted::Mounted;
use crate::support::Server;

/// Runs Python with `m` bound to the mount's path and `d` to the Guide page directory.
fn py(mount: &Mounted, code: &str) -> String {
    mount.python(&format!("d = os.path.join(m, {GUIDE:?})\n{code}"))
}

/// The names and bytes of the Guide page's attachments whose names start with `prefix`, as the
/// server has them.
fn on_server(view: &ServerView, prefix: &str) -> Vec<(String, Vec<u8>)> {
    view.attachments("Guide")
        .into_iter()
        .filter(|a| a.title.starts_with(prefix))
        .map(|a| (a.title.clone(), view.bytes(&a)))
        .collect()
}

/// The same through a fresh mount with an empty cache.
fn on_fresh_mount(server: &Server, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mount = Mounted::new(server, &[]);
    let dir = mount.join(GUIDE);
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    found.sort();
    found
}

fn expect(names: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|(n, b)| (n.to_string(), b.to_vec()))
        .collect();
    v.sort();
    v
}

/// Create (or truncate) and close, then reopen at once and write or ftruncate: the second
/// change is what the file holds, everywhere.
fn reopen_after_empty_close(flavor: Flavor, latency_ms: u64, gaps_ms: &[u64]) {
    let server = Server::start_seeded(flavor, seed_tree);
    let view = ServerView::new(&server);
    if latency_ms > 0 {
        view.faults(json!({ "latency_ms": latency_ms }));
    }
    let mount = Mounted::new(&server, &[]);
    let gaps = format!("{gaps_ms:?}");
    py(
        &mount,
        &format!(
            r#"
for i, gap in enumerate({gaps}):
    p = os.path.join(d, "append-%d.txt" % i)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644); os.close(fd)
    time.sleep(gap / 1000)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND); os.write(fd, b"hello\n"); os.close(fd)
    p = os.path.join(d, "grow-%d.txt" % i)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644); os.close(fd)
    time.sleep(gap / 1000)
    fd = os.open(p, os.O_WRONLY); os.ftruncate(fd, 3); os.close(fd)
    p = os.path.join(d, "retrunc-%d.txt" % i)
    with open(p, "wb") as f: f.write(b"first version\n")
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC); os.close(fd)
    time.sleep(gap / 1000)
    fd = os.open(p, os.O_WRONLY); os.write(fd, b"second\n"); os.close(fd)
for i, gap in enumerate({gaps}):
    for name, want in (("append", b"hello\n"), ("grow", b"\0\0\0"), ("retrunc", b"second\n")):
        got = open(os.path.join(d, "%s-%d.txt" % (name, i)), "rb").read()
        assert got == want, (name, i, gap, got)
"#
        ),
    );
    drop(mount);
    if latency_ms > 0 {
        view.faults(json!({}));
    }
    let mut want = Vec::new();
    for i in 0..gaps_ms.len() {
        want.push((format!("append-{i}.txt"), b"hello\n".to_vec()));
        want.push((format!("grow-{i}.txt"), b"\0\0\0".to_vec()));
        want.push((format!("retrunc-{i}.txt"), b"second\n".to_vec()));
    }
    want.sort();
    for prefix in ["append-", "grow-", "retrunc-"] {
        let want: Vec<_> = want
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .cloned()
            .collect();
        assert_eq!(on_server(&view, prefix), want, "{flavor:?} server");
        assert_eq!(on_fresh_mount(&server, prefix), want, "{flavor:?} remount");
    }
}

#[test]
fn a_write_right_after_an_empty_close_is_kept() {
    reopen_after_empty_close(Flavor::Cloud, 0, &[0, 0, 1, 5]);
    reopen_after_empty_close(Flavor::DataCenter, 0, &[0, 1]);
}

#[test]
fn a_write_during_a_slow_empty_upload_is_kept() {
    reopen_after_empty_close(Flavor::Cloud, 300, &[50]);
}

/// `touch f; rm f` succeeds every time, and the file never comes back.
#[test]
fn a_delete_right_after_create_succeeds_and_stays_deleted() {
    for flavor in [Flavor::Cloud, Flavor::DataCenter] {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        py(
            &mount,
            r#"
for i in range(20):
    p = os.path.join(d, "gone-%d.txt" % i)
    open(p, "wb").close()
    if i % 3 == 1: time.sleep(0.001)
    os.unlink(p)
    assert not os.path.exists(p), p
"#,
        );
        // Past the upload of the empty file, whatever its timing.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(
            mount.sh_ok(&format!("ls '{GUIDE}' | grep -c '^gone-' || true")),
            "0\n"
        );
        drop(mount);
        assert_eq!(on_server(&view, "gone-"), expect(&[]), "{flavor:?}");
        assert_eq!(on_fresh_mount(&server, "gone-"), expect(&[]), "{flavor:?}");
    }
}

/// A rename right after create+close is applied on the server, once, without an extra version.
#[test]
fn a_rename_right_after_create_is_kept() {
    for flavor in [Flavor::Cloud, Flavor::DataCenter] {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        py(
            &mount,
            r#"
for i in range(10):
    p = os.path.join(d, "from-%d.txt" % i)
    with open(p, "wb") as f:
        if i % 2: f.write(b"data %d\n" % i)
    if i % 3 == 1: time.sleep(0.001)
    os.rename(p, os.path.join(d, "to-%d.txt" % i))
"#,
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(mount);
        let want: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| {
                let bytes = if i % 2 == 1 {
                    format!("data {i}\n").into_bytes()
                } else {
                    Vec::new()
                };
                (format!("to-{i}.txt"), bytes)
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        assert_eq!(on_server(&view, "from-"), expect(&[]), "{flavor:?}");
        assert_eq!(on_server(&view, "to-"), want, "{flavor:?}");
        for att in view.attachments("Guide") {
            if att.title.starts_with("to-") {
                assert_eq!(
                    att.version, 1,
                    "{flavor:?}: {} has extra versions",
                    att.title
                );
            }
        }
        assert_eq!(on_fresh_mount(&server, "to-"), want, "{flavor:?}");
    }
}

/// `truncate(2)` by path on a closed file reaches the server.
#[test]
fn truncate_by_path_reaches_the_server() {
    for flavor in [Flavor::Cloud, Flavor::DataCenter] {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        py(
            &mount,
            r#"
p = os.path.join(d, "cut.txt")
with open(p, "wb") as f: f.write(b"0123456789")
os.truncate(p, 4)
assert open(p, "rb").read() == b"0123"
os.truncate(os.path.join(d, "notes.txt"), 5)
"#,
        );
        assert_eq!(
            on_server(&view, "cut"),
            expect(&[("cut.txt", b"0123")]),
            "{flavor:?}"
        );
        assert_eq!(
            on_server(&view, "notes"),
            expect(&[("notes.txt", b"hello")]),
            "{flavor:?}"
        );
        drop(mount);
        assert_eq!(
            on_fresh_mount(&server, "cut"),
            expect(&[("cut.txt", b"0123")])
        );
        assert_eq!(
            on_fresh_mount(&server, "notes"),
            expect(&[("notes.txt", b"hello")])
        );
    }
}

/// A file deleted while open keeps working through its descriptors, and is gone everywhere.
#[test]
fn unlinked_open_files_keep_working() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    py(
        &mount,
        r#"
# A new file, deleted while open for writing (a temp file pattern).
p = os.path.join(d, "tmp-open.bin")
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)
os.write(fd, b"scratch")
os.unlink(p)
assert not os.path.exists(p)
st = os.fstat(fd)
assert st.st_size == 7, st
assert st.st_nlink == 0, st
os.write(fd, b" more")
assert os.pread(fd, 100, 0) == b"scratch more"
os.close(fd)
# An attachment on the server, deleted while a reader holds it.
p = os.path.join(d, "notes.txt")
fd = os.open(p, os.O_RDONLY)
os.unlink(p)
st = os.fstat(fd)
assert st.st_size == 12, st
assert os.pread(fd, 100, 0) == b"hello notes\n"
os.close(fd)
assert not os.path.exists(p)
"#,
    );
    drop(mount);
    assert_eq!(on_server(&view, "tmp-open"), expect(&[]));
    assert_eq!(on_server(&view, "notes"), expect(&[]));
    assert_eq!(on_fresh_mount(&server, "tmp-open"), expect(&[]));
}

/// Names longer than 255 bytes are refused with ENAMETOOLONG by every operation, and nothing
/// is created under another name.
#[test]
fn names_over_255_bytes_are_refused() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    py(
        &mount,
        r#"
long = "x" * 256
ok = "y" * 255
def refused(f):
    try:
        f()
    except OSError as e:
        assert e.errno == errno.ENAMETOOLONG, e
        return
    raise AssertionError("accepted")
refused(lambda: open(os.path.join(d, long), "wb"))
refused(lambda: os.mkdir(os.path.join(d, long)))
refused(lambda: os.stat(os.path.join(d, long)))
with open(os.path.join(d, "short.txt"), "wb") as f: f.write(b"x")
refused(lambda: os.rename(os.path.join(d, "short.txt"), os.path.join(d, long)))
with open(os.path.join(d, ok), "wb") as f: f.write(b"255")
assert open(os.path.join(d, ok), "rb").read() == b"255"
"#,
    );
    drop(mount);
    let names: Vec<String> = view.names("Guide");
    assert!(names.iter().all(|n| n.len() <= 255), "{names:?}");
    assert!(names.contains(&"short.txt".to_string()), "{names:?}");
    assert!(names.contains(&"y".repeat(255)), "{names:?}");
}

/// A sqlite database in a page works in both journal modes; its journal, WAL and shared-memory
/// files never reach the server, and the database read from a fresh mount is whole.
#[test]
fn sqlite_works_and_its_journals_stay_local() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    py(
        &mount,
        r#"
import sqlite3
for name, mode in (("rollback.db", "DELETE"), ("wal.db", "WAL")):
    db = sqlite3.connect(os.path.join(d, name))
    db.execute("PRAGMA journal_mode=%s" % mode)
    db.execute("CREATE TABLE t (n INTEGER, s TEXT)")
    db.commit()
    for i in range(25):
        db.execute("INSERT INTO t VALUES (?, ?)", (i, "row %d " % i * 20))
        db.commit()
    db.execute("DELETE FROM t WHERE n % 5 = 0")
    db.commit()
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 20
    db.close()
"#,
    );
    drop(mount);
    // A journal that reached the server would have been trashed when sqlite deleted it.
    let deletes: Vec<String> = view
        .rt
        .block_on(server.requests())
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect();
    assert!(
        deletes.is_empty(),
        "sqlite's files were trashed: {deletes:?}"
    );
    let names = view.names("Guide");
    for side in ["-journal", "-wal", "-shm"] {
        assert!(
            names.iter().all(|n| !n.ends_with(side)),
            "a sqlite side file reached the server: {names:?}"
        );
    }
    assert!(names.contains(&"rollback.db".to_string()), "{names:?}");
    assert!(names.contains(&"wal.db".to_string()), "{names:?}");
    let fresh = Mounted::new(&server, &[]);
    let check = r#"
import sqlite3, shutil, tempfile
for name in ("rollback.db", "wal.db"):
    copy = os.path.join(tempfile.mkdtemp(), name)
    shutil.copy(os.path.join(d, name), copy)
    db = sqlite3.connect(copy)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 20, name
"#;
    py(&fresh, check);
}

/// `mkdir` in a space directory makes a top-level page (Cloud: v2 `root-level`), which stays
/// where it was made after the TTL and after a remount; a server that files it elsewhere gets
/// it shown there, once.
#[test]
fn mkdir_in_a_space_stays_where_it_was_made() {
    // Cloud: placed at the top of the space.
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &["--metadata-ttl", "0.2"]);
    mount.sh_ok("mkdir DOCS/Top && cd DOCS/Top && sleep 0.5 && pwd && ls");
    assert_eq!(view.page("Top").parent_id, None);
    mount.sh_ok("sleep 0.3; test -d DOCS/Top && cd DOCS/Top && touch here.txt");
    drop(mount);
    let fresh = Mounted::new(&server, &[]);
    assert_eq!(fresh.sh_ok("find DOCS -name Top"), "DOCS/Top\n");
    assert_eq!(view.names("Top"), ["here.txt"]);
    drop(fresh);

    // The test server's Data Center files a v1 page without ancestors under the home page.
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &["--metadata-ttl", "0.2"]);
    mount.sh_ok("mkdir DOCS/Top");
    let home = view.page("DOCS Home");
    let placed = view.page("Top").parent_id;
    let expected = if placed.as_deref() == Some(home.id.as_str()) {
        "DOCS/DOCS Home/Top\n"
    } else {
        "DOCS/Top\n"
    };
    assert_eq!(mount.sh_ok("find DOCS -name Top"), expected);
    drop(mount);
    let fresh = Mounted::new(&server, &[]);
    assert_eq!(fresh.sh_ok("find DOCS -name Top"), expected);
}

/// Python's `open()` (an ioctl probe) and an external `umount` leave no warning in the log.
#[test]
fn ordinary_use_and_an_external_umount_log_no_warning() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let mount = Mounted::new(&server, &[]);
    py(&mount, "open(os.path.join(d, 'notes.txt')).read()");
    let pid = crate::mounted::mount_pid(&mount.path);
    let status = Command::new("umount").arg(&mount.path).status().unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if pid.is_none_or(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(mount.cache_dir.join("confluencefs.log")).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(log.contains("the mount ended"), "{log}");
}

/// A file closed empty is uploaded in the background after its RELEASE: an unmount right
/// after waits for that upload (and uploads anything still dirty) before the process ends.
#[test]
fn an_unmount_right_after_touch_keeps_the_file() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let rounds = 8;
    for i in 0..rounds {
        let mount = Mounted::new(&server, &[]);
        mount.sh_ok(&format!("touch '{GUIDE}/touched-{i}.txt'"));
        drop(mount);
    }
    let found: Vec<String> = on_server(&view, "touched-")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let want: Vec<String> = (0..rounds).map(|i| format!("touched-{i}.txt")).collect();
    assert_eq!(found, want);
}

/// Modes given at creation are kept like chmod's (here, after a remount, on the server), and
/// ownership follows one rule: everything belongs to the mounting user, chown to another owner
/// is accepted for root and changes nothing.
#[test]
fn create_modes_are_kept_and_ownership_is_the_mounting_users() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let mount = Mounted::new(&server, &[]);
    py(
        &mount,
        r#"
import stat
old = os.umask(0o022)
fd = os.open(os.path.join(d, "secret.key"), os.O_CREAT | os.O_WRONLY, 0o600)
os.write(fd, b"k"); os.close(fd)
os.mkdir(os.path.join(d, "Private"), 0o700)
open(os.path.join(d, "plain.txt"), "w").write("p")
os.umask(old)
assert stat.S_IMODE(os.stat(os.path.join(d, "secret.key")).st_mode) == 0o600
assert stat.S_IMODE(os.stat(os.path.join(d, "Private")).st_mode) == 0o700
assert stat.S_IMODE(os.stat(os.path.join(d, "plain.txt")).st_mode) == 0o644
os.chown(os.path.join(d, "plain.txt"), 1234, 1234)
st = os.stat(os.path.join(d, "plain.txt"))
assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), st
"#,
    );
    drop(mount);
    let fresh = Mounted::new(&server, &[]);
    py(
        &fresh,
        r#"
import stat
assert stat.S_IMODE(os.stat(os.path.join(d, "secret.key")).st_mode) == 0o600
assert stat.S_IMODE(os.stat(os.path.join(d, "Private")).st_mode) == 0o700
assert stat.S_IMODE(os.stat(os.path.join(d, "plain.txt")).st_mode) == 0o644
"#,
    );
}
