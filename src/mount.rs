//! Wiring a mount together and keeping it alive: client, caches, filesystem, FUSE session,
//! signals.
//!
//! The order matters for the promises docs/CONFIGURATION.md makes (What `mount` does): the URL and the credentials are checked
//! first (one request), then the mountpoint, and only then is anything mounted, so every
//! refusal leaves nothing behind. The session runs on its own thread; the main thread waits
//! for SIGINT/SIGTERM (then unmounts) or for the session to end (someone ran `umount`).
//!
//! Under systemd (`Type=notify`, a foreground mount with `NOTIFY_SOCKET` set) the same two
//! moments are told to the service manager: `READY=1` once the kernel serves the mountpoint,
//! `STOPPING=1` as soon as unmounting begins, before the uploads are drained, so that a stop
//! waiting on them is not mistaken for a hang. The protocol is one datagram per message on a
//! Unix socket, which `std` does alone: no libsystemd, no new dependency.
//!
//! While it serves, the mount writes its status once a second (`status`: what `confluencefs
//! status` prints); this module assembles it, being the one that holds every part.

mod status;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cache::{BlockCache, CacheConfig};
use crate::confluence::{Client, ClientConfig};
/// How writes behave, as the command line sets it (the filesystem's own type).
pub use crate::fs::WriteConfig;
use crate::fs::{ConfluenceFs, FsConfig, Writer};
use crate::fuse::FuseAdapter;
use crate::spool::{Spool, Uploader};
pub use status::{
    file_name as status_file_name, status_dirs, unix_ms, CacheStatus, MountStatus, RecentError,
    RecentErrors, RequestStatus, UploadStatus,
};
use status::{StatusParts, StatusWriter};

/// The mount(8)-style options of `-o`, as the command line parsed them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// `ro`: mount read-only.
    pub read_only: bool,
    /// `allow_other`: every local user may use the mount.
    pub allow_other: bool,
    /// `allow_root`: root may use the mount besides its owner.
    pub allow_root: bool,
    /// `nonempty`: mount over a directory that is not empty.
    pub nonempty: bool,
    /// `no_passthrough`: as `--no-passthrough`.
    pub no_passthrough: bool,
    /// `fsname=NAME`: what `mount` and `df` show as the source; `None` shows `confluencefs`.
    pub fsname: Option<String>,
    /// Passed to the kernel as they are.
    pub kernel: Vec<fuser::MountOption>,
}

/// Log lines written before a background mount is ready. Its stderr is then a pipe to the
/// `mount` command, which shows them to the user; they belong in the log file too, which is
/// opened only at readiness ([`detach_stdio`]), so they are kept here until then.
static EARLY_LOG: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);

/// Keeps what is logged from now until readiness, for the log file.
pub fn keep_early_log() {
    *EARLY_LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
}

/// Where log lines go: stderr, and the early log while one is kept.
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(early) = EARLY_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            early.extend_from_slice(buf);
        }
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// What the background process prints on stdout once the mount is ready.
pub const READY_LINE: &str = "confluencefs: mounted";

