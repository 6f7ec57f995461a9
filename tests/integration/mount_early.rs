//! Uploads that start while a large file is still being written: the request is on its way
//! before `close`, a file that stops growing front to back gives it up without leaving
//! anything on the server, a failed early upload falls back to the ordinary one, and an
//! overwrite streams a new version. What reached the server is checked through the REST API.
//!
//! The early upload follows WRITEs, so these mounts serve them (`--no-passthrough`): through
//! FUSE passthrough the kernel writes new files itself and the upload starts at `close`
//! (`mount_passthrough.rs`).
//!
//! The files are written by a child process, step by step: a descriptor open in this (the
//! test) process would be inherited by every process another test spawns meanwhile, and each
//! of those closes it at `exec` — a FLUSH, which uploads what is written so far.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use confluencefs::confluence::Flavor;
use serde_json::json;

use crate::mount_tree::seed_tree;
use crate::mount_write::{both, ServerView, GUIDE};
use crate::mounted::Mounted;
use crate::support::{pattern, Logged, Server};

const MIB: usize = 1 << 20;

/// A child process holding one file of the mount open for writing (`O_CREAT|O_TRUNC`), which
/// writes bytes of a source file where it is told, one step at a time.
struct ChildWriter {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _source: tempfile::NamedTempFile,
}

const WRITER: &str = r#"
import os, sys
src = open(sys.argv[1], "rb")
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "close":
        os.close(fd)
        print("ok", flush=True)
        break
    start, length, at = map(int, cmd[1:])
    src.seek(start)
    while length > 0:
        chunk = src.read(min(length, 1 << 20))
        os.pwrite(fd, chunk, at)
        at += len(chunk)
        length -= len(chunk)
    print("ok", flush=True)
"#;

impl ChildWriter {
    fn open(path: &Path, source: &[u8]) -> ChildWriter {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(source).unwrap();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(WRITER)
            .arg(file.path())
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        ChildWriter {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            _source: file,
        }
    }

    fn step(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        assert_eq!(answer.trim(), "ok", "the writer failed at {command:?}");
    }

    /// Writes `source[start..start + len]` at offset `at`.
    fn write(&mut self, start: usize, len: usize, at: usize) {
        self.step(&format!("write {start} {len} {at}"));
    }

    fn close(mut self) {
        self.step("close");
        assert!(self.child.wait().unwrap().success());
    }
}

fn uploads(view: &ServerView) -> Vec<Logged> {
    view.rt
        .block_on(view.server.requests())
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/child/attachment"))
        .collect()
}

/// Waits until the server is reading an upload body that has not ended (status 0).
fn wait_for_upload_in_flight(view: &ServerView) -> Logged {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(open) = uploads(view)
            .into_iter()
            .find(|r| r.status == 0 && r.request_bytes > 0)
        {
            return open;
        }
        assert!(
            Instant::now() < deadline,
            "no upload in flight while the file is open: {:?}",
            uploads(view)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_large_copy_is_on_its_way_before_close() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &["--no-passthrough"]);
        let data = pattern(40 * MIB + 123);
        let path = mount.join(&format!("{GUIDE}/streamed.bin"));
        view.rt.block_on(server.clear_requests());

        let mut writer = ChildWriter::open(&path, &data);
        writer.write(0, 24 * MIB, 0);
        let open = wait_for_upload_in_flight(&view);
        assert!(open.request_bytes <= (24 * MIB + 4096) as u64, "{open:?}");
        writer.write(24 * MIB, data.len() - 24 * MIB, 24 * MIB);
        writer.close();

        let att = view.attachment("Guide", "streamed.bin");
        assert_eq!(
            (att.version, att.size),
            (1, data.len() as u64),
            "{flavor:?}"
        );
        assert!(view.bytes(&att) == data, "{flavor:?}: the bytes");
        let posts = uploads(&view);
        assert_eq!(posts.len(), 1, "{flavor:?}: one upload request: {posts:?}");
        assert!(posts[0].status < 300, "{posts:?}");
        // The mount sees what it uploaded.
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            data.len() as u64,
            "{flavor:?}"
        );
    });
}

