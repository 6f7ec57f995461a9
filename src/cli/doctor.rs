//! `confluencefs doctor`: everything a mount needs, checked in the order a mount needs it,
//! one line per check, each failure saying what to do.
//!
//! The checks are those whose failure otherwise surfaces as an opaque error from deep inside a
//! mount: the FUSE device, `fusermount3` (setuid, for users), `user_allow_other` when
//! `--allow-other` is asked for, the mountpoint, the cache directory's room and permissions,
//! then the site (reachable, credentials accepted, which flavor). None of them changes
//! anything. The system paths it reads can be pointed elsewhere by two hidden variables
//! ([`FUSE_DEVICE_ENV`], [`FUSE_CONF_ENV`]) so that a test can play a machine without
//! `/dev/fuse` access; the other checks take their paths from the command line and `PATH`.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::config_file::Config;
use super::site::SiteArgs;
use crate::confluence::{Client, ClientError, Flavor};

/// Replaces `/dev/fuse` (for tests).
const FUSE_DEVICE_ENV: &str = "CONFLUENCEFS_DOCTOR_FUSE_DEVICE";
/// Replaces `/etc/fuse.conf` (for tests).
const FUSE_CONF_ENV: &str = "CONFLUENCEFS_DOCTOR_FUSE_CONF";

/// Below this much free space the cache directory fails the check: staging files and the
/// spool live there too.
const MIN_FREE: u64 = 256 << 20;

/// The flags of `confluencefs doctor`.
#[derive(Debug, clap::Args)]
pub(super) struct DoctorArgs {
    #[command(flatten)]
    site: SiteArgs,
    /// Check this mountpoint too (exists, is an empty directory, nothing mounted there).
    #[arg(long, value_name = "DIR")]
    mountpoint: Option<PathBuf>,
    /// Check that other users may be let in (user_allow_other in /etc/fuse.conf).
    #[arg(long)]
    allow_other: bool,
    /// The cache directory to check [default: the site's cache_dir, else
    /// $XDG_CACHE_HOME/confluencefs or ~/.cache/confluencefs].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

/// One check's outcome: fine (with what was found) or failed (with what to do).
enum Outcome {
    Ok(String),
    Fail(String),
}

struct Report {
    failures: usize,
}

impl Report {
    fn line(&mut self, label: &str, outcome: Outcome) {
        match outcome {
            Outcome::Ok(detail) if detail.is_empty() => println!("{label:<24} ok"),
            Outcome::Ok(detail) => println!("{label:<24} ok ({detail})"),
            Outcome::Fail(what) => {
                self.failures += 1;
                println!("{label:<24} FAIL: {what}");
            }
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

pub(super) fn run(args: DoctorArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let mut report = Report { failures: 0 };
    report.line("/dev/fuse", fuse_device());
    report.line("fusermount3", fusermount());
    if args.allow_other {
        report.line("user_allow_other", allow_other());
    }
    if let Some(mountpoint) = &args.mountpoint {
        report.line(
            &format!("mountpoint {}", mountpoint.display()),
            match crate::mount::check_mountpoint(mountpoint, false) {
                Ok(_) => Outcome::Ok(String::new()),
                Err(err) => {
                    let text = super::one_line(&err);
                    let hint = if text.contains("busy") {
                        format!(
                            "; unmount it first (fusermount3 -uz {} if its process died)",
                            mountpoint.display()
                        )
                    } else if text.contains("No such file") {
                        format!("; mkdir -p {}", mountpoint.display())
                    } else {
                        String::new()
                    };
                    Outcome::Fail(format!("{text}{hint}"))
                }
            },
        );
    }
    // The site: from the arguments, the environment or the file's default, if any.
    let config = Config::load(config);
    let choice = args.site.choice();
    let site = match &config {
        Ok(config) => {
            let named = choice.named.is_some()
                || std::env::var_os("CONFLUENCE_URL").is_some()
                || config.file.default_site.is_some();
            named.then(|| super::site::resolve(config, choice))
        }
        Err(_) => None,
    };
    let cache_dir = args
        .cache_dir
        .clone()
        .or_else(|| match &site {
            Some(Ok(site)) => site.cache_dir.clone(),
            _ => None,
        })
        .unwrap_or_else(super::mount_args::default_cache_dir);
    report.line("cache directory", cache_space(&cache_dir));
    match (&config, site) {
        (Err(err), _) => report.line(
            "configuration file",
            Outcome::Fail(format!("{}; fix the file", super::one_line(err))),
        ),
        (Ok(_), None) => println!(
            "{:<24} - (none given: `confluencefs doctor URL|SITE`)",
            "site"
        ),
        (Ok(_), Some(Err(err))) => report.line("site", Outcome::Fail(super::one_line(&err))),
        (Ok(_), Some(Ok(site))) => {
            let label = format!("site {}", args.site.site.as_deref().unwrap_or(&site.url));
            report.line(&label, check_site(&site));
        }
    }
    if report.failures > 0 {
        bail!("{} check(s) failed", report.failures);
    }
    Ok(())
}

fn fuse_device() -> Outcome {
    let path =
        std::env::var_os(FUSE_DEVICE_ENV).map_or_else(|| PathBuf::from("/dev/fuse"), PathBuf::from);
    if !path.exists() {
        return Outcome::Fail(format!(
            "{} is missing: load the module (modprobe fuse), or give the container the \
             device (docker run --device /dev/fuse --cap-add SYS_ADMIN)",
            path.display()
        ));
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(_) => Outcome::Ok(String::new()),
        Err(err) => Outcome::Fail(format!(
            "cannot open {} ({err}): it should be crw-rw-rw- root:root (chmod 666 {0})",
            path.display()
        )),
    }
}

fn fusermount() -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("fusermount3"))
            .find(|candidate| candidate.is_file())
    });
    match found {
        None if is_root() => Outcome::Ok("not on PATH; root mounts without it".into()),
        None => Outcome::Fail(
            "not on PATH: install fuse3 (apt install fuse3, dnf install fuse3)".into(),
        ),
        Some(path) => {
            let mode = std::fs::metadata(&path).map_or(0, |m| m.permissions().mode());
            if mode & 0o4000 == 0 && !is_root() {
                Outcome::Fail(format!(
                    "{} is not setuid root: reinstall fuse3 (or chmod u+s {0})",
                    path.display()
                ))
            } else {
                Outcome::Ok(path.display().to_string())
            }
        }
    }
}