/// Everything `run` needs to mount, validated by the command line.
#[derive(Debug)]
pub struct MountConfig {
    /// How to reach the site, and as whom.
    pub client: ClientConfig,
    /// Where to mount.
    pub mountpoint: PathBuf,
    /// Keys of the spaces to show; empty shows every space the user can see.
    pub spaces: Vec<String>,
    /// Refuse every change with EROFS (`--read-only` or `-o ro`).
    pub read_only: bool,
    /// Let every local user use the mount (`--allow-other` or `-o allow_other`).
    pub allow_other: bool,
    /// The cache directory; the site's blocks, staging files and spool go in a directory of it
    /// named after the site.
    pub cache_dir: PathBuf,
    /// Bound of the disk block cache, in bytes; 0 keeps blocks in memory only.
    pub disk_cache_bytes: u64,
    /// Bound of the memory block cache, in bytes.
    pub memory_cache_bytes: u64,
    /// How long listings and attributes are trusted before they are fetched again.
    pub metadata_ttl: Duration,
    /// List `@versions` in each page directory (it is reachable by name either way).
    pub show_versions: bool,
    /// Hand the kernel local files to read and write where it allows (FUSE passthrough).
    pub passthrough: bool,
    /// What uploads say (comment, minor edit) and the largest file that may be written.
    pub write: WriteConfig,
    /// How long a read-side operation may take before it answers ETIMEDOUT.
    pub op_timeout: Duration,
    /// How long unmounting waits for uploads still in flight.
    pub unmount_wait: Duration,
    /// The `-o` options.
    pub options: MountOptions,
    /// Where the background process logs once it is detached; `None` in the foreground.
    pub log_file: Option<PathBuf>,
    /// The log file is rotated (to `NAME.1`, replacing the one before) past this size.
    pub log_max_bytes: u64,
    /// Print [`READY_LINE`] on stdout when mounted (the parent of a background mount waits
    /// for it).
    pub notify_ready: bool,
    /// The service manager's socket (`$NOTIFY_SOCKET`, a path or `@abstract`), told
    /// `READY=1` and `STOPPING=1`; `None` outside a `Type=notify` service.
    pub notify_socket: Option<std::ffi::OsString>,
    /// Owner of every file and directory (`--uid`); `None` is the mounting user.
    pub uid: Option<u32>,
    /// Group of every file and directory (`--gid`); `None` is the mounting user's.
    pub gid: Option<u32>,
    /// Permission bits of files nobody gave a mode to (`--file-mode`, `--umask`).
    pub file_mode: u16,
    /// Permission bits of directories nobody gave a mode to (`--dir-mode`, `--umask`).
    pub dir_mode: u16,
}

/// A service manager waiting for news of the mount (systemd's `sd_notify` protocol).
struct ServiceNotifier {
    socket: std::os::unix::net::UnixDatagram,
    address: std::os::unix::net::SocketAddr,
}

impl ServiceNotifier {
    /// The notifier for `NOTIFY_SOCKET`'s value: a path, or `@name` for an abstract socket.
    /// `None` (and a log line) when it cannot be used: the mount goes on without it.
    fn new(socket: Option<&std::ffi::OsStr>) -> Option<ServiceNotifier> {
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let value = socket?.as_bytes();
        let address = match value.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            None => SocketAddr::from_pathname(Path::new(std::ffi::OsStr::from_bytes(value))),
        };
        let made = address.and_then(|address| Ok((UnixDatagram::unbound()?, address)));
        match made {
            Ok((socket, address)) => Some(ServiceNotifier { socket, address }),
            Err(err) => {
                tracing::warn!("cannot use NOTIFY_SOCKET: {err}");
                None
            }
        }
    }

    /// Sends `message` (`KEY=VALUE` lines); a lost message is logged, never fatal.
    fn send(&self, message: &str) {
        if let Err(err) = self.socket.send_to_addr(message.as_bytes(), &self.address) {
            tracing::warn!("cannot tell the service manager {message:?}: {err}");
        }
    }
}

