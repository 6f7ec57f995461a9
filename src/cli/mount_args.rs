//! `confluencefs mount`: flags in, a validated `MountConfig` out, then `crate::mount::run`.
//!
//! Without `--foreground` the command behaves like `mount(8)`: it returns once the filesystem
//! is mounted (or with the one-line reason it could not be), and the filesystem keeps running
//! in a detached process. That process is this same binary started again with
//! `--foreground`; it reports "mounted" or its error through a pipe the parent waits on, so the
//! parent never has to guess from a timeout.
//!
//! The token does not travel in that process's environment, where it would stay for the life
//! of the mount, readable in `/proc/PID/environ` by its owner and root and inherited by anything
//! it starts: the parent removes `CONFLUENCE_TOKEN` from the child's environment and writes the
//! token to the child's stdin instead, one line, then closes the pipe ([`TOKEN_ON_STDIN_ENV`]
//! tells the child to read it). A token file is read by the child itself, as before.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::mount::{MountConfig, MountOptions, READY_LINE};

/// Environment variable that tells a `--foreground` process to report readiness on stdout.
pub const NOTIFY_ENV: &str = "CONFLUENCEFS_NOTIFY_READY";

pub use super::site::TOKEN_ON_STDIN_ENV;

/// The flags of `confluencefs mount`, as clap parses them.
#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// Confluence URL (`https://SITE.atlassian.net[/wiki]`, `http://host:8090`,
    /// `http://host/confluence`) or the name of a site in the configuration file.
    #[arg(value_name = "URL|SITE")]
    pub site: String,
    /// Where to mount (an existing, empty directory).
    pub mountpoint: PathBuf,
    /// User (Cloud: e-mail; Data Center: user name). Without it the token is a Data Center
    /// personal access token. The token comes from CONFLUENCE_TOKEN or --token-file.
    #[arg(long, env = "CONFLUENCE_USER")]
    pub user: Option<String>,
    /// Read the token from the first line of this file instead of CONFLUENCE_TOKEN.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Skip flavor detection.
    #[arg(long, value_parser = ["cloud", "datacenter"])]
    pub flavor: Option<String>,
    /// Only mount this space (repeatable; default: every space the user can see).
    #[arg(long = "space", value_name = "KEY")]
    pub spaces: Vec<String>,
    /// Refuse every change (EROFS).
    #[arg(long)]
    pub read_only: bool,
    /// Where cached blocks (and later the upload spool) live.
    /// [default: $XDG_CACHE_HOME/confluencefs or ~/.cache/confluencefs]
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Disk cache bound, e.g. 10G, 512M; 0 turns the disk cache off [default: 10G].
    #[arg(long, value_parser = parse_size)]
    pub cache_size: Option<u64>,
    /// Memory cache bound, e.g. 256M [default: 256M].
    #[arg(long, value_parser = parse_size)]
    pub memory_cache_size: Option<u64>,
    /// Seconds a listing, an attribute or a negative lookup stays cached [default: 60].
    #[arg(long)]
    pub metadata_ttl: Option<f64>,
    /// List @versions in page directories (it is always reachable by name).
    #[arg(long)]
    pub show_versions: bool,
    /// Serve every READ and WRITE ourselves, never handing the kernel a local file (FUSE
    /// passthrough, Linux 6.9+, root only; used by default where the kernel allows it).
    #[arg(long)]
    pub no_passthrough: bool,
    /// Version comment of uploads (a file's `user.confluence.comment` xattr overrides it once).
    #[arg(long, default_value = "Saved with confluencefs")]
    pub comment: String,
    /// Upload as regular edits, which e-mail the page's watchers (default: minor edits, silent).
    #[arg(long)]
    pub notify_watchers: bool,
    /// Largest file that may be written; larger writes fail with EFBIG.
    #[arg(long, default_value = "100M", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Seconds a read, a listing or any other question to the server may take before it
    /// answers ETIMEDOUT (uploads are bounded by the client's own timeouts instead)
    /// [default: 120].
    #[arg(long)]
    pub op_timeout: Option<f64>,
    /// Seconds unmounting waits for uploads in flight before leaving them to the next mount.
    #[arg(long, default_value_t = 30.0)]
    pub unmount_wait: f64,
    /// Owner of every file and directory, a number [default: the mounting user].
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,
    /// Group of every file and directory, a number [default: the mounting user's].
    #[arg(long, value_name = "GID")]
    pub gid: Option<u32>,
    /// Octal umask giving the default modes: 0777 and 0666 less it [default: 022].
    #[arg(long, value_parser = parse_mode)]
    pub umask: Option<u16>,
    /// Octal mode of files nobody gave a mode to with chmod [default: 0644, or 0666 less --umask].
    #[arg(long, value_parser = parse_mode)]
    pub file_mode: Option<u16>,
    /// Octal mode of directories nobody gave a mode to [default: 0755, or 0777 less --umask].
    #[arg(long, value_parser = parse_mode)]
    pub dir_mode: Option<u16>,
    /// Let other users reach the mount (same as -o allow_other).
    #[arg(long)]
    pub allow_other: bool,
    /// Mount options, comma-separated: ro, rw, allow_other, allow_root, default_permissions,
    /// nonempty, noatime, atime, exec, noexec, suid, nosuid, dev, nodev, fsname=NAME,
    /// site=NAME, config=FILE, user=USER, token_file=FILE, cache_dir=DIR (as the flags; for
    /// fstab and mount -t); mount(8)'s own (_netdev, nofail, noauto, defaults, x-systemd.*, …)
    /// are ignored.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Stay attached and log to the terminal.
    #[arg(long, short = 'f')]
    pub foreground: bool,
    /// Log file of the background process [default: CACHE_DIR/confluencefs.log].
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Size past which the log file is rotated (to NAME.1), e.g. 10M.
    #[arg(long, default_value = "10M", value_parser = parse_size)]
    pub log_max_size: u64,
    /// `-o site=NAME`: the site, in place of the source argument.
    #[arg(skip)]
    pub site_option: Option<String>,
    /// `-o config=FILE`: the configuration file, in place of `--config`.
    #[arg(skip)]
    pub config: Option<PathBuf>,
}

