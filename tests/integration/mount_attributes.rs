//! What a user sets and names survives the mount: modes and modification times (chmod,
//! utimens: `cp -a`, `rsync -a`) come back after a remount and show on another machine, and tree
//! copies whose folder names repeat elsewhere in the space (`docs/images`, `src/images`, a
//! `.git` directory) succeed under the names the user made. Each within the request budgets
//! (docs/PERFORMANCE.md), counted on the test server.

use std::path::Path;
use std::process::Command;

use crate::mount_tree::seed_tree;
use crate::mount_write::{both, GUIDE};
use crate::mounted::Mounted;
use crate::support::{Logged, Server};

/// A source tree with an executable script, a read-only file, set times on files and folders.
fn timed_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("tool.sh"), b"#!/bin/sh\necho tool\n").unwrap();
    std::fs::write(root.join("data.txt"), b"some data\n").unwrap();
    std::fs::write(root.join("frozen.txt"), b"do not touch\n").unwrap();
    std::fs::write(root.join("sub/inner.txt"), b"inner\n").unwrap();
    std::fs::write(root.join("sub/deeper/deep.txt"), b"deep\n").unwrap();
    let sh = |script: &str| {
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    };
    sh("chmod 755 tool.sh && chmod 444 frozen.txt && chmod 750 sub");
    sh("touch -d '2021-03-04 05:06:07' tool.sh data.txt frozen.txt");
    sh("touch -d '2019-01-02 03:04:05' sub/inner.txt sub/deeper/deep.txt");
    sh("touch -d '2018-06-07 08:09:10' sub/deeper sub .");
    dir
}

/// `path  mode  mtime` for everything under `dir`, sorted, as `find` prints it.
fn modes_and_times(mount: &Mounted, dir: &str) -> String {
    let listed = mount.sh_ok(&format!(
        "cd '{dir}' && find . -mindepth 1 -printf '%p %m %T@\\n' | sed 's/\\.[0-9]*$//' | sort"
    ));
    crate::support::without_page_text(&listed, dir.rsplit('/').next().unwrap_or(dir))
}

fn local_modes_and_times(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -mindepth 1 -printf '%p %m %T@\\n' | sed 's/\\.[0-9]*$//' | sort")
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn is_property_write(r: &Logged) -> bool {
    r.method == "PUT" && r.path.contains("/property/")
}

fn is_property_read(r: &Logged) -> bool {
    r.method == "GET" && r.path.contains("/property")
}

fn describe(log: &[Logged]) -> String {
    log.iter()
        .map(|r| format!("{} {} {} -> {}", r.method, r.path, r.query, r.status))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rsync_twice_with_a_remount_between_changes_nothing() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let src = timed_tree();
        let tree = src.path().join("tree");
        let expected = local_modes_and_times(&tree);
        let dest = format!("{GUIDE}/Synced");
        {
            let mount = Mounted::new(&server, &[]);
            mount.sh_ok(&format!("mkdir '{dest}'"));
            rt.block_on(server.clear_requests());
            mount.sh_ok(&format!("rsync -a '{}/' '{dest}/'", tree.display()));
            assert_eq!(modes_and_times(&mount, &dest), expected, "{flavor:?}");
        }
        // The mount is gone; what it was told is on the server. Budget of the copy: one
        // property write per object whose mode or time differs from what Confluence shows
        // (5 files, 2 pages and the page synced into), and never a property read.
        let log = rt.block_on(server.requests());
        let writes = log.iter().filter(|r| is_property_write(r)).count();
        assert!(
            (1..=8).contains(&writes),
            "{flavor:?}: {writes} property writes\n{}",
            describe(&log)
        );
        assert!(
            !log.iter().any(is_property_read),
            "{flavor:?}:\n{}",
            describe(&log)
        );

        // Another machine (a fresh mount, an empty cache): the same modes and times, found in
        // the listings themselves (a page listing costs what it did).
        let mount = Mounted::new(&server, &[]);
        mount.sh_ok(&format!("stat '{dest}' > /dev/null"));
        rt.block_on(server.clear_requests());
        let listed = mount.sh_ok(&format!("ls -l '{dest}'"));
        assert!(listed.contains("-rwxr-xr-x"), "{flavor:?}: {listed}");
        let log = rt.block_on(server.requests());
        assert_eq!(log.len(), 2, "{flavor:?}:\n{}", describe(&log));
        assert_eq!(modes_and_times(&mount, &dest), expected, "{flavor:?}");
        mount.sh_ok(&format!("test -x '{dest}/tool.sh' && '{dest}/tool.sh'"));

        // rsync finds nothing to do: no transfer, no mode or time change.
        rt.block_on(server.clear_requests());
        let changes = mount.sh_ok(&format!(
            "rsync -a --itemize-changes '{}/' '{dest}/'",
            tree.display()
        ));
        assert_eq!(changes.trim(), "", "{flavor:?}: rsync changed things");
        let log = rt.block_on(server.requests());
        assert!(
            !log.iter().any(|r| r.method != "GET"),
            "{flavor:?}: the second rsync wrote:\n{}",
            describe(&log)
        );
    });
}