/// Mounts and serves until unmounted. Returns once the filesystem is gone.
pub fn run(config: MountConfig) -> anyhow::Result<()> {
    crate::allocator::keep_block_buffers();
    if config.notify_ready {
        // Detached from the terminal's process group, so Ctrl-C there does not reach us.
        // SAFETY: setsid has no memory-safety preconditions; failure (already a leader) is fine.
        unsafe {
            libc::setsid();
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("confluencefs")
        .build()
        .context("cannot start the async runtime")?;

    let client = runtime.block_on(Client::connect(config.client.clone()))?;
    let mountpoint = check_mountpoint(&config.mountpoint, config.options.nonempty)?;
    let cache_dir = config.cache_dir.join(site_dir_name(&client));
    private_dir(&config.cache_dir)?;
    private_dir(&cache_dir)?;
    let cache = BlockCache::new(CacheConfig {
        memory_bytes: config.memory_cache_bytes,
        disk_dir: (config.disk_cache_bytes > 0).then(|| cache_dir.join("blocks")),
        disk_bytes: config.disk_cache_bytes,
        ..CacheConfig::default()
    })
    .with_context(|| format!("cannot open the cache in {}", cache_dir.display()))?;

    let writer = if config.read_only {
        None
    } else {
        let staging_dir = cache_dir.join("staging");
        private_dir(&staging_dir)?;
        clear_dir(&staging_dir);
        let spool =
            Arc::new(Spool::open(&cache_dir.join("spool")).with_context(|| {
                format!("cannot open the upload spool in {}", cache_dir.display())
            })?);
        let (uploader, events) =
            runtime.block_on(async { Uploader::new(client.clone(), spool.clone()) });
        Some(Writer::new(
            config.write.clone(),
            staging_dir,
            spool,
            uploader,
            events,
        ))
    };
    let uploader = writer.as_ref().map(|w| w.uploader.clone());

    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let site = client.base_url().to_string();
    let parts = StatusParts {
        client: client.clone(),
        cache: cache.clone(),
        spool_dir: uploader.as_ref().map(|u| u.spool().dir().to_path_buf()),
        mountpoint: mountpoint.clone(),
        read_only: config.read_only,
        memory_limit_bytes: config.memory_cache_bytes,
        disk_limit_bytes: config.disk_cache_bytes,
        started: std::time::SystemTime::now(),
        passthrough: None,
        fs: None,
    };
    let fs = Arc::new(ConfluenceFs::new(
        client,
        cache,
        FsConfig {
            uid: config.uid.unwrap_or(uid),
            gid: config.gid.unwrap_or(gid),
            file_mode: config.file_mode,
            dir_mode: config.dir_mode,
            read_only: config.read_only,
            metadata_ttl: config.metadata_ttl,
            spaces: config.spaces.clone(),
            show_versions: config.show_versions,
            passthrough: config.passthrough,
        },
        writer,
    ));
    {
        let _guard = runtime.enter();
        fs.start_background();
    }
    let attributes = fs.clone();
    let adapter = FuseAdapter::new(fs, runtime.handle().clone(), config.op_timeout);
    let passthrough = adapter.passthrough();

    let mut fuse_config = fuser::Config::default();
    fuse_config.mount_options = mount_options(&config);
    fuse_config.acl = if config.allow_other {
        fuser::SessionACL::All
    } else if config.options.allow_root {
        fuser::SessionACL::RootAndOwner
    } else {
        fuser::SessionACL::Owner
    };
    fuse_config.n_threads = Some(2);
    let mut session = fuser::Session::new(adapter, &mountpoint, &fuse_config)
        .with_context(|| format!("cannot mount at {}", mountpoint.display()))?;
    let mut unmounter = session.unmount_callable();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("fuse-session".into())
        .spawn(move || {
            let result = session.run();
            let _ = done_tx.send(result);
        })
        .context("cannot start the FUSE session thread")?;
    raise_readahead(&mountpoint);
    let status = StatusWriter::start(
        &runtime,
        StatusParts {
            // Uptime counts from readiness, not from the connect.
            started: std::time::SystemTime::now(),
            passthrough: Some(passthrough),
            fs: Some(attributes.clone()),
            ..parts
        },
    );

    // The handlers exist before anyone is told the mount is ready: a SIGTERM that follows
    // READY at once (systemd stopping a unit it just started) must find them, not end the
    // process with its default action and leave the mount without its drain.
    let (mut terminate, mut interrupt) = {
        let _runtime = runtime.enter();
        (
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        )
    };
    if config.notify_ready {
        println!("{READY_LINE}");
        detach_stdio(config.log_file.as_deref());
        if let Some(path) = config.log_file.clone() {
            runtime.spawn(rotate_log(path, config.log_max_bytes));
        }
    }
    tracing::info!(mountpoint = %mountpoint.display(), "mounted");
    let notifier = ServiceNotifier::new(config.notify_socket.as_deref());
    if let Some(notifier) = &notifier {
        notifier.send(&format!(
            "READY=1\nSTATUS=Serving {site} at {}",
            mountpoint.display()
        ));
    }
    let stopping = move || {
        if let Some(notifier) = &notifier {
            notifier.send("STOPPING=1\nSTATUS=Unmounting; finishing uploads");
        }
        status.unmounting();
        (notifier, status)
    };

    let unmount_wait = config.unmount_wait;
    runtime.block_on(async move {
        let (result, (notifier, _status)) = tokio::select! {
            result = done_rx => {
                tracing::info!("the mount ended");
                if let Ok(Err(err)) = result {
                    tracing::warn!("FUSE session ended with an error: {err}");
                }
                (Ok(()), stopping())
            }
            _ = interrupt.recv() => {
                let notifier = stopping();
                (unmount(&mut unmounter, &mountpoint), notifier)
            }
            _ = terminate.recv() => {
                let notifier = stopping();
                (unmount(&mut unmounter, &mountpoint), notifier)
            }
        };
        if let Some(uploader) = uploader {
            // The last RELEASEs came just before the unmount: their uploads first.
            if tokio::time::timeout(unmount_wait, attributes.quiesce())
                .await
                .is_err()
            {
                tracing::warn!("uploads after the last closes still running at unmount");
            }
            attributes.upload_dirty().await;
            let left = uploader.drain(unmount_wait).await;
            attributes.flush_attributes().await;
            if left.is_empty() {
                tracing::info!("no uploads left");
            } else {
                for entry in &left {
                    tracing::warn!(
                        path = %entry.record.display_path,
                        "still waiting to upload; it resumes on the next mount"
                    );
                }
                eprintln!(
                    "confluencefs: {} upload(s) still waiting in {}; they resume on the next mount \
                     (see `confluencefs pending`)",
                    left.len(),
                    uploader.spool().dir().display()
                );
            }
            if let Some(notifier) = &notifier {
                notifier.send(&format!(
                    "STATUS=Unmounted; {} upload(s) left for the next mount",
                    left.len()
                ));
            }
        }
        result
    })
}

/// Removes leftovers in `dir` (staging files of a process that died: their bytes were never
/// acknowledged to anyone, and whatever was acknowledged is in the spool).
fn clear_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn unmount(unmounter: &mut fuser::SessionUnmounter, mountpoint: &Path) -> anyhow::Result<()> {
    tracing::info!("unmounting {}", mountpoint.display());
    if let Err(err) = unmounter.unmount() {
        // Busy (a shell sits in it): detach it lazily rather than leave a dead mount.
        tracing::warn!("unmount failed ({err}); detaching lazily");
        let path = CString::new(mountpoint.as_os_str().as_bytes())?;
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        let rc = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        if rc != 0 {
            bail!(
                "cannot unmount {}: {}",
                mountpoint.display(),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

fn mount_options(config: &MountConfig) -> Vec<fuser::MountOption> {
    use fuser::MountOption as M;
    let mut options = vec![
        M::FSName(
            config
                .options
                .fsname
                .clone()
                .unwrap_or_else(|| "confluencefs".to_string()),
        ),
        M::Subtype("confluencefs".to_string()),
        M::DefaultPermissions,
        if config.read_only { M::RO } else { M::RW },
    ];
    // nodev,nosuid unless asked otherwise (mount.fuse3 asks for dev,suid when root mounts
    // through mount(8), as for any file system); fuser refuses a list holding both.
    for (default, asked) in [(M::NoDev, M::Dev), (M::NoSuid, M::Suid)] {
        if !config.options.kernel.contains(&asked) {
            options.push(default);
        }
    }
    options.extend(config.options.kernel.iter().cloned());
    options
}

/// The mountpoint as an absolute path, refused with a clear reason when it cannot be used
/// (missing, not a directory, already a mountpoint, or not empty without `allow_nonempty`).
/// `confluencefs doctor` asks the same question before any mount.
pub fn check_mountpoint(path: &Path, allow_nonempty: bool) -> anyhow::Result<PathBuf> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("mountpoint {} is not usable", path.display()))?;
    if !metadata.is_dir() {
        bail!("mountpoint {} is not a directory", path.display());
    }
    let absolute = std::fs::canonicalize(path)?;
    if is_mount_point(&absolute)? {
        bail!(
            "mountpoint {} is busy: something is already mounted there",
            absolute.display()
        );
    }
    if !allow_nonempty && std::fs::read_dir(&absolute)?.next().is_some() {
        bail!(
            "mountpoint {} is not empty (use -o nonempty to mount over it anyway)",
            absolute.display()
        );
    }
    Ok(absolute)
}

fn is_mount_point(path: &Path) -> anyhow::Result<bool> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let wanted = path.as_os_str().as_bytes();
    Ok(mountinfo.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|field| unescape_mountinfo(field) == wanted)
    }))
}

