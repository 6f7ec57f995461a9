//! FUSE passthrough through a real mount (root, Linux 6.9+; CI runs as root on 6.18): a file
//! being written goes straight to its staging file in the kernel, and what the kernel wrote
//! without us still reaches the server, once, whole. Each test checks the server through REST.
//!
//! That the WRITEs really bypass the mount process is measured in its `/proc/PID/io`: through
//! FUSE, each written byte is read by the process from `/dev/fuse` and again from the staging
//! file for the upload; through passthrough, only the upload reads it.

use confluencefs::confluence::Flavor;
use serde_json::{json, Value};

use crate::mount_tree::seed_tree;
use crate::mount_write::{both, ServerView, GUIDE};
use crate::mounted::{mount_pid, Mounted};
use crate::support::{pattern, Server};

/// Bytes the process `pid` has read with read(2) and its kind so far (`rchar`).
fn bytes_read(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    io.lines()
        .find_map(|line| line.strip_prefix("rchar:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("rchar")
}

/// `status MOUNTPOINT --json`, polled until its passthrough part is there (written every second).
fn passthrough_status(mount: &Mounted, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_confluencefs"))
            .args(["status", &mount.path.to_string_lossy(), "--json"])
            .output()
            .unwrap();
        let document: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        let report = document["mounts"][0]["passthrough"].clone();
        if wanted(&report) || std::time::Instant::now() > deadline {
            return report;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_large_copy_bypasses_the_mount_process_and_lands_whole() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        let size = 24 << 20;
        let source = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(source.path(), pattern(size)).unwrap();
        mount.sh_ok(&format!("ls '{GUIDE}' >/dev/null"));
        let pid = mount_pid(&mount.path).expect("the mount's process");
        let before = bytes_read(pid);

        mount.sh_ok(&format!(
            "cp '{}' '{GUIDE}/copied.bin'",
            source.path().display()
        ));

        let read = bytes_read(pid) - before;
        let copied = view.attachment("Guide", "copied.bin");
        assert_eq!(copied.size, size as u64, "{flavor:?}");
        assert!(view.bytes(&copied) == pattern(size), "{flavor:?}");
        // The upload reads the staging file once (24 MiB); through FUSE the WRITEs would add
        // another 24 MiB read from /dev/fuse.
        assert!(
            read < size as u64 * 3 / 2,
            "{flavor:?}: the mount process read {read} bytes for a {size}-byte copy"
        );
        let report = passthrough_status(&mount, |r| r["opened"].as_u64() >= Some(1));
        assert_eq!(report["on"], json!(true), "{report}");
        assert!(report["opened"].as_u64() >= Some(1), "{report}");
    });
}

#[test]
fn without_passthrough_the_writes_go_through_the_mount_process() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &["--no-passthrough"]);
    let size = 8 << 20;
    mount.sh_ok(&format!("ls '{GUIDE}' >/dev/null"));
    let pid = mount_pid(&mount.path).expect("the mount's process");
    let before = bytes_read(pid);
    mount.sh_ok(&format!(
        "head -c {size} /dev/urandom > /tmp/cfs-pt-$$ && cp /tmp/cfs-pt-$$ '{GUIDE}/plain.bin'; rm -f /tmp/cfs-pt-$$"
    ));
    let read = bytes_read(pid) - before;
    assert_eq!(view.attachment("Guide", "plain.bin").size, size as u64);
    assert!(read >= size as u64 * 2, "read {read} for {size}");
    let report = passthrough_status(&mount, |r| r["off_because"].is_string());
    assert_eq!(report["on"], json!(false), "{report}");
    assert_eq!(report["off_because"], json!("--no-passthrough"), "{report}");
    assert_eq!(report["opened"], json!(0), "{report}");
}