#[test]
fn chmod_and_touch_are_written_once_and_reach_another_mount() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let file = format!("{GUIDE}/notes.txt");
        let mount = Mounted::new(&server, &[]);
        mount.sh_ok(&format!("ls -l '{GUIDE}' > /dev/null"));
        rt.block_on(server.clear_requests());
        mount.sh_ok(&format!(
            "chmod 750 '{file}' && touch -d '2020-02-03 04:05:06' '{file}' && chmod 755 '{file}'"
        ));
        // Written once, shortly after the burst, without reading the property first.
        std::thread::sleep(std::time::Duration::from_secs(3));
        let log = rt.block_on(server.requests());
        assert_eq!(log.len(), 1, "{flavor:?}:\n{}", describe(&log));
        assert!(
            is_property_write(&log[0]),
            "{flavor:?}:\n{}",
            describe(&log)
        );

        // Seen from another mount while the first is still up.
        let other = Mounted::new(&server, &[]);
        let seen = other.sh_ok(&format!("stat -c '%a %Y' '{file}'"));
        let expected = mount.sh_ok("date -d '2020-02-03 04:05:06' +%s");
        assert_eq!(
            seen.trim(),
            format!("755 {}", expected.trim()),
            "{flavor:?}"
        );

        // A new version made elsewhere brings the server's time back; the mode stays.
        other.sh_ok(&format!("echo more >> '{file}'"));
        let again = Mounted::new(&server, &[]);
        let seen = again.sh_ok(&format!("stat -c '%a %Y' '{file}'"));
        assert!(seen.starts_with("755 "), "{flavor:?}: {seen}");
        assert_ne!(
            seen.trim(),
            format!("755 {}", expected.trim()),
            "{flavor:?}"
        );
    });
}

