//! Mounting the way Linux mounts things: `mount -t fuse.confluencefs`, `mount -a` over an fstab
//! line, and the `mount.confluencefs` helper name, each with its settings in `-o` only.
//!
//! mount(8) removes `PATH` from the environment of the helpers it runs, so `mount.fuse3` finds
//! `confluencefs` on the shell's default path (`/usr/local/sbin`, `/usr/local/bin`, …), never
//! on ours. Rather than install the binary there, each `mount` runs in a mount namespace of its
//! own (`unshare -m`) in which a temporary directory holding a `confluencefs` link to the
//! binary under test is bind-mounted over `/usr/local/sbin`. The filesystem then lives in that
//! namespace: the test looks at it through `nsenter` with the serving process's pid, and a
//! guard unmounts it there (or kills the process) even when the test panics.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use confluencefs::confluence::Flavor;

use crate::mounted::mount_pid;
use crate::support::{Server, TOKEN, USER};

/// What a mount through mount(8) needs: a directory of links to the binary, a token file, a
/// cache directory and a mountpoint.
struct Setup {
    bin: tempfile::TempDir,
    token_file: PathBuf,
    cache: tempfile::TempDir,
    mountpoint: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let bin = tempfile::tempdir().unwrap();
        for name in ["confluencefs", "mount.confluencefs"] {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_confluencefs"), bin.path().join(name))
                .unwrap();
        }
        // Searched by every user's shell in the namespace: readable by all, like /usr/local/sbin.
        std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Setup {
            bin,
            token_file,
            cache: tempfile::tempdir().unwrap(),
            mountpoint: tempfile::tempdir().unwrap(),
            _dir: dir,
        }
    }

    /// The `-o` list that carries everything: no flag, no environment variable.
    fn options(&self, extra: &str) -> String {
        format!(
            "user={USER},token_file={},cache_dir={}{extra}",
            self.token_file.display(),
            self.cache.path().display()
        )
    }

    /// Runs `mount ARGS` in a new mount namespace where `/usr/local/sbin` holds our links;
    /// returns its output and a guard for whatever it mounted.
    fn mount_in_namespace(&self, args: &[&str]) -> (Output, NamespaceMount) {
        let output = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$0" /usr/local/sbin && exec mount "$@""#)
            .arg(self.bin.path())
            .args(args)
            .env_remove("CONFLUENCE_URL")
            .env_remove("CONFLUENCE_USER")
            .env_remove("CONFLUENCE_TOKEN")
            .output()
            .expect("unshare runs");
        let guard = NamespaceMount {
            mountpoint: self.mountpoint.path().to_path_buf(),
            pid: mount_pid(self.mountpoint.path()),
        };
        (output, guard)
    }
}

/// A mount in another mount namespace; dropping it unmounts it there and waits for the serving
/// process to end (killing it if the unmount did not end it).
struct NamespaceMount {
    mountpoint: PathBuf,
    pid: Option<u32>,
}

impl NamespaceMount {
    /// Runs `command` inside the mount's namespace.
    fn run(&self, command: &[&str]) -> Output {
        let pid = self.pid.expect("the mount process runs").to_string();
        Command::new("nsenter")
            .args(["--target", &pid, "--mount", "--"])
            .args(command)
            .output()
            .expect("nsenter runs")
    }

    /// The mount's line in its namespace's /proc/PID/mounts.
    fn mount_line(&self) -> Option<String> {
        let pid = self.pid?;
        let mounts = std::fs::read_to_string(format!("/proc/{pid}/mounts")).ok()?;
        let wanted = self.mountpoint.to_string_lossy().into_owned();
        mounts
            .lines()
            .find(|line| line.split(' ').nth(1) == Some(wanted.as_str()))
            .map(str::to_string)
    }
}

impl Drop for NamespaceMount {
    fn drop(&mut self) {
        let Some(pid) = self.pid else { return };
        let mountpoint = self.mountpoint.to_string_lossy().into_owned();
        if self.mount_line().is_some() {
            let _ = self.run(&["umount", &mountpoint]);
        }
        if self.mount_line().is_some() {
            let _ = self.run(&["umount", "-l", &mountpoint]);
        }
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat.contains(") Z "))
        };
        for _ in 0..300 {
            if !alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: plain kill(2) of the test's own mount process, found by its command line.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks that the namespace's mount is ours, serves the site, and used the `-o` cache dir.
fn check_served(setup: &Setup, guard: &NamespaceMount) {
    assert!(
        guard.pid.is_some(),
        "no confluencefs process serves the mount"
    );
    let line = guard.mount_line().expect("mounted in the namespace");
    // fuser names the subtype only when fusermount3 mounts; root mounts directly.
    let fstype = line.split(' ').nth(2).unwrap();
    assert!(fstype == "fuse" || fstype == "fuse.confluencefs", "{line}");
    let mountpoint = setup.mountpoint.path().to_string_lossy().into_owned();
    let listed = guard.run(&["ls", &mountpoint]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).lines().any(|l| l == "DOCS"),
        "{}",
        text(&listed.stdout)
    );
    assert!(
        setup.cache.path().join("confluencefs.log").exists(),
        "the log is not in the cache_dir= directory"
    );
    // The mount is not visible outside its namespace.
    assert!(!crate::mounted::is_mounted(setup.mountpoint.path()));
}

