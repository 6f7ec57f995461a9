//! The tree through a real mount, read with the ordinary tools, on both flavors: `find`, `ls
//! -lR`, `du`, `stat`, `cat | sha256sum`, `cp -r`, `rsync -a` (twice), `getfattr`, history
//! under `@versions`, and names that need escaping.

use std::path::Path;
use std::time::UNIX_EPOCH;

use confluencefs::confluence::{ContainerRef, Flavor, NewAttachment, UploadSource};

use crate::mounted::Mounted;
use crate::support::{page_by_title, pattern, write, Server};

/// 3 MiB: several cache blocks, and a short last one.
const BIG: usize = 3 * 1024 * 1024 + 12_345;

pub(crate) fn seed_tree(root: &Path) {
    write(root, "DOCS/readme.txt", b"read me first\n");
    write(root, "DOCS/Guide/notes.txt", b"hello notes\n");
    write(
        root,
        "DOCS/Guide/notes.txt.properties.json",
        br#"{"status": "draft", "reviewers": ["ann", "bob"]}"#,
    );
    write(root, "DOCS/Guide/big.bin", &pattern(BIG));
    write(root, "DOCS/Guide/Chapter One/ch1.txt", b"chapter one\n");
    write(
        root,
        "DOCS/@blog/2026-01-15 Launch Notes/launch.txt",
        b"we launched\n",
    );
    write(root, "ENG/Runbook/run.sh", b"#!/bin/sh\necho run\n");
}

/// The files the seed above becomes, as paths inside the mount, with their bytes.
fn expected_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "DOCS/@blog/2026-01-15 Launch Notes/launch.txt",
            b"we launched\n".to_vec(),
        ),
        (
            "DOCS/DOCS Home/Guide/Chapter One/ch1.txt",
            b"chapter one\n".to_vec(),
        ),
        ("DOCS/DOCS Home/Guide/big.bin", pattern(BIG)),
        ("DOCS/DOCS Home/Guide/notes.txt", b"hello notes\n".to_vec()),
        ("DOCS/DOCS Home/readme.txt", b"read me first\n".to_vec()),
        (
            "ENG/ENG Home/Runbook/run.sh",
            b"#!/bin/sh\necho run\n".to_vec(),
        ),
    ]
}

fn both(test: impl Fn(Flavor)) {
    test(Flavor::Cloud);
    test(Flavor::DataCenter);
}

#[test]
fn find_ls_du_stat_and_cat_match_the_server() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let mount = Mounted::new(&server, &[]);
        let expected = expected_files();

        // Attachments; every page directory also holds its text (`mount_pages.rs`).
        let found = mount.sh_ok("find . -type f ! -name '*.md' | sort");
        let found: Vec<&str> = found.lines().map(|l| l.trim_start_matches("./")).collect();
        let wanted: Vec<&str> = expected.iter().map(|(p, _)| *p).collect();
        assert_eq!(found, wanted, "{flavor:?}");
        assert_eq!(
            mount.sh_ok("find . -type f ! -name '*.md' | wc -l").trim(),
            "6"
        );

        let listing = mount.sh_ok("ls -lR");
        assert!(listing.contains("Chapter One"), "{listing}");
        assert!(listing.contains("big.bin"), "{listing}");

        let total: usize = expected.iter().map(|(_, data)| data.len()).sum();
        let du = mount.sh_ok("du -sb .");
        assert_eq!(
            du.split_whitespace().next(),
            Some(total.to_string().as_str())
        );
        // `du` without -b counts st_blocks: each file rounded up to 512 bytes, in KiB.
        let blocks: usize = expected.iter().map(|(_, d)| d.len().div_ceil(512)).sum();
        let du_k = mount.sh_ok("du -s --block-size=512 .");
        assert_eq!(
            du_k.split_whitespace().next(),
            Some(blocks.to_string().as_str())
        );

        for (path, data) in &expected {
            let bytes = std::fs::read(mount.join(path)).unwrap();
            assert!(bytes == *data, "{flavor:?}: {path} differs");
        }
        let local = tempfile::tempdir().unwrap();
        std::fs::write(local.path().join("big.bin"), pattern(BIG)).unwrap();
        let remote_sum = mount.sh_ok("cat 'DOCS/DOCS Home/Guide/big.bin' | sha256sum");
        let local_sum = std::process::Command::new("sh")
            .arg("-c")
            .arg("sha256sum < big.bin")
            .current_dir(local.path())
            .output()
            .unwrap();
        assert_eq!(remote_sum, String::from_utf8_lossy(&local_sum.stdout));

        let stat = mount.sh_ok("stat -c '%s %Y %F %a' 'DOCS/DOCS Home/Guide/big.bin'");
        let fields: Vec<&str> = stat.split_whitespace().collect();
        assert_eq!(fields[0], BIG.to_string());
        assert_eq!(fields[2..], ["regular", "file", "644"]);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let att = runtime.block_on(async {
            let client = server.client().await;
            let guide = page_by_title(&client, "DOCS", "Guide").await;
            client
                .find_attachment(&guide.container(), "big.bin")
                .await
                .unwrap()
                .unwrap()
        });
        let when = att.modified.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(fields[1], when.to_string(), "mtime is the version's time");
    });
}