#[test]
fn a_file_rewritten_mid_way_gives_the_early_upload_up_and_leaves_one_version() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &["--no-passthrough"]);
    let mut data = pattern(20 * MIB);
    let path = mount.join(&format!("{GUIDE}/rewritten.bin"));
    view.rt.block_on(server.clear_requests());

    let mut source = data.clone();
    source.extend_from_slice(b"rewritten header");
    let mut writer = ChildWriter::open(&path, &source);
    writer.write(0, data.len(), 0);
    wait_for_upload_in_flight(&view);
    // Back to the start: the bytes no longer grow front to back.
    writer.write(data.len(), 16, 0);
    data[..16].copy_from_slice(b"rewritten header");
    writer.close();

    let att = view.attachment("Guide", "rewritten.bin");
    assert_eq!(
        (att.version, att.size),
        (1, data.len() as u64),
        "{:?}",
        uploads(&view)
    );
    assert!(
        view.bytes(&att) == data,
        "the final bytes, not the first ones"
    );
    let names = view.names("Guide");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("rewritten")).count(),
        1,
        "{names:?}"
    );
    let posts = uploads(&view);
    assert_eq!(
        posts.len(),
        2,
        "the abandoned request and the upload: {posts:?}"
    );
    assert_eq!(
        posts
            .iter()
            .filter(|p| (200..300).contains(&p.status))
            .count(),
        1,
        "{posts:?}"
    );
}

#[test]
fn a_failed_early_upload_falls_back_to_the_ordinary_one() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &["--no-passthrough"]);
        let data = pattern(18 * MIB + 5);
        view.faults(
            json!({"fail_next": [500], "method": "POST", "path_contains": "/child/attachment"}),
        );
        view.rt.block_on(server.clear_requests());

        let path = mount.join(&format!("{GUIDE}/fallback.bin"));
        let mut writer = ChildWriter::open(&path, &data);
        writer.write(0, data.len(), 0);
        writer.close();

        let att = view.attachment("Guide", "fallback.bin");
        assert_eq!(
            (att.version, att.size),
            (1, data.len() as u64),
            "{flavor:?}"
        );
        assert!(view.bytes(&att) == data, "{flavor:?}");
        let posts = uploads(&view);
        assert_eq!(
            posts.iter().map(|p| p.status).collect::<Vec<_>>()[..1],
            [500],
            "{flavor:?}: {posts:?}"
        );
        assert_eq!(
            posts
                .iter()
                .filter(|p| (200..300).contains(&p.status))
                .count(),
            1,
            "{flavor:?}: {posts:?}"
        );
    });
}

#[test]
fn an_overwrite_streams_a_new_version_of_the_same_attachment() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &["--no-passthrough"]);
        let before = view.attachment("Guide", "big.bin");
        let data = pattern(30 * MIB + 7);
        let path = mount.join(&format!("{GUIDE}/big.bin"));
        view.rt.block_on(server.clear_requests());

        let mut writer = ChildWriter::open(&path, &data); // O_TRUNC
        writer.write(0, 20 * MIB, 0);
        let open = wait_for_upload_in_flight(&view);
        assert!(open.path.ends_with("/data"), "{flavor:?}: {open:?}");
        writer.write(20 * MIB, data.len() - 20 * MIB, 20 * MIB);
        writer.close();

        let after = view.attachment("Guide", "big.bin");
        assert_eq!(after.id, before.id, "{flavor:?}");
        assert_eq!(after.version, before.version + 1, "{flavor:?}");
        assert!(view.bytes(&after) == data, "{flavor:?}");
        assert_eq!(uploads(&view).len(), 1, "{flavor:?}");
    });
}

#[test]
fn small_files_are_uploaded_at_close_only() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &["--no-passthrough"]);
    let path = mount.join(&format!("{GUIDE}/small.bin"));
    view.rt.block_on(server.clear_requests());

    let mut writer = ChildWriter::open(&path, &pattern(8 * MIB));
    writer.write(0, 8 * MIB, 0);
    std::thread::sleep(Duration::from_millis(300));
    let early = uploads(&view);
    assert!(early.is_empty(), "nothing sent before close: {early:?}");
    writer.close();
    assert_eq!(uploads(&view).len(), 1);
    assert_eq!(view.attachment("Guide", "small.bin").size, 8 * MIB as u64);
}