/// A tree whose folder names repeat (`images`, `info`) within itself and across copies.
fn repeating_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proj");
    for (rel, body) in [
        ("docs/images/a.txt", "a\n"),
        ("docs/info/about.txt", "about\n"),
        ("src/images/b.txt", "b\n"),
        ("src/images/info/c.txt", "c\n"),
        ("src/main.txt", "main\n"),
    ] {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

fn local_names(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -mindepth 1 | sort")
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn names_in(mount: &Mounted, dir: &str) -> String {
    let listed = mount.sh_ok(&format!("cd '{dir}' && find . -mindepth 1 | sort"));
    crate::support::without_page_text(&listed, dir.rsplit('/').next().unwrap_or(dir))
}

fn git(dir: &Path, args: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("git {args}"))
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap();
    assert!(status.success(), "git {args}");
}

#[test]
fn tree_copies_with_repeated_folder_names_keep_the_names_made() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let src = repeating_tree();
        let proj = src.path().join("proj");
        let expected = local_names(&proj);
        git(&proj, "init -q && git add -A && git commit -qm one");
        std::fs::write(proj.join("src/images/b.txt"), b"b, again\n").unwrap();
        git(&proj, "commit -qam two");
        let with_git = local_names(&proj);

        let cp = format!("{GUIDE}/cp");
        let py = format!("{GUIDE}/py");
        let rs = format!("{GUIDE}/rs");
        let clone = format!("{GUIDE}/clone");
        let dirs = expected.lines().filter(|l| !l.ends_with(".txt")).count();
        {
            let mount = Mounted::new(&server, &[]);
            mount.sh_ok(&format!("mkdir '{cp}' '{rs}'"));
            rt.block_on(server.clear_requests());
            mount.sh_ok(&format!(
                "cp -a '{}/docs' '{}/src' '{cp}/'",
                proj.display(),
                proj.display()
            ));
            // Each folder costs its page creation, plus one refused try and one property
            // write when its title is taken elsewhere in the space; never a property read.
            let log = rt.block_on(server.requests());
            let creations = log
                .iter()
                .filter(|r| r.method == "POST" && r.path.ends_with("/content"))
                .count();
            assert!(creations <= 2 * dirs, "{flavor:?}:\n{}", describe(&log));
            assert!(
                !log.iter().any(is_property_read),
                "{flavor:?}:\n{}",
                describe(&log)
            );
            assert_eq!(names_in(&mount, &cp), expected, "{flavor:?}: cp -a");

            let out = Command::new("python3")
                .arg("-c")
                .arg(format!(
                    "import shutil; shutil.copytree({:?}, {:?}, ignore=shutil.ignore_patterns('.git'))",
                    proj.display().to_string(),
                    mount.join(&py).display().to_string()
                ))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{flavor:?}: copytree: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(names_in(&mount, &py), expected, "{flavor:?}: copytree");

            mount.sh_ok(&format!(
                "rsync -a --exclude .git '{}/' '{rs}/'",
                proj.display()
            ));
            assert_eq!(names_in(&mount, &rs), expected, "{flavor:?}: rsync -a");

            mount.sh_ok(&format!(
                "git clone -q --no-hardlinks 'file://{}' '{clone}'",
                proj.display()
            ));
            mount.sh_ok(&format!("cd '{clone}' && git fsck --no-progress"));
            let cloned = names_in(&mount, &clone);
            for line in with_git.lines().filter(|l| !l.starts_with("./.git")) {
                assert!(cloned.contains(line), "{flavor:?}: {line} not in clone");
            }
        }
        // Remounted with an empty cache: the same names.
        let mount = Mounted::new(&server, &[]);
        assert_eq!(names_in(&mount, &cp), expected, "{flavor:?}: after remount");
        assert_eq!(names_in(&mount, &py), expected, "{flavor:?}: after remount");
        assert_eq!(names_in(&mount, &rs), expected, "{flavor:?}: after remount");
        mount.sh_ok(&format!(
            "cd '{clone}' && git fsck --no-progress && git log --oneline | wc -l | grep -qx 2"
        ));
        // A renamed folder keeps the name it is given, and can take back a plain title.
        mount.sh_ok(&format!("mv '{cp}/src/images' '{cp}/src/pictures'"));
        mount.sh_ok(&format!("mv '{cp}/docs/images' '{cp}/docs/images2'"));
        mount.sh_ok(&format!("mv '{cp}/docs/images2' '{cp}/docs/images'"));
        drop(mount);
        let mount = Mounted::new(&server, &[]);
        let names = names_in(&mount, &cp);
        assert!(
            names.contains("./src/pictures/b.txt"),
            "{flavor:?}: {names}"
        );
        assert!(names.contains("./docs/images/a.txt"), "{flavor:?}: {names}");
    });
}