#[test]
fn mount_t_fuse_confluencefs_takes_everything_from_o() {
    let server = Server::start(Flavor::Cloud);
    let setup = Setup::new();
    let mountpoint = setup.mountpoint.path().to_string_lossy().into_owned();
    let options = setup.options(",_netdev,nofail,x-systemd.automount,comment=wiki");
    let (output, guard) = setup.mount_in_namespace(&[
        "-t",
        "fuse.confluencefs",
        &server.base_url(),
        &mountpoint,
        "-o",
        &options,
    ]);
    assert!(output.status.success(), "mount: {}", text(&output.stderr));
    check_served(&setup, &guard);
    drop(guard);
}

#[test]
fn mount_a_mounts_an_fstab_line() {
    let server = Server::start(Flavor::DataCenter);
    let setup = Setup::new();
    let fstab = setup._dir.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# a site\n{} {} fuse.confluencefs {} 0 0\n",
            server.base_url(),
            setup.mountpoint.path().display(),
            setup.options(",_netdev,x-systemd.automount,defaults,users")
        ),
    )
    .unwrap();
    let fstab = fstab.to_string_lossy().into_owned();
    let (output, guard) = setup.mount_in_namespace(&["-a", "-T", &fstab]);
    assert!(
        output.status.success(),
        "mount -a: {}",
        text(&output.stderr)
    );
    check_served(&setup, &guard);
    drop(guard);
}

#[test]
fn mount_helper_name_is_mount_and_unknown_options_are_one_line() {
    let server = Server::start(Flavor::Cloud);
    let setup = Setup::new();
    let helper = setup.bin.path().join("mount.confluencefs");
    let mountpoint = setup.mountpoint.path();
    let run = |options: &str| {
        Command::new(&helper)
            .arg(server.base_url())
            .arg(mountpoint)
            .args(["-o", options])
            .env_remove("CONFLUENCE_URL")
            .env_remove("CONFLUENCE_USER")
            .env_remove("CONFLUENCE_TOKEN")
            .output()
            .unwrap()
    };
    let refused = run(&setup.options(",bogus"));
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("unknown mount option \"bogus\""),
        "{message}"
    );
    assert!(!crate::mounted::is_mounted(mountpoint));

    // What mount.fuse3 passes as root (rw, dev, suid twice), and the options mount(8) keeps
    // for itself, which a helper must let through.
    let output = run(&setup.options(",rw,exec,suid,dev,dev,suid,noauto,auto,user,ro"));
    let _guard = Unmount(mountpoint.to_path_buf());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(crate::mounted::is_mounted(mountpoint));
    assert!(mountpoint.join("DOCS").is_dir());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(&*mountpoint.to_string_lossy()))
        .unwrap();
    assert!(line.split(' ').nth(3).unwrap().starts_with("ro,"), "{line}");
}

/// Unmounts when dropped, even when the test panics.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let pid = mount_pid(&self.0);
        crate::mounted::unmount(&self.0);
        wait_gone(pid);
    }
}

fn wait_gone(pid: Option<u32>) {
    let Some(pid) = pid else { return };
    for _ in 0..300 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) if !stat.contains(") Z ") => {}
            _ => return,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn site_and_config_in_o_name_a_site_of_the_configuration_file() {
    let server = Server::start(Flavor::DataCenter);
    let setup = Setup::new();
    // Root's fstab has no home to find a file in: config= names it, site= the site in it.
    let config = setup._dir.path().join("sites.toml");
    std::fs::write(
        &config,
        format!(
            "[sites.wiki]\nurl = \"{}\"\nuser = \"{USER}\"\ntoken_file = \"{}\"\ncache_dir = \"{}\"\n",
            server.base_url(),
            setup.token_file.display(),
            setup.cache.path().display()
        ),
    )
    .unwrap();
    let helper = setup.bin.path().join("mount.confluencefs");
    let mountpoint = setup.mountpoint.path();
    let output = Command::new(&helper)
        .arg("confluencefs")
        .arg(mountpoint)
        .arg("-o")
        .arg(format!("site=wiki,config={},_netdev", config.display()))
        .env_remove("CONFLUENCE_URL")
        .env_remove("CONFLUENCE_USER")
        .env_remove("CONFLUENCE_TOKEN")
        .env_remove("CONFLUENCEFS_CONFIG")
        .output()
        .unwrap();
    let _guard = Unmount(mountpoint.to_path_buf());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(mountpoint.join("DOCS").is_dir());
    assert!(
        setup.cache.path().join("confluencefs.log").exists(),
        "cache_dir of the site"
    );
}