pub use super::units::{parse_mode, parse_size};

/// The `-o` options that stand for a flag (`user=` for `--user`, …), for fstab lines and
/// `mount -t`, which can pass nothing else.
const SETTING_OPTIONS: [&str; 10] = [
    "user",
    "token_file",
    "cache_dir",
    "site",
    "config",
    "uid",
    "gid",
    "umask",
    "file_mode",
    "dir_mode",
];

/// Parses `-o` lists, so that a typo fails before anything is mounted. mount(8)'s own options
/// (`_netdev`, `nofail`, `noauto`, `auto`, `user`, `users`, `owner`, `group`, `defaults`,
/// `x-*`, `comment=*`) are accepted and ignored; `user=`, `token_file=` and `cache_dir=` must
/// have been moved onto their flags by [`MountArgs::take_option_values`].
pub fn parse_mount_options(list: &[String]) -> anyhow::Result<MountOptions> {
    use fuser::MountOption as M;
    let mut options = MountOptions::default();
    for option in list.iter().flat_map(|o| o.split(',')).map(str::trim) {
        match option {
            "" | "rw" => {}
            "ro" => options.read_only = true,
            "allow_other" => options.allow_other = true,
            "allow_root" => options.allow_root = true,
            "nonempty" => options.nonempty = true,
            "no_passthrough" => options.no_passthrough = true,
            "default_permissions" => {} // always on: the kernel checks modes
            "noatime" => set_kernel(&mut options.kernel, M::NoAtime, M::Atime),
            "atime" => set_kernel(&mut options.kernel, M::Atime, M::NoAtime),
            "exec" => set_kernel(&mut options.kernel, M::Exec, M::NoExec),
            "noexec" => set_kernel(&mut options.kernel, M::NoExec, M::Exec),
            "suid" => set_kernel(&mut options.kernel, M::Suid, M::NoSuid),
            "nosuid" => set_kernel(&mut options.kernel, M::NoSuid, M::Suid),
            "dev" => set_kernel(&mut options.kernel, M::Dev, M::NoDev),
            "nodev" => set_kernel(&mut options.kernel, M::NoDev, M::Dev),
            // mount(8)'s own, which reach a helper from fstab lines and `mount -o`.
            "_netdev" | "noauto" | "auto" | "nofail" | "user" | "users" | "owner" | "group"
            | "defaults" => {}
            other if other.starts_with("x-") || other.starts_with("comment=") => {}
            other => match other.strip_prefix("fsname=") {
                Some(name) if !name.is_empty() => options.fsname = Some(name.to_string()),
                _ => match other.split_once('=') {
                    Some((key, "")) if SETTING_OPTIONS.contains(&key) => {
                        bail!("mount option {key}= needs a value")
                    }
                    // Already moved onto their flags.
                    Some((key, _)) if SETTING_OPTIONS.contains(&key) => {}
                    _ => bail!("unknown mount option {other:?}"),
                },
            },
        }
    }
    Ok(options)
}

