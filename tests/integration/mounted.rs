//! Real mounts for tests: `confluencefs mount` run as a user runs it (it returns once the mount
//! is ready), a guard that unmounts even when the test panics, and small helpers to run the
//! ordinary tools against the mount.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{Server, TOKEN, USER};

/// A mounted filesystem; dropping it unmounts.
pub(crate) struct Mounted {
    pub path: PathBuf,
    _mountpoint: tempfile::TempDir,
    pub cache_dir: PathBuf,
    _cache: Option<tempfile::TempDir>,
}

impl Mounted {
    /// Mounts `server` with `args` added to the command line; panics with the tool's message if
    /// the mount fails.
    pub(crate) fn new(server: &Server, args: &[&str]) -> Mounted {
        let cache = tempfile::tempdir().unwrap();
        let cache_dir = cache.path().to_path_buf();
        Mounted::with_cache(server, args, &cache_dir, Some(cache))
    }

    /// Mounts with a given cache directory (which the caller keeps, e.g. across remounts).
    pub(crate) fn with_cache(
        server: &Server,
        args: &[&str],
        cache_dir: &Path,
        cache: Option<tempfile::TempDir>,
    ) -> Mounted {
        let mountpoint = tempfile::tempdir().unwrap();
        let path = mountpoint.path().to_path_buf();
        let output = mount_command(&server.base_url(), &path, cache_dir, args);
        assert!(
            output.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Mounted {
            path,
            _mountpoint: mountpoint,
            cache_dir: cache_dir.to_path_buf(),
            _cache: cache,
        }
    }

    pub(crate) fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// Runs `script` with `sh -c` inside the mount; returns its output (any status).
    pub(crate) fn sh(&self, script: &str) -> Output {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&self.path)
            .output()
            .expect("sh runs")
    }

    /// Runs Python with `m` bound to the mount's path (`os`, `errno` and `time` imported);
    /// returns stdout, panicking with stderr when the script fails.
    pub(crate) fn python(&self, code: &str) -> String {
        let output = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import errno, os, time\nm = {:?}\n{code}",
                self.path.display().to_string()
            ))
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Like [`sh`](Self::sh) but the script must succeed; returns stdout.
    pub(crate) fn sh_ok(&self, script: &str) -> String {
        let output = self.sh(script);
        assert!(
            output.status.success(),
            "`{script}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Mounted {
    /// Unmounts, then waits for the serving process to finish its uploads and exit, so that
    /// the cache directory (its spool) is not removed under it.
    fn drop(&mut self) {
        let pid = mount_pid(&self.path);
        unmount(&self.path);
        if let Some(pid) = pid {
            let stat = PathBuf::from(format!("/proc/{pid}/stat"));
            for _ in 0..600 {
                // Gone, or a zombie nobody has reaped yet: either way it has finished.
                match std::fs::read_to_string(&stat) {
                    Ok(text) if !text.contains(") Z ") => {}
                    _ => break,
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// `confluencefs mount URL MOUNTPOINT --cache-dir DIR ARGS…` with the test credentials.
pub(crate) fn mount_command(
    url: &str,
    mountpoint: &Path,
    cache_dir: &Path,
    args: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confluencefs"))
        .arg("mount")
        .arg(url)
        .arg(mountpoint)
        .arg("--cache-dir")
        .arg(cache_dir)
        .args(args)
        .env("CONFLUENCE_USER", USER)
        .env("CONFLUENCE_TOKEN", TOKEN)
        .env_remove("CONFLUENCE_URL")
        .output()
        .expect("confluencefs runs")
}

/// Unmounts `path` if something is mounted there, lazily so a busy mount cannot keep a failed
/// test's mount alive, and waits until it is gone.
pub(crate) fn unmount(path: &Path) {
    if !is_mounted(path) {
        return;
    }
    let _ = Command::new("umount").arg(path).output();
    if is_mounted(path) {
        let _ = Command::new("umount").arg("-l").arg(path).output();
    }
    for _ in 0..100 {
        if !is_mounted(path) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub(crate) fn is_mounted(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let wanted = path.to_string_lossy().replace(' ', "\\040");
    mounts
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(wanted.as_str()))
}

/// The pid of the `confluencefs` process serving `mountpoint`.
pub(crate) fn mount_pid(mountpoint: &Path) -> Option<u32> {
    let wanted = mountpoint.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args.first().is_some_and(|a| a.ends_with(b"confluencefs"))
            && args.contains(&b"--foreground".as_slice())
            && args.contains(&wanted);
        if ours {
            return Some(pid);
        }
    }
    None
}
