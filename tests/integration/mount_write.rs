//! Write-back through a real mount with real tools: `cp`, `cp -r`, `cp -a`, `rsync -a`, `tar -x`,
//! an editor's save (vim's rename dance, GNOME's temp-and-rename), mkdir/rename/rmdir of pages,
//! unlink, properties as xattrs, the errnos of refusals, and uploads surviving faults. What
//! reached the server is checked through the REST API, not through the mount.

use std::path::Path;
use std::process::Command;

use confluencefs::confluence::{Attachment, Client, Flavor, Page};
use serde_json::json;

use crate::mount_tree::seed_tree;
use crate::mounted::Mounted;
use crate::support::{page_by_title, pattern, Server};

pub(crate) const GUIDE: &str = "DOCS/DOCS Home/Guide";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Reads the server's view: the attachments of a page, with their bytes.
pub(crate) struct ServerView<'a> {
    pub(crate) server: &'a Server,
    pub(crate) rt: tokio::runtime::Runtime,
    client: Client,
}

impl<'a> ServerView<'a> {
    pub(crate) fn new(server: &'a Server) -> ServerView<'a> {
        let rt = runtime();
        let client = rt.block_on(server.client());
        ServerView { server, rt, client }
    }

    pub(crate) fn page(&self, title: &str) -> Page {
        self.rt.block_on(page_by_title(&self.client, "DOCS", title))
    }

    pub(crate) fn attachments(&self, page: &str) -> Vec<Attachment> {
        let page = self.page(page);
        let mut list = self
            .rt
            .block_on(self.client.list_attachments(&page.container()))
            .unwrap();
        list.sort_by(|a, b| a.title.cmp(&b.title));
        list
    }

    pub(crate) fn names(&self, page: &str) -> Vec<String> {
        self.attachments(page)
            .into_iter()
            .map(|a| a.title)
            .collect()
    }

    pub(crate) fn attachment(&self, page: &str, name: &str) -> Attachment {
        self.attachments(page)
            .into_iter()
            .find(|a| a.title == name)
            .unwrap_or_else(|| panic!("no {name} on {page}"))
    }

    pub(crate) fn bytes(&self, att: &Attachment) -> Vec<u8> {
        self.rt
            .block_on(
                self.client
                    .download_range(att, att.version, 0, att.size.max(1)),
            )
            .map(|b| b.to_vec())
            .or_else(|err| {
                if att.size == 0 {
                    Ok(Vec::new())
                } else {
                    Err(err)
                }
            })
            .unwrap()
    }

    pub(crate) fn faults(&self, faults: serde_json::Value) {
        self.rt.block_on(self.server.faults(faults));
    }
}

pub(crate) fn both(test: impl Fn(Flavor)) {
    test(Flavor::Cloud);
    test(Flavor::DataCenter);
}

fn local_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("Sub Page/Deeper")).unwrap();
    std::fs::write(root.join("top.txt"), b"top level\n").unwrap();
    std::fs::write(root.join("data.bin"), pattern(1_500_000)).unwrap();
    std::fs::write(root.join("Sub Page/inner.txt"), b"inner\n").unwrap();
    std::fs::write(root.join("Sub Page/Deeper/deep.txt"), b"deep\n").unwrap();
    dir
}

#[test]
fn cp_new_files_and_trees_become_attachments_and_pages() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        let src = local_tree();
        let tree = src.path().join("tree");

        mount.sh_ok(&format!(
            "cp '{}' '{GUIDE}/'",
            tree.join("data.bin").display()
        ));
        let data = view.attachment("Guide", "data.bin");
        assert_eq!(data.version, 1);
        assert!(view.bytes(&data) == pattern(1_500_000), "{flavor:?}");

        mount.sh_ok(&format!("cp -r '{}' '{GUIDE}/Tree'", tree.display()));
        assert_eq!(view.names("Tree"), ["data.bin", "top.txt"]);
        assert_eq!(view.names("Sub Page"), ["inner.txt"]);
        assert_eq!(view.names("Deeper"), ["deep.txt"]);
        let deep = view.attachment("Deeper", "deep.txt");
        assert_eq!(view.bytes(&deep), b"deep\n");
        // The copy holds each new page's text too (`Tree/Tree.md`); the source has none.
        mount.sh_ok(&format!(
            "diff -r -x '*.md' '{}' '{GUIDE}/Tree'",
            tree.display()
        ));

        // cp -a: modes and times are accepted (and kept: mount_attributes.rs), the bytes
        // uploaded.
        mount.sh_ok(&format!(
            "cp -a '{}' 'ENG/ENG Home/Preserved'",
            tree.display()
        ));
        let preserved = view
            .rt
            .block_on(page_by_title(&view.client, "ENG", "Preserved"));
        let files = view
            .rt
            .block_on(view.client.list_attachments(&preserved.container()))
            .unwrap();
        assert_eq!(files.len(), 2, "{flavor:?}");
        // A title taken elsewhere in the space is no obstacle (the page gets a unique title
        // and keeps the name: mount_attributes.rs); a name taken in the directory is.
        mount.sh_ok(&format!(
            "mkdir '{GUIDE}/Sub Page' && test -d '{GUIDE}/Sub Page'"
        ));
        let again = mount.sh(&format!("mkdir '{GUIDE}/Tree'"));
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(err.contains("File exists"), "a name taken here: {err}");
    });
}