/// Adds `option` once, in place of its `opposite`: the last of `dev,nodev` wins, as in mount(8)
/// (mount.fuse3 repeats some, and fuser refuses a list that holds both).
fn set_kernel(
    kernel: &mut Vec<fuser::MountOption>,
    option: fuser::MountOption,
    opposite: fuser::MountOption,
) {
    kernel.retain(|o| *o != option && *o != opposite);
    kernel.push(option);
}

/// The cache directory when `--cache-dir` is not given: `$XDG_CACHE_HOME/confluencefs`, else
/// `~/.cache/confluencefs`, else one under the temporary directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("confluencefs");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("confluencefs"),
        None => std::env::temp_dir().join("confluencefs-cache"),
    }
}

impl MountArgs {
    /// Checks the flags and turns them, with the client's configuration, into what
    /// [`mount::run`](crate::mount::run) needs.
    ///
    /// A setting the flags (or `-o`) leave out is taken from the site's table in the
    /// configuration file, then from the built-in default.
    pub(super) fn into_config(
        self,
        client: crate::confluence::ClientConfig,
        site: &super::site::Site,
    ) -> anyhow::Result<MountConfig> {
        let defaults = &site.defaults;
        let options = parse_mount_options(&self.options)?;
        let size = |flag: Option<u64>, file: &Option<super::config_file::SizeValue>, default| match (
            flag, file,
        ) {
            (Some(size), _) => Ok(size),
            (None, Some(value)) => value.bytes(),
            (None, None) => Ok(default),
        };
        let cache_size = size(self.cache_size, &defaults.cache_size, 10 << 30)?;
        let memory_cache_size = size(
            self.memory_cache_size,
            &defaults.memory_cache_size,
            256 << 20,
        )?;
        let metadata_ttl = self.metadata_ttl.or(defaults.metadata_ttl).unwrap_or(60.0);
        let op_timeout = self.op_timeout.or(defaults.op_timeout).unwrap_or(120.0);
        if !(metadata_ttl.is_finite() && metadata_ttl >= 0.0) {
            bail!("--metadata-ttl must be a number of seconds, 0 or more");
        }
        if !(op_timeout.is_finite() && op_timeout > 0.0) {
            bail!("--op-timeout must be a number of seconds, more than 0");
        }
        if !(self.unmount_wait.is_finite() && self.unmount_wait >= 0.0) {
            bail!("--unmount-wait must be a number of seconds, 0 or more");
        }
        let spaces = if self.spaces.is_empty() {
            defaults.spaces.clone().unwrap_or_default()
        } else {
            self.spaces
        };
        let cache_dir = self
            .cache_dir
            .clone()
            .or_else(|| site.cache_dir.clone())
            .unwrap_or_else(default_cache_dir);
        let from_file = |value: &Option<String>| -> anyhow::Result<Option<u16>> {
            value
                .as_deref()
                .map(parse_mode)
                .transpose()
                .map_err(|e| anyhow::anyhow!("{e}"))
        };
        let umask = self.umask.or(from_file(&defaults.umask)?);
        let file_mode = self
            .file_mode
            .or(from_file(&defaults.file_mode)?)
            .or(umask.map(|umask| 0o666 & !umask))
            .unwrap_or(0o644);
        let dir_mode = self
            .dir_mode
            .or(from_file(&defaults.dir_mode)?)
            .or(umask.map(|umask| 0o777 & !umask))
            .unwrap_or(0o755);
        let notify_ready = std::env::var_os(NOTIFY_ENV).is_some();
        let log_file = self
            .log_file
            .clone()
            .unwrap_or_else(|| cache_dir.join("confluencefs.log"));
        Ok(MountConfig {
            client,
            mountpoint: self.mountpoint,
            spaces,
            read_only: self.read_only || options.read_only || defaults.read_only == Some(true),
            allow_other: self.allow_other || options.allow_other,
            cache_dir,
            disk_cache_bytes: cache_size,
            memory_cache_bytes: memory_cache_size,
            metadata_ttl: Duration::from_secs_f64(metadata_ttl),
            show_versions: self.show_versions,
            passthrough: !(self.no_passthrough || options.no_passthrough),
            write: crate::mount::WriteConfig {
                comment: self.comment,
                minor_edit: !self.notify_watchers,
                max_file_size: self.max_file_size,
            },
            op_timeout: Duration::from_secs_f64(op_timeout),
            unmount_wait: Duration::from_secs_f64(self.unmount_wait),
            options,
            log_file: Some(log_file),
            log_max_bytes: self.log_max_size.max(1),
            notify_ready,
            // A background mount's process is not the service's main process: only a
            // foreground mount speaks to systemd.
            notify_socket: std::env::var_os("NOTIFY_SOCKET")
                .filter(|socket| !notify_ready && !socket.is_empty()),
            uid: self.uid.or(defaults.uid),
            gid: self.gid.or(defaults.gid),
            file_mode,
            dir_mode,
        })
    }
}