/// The kernel's writes are found by the staging file's size and modification time: a rewrite
/// of the same size after an upload must still count.
#[test]
fn a_same_size_rewrite_after_an_upload_is_uploaded_again() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let view = ServerView::new(&server);
        let mount = Mounted::new(&server, &[]);
        mount.python(&format!(
            "p = os.path.join(m, {GUIDE:?}, 'same.bin')\n\
             fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)\n\
             os.write(fd, b'A' * 65536)\n\
             os.fsync(fd)\n\
             os.pwrite(fd, b'B' * 65536, 0)\n\
             os.close(fd)\n"
        ));
        let same = view.attachment("Guide", "same.bin");
        assert_eq!(same.version, 2, "{flavor:?}: fsync made 1, the rewrite 2");
        assert_eq!(view.bytes(&same), vec![b'B'; 65536], "{flavor:?}");
        // And at once, with no fsync between: the first close uploads the last bytes only.
        mount.python(&format!(
            "p = os.path.join(m, {GUIDE:?}, 'quick.bin')\n\
             fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)\n\
             os.write(fd, b'1' * 4096)\n\
             os.pwrite(fd, b'2' * 4096, 0)\n\
             os.close(fd)\n"
        ));
        let quick = view.attachment("Guide", "quick.bin");
        assert_eq!(quick.version, 1, "{flavor:?}");
        assert_eq!(view.bytes(&quick), vec![b'2'; 4096], "{flavor:?}");
    });
}

/// A second descriptor of a file being written shares the kernel's view of it: a reader
/// opened while the writer writes, `mmap`, and a shell append through a second open.
#[test]
fn readers_mmap_and_second_writers_of_a_new_file_see_one_file() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    let out = mount.python(&format!(
        "import mmap\n\
         p = os.path.join(m, {GUIDE:?}, 'shared.bin')\n\
         w = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)\n\
         os.write(w, b'x' * 8192)\n\
         r = os.open(p, os.O_RDONLY)\n\
         print(os.pread(r, 8192, 0) == b'x' * 8192)\n\
         mm = mmap.mmap(w, 8192)\n\
         mm[0:5] = b'hello'\n\
         mm.flush()\n\
         mm.close()\n\
         print(os.pread(r, 5, 0))\n\
         a = os.open(p, os.O_WRONLY | os.O_APPEND)\n\
         os.write(a, b'tail')\n\
         os.close(a)\n\
         print(os.fstat(r).st_size)\n\
         os.close(r)\n\
         os.close(w)\n"
    ));
    assert_eq!(out, "True\nb'hello'\n8196\n");
    let shared = view.attachment("Guide", "shared.bin");
    let mut expected = b"hello".to_vec();
    expected.extend(vec![b'x'; 8192 - 5]);
    expected.extend(b"tail");
    assert_eq!(view.bytes(&shared), expected);
}

/// Past `--max-file-size` the file is refused whole with EFBIG: through passthrough the
/// kernel's write cannot be refused, so `close` is.
#[test]
fn a_file_past_the_size_limit_is_refused_at_close_and_not_uploaded() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &["--max-file-size", "1M"]);
    let out = mount.python(&format!(
        "p = os.path.join(m, {GUIDE:?}, 'huge.bin')\n\
         fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)\n\
         try:\n    os.write(fd, b'z' * 2000000)\n    print('written')\n\
         except OSError as e:\n    print(errno.errorcode[e.errno])\n\
         try:\n    os.close(fd)\n    print('closed')\n\
         except OSError as e:\n    print(errno.errorcode[e.errno])\n"
    ));
    assert_eq!(out, "written\nEFBIG\n");
    assert_eq!(view.names("Guide"), ["big.bin", "notes.txt"]);
}