#[test]
fn overwrite_append_and_truncate_make_new_versions_of_the_same_attachment() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        let before = view.attachment("Guide", "notes.txt");

        mount.sh_ok(&format!("printf 'rewritten\\n' > '{GUIDE}/notes.txt'"));
        let after = view.attachment("Guide", "notes.txt");
        assert_eq!(after.id, before.id, "{flavor:?}: same attachment");
        assert_eq!(
            after.version,
            before.version + 1,
            "{flavor:?}: exactly one new version"
        );
        assert_eq!(view.bytes(&after), b"rewritten\n");

        mount.sh_ok(&format!("printf 'more\\n' >> '{GUIDE}/notes.txt'"));
        let appended = view.attachment("Guide", "notes.txt");
        assert_eq!(appended.version, before.version + 2);
        assert_eq!(view.bytes(&appended), b"rewritten\nmore\n");

        // A write in the middle of a large file keeps the rest of its bytes.
        let big = format!("{GUIDE}/big.bin");
        mount.sh_ok(&format!(
            "printf 'XYZ' | dd of='{big}' bs=1 seek=1000000 conv=notrunc status=none"
        ));
        let patched = view.attachment("Guide", "big.bin");
        let mut expected = pattern(3 * 1024 * 1024 + 12_345);
        expected[1_000_000..1_000_003].copy_from_slice(b"XYZ");
        assert!(
            view.bytes(&patched) == expected,
            "{flavor:?}: patched bytes"
        );
        assert_eq!(patched.version, 2);

        mount.sh_ok(&format!("truncate -s 4 '{GUIDE}/notes.txt'"));
        // Emptying a file is uploaded when the last descriptor closes (see docs/SEMANTICS.md, Upload on close): wait for it.
        mount.sh_ok(&format!(": > '{GUIDE}/big.bin'"));
        let mut emptied = view.attachment("Guide", "big.bin");
        for _ in 0..100 {
            if emptied.size == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            emptied = view.attachment("Guide", "big.bin");
        }
        assert_eq!(
            (emptied.size, emptied.version),
            (0, 3),
            "{flavor:?}: one empty version"
        );
        let truncated = view.attachment("Guide", "notes.txt");
        assert_eq!(view.bytes(&truncated), b"rewr");
        assert_eq!(truncated.id, before.id);
        let stat = mount.sh_ok(&format!("stat -c %s '{GUIDE}/notes.txt'"));
        assert_eq!(stat.trim(), "4");
    });
}

#[test]
fn rsync_into_the_mount_leaves_no_temp_names_and_nothing_to_do() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        let src = local_tree();
        let tree = src.path().join("tree");
        mount.sh_ok(&format!("mkdir '{GUIDE}/Synced'"));
        mount.sh_ok(&format!("rsync -a '{}/' '{GUIDE}/Synced/'", tree.display()));
        let check = mount.sh_ok(&format!(
            "rsync -a --checksum --dry-run --itemize-changes '{}/' '{GUIDE}/Synced/'",
            tree.display()
        ));
        let changes: Vec<&str> = check.lines().filter(|l| !l.starts_with(".d")).collect();
        assert!(
            changes.is_empty(),
            "{flavor:?}: rsync still sees changes: {changes:?}"
        );
        assert_eq!(view.names("Synced"), ["data.bin", "top.txt"]);
        assert_eq!(view.names("Sub Page"), ["inner.txt"]);

        // Again after a change at the source: one new version, still no temp names.
        std::fs::write(tree.join("top.txt"), b"top level, edited\n").unwrap();
        mount.sh_ok(&format!("rsync -a '{}/' '{GUIDE}/Synced/'", tree.display()));
        let top = view.attachment("Synced", "top.txt");
        assert_eq!(top.version, 2, "{flavor:?}");
        assert_eq!(view.bytes(&top), b"top level, edited\n");
        assert_eq!(view.names("Synced"), ["data.bin", "top.txt"]);
    });
}