impl MountArgs {
    /// Moves `user=`, `token_file=`, `cache_dir=`, `site=` and `config=` out of the `-o` lists
    /// onto the flags they stand for, overriding `--user` and `CONFLUENCE_USER`,
    /// `--token-file`, `--cache-dir`, the source argument and `--config`: in an fstab line or
    /// `mount -t … -o` they are the only way to say these things.
    pub fn take_option_values(&mut self) -> anyhow::Result<()> {
        let mut kept = Vec::new();
        for option in self
            .options
            .iter()
            .flat_map(|o| o.split(','))
            .map(str::trim)
        {
            let Some((key, value)) = option.split_once('=') else {
                kept.push(option.to_string());
                continue;
            };
            if SETTING_OPTIONS.contains(&key) && value.is_empty() {
                bail!("mount option {key}= needs a value");
            }
            match key {
                "user" => self.user = Some(value.to_string()),
                "token_file" => self.token_file = Some(PathBuf::from(value)),
                "cache_dir" => self.cache_dir = Some(PathBuf::from(value)),
                "site" => self.site_option = Some(value.to_string()),
                "config" => self.config = Some(PathBuf::from(value)),
                "uid" | "gid" => {
                    let id = value
                        .parse()
                        .map_err(|_| anyhow::anyhow!("mount option {key}= needs a number"))?;
                    if key == "uid" {
                        self.uid = Some(id);
                    } else {
                        self.gid = Some(id);
                    }
                }
                "umask" | "file_mode" | "dir_mode" => {
                    let mode = parse_mode(value)
                        .map_err(|e| anyhow::anyhow!("mount option {key}=: {e}"))?;
                    match key {
                        "umask" => self.umask = Some(mode),
                        "file_mode" => self.file_mode = Some(mode),
                        _ => self.dir_mode = Some(mode),
                    }
                }
                _ => kept.push(option.to_string()),
            }
        }
        kept.retain(|o| !o.is_empty());
        self.options = if kept.is_empty() {
            Vec::new()
        } else {
            vec![kept.join(",")]
        };
        Ok(())
    }

    /// The site and credentials these flags choose, before the file and the environment.
    pub(super) fn site_choice(&self) -> super::site::SiteChoice {
        super::site::SiteChoice {
            named: Some(
                self.site_option
                    .clone()
                    .unwrap_or_else(|| self.site.clone()),
            ),
            user: self.user.clone(),
            token_file: self.token_file.clone(),
            flavor: self.flavor.clone(),
        }
    }

    /// Whether other users may reach the mount (`--allow-other` or `-o allow_other`).
    pub fn allows_others(&self) -> bool {
        self.allow_other
            || parse_mount_options(&self.options).is_ok_and(|options| options.allow_other)
    }

    /// The one-line notice `--allow-other` earns: what it exposes, and to whom.
    pub fn allow_other_notice(&self) -> String {
        format!(
            "confluencefs: note: with --allow-other, every local user can read through {} \
             everything the token can see",
            self.mountpoint.display()
        )
    }
}