#[test]
fn cp_and_rsync_copy_out_byte_identical_and_rsync_twice_moves_nothing() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let mount = Mounted::new(&server, &[]);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().display().to_string();

        mount.sh_ok(&format!("cp -r DOCS '{dest}/cp'"));
        mount.sh_ok(&format!("diff -r DOCS '{dest}/cp'"));

        mount.sh_ok(&format!("rsync -a ./ '{dest}/rsync/'"));
        mount.sh_ok(&format!("diff -r . '{dest}/rsync'"));
        let stats = mount.sh_ok(&format!("rsync -a --stats ./ '{dest}/rsync/'"));
        assert!(
            stats.contains("Number of regular files transferred: 0"),
            "{flavor:?}: second rsync moved files:\n{stats}"
        );
    });
}

#[test]
fn xattrs_show_properties_and_metadata() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let mount = Mounted::new(&server, &[]);
        let dump = mount.sh_ok("getfattr -d 'DOCS/DOCS Home/Guide/notes.txt'");
        assert!(dump.contains(r#"user.status="\"draft\"""#), "{dump}");
        assert!(
            dump.contains(r#"user.reviewers="[\"ann\",\"bob\"]""#),
            "{dump}"
        );
        assert!(dump.contains("user.confluence.version=\"1\""), "{dump}");
        assert!(dump.contains("user.confluence.media_type="), "{dump}");
        let id = mount
            .sh_ok("getfattr --only-values -n user.confluence.id 'DOCS/DOCS Home/Guide/notes.txt'");
        match flavor {
            Flavor::Cloud => assert!(id.starts_with("att"), "{id}"),
            Flavor::DataCenter => assert!(id.chars().all(|c| c.is_ascii_digit()), "{id}"),
        }
        // The download link is one a user can fetch: Cloud's REST download (the old servlet path
        // refuses API tokens), Data Center's servlet path.
        let link = mount.sh_ok(
            "getfattr --only-values -n user.confluence.download 'DOCS/DOCS Home/Guide/notes.txt'",
        );
        match flavor {
            Flavor::Cloud => assert!(
                link.starts_with("/rest/api/content/") && link.ends_with("/download"),
                "{link}"
            ),
            Flavor::DataCenter => assert!(link.starts_with("/download/attachments/"), "{link}"),
        }
        let page = mount.sh_ok("getfattr -d 'DOCS/DOCS Home/Guide'");
        assert!(page.contains("user.confluence.title=\"Guide\""), "{page}");
        let missing = mount.sh("getfattr -n user.nothing 'DOCS/DOCS Home/Guide/notes.txt'");
        assert!(!missing.status.success());
        assert!(String::from_utf8_lossy(&missing.stderr).contains("No such attribute"));
    });
}

#[test]
fn versions_are_reachable_by_name_but_not_listed() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = server.client().await;
        let guide = page_by_title(&client, "DOCS", "Guide").await;
        let notes = client
            .find_attachment(&guide.container(), "notes.txt")
            .await
            .unwrap()
            .unwrap();
        client
            .upload_new_version(
                &notes,
                UploadSource::Bytes(b"notes, second take\n".to_vec().into()),
                Some("v2"),
                true,
            )
            .await
            .unwrap();
    });
    let mount = Mounted::new(&server, &[]);
    let guide = "DOCS/DOCS Home/Guide";
    assert!(!mount
        .sh_ok(&format!("ls -a '{guide}'"))
        .contains("@versions"));
    assert_eq!(
        mount.sh_ok(&format!("ls '{guide}/@versions/notes.txt'")),
        "1.txt\n2.txt\n"
    );
    assert_eq!(
        mount.sh_ok(&format!("cat '{guide}/@versions/notes.txt/1.txt'")),
        "hello notes\n"
    );
    assert_eq!(
        mount.sh_ok(&format!("cat '{guide}/@versions/notes.txt/2.txt'")),
        "notes, second take\n"
    );
    assert_eq!(
        mount.sh_ok(&format!("cat '{guide}/notes.txt'")),
        "notes, second take\n"
    );
    let sizes = mount.sh_ok(&format!("stat -c %s '{guide}/@versions/notes.txt/1.txt'"));
    assert_eq!(sizes.trim(), "12");
    let refused = mount.sh(&format!("rm '{guide}/@versions/notes.txt/1.txt'"));
    assert!(!refused.status.success());

    let listed = Mounted::new(&server, &["--show-versions"]);
    assert!(listed
        .sh_ok(&format!("ls -a '{guide}'"))
        .contains("@versions"));
}