/// Runs a Python snippet with `m` bound to the mount path.
fn python(mount: &Mounted, code: &str) {
    mount.python(code);
}

#[test]
fn editor_saves_make_exactly_one_new_version() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        let before = view.attachment("Guide", "notes.txt");

        // vim's save outside /tmp (docs/FUSE-NOTES.md §4): probe 4913, move the file to a backup
        // name, write the file anew, fsync, drop the backup.
        python(
            &mount,
            &format!(
                r#"
d = os.path.join(m, {GUIDE:?})
fd = os.open(os.path.join(d, "4913"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.close(fd)
os.unlink(os.path.join(d, "4913"))
os.rename(os.path.join(d, "notes.txt"), os.path.join(d, "notes.txt~"))
fd = os.open(os.path.join(d, "notes.txt"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b"saved by vim\n")
os.fsync(fd)
os.close(fd)
os.chmod(os.path.join(d, "notes.txt"), 0o644)
os.unlink(os.path.join(d, "notes.txt~"))
"#
            ),
        );
        let after = view.attachment("Guide", "notes.txt");
        assert_eq!(after.id, before.id, "{flavor:?}: vim kept the attachment");
        assert_eq!(after.version, before.version + 1, "{flavor:?}: one version");
        assert_eq!(view.bytes(&after), b"saved by vim\n");

        // GNOME's g_file_replace: temp file, fsync, rename over the target before close.
        python(
            &mount,
            &format!(
                r#"
d = os.path.join(m, {GUIDE:?})
t = os.path.join(d, ".goutputstream-Q1W2E3")
fd = os.open(t, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.write(fd, b"saved by gedit\n")
os.fsync(fd)
os.rename(t, os.path.join(d, "notes.txt"))
os.close(fd)
"#
            ),
        );
        let after_gnome = view.attachment("Guide", "notes.txt");
        assert_eq!(after_gnome.id, before.id);
        assert_eq!(
            after_gnome.version,
            before.version + 2,
            "{flavor:?}: one more version"
        );
        assert_eq!(view.bytes(&after_gnome), b"saved by gedit\n");
        assert_eq!(
            view.names("Guide"),
            ["big.bin", "notes.txt"],
            "{flavor:?}: no stray attachment"
        );
        assert_eq!(
            mount.sh_ok(&format!("cat '{GUIDE}/notes.txt'")),
            "saved by gedit\n"
        );
        assert!(!mount.sh_ok(&format!("ls -a '{GUIDE}'")).contains('~'));
    });
}

#[test]
fn tar_extracts_pages_and_files() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    let src = local_tree();
    let archive = src.path().join("tree.tar");
    let tar = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(src.path())
        .arg("tree")
        .status()
        .unwrap();
    assert!(tar.success());
    mount.sh_ok(&format!("tar -xf '{}' -C '{GUIDE}'", archive.display()));
    assert_eq!(view.names("tree"), ["data.bin", "top.txt"]);
    assert_eq!(view.names("Deeper"), ["deep.txt"]);
}