/// Starts this binary again with `--foreground` in its own session, waits for it to report
/// that the mount is ready, and returns. Its error, if it has one, becomes ours. `token`, when
/// given, reaches the child on its stdin; `CONFLUENCE_TOKEN` is never in its environment.
/// `user` is the user the site resolved to (from a flag, the environment, the configuration
/// file or netrc): the child gets it as `CONFLUENCE_USER`, so that it needs neither the token
/// command nor netrc again.
pub fn spawn_background(token: Option<&str>, user: Option<&str>) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the confluencefs executable")?;
    let mut command = Command::new(exe);
    command
        .args(std::env::args_os().skip(1))
        .arg("--foreground")
        .env(NOTIFY_ENV, "1")
        .env_remove("CONFLUENCE_TOKEN")
        .env_remove(TOKEN_ON_STDIN_ENV)
        .env_remove("CONFLUENCE_USER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if token.is_some() {
        command.env(TOKEN_ON_STDIN_ENV, "1").stdin(Stdio::piped());
    }
    if let Some(user) = user {
        command.env("CONFLUENCE_USER", user);
    }
    let mut child = command
        .spawn()
        .context("cannot start the background process")?;
    if let (Some(token), Some(mut stdin)) = (token, child.stdin.take()) {
        // A token is far smaller than a pipe's buffer: this never blocks. A child that died
        // first reports why on stderr, read below.
        let _ = stdin.write_all(format!("{token}\n").as_bytes());
    }
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.trim_end() == READY_LINE {
        forward_available(&mut stderr);
        return Ok(());
    }
    let mut message = String::new();
    let _ = stderr.read_to_string(&mut message);
    let status = child.wait()?;
    let message = message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_start_matches("confluencefs: ")
        .to_string();
    if message.is_empty() {
        bail!("the mount process ended ({status}) before the mount was ready");
    }
    bail!("{message}")
}

/// Shows the user the warnings the background process gave before it was ready (a token file
/// others can read), without waiting for more: the process lives on.
fn forward_available(stderr: &mut std::process::ChildStderr) {
    use std::os::fd::AsRawFd;
    let fd = stderr.as_raw_fd();
    // SAFETY: `fd` is the open read end of the child's stderr pipe, owned by `stderr`.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf) {
        if n == 0 {
            break;
        }
        said.extend_from_slice(&buf[..n]);
    }
    // Warnings and errors only: the informational lines are for the log file.
    for line in String::from_utf8_lossy(&said).lines() {
        if line.contains(" WARN ") || line.contains(" ERROR ") {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options() {
        let o = parse_mount_options(&["ro,allow_other".into(), "fsname=wiki".into()]).unwrap();
        assert!(o.read_only && o.allow_other && !o.nonempty);
        assert_eq!(o.fsname.as_deref(), Some("wiki"));
        assert!(parse_mount_options(&["bogus".into()]).is_err());
        assert!(parse_mount_options(&["fsname=".into()]).is_err());
        let ignored =
            "_netdev,nofail,noauto,auto,user,users,defaults,x-systemd.automount,comment=x";
        let o = parse_mount_options(&[ignored.into(), "rw,dev,suid".into()]).unwrap();
        assert!(!o.read_only && o.fsname.is_none());
        let o = parse_mount_options(&["rw,nodev,exec,dev,suid,dev,suid,noexec".into()]).unwrap();
        use fuser::MountOption as M;
        assert_eq!(o.kernel, [M::Dev, M::Suid, M::NoExec]);
        let err = parse_mount_options(&["user=".into()]).unwrap_err();
        assert_eq!(err.to_string(), "mount option user= needs a value");
    }

    #[test]
    fn option_values_become_flags() {
        use clap::Parser;
        #[derive(Parser)]
        struct Top {
            #[command(flatten)]
            mount: MountArgs,
        }
        let mut args = Top::parse_from([
            "x",
            "https://x",
            "/mnt",
            "--user",
            "flag@x",
            "-o",
            "ro,user=me@x,token_file=/t,_netdev",
            "-o",
            "cache_dir=/c,site=work,config=/etc/c.toml",
        ])
        .mount;
        args.take_option_values().unwrap();
        assert_eq!(args.user.as_deref(), Some("me@x"));
        assert_eq!(args.token_file, Some(PathBuf::from("/t")));
        assert_eq!(args.cache_dir, Some(PathBuf::from("/c")));
        assert_eq!(args.site_choice().named.as_deref(), Some("work"));
        assert_eq!(args.config, Some(PathBuf::from("/etc/c.toml")));
        assert_eq!(args.options, ["ro,_netdev"]);
        args.options = vec!["uid=1000,gid=100,umask=027,file_mode=0600,dir_mode=0o700".into()];
        args.take_option_values().unwrap();
        assert_eq!((args.uid, args.gid), (Some(1000), Some(100)));
        assert_eq!(args.umask, Some(0o27));
        assert_eq!((args.file_mode, args.dir_mode), (Some(0o600), Some(0o700)));
        assert!(args.options.is_empty());
        args.options = vec!["uid=me".into()];
        assert!(args.take_option_values().is_err());
        args.options = vec!["umask=9".into()];
        assert!(args.take_option_values().is_err());
        args.options = vec!["token_file=".into()];
        assert!(args.take_option_values().is_err());
    }
}