#[test]
fn nasty_names_are_escaped_reachable_and_distinct() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let clash_id = runtime.block_on(async {
        let client = server.client().await;
        let guide = page_by_title(&client, "DOCS", "Guide").await;
        let container: ContainerRef = guide.container();
        for (name, data) in [
            (".hidden", "dot file\n"),
            ("@versions", "not history\n"),
            ("report.pdf", "the attachment\n"),
            ("naïve ☃.txt", "unicode\n"),
            ("a／b.txt", "a fullwidth slash in the original\n"),
        ] {
            client
                .upload_attachment(
                    &container,
                    NewAttachment::from_bytes(name, data.as_bytes().to_vec()),
                    true,
                )
                .await
                .unwrap();
        }
        use confluencefs::confluence::ContentKind;
        client
            .create_page("DOCS", ContentKind::Page, Some(&guide.id), "Q1/Q2 plans")
            .await
            .unwrap();
        let clash = client
            .create_page("DOCS", ContentKind::Page, Some(&guide.id), "report.pdf")
            .await
            .unwrap();
        clash.id
    });
    let mount = Mounted::new(&server, &[]);
    let guide = "DOCS/DOCS Home/Guide";
    let names = mount.sh_ok(&format!("ls -a '{guide}'"));
    let names: Vec<&str> = names.lines().collect();
    for expected in [
        ".hidden",
        "‛@versions",
        "report.pdf",
        &format!("report.pdf (page {clash_id})"),
        "naïve ☃.txt",
        "a‛／b.txt",
        "Q1／Q2 plans",
    ] {
        assert!(
            names.contains(&expected),
            "{expected:?} missing from {names:?}"
        );
    }
    for (name, data) in [
        (".hidden", "dot file\n"),
        ("‛@versions", "not history\n"),
        ("report.pdf", "the attachment\n"),
        ("naïve ☃.txt", "unicode\n"),
        ("a‛／b.txt", "a fullwidth slash in the original\n"),
    ] {
        assert_eq!(
            mount.sh_ok(&format!("cat '{guide}/{name}'")),
            data,
            "{name}"
        );
    }
    let kind = mount.sh_ok(&format!(
        "stat -c %F '{guide}/report.pdf (page {clash_id})'"
    ));
    assert_eq!(kind.trim(), "directory");

    // The same names through lookups alone, on a fresh mount that has listed nothing.
    let fresh = Mounted::new(&server, &[]);
    assert_eq!(
        fresh.sh_ok(&format!("cat '{guide}/naïve ☃.txt'")),
        "unicode\n"
    );
    assert_eq!(
        fresh.sh_ok(&format!("cat '{guide}/‛@versions'")),
        "not history\n"
    );
    let kind = fresh.sh_ok(&format!("stat -c %F '{guide}/Q1／Q2 plans'"));
    assert_eq!(kind.trim(), "directory");
    let kind = fresh.sh_ok(&format!(
        "stat -c %F '{guide}/report.pdf (page {clash_id})'"
    ));
    assert_eq!(kind.trim(), "directory");
}

#[test]
fn a_read_only_mount_refuses_every_change_with_erofs() {
    let server = Server::start_seeded(Flavor::Cloud, seed_tree);
    let mount = Mounted::new(&server, &["--read-only"]);
    for script in [
        "touch 'DOCS/DOCS Home/new.txt'",
        "mkdir 'DOCS/DOCS Home/New Page'",
        "rm 'DOCS/DOCS Home/readme.txt'",
        "echo x >> 'DOCS/DOCS Home/readme.txt'",
        "setfattr -n user.k -v 1 'DOCS/DOCS Home/readme.txt'",
    ] {
        let output = mount.sh(script);
        assert!(!output.status.success(), "{script} succeeded");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("Read-only file system"), "{script}: {err}");
    }
}