fn allow_other() -> Outcome {
    if is_root() {
        return Outcome::Ok("not needed as root".into());
    }
    let path = std::env::var_os(FUSE_CONF_ENV)
        .map_or_else(|| PathBuf::from("/etc/fuse.conf"), PathBuf::from);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let set = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .any(|line| line == "user_allow_other");
    if set {
        Outcome::Ok(path.display().to_string())
    } else {
        Outcome::Fail(format!(
            "--allow-other needs the line user_allow_other in {} (as root)",
            path.display()
        ))
    }
}

/// The cache directory (or, if it does not exist yet, the directory it would be made in):
/// writable, and with room on its filesystem.
fn cache_space(dir: &Path) -> Outcome {
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    if !existing.is_dir() {
        return Outcome::Fail(format!("{} is not a directory", existing.display()));
    }
    if !writable(existing) {
        return Outcome::Fail(format!(
            "{} is not writable by you: chown it to yourself, or pass --cache-dir DIR",
            existing.display()
        ));
    }
    let free = match free_bytes(existing) {
        Ok(free) => free,
        Err(err) => return Outcome::Fail(format!("cannot statvfs {}: {err}", existing.display())),
    };
    let shown = format!("{:.1} GiB", free as f64 / (1u64 << 30) as f64);
    if free < MIN_FREE {
        return Outcome::Fail(format!(
            "only {shown} free under {}: free some space or pass --cache-dir on a roomier disk",
            existing.display()
        ));
    }
    let made = if existing == dir {
        ""
    } else {
        ", to be created"
    };
    Outcome::Ok(format!("{}{made}, {shown} free", dir.display()))
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is NUL-terminated and outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated; `stat` is valid for writes of one statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat` in.
    let stat = unsafe { stat.assume_init() };
    // The field types differ between targets (32-bit ones use 32-bit counts).
    #[allow(clippy::unnecessary_cast)]
    let (available, unit) = (stat.f_bavail as u64, stat.f_frsize as u64);
    Ok(available.saturating_mul(unit))
}

/// Connects as a mount would: the URL answers, the credentials are accepted, the flavor is
/// known.
fn check_site(site: &super::site::Site) -> Outcome {
    let config = match site.client_config() {
        Ok(config) => config,
        Err(err) => return Outcome::Fail(super::one_line(&err)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return Outcome::Fail(format!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(Client::connect(config)) {
        Ok(client) => {
            let flavor = match client.flavor() {
                Flavor::Cloud => "Confluence Cloud",
                Flavor::DataCenter => "Confluence Data Center",
            };
            Outcome::Ok(format!(
                "{flavor} at {}, user {}",
                client.base_url(),
                client.current_user().name()
            ))
        }
        Err(err) => {
            let hint = match &err {
                ClientError::Unauthorized { .. } => {
                    "check the user and the token (Cloud: an API token from \
                     id.atlassian.com; Data Center: a personal access token)"
                }
                ClientError::Transport { .. } => "check the URL and the network",
                ClientError::NotConfluence { .. } => "check the URL (the one your browser shows)",
                _ => "see the message",
            };
            Outcome::Fail(format!("{err}; {hint}"))
        }
    }
}