/// `/proc/self/mountinfo` writes space, tab, newline and backslash as `\ooo`: a field as bytes.
pub fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("0");
            out.push(u8::from_str_radix(octal, 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// One cache directory per site and user, so two mounts of different sites never share blocks
/// (attachment ids are only unique within a site).
fn site_dir_name(client: &Client) -> String {
    let identity = format!("{}|{}", client.base_url(), client.current_user().name());
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in identity.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let host = client
        .base_url()
        .host_str()
        .unwrap_or("site")
        .replace(':', "_");
    format!("{host}-{hash:016x}")
}

/// Creates `dir` (and its parents) and makes it 0700: cached blocks are the user's data.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.display()))?;
    Ok(())
}

/// The kernel reads ahead 128 KiB by default on FUSE; 1 MiB requests make sequential reads
/// several times faster (docs/FUSE-NOTES.md §5). Best effort: only root may write the knob.
fn raise_readahead(mountpoint: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(metadata) = std::fs::metadata(mountpoint) else {
        return;
    };
    let dev = metadata.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let knob = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    if let Err(err) = std::fs::write(&knob, "1024") {
        tracing::debug!("cannot raise read-ahead at {knob}: {err}");
    }
}

/// How often the log file's size is looked at.
const LOG_CHECK: Duration = Duration::from_secs(1);

/// Keeps the log file of a background mount under `max` bytes: past it, the file becomes
/// `NAME.1` (one generation is kept) and a new one takes stdout and stderr. A mount that runs
/// for months with `CONFLUENCEFS_LOG=debug` must not fill the disk its cache and spool share.
async fn rotate_log(path: PathBuf, max: u64) {
    let mut old = path.clone().into_os_string();
    old.push(".1");
    let old = PathBuf::from(old);
    loop {
        tokio::time::sleep(LOG_CHECK).await;
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        if size <= max {
            continue;
        }
        if std::fs::rename(&path, &old).is_err() {
            continue;
        }
        detach_stdio(Some(&path));
        tracing::info!(rotated = %old.display(), bytes = size, "log rotated");
    }
}

/// After readiness, the detached process has no terminal: its output goes to the log file.
fn detach_stdio(log_file: Option<&Path>) {
    use std::os::fd::AsRawFd;
    let target = log_file
        .and_then(|path| {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .ok()
        })
        .or_else(|| {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .ok()
        });
    let early = EARLY_LOG.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut file) = target {
        if let Some(early) = early {
            use std::io::Write;
            let _ = file.write_all(&early);
        }
        // SAFETY: both descriptors are valid; dup2 replaces stdout/stderr atomically.
        unsafe {
            libc::dup2(file.as_raw_fd(), 1);
            libc::dup2(file.as_raw_fd(), 2);
        }
    }
}