#[test]
fn pages_are_made_renamed_moved_and_removed_with_directory_calls() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        mount.sh_ok(&format!("mkdir '{GUIDE}/Plans'"));
        let plans = view.page("Plans");
        assert_eq!(
            plans.parent_id.as_deref(),
            Some(view.page("Guide").id.as_str())
        );

        mount.sh_ok(&format!("mv '{GUIDE}/Plans' '{GUIDE}/Roadmap'"));
        let roadmap = view.page("Roadmap");
        assert_eq!(roadmap.id, plans.id, "{flavor:?}: renamed, same page");
        mount.sh_ok(&format!("mv '{GUIDE}/Roadmap' 'DOCS/DOCS Home/Roadmap'"));
        let moved = view.page("Roadmap");
        assert_eq!(
            moved.parent_id.as_deref(),
            Some(view.page("DOCS Home").id.as_str())
        );

        let not_empty = mount.sh(&format!("rmdir '{GUIDE}/Chapter One'"));
        assert!(!not_empty.status.success());
        assert!(String::from_utf8_lossy(&not_empty.stderr).contains("not empty"));
        mount.sh_ok("rmdir 'DOCS/DOCS Home/Roadmap'");
        assert!(!mount.sh_ok("ls 'DOCS/DOCS Home'").contains("Roadmap"));
        // Trashed: Confluence answers 404 for it unless asked for trashed content.
        match view.rt.block_on(view.client.get_page(&moved.id)) {
            Err(err) => assert_eq!(err.status(), Some(404), "{flavor:?}: {err}"),
            Ok(page) => assert_eq!(page.status, "trashed", "{flavor:?}"),
        }

        // Files move between pages as attachments (same id), and unlink trashes them.
        let notes = view.attachment("Guide", "notes.txt");
        mount.sh_ok(&format!(
            "mv '{GUIDE}/notes.txt' '{GUIDE}/Chapter One/notes.md'"
        ));
        let moved = view.attachment("Chapter One", "notes.md");
        assert_eq!(moved.id, notes.id);
        assert_eq!(view.names("Guide"), ["big.bin"]);
        mount.sh_ok(&format!("rm '{GUIDE}/Chapter One/notes.md'"));
        assert_eq!(view.names("Chapter One"), ["ch1.txt"]);

        // rename over an existing file: a new version of the target, the source gone.
        mount.sh_ok(&format!(
            "cp '{GUIDE}/Chapter One/ch1.txt' '{GUIDE}/copy.txt'"
        ));
        let big = view.attachment("Guide", "big.bin");
        mount.sh_ok(&format!("mv '{GUIDE}/copy.txt' '{GUIDE}/big.bin'"));
        let replaced = view.attachment("Guide", "big.bin");
        assert_eq!(replaced.id, big.id);
        assert_eq!(replaced.version, big.version + 1);
        assert_eq!(view.bytes(&replaced), b"chapter one\n");
        assert_eq!(view.names("Guide"), ["big.bin"], "{flavor:?}");
    });
}

#[test]
fn properties_are_set_read_and_removed_as_xattrs() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        let file = format!("{GUIDE}/notes.txt");
        mount.sh_ok(&format!(
            "setfattr -n user.owner -v '{{\"team\":\"docs\"}}' '{file}'"
        ));
        mount.sh_ok(&format!("setfattr -n user.state -v approved '{file}'"));
        mount.sh_ok(&format!("setfattr -n user.state -v final '{file}'"));
        mount.sh_ok(&format!("setfattr -n user.level -v 3 '{GUIDE}'"));
        let dump = mount.sh_ok(&format!("getfattr -d '{file}'"));
        assert!(
            dump.contains(r#"user.owner="{\"team\":\"docs\"}""#),
            "{dump}"
        );
        assert!(dump.contains(r#"user.state="\"final\"""#), "{dump}");
        let att = view.attachment("Guide", "notes.txt");
        let state = view
            .rt
            .block_on(view.client.get_property(&att.id, "state"))
            .unwrap()
            .unwrap();
        assert_eq!(state.value, json!("final"), "{flavor:?}");
        assert_eq!(state.version, 2, "{flavor:?}: updated, not recreated");
        let level = view
            .rt
            .block_on(view.client.get_property(&view.page("Guide").id, "level"))
            .unwrap()
            .unwrap();
        assert_eq!(level.value, json!(3));

        mount.sh_ok(&format!("setfattr -x user.state '{file}'"));
        assert!(view
            .rt
            .block_on(view.client.get_property(&att.id, "state"))
            .unwrap()
            .is_none());
        let missing = mount.sh(&format!("setfattr -x user.state '{file}'"));
        assert!(!missing.status.success());

        let refused = mount.sh(&format!("setfattr -n user.confluence.id -v 1 '{file}'"));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("Operation not permitted"));

        // The comment of the next version.
        mount.sh_ok(&format!(
            "setfattr -n user.confluence.comment -v 'fixed typo' '{file}'"
        ));
        mount.sh_ok(&format!("printf 'typo fixed\\n' > '{file}'"));
        let commented = view.attachment("Guide", "notes.txt");
        assert_eq!(commented.comment, "fixed typo", "{flavor:?}");
    });
}