/// An upload refused while the file is still open: the spool keeps bytes of its own (the
/// kernel may go on writing the staging file), and the next close sends the newer bytes.
#[test]
fn a_refused_upload_keeps_its_own_bytes_and_the_next_close_sends_the_newer() {
    let server = Server::start_seeded(Flavor::DataCenter, seed_tree);
    let view = ServerView::new(&server);
    let mount = Mounted::new(&server, &[]);
    mount.sh_ok(&format!("ls '{GUIDE}' >/dev/null"));
    let spool = mount.cache_dir.clone();
    view.faults(json!({"fail_next": [403]}));
    let out = mount.python(&format!(
        "import glob\n\
         p = os.path.join(m, {GUIDE:?}, 'later.txt')\n\
         fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)\n\
         os.write(fd, b'first')\n\
         try:\n    os.fsync(fd)\n    print('synced')\n\
         except OSError as e:\n    print(errno.errorcode[e.errno])\n\
         datas = glob.glob({spool:?} + '/**/spool/*/data', recursive=True)\n\
         print(len(datas), [os.stat(d).st_nlink for d in datas], [open(d, 'rb').read() for d in datas])\n\
         print(['403' in open(os.path.join(os.path.dirname(d), 'record.json')).read() for d in datas])\n\
         os.pwrite(fd, b'second', 0)\n\
         print([open(d, 'rb').read() for d in datas])\n\
         os.close(fd)\n",
        spool = spool.display().to_string()
    ));
    assert_eq!(
        out, "EACCES\n1 [1] [b'first']\n[True]\n[b'first']\n",
        "the spool's bytes are its own, its record the refusal"
    );
    let later = view.attachment("Guide", "later.txt");
    assert_eq!(view.bytes(&later), b"second");
    assert_eq!(
        later.version, 1,
        "the refused bytes were superseded, not sent"
    );
}

/// A version wholly in the disk cache is read by the kernel from the cache's file: on a
/// read-only mount, in `@versions`, and current versions on a writable one (a writer takes the
/// file over, see below). The re-read after a remount then costs no request and no READ
/// through the mount process.
#[test]
fn cached_versions_are_read_by_the_kernel_from_the_disk_cache() {
    let size = 16 << 20;
    let server = Server::start_seeded(Flavor::DataCenter, |root| {
        seed_tree(root);
        crate::support::write(root, "DOCS/Guide/film.bin", &pattern(size));
    });
    let view = ServerView::new(&server);
    let cache = tempfile::tempdir().unwrap();
    let film = format!("{GUIDE}/film.bin");
    {
        let mount = Mounted::with_cache(&server, &["--read-only"], cache.path(), None);
        mount.sh_ok(&format!("cat '{film}' > /dev/null"));
    }
    let mount = Mounted::with_cache(&server, &["--read-only"], cache.path(), None);
    mount.sh_ok(&format!("stat '{film}' > /dev/null"));
    let pid = mount_pid(&mount.path).expect("the mount's process");
    view.rt.block_on(server.clear_requests());
    let before = bytes_read(pid);
    assert!(std::fs::read(mount.join(&film)).unwrap() == pattern(size));
    let read = bytes_read(pid) - before;
    assert!(view.rt.block_on(server.requests()).is_empty());
    // Through FUSE the process would read the 16 MiB from its cache to answer the READs.
    assert!(
        read < size as u64 / 4,
        "the mount process read {read} bytes"
    );
    let report = passthrough_status(&mount, |r| r["opened"].as_u64() >= Some(1));
    assert!(report["opened"].as_u64() >= Some(1), "{report}");
    drop(mount);

    // A writable mount reads current versions from the cache too, and old ones.
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    mount.sh_ok(&format!("stat '{film}' > /dev/null"));
    let pid = mount_pid(&mount.path).expect("the mount's process");
    view.rt.block_on(server.clear_requests());
    let before = bytes_read(pid);
    assert!(std::fs::read(mount.join(&film)).unwrap() == pattern(size));
    let read = bytes_read(pid) - before;
    assert!(view.rt.block_on(server.requests()).is_empty());
    assert!(
        read < size as u64 / 4,
        "the mount process read {read} bytes"
    );
    mount.sh_ok(&format!("echo newer > '{film}'"));
    assert_eq!(view.attachment("Guide", "film.bin").version, 2);
    let old = format!("{GUIDE}/@versions/film.bin/1.bin");
    let before = bytes_read(pid);
    assert!(std::fs::read(mount.join(&old)).unwrap() == pattern(size));
    let old_read = bytes_read(pid) - before;
    assert!(
        old_read < size as u64 / 4,
        "read {old_read} for the old version"
    );
    assert_eq!(mount.sh_ok(&format!("cat '{film}'")), "newer\n");
}

/// A mount whose disk cache holds all of `film.bin` (`size` bytes of `pattern`), read whole
/// through an earlier mount.
fn cached_film(size: usize) -> (Server, tempfile::TempDir, String) {
    let server = Server::start_seeded(Flavor::DataCenter, |root| {
        seed_tree(root);
        crate::support::write(root, "DOCS/Guide/film.bin", &pattern(size));
    });
    let cache = tempfile::tempdir().unwrap();
    let film = format!("{GUIDE}/film.bin");
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    mount.sh_ok(&format!("cat '{film}' > /dev/null"));
    drop(mount);
    (server, cache, film)
}

/// On a writable mount the kernel reads a cached current version from the disk cache's file,
/// and the kernel sends every open of that file to the same file: so a writer that comes while
/// a reader holds it takes the cache's file over as its staging file. Its bytes reach the
/// server as the next version, the reader sees them (one file, as on a local disk), and the
/// cache never serves them as the old version — not in this mount, not after a remount.
#[test]
fn a_writer_takes_over_the_cache_file_the_kernel_reads() {
    use std::io::{Read, Seek, SeekFrom, Write};
    let size = 8 << 20;
    let (server, cache, film) = cached_film(size);
    let view = ServerView::new(&server);
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    let mut reader = std::fs::File::open(mount.join(&film)).unwrap();
    let mut head = vec![0; 4096];
    reader.read_exact(&mut head).unwrap();
    assert!(head == pattern(size)[..4096]);
    let report = passthrough_status(&mount, |r| r["opened"].as_u64() >= Some(1));
    assert!(report["opened"].as_u64() >= Some(1), "{report}");

    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .open(mount.join(&film))
        .unwrap();
    writer.seek(SeekFrom::Start(1 << 20)).unwrap();
    writer.write_all(b"written while read").unwrap();
    drop(writer);

    let mut expected = pattern(size);
    expected[1 << 20..(1 << 20) + 18].copy_from_slice(b"written while read");
    let now = view.attachment("Guide", "film.bin");
    assert_eq!(now.version, 2);
    assert!(view.bytes(&now) == expected, "the server has other bytes");
    // The reader reads the same file.
    let mut seen = vec![0; 18];
    reader.seek(SeekFrom::Start(1 << 20)).unwrap();
    reader.read_exact(&mut seen).unwrap();
    assert_eq!(seen, b"written while read");
    assert!(std::fs::read(mount.join(&film)).unwrap() == expected);
    // Version 1 is still version 1, from the server now.
    let old = format!("{GUIDE}/@versions/film.bin/1.bin");
    assert!(std::fs::read(mount.join(&old)).unwrap() == pattern(size));
    drop(reader);
    drop(mount);

    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    assert!(std::fs::read(mount.join(&old)).unwrap() == pattern(size));
    assert!(std::fs::read(mount.join(&film)).unwrap() == expected);
}

/// A truncation by path and a delete while the kernel reads the cache's file: the truncation
/// is the next version (and what the reader sees), and a deleted file stays readable whole
/// to the reader that holds it, while nothing of it comes back.
#[test]
fn truncation_and_deletion_while_the_kernel_reads_the_cache_file() {
    use std::io::Read;
    let size = 4 << 20;
    let (server, cache, film) = cached_film(size);
    let view = ServerView::new(&server);
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);

    let reader = std::fs::File::open(mount.join(&film)).unwrap();
    mount.sh_ok(&format!("truncate -s 1000 '{film}'"));
    let now = view.attachment("Guide", "film.bin");
    assert_eq!((now.version, now.size), (2, 1000));
    assert!(view.bytes(&now) == pattern(size)[..1000]);
    assert_eq!(reader.metadata().unwrap().len(), 1000);
    drop(reader);

    // The next reader after a remount is handed the cache's file again (version 2 now).
    drop(mount);
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    assert!(std::fs::read(mount.join(&film)).unwrap() == pattern(size)[..1000]);
    drop(mount);
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    let mut reader = std::fs::File::open(mount.join(&film)).unwrap();
    mount.sh_ok(&format!("rm '{film}'"));
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert!(
        all == pattern(size)[..1000],
        "the reader lost the deleted file's bytes"
    );
    drop(reader);
    assert!(view
        .attachments("Guide")
        .iter()
        .all(|a| a.title != "film.bin"));
    assert!(!mount.join(&film).exists());
}