#[test]
fn refusals_reach_close_with_the_right_errno_and_lose_nothing() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &["--max-file-size", "1M"]);

    let too_big = mount.sh(&format!("head -c 2000000 /dev/zero > '{GUIDE}/huge.bin'"));
    assert!(!too_big.status.success());
    assert!(
        String::from_utf8_lossy(&too_big.stderr).contains("File too large"),
        "{}",
        String::from_utf8_lossy(&too_big.stderr)
    );
    let cp_big = mount.sh(&format!("head -c 2000000 /dev/zero > /tmp/cfs-big && cp /tmp/cfs-big '{GUIDE}/big2.bin'; rm -f /tmp/cfs-big"));
    assert!(String::from_utf8_lossy(&cp_big.stderr).contains("File too large"));
    assert_eq!(
        view.names("Guide"),
        ["big.bin", "notes.txt"],
        "nothing cut short was uploaded"
    );

    mount.sh_ok(&format!("ls '{GUIDE}'"));
    view.rt.block_on(server.clear_requests());
    view.faults(json!({"fail_next": [403]}));
    let denied = mount.sh(&format!("cp /etc/hostname '{GUIDE}/denied.txt'"));
    let log = view.rt.block_on(server.requests());
    assert!(!denied.status.success(), "{log:?}");
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("Permission denied"), "{err}");
    let pending = pending(&mount);
    assert!(pending.contains("denied.txt"), "{pending}");
}

fn pending(mount: &Mounted) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_confluencefs"))
        .arg("pending")
        .arg(&mount.path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn upload_faults_are_absorbed() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    let src = local_tree();
    let data = src.path().join("tree/data.bin");
    view.faults(json!({"fail_next": [500, 503, 429], "retry_after": 0}));
    mount.sh_ok(&format!("cp '{}' '{GUIDE}/a.bin'", data.display()));
    view.faults(json!({"reset_next": 1}));
    mount.sh_ok(&format!("cp '{}' '{GUIDE}/b.bin'", data.display()));
    view.faults(json!({}));
    for name in ["a.bin", "b.bin"] {
        let att = view.attachment("Guide", name);
        assert_eq!(att.version, 1, "{name}: uploaded once");
        assert!(view.bytes(&att) == pattern(1_500_000), "{name}");
    }
}

#[test]
fn two_writers_of_one_file_end_with_one_whole_version_each() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    let src = tempfile::tempdir().unwrap();
    let a = "A".repeat(200_000);
    let b = "B".repeat(300_000);
    std::fs::write(src.path().join("a"), &a).unwrap();
    std::fs::write(src.path().join("b"), &b).unwrap();
    let dir = src.path().display();
    mount.sh_ok(&format!(
        "(cat '{dir}/a' > '{GUIDE}/notes.txt') & (cat '{dir}/b' > '{GUIDE}/notes.txt') & wait"
    ));
    let att = view.attachment("Guide", "notes.txt");
    let final_bytes = view.bytes(&att);
    // Both writers share one file (as on any filesystem): the result is the bytes of the one
    // that truncated last, possibly with the other's written over its start — but every upload
    // was whole, and nothing failed.
    assert!(
        [200_000, 300_000].contains(&final_bytes.len()),
        "{} bytes",
        final_bytes.len()
    );
    assert!(final_bytes.iter().all(|c| *c == b'A' || *c == b'B'));
    assert!(att.version >= 2);
    let local = std::fs::read(mount.join(&format!("{GUIDE}/notes.txt"))).unwrap();
    assert_eq!(local.len(), final_bytes.len());
}

#[test]
fn server_down_during_cp_reports_the_error_and_uploads_later() {
    let (seed, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    seed_tree(seed.path());
    let server =
        crate::mount_faults::persistent_server(Flavor::Cloud, seed.path(), data.path(), None);
    let addr = crate::mount_faults::listen_addr(&server);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!("ls '{GUIDE}'"));
    drop(server);

    let src = local_tree();
    let file = src.path().join("tree/data.bin");
    let failed = mount.sh(&format!("cp '{}' '{GUIDE}/offline.bin'", file.display()));
    assert!(!failed.status.success(), "cp must report the failed upload");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("Input/output error"));
    assert!(pending(&mount).contains("offline.bin"));
    // The file is still there, with its bytes, while it waits.
    let local = std::fs::read(mount.join(&format!("{GUIDE}/offline.bin"))).unwrap();
    assert!(local == pattern(1_500_000));

    let back =
        crate::mount_faults::persistent_server(Flavor::Cloud, seed.path(), data.path(), Some(addr));
    let view = ServerView::new(&back);
    let mut uploaded = None;
    for _ in 0..120 {
        if let Some(att) = view
            .attachments("Guide")
            .into_iter()
            .find(|a| a.title == "offline.bin")
        {
            uploaded = Some(att);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let att = uploaded.expect("the spool delivered the file after the server came back");
    assert!(view.bytes(&att) == pattern(1_500_000));
    assert_eq!(
        view.names("Guide")
            .iter()
            .filter(|n| *n == "offline.bin")
            .count(),
        1
    );
}

#[test]
fn kill_9_during_an_upload_then_remount_delivers_the_file_once() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let cache = tempfile::tempdir().unwrap();
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    mount.sh_ok(&format!("ls '{GUIDE}'"));
    let src = local_tree();
    let file = src.path().join("tree/data.bin");

    view.faults(json!({"latency_ms": 3000}));
    let mut cp = Command::new("cp")
        .arg(&file)
        .arg(mount.join(&format!("{GUIDE}/crash.bin")))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the bytes are in the spool, then kill the mount process.
    let spool_has_it = |dir: &Path| {
        walk(dir).iter().any(|p| {
            p.ends_with("record.json")
                && std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .contains("crash.bin")
        })
    };
    for _ in 0..200 {
        if spool_has_it(cache.path()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(
        spool_has_it(cache.path()),
        "the upload never reached the spool"
    );
    let pid = crate::mounted::mount_pid(&mount.path).expect("the mount process");
    Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let _ = cp.wait();
    crate::mounted::unmount(&mount.path);
    view.faults(json!({}));
    // Let a request that was already in flight land (or not) before the remount checks.
    std::thread::sleep(std::time::Duration::from_millis(3500));

    let again = Mounted::with_cache(&server, &[], cache.path(), None);
    let mut found = Vec::new();
    for _ in 0..120 {
        found = view
            .attachments("Guide")
            .into_iter()
            .filter(|a| a.title == "crash.bin")
            .collect();
        if !found.is_empty() && !spool_has_it(cache.path()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(found.len(), 1, "exactly one attachment");
    assert_eq!(found[0].version, 1, "uploaded once");
    assert!(view.bytes(&found[0]) == pattern(1_500_000));
    drop(again);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_full_staging_disk_gives_enospc_to_the_writer() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let cache = tempfile::tempdir().unwrap();
    let tmpfs = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
        .arg(cache.path())
        .status()
        .unwrap();
    assert!(tmpfs.success(), "mounting a small tmpfs for the cache");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _tmpfs = Unmount(cache.path());
    let mount = Mounted::with_cache(&server, &["--cache-size", "0"], cache.path(), None);
    let full = mount.sh(&format!("head -c 8000000 /dev/zero > '{GUIDE}/full.bin'"));
    assert!(!full.status.success());
    let err = String::from_utf8_lossy(&full.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    // The bytes that did fit are kept (nothing written is dropped silently); once the user
    // removes the file that filled the disk, writing works again.
    let kept = std::fs::metadata(mount.join(&format!("{GUIDE}/full.bin"))).unwrap();
    assert!(kept.len() > 0);
    mount.sh_ok(&format!("rm '{GUIDE}/full.bin'"));
    mount.sh_ok(&format!("printf small > '{GUIDE}/small.txt'"));
    let view = ServerView::new(&server);
    assert_eq!(view.bytes(&view.attachment("Guide", "small.txt")), b"small");
    drop(mount);
}

#[test]
fn links_and_device_nodes_are_refused_with_eperm() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let mount = Mounted::new(&server, &[]);
    for script in [
        format!("ln -s notes.txt '{GUIDE}/link'"),
        format!("ln '{GUIDE}/notes.txt' '{GUIDE}/hard'"),
        format!("mknod '{GUIDE}/fifo' p"),
    ] {
        let output = mount.sh(&script);
        assert!(!output.status.success(), "{script}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("Operation not permitted"), "{script}: {err}");
    }
    // chmod, chown to oneself and utimens succeed (cp -a and rsync -a need them).
    mount.sh_ok(&format!(
        "chmod 600 '{GUIDE}/notes.txt' && chown $(id -u):$(id -g) '{GUIDE}/notes.txt' \
         && touch -d 2020-01-02 '{GUIDE}/notes.txt'"
    ));
    let stat = mount.sh_ok(&format!("stat -c '%a %y' '{GUIDE}/notes.txt'"));
    assert!(stat.starts_with("600 2020-01-02"), "{stat}");
}

/// Random sequences of create/overwrite/append/rename/unlink/read in one page directory,
/// compared after every step with an in-memory model, and at the end with the server:
/// every ordinary name is an attachment with the model's bytes, and no scratch name is.
#[test]
fn random_operation_sequences_match_a_model() {
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    let names = ["a.txt", "b.txt", "c.bin", "a.txt~", ".b.txt.Xy12Z3", "4913"];
    let seeds: Vec<u64> = match std::env::var("CONFLUENCEFS_MODEL_SEEDS") {
        Ok(n) => (0..n.parse().unwrap_or(3)).collect(),
        Err(_) => vec![7, 21, 1234, 99, 4242],
    };
    for seed in seeds {
        let server = Server::start_seeded(Flavor::Cloud, seed_tree);
        let mount = Mounted::new(&server, &[]);
        mount.sh_ok(&format!("mkdir '{GUIDE}/Model'"));
        let dir = mount.join(&format!("{GUIDE}/Model"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut model: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        let mut log = Vec::new();
        for step in 0..60 {
            let name = names[rng.random_range(0..names.len())];
            let other = names[rng.random_range(0..names.len())];
            let op = rng.random_range(0..6);
            let data: Vec<u8> = (0..rng.random_range(0..3000))
                .map(|_| rng.random_range(b'a'..=b'z'))
                .collect();
            log.push(format!(
                "{step}: op {op} {name} {other} ({} bytes)",
                data.len()
            ));
            let path = dir.join(name);
            match op {
                0 | 1 => {
                    std::fs::write(&path, &data).unwrap_or_else(|e| panic!("{log:?}: {e}"));
                    model.insert(name, data);
                }
                2 if model.contains_key(name) => {
                    use std::io::Write;
                    let mut file = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&path)
                        .unwrap();
                    file.write_all(&data).unwrap();
                    drop(file);
                    model.get_mut(name).unwrap().extend_from_slice(&data);
                }
                3 if model.contains_key(name) && name != other => {
                    std::fs::rename(&path, dir.join(other))
                        .unwrap_or_else(|e| panic!("{log:?}: {e}"));
                    let bytes = model.remove(name).unwrap();
                    model.insert(other, bytes);
                }
                4 if model.contains_key(name) => {
                    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{log:?}: {e}"));
                    model.remove(name);
                }
                _ => {}
            }
            for (name, bytes) in &model {
                let got = std::fs::read(dir.join(name))
                    .unwrap_or_else(|e| panic!("seed {seed} {log:?}: read {name}: {e}"));
                assert!(
                    got == *bytes,
                    "seed {seed}, after {log:?}: {name} differs: {} bytes, want {}",
                    got.len(),
                    bytes.len()
                );
            }
            let mut listed: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| !crate::support::is_page_text(&dir, name))
                .collect();
            listed.sort();
            let expected: Vec<String> = model.keys().map(|k| k.to_string()).collect();
            assert_eq!(listed, expected, "seed {seed}, after {log:?}");
        }
        // Tools delete their scratch files when done; a file renamed to a scratch name stays
        // on the server under its old name until then (docs/SEMANTICS.md, "Scratch files stay local").
        for name in model
            .keys()
            .filter(|n| confluencefs::fs::tempname::is_temporary(n))
        {
            std::fs::remove_file(dir.join(name)).unwrap_or_else(|e| panic!("{log:?}: {e}"));
        }
        model.retain(|name, _| !confluencefs::fs::tempname::is_temporary(name));
        let view = ServerView::new(&server);
        let mut on_server: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for att in view.attachments("Model") {
            on_server.insert(att.title.clone(), view.bytes(&att));
        }
        let expected: BTreeMap<String, Vec<u8>> = model
            .iter()
            .filter(|(name, _)| !confluencefs::fs::tempname::is_temporary(name))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(
            on_server.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "seed {seed}: {log:?}"
        );
        for (name, bytes) in &expected {
            assert!(
                on_server[name] == *bytes,
                "seed {seed}: {name} on the server differs"
            );
        }
    }
}
