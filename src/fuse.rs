//! The FUSE adapter: fuser callbacks in, `ConfluenceFs` calls out, errno back. No logic here.
//!
//! fuser calls us on its session thread; every operation that may wait on the network is
//! moved into a task on the tokio runtime together with its `Reply`, so one slow listing never
//! stalls the next request. What docs/FUSE-NOTES.md measured shapes the rest: FLUSH and FSYNC
//! answer OK (ENOSYS would latch for the whole mount), xattr calls never answer ENOSYS either,
//! `security.*`/`system.*` names are refused from memory, and readdirplus is negotiated so
//! `ls -l` gets attributes with the names.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle;

use crate::fs::{Attr, ConfluenceFs, FsError, SetAttr};

mod backing;
use backing::{Backings, Choice};

/// The `fuser::Filesystem` of a mount: turns each kernel request into a task that calls
/// [`ConfluenceFs`] and replies with its answer or its errno.
pub struct FuseAdapter {
    fs: Arc<ConfluenceFs>,
    runtime: Handle,
    /// How long a question may take (`--op-timeout`).
    deadline: Duration,
    /// Which inodes the kernel serves from a local file itself.
    backings: Arc<Backings>,
}

impl FuseAdapter {
    /// An adapter for `fs` whose tasks run on `runtime` and answer ETIMEDOUT after `deadline`.
    pub fn new(fs: Arc<ConfluenceFs>, runtime: Handle, deadline: Duration) -> FuseAdapter {
        FuseAdapter {
            fs,
            runtime,
            deadline,
            backings: Arc::default(),
        }
    }

    /// What the mount's status says of FUSE passthrough, readable after the adapter is
    /// handed to the session.
    pub fn passthrough(&self) -> PassthroughReport {
        PassthroughReport(self.backings.clone())
    }

    fn ttl(&self) -> Duration {
        self.fs.kernel_ttl()
    }
}

/// Whether the kernel reads and writes local files itself (FUSE passthrough), for `status`.
#[derive(Clone)]
pub struct PassthroughReport(Arc<Backings>);

impl PassthroughReport {
    /// `None` while passthrough is in use (or not negotiated yet); otherwise why it is off.
    pub fn off_because(&self) -> Option<String> {
        self.0.off_because()
    }

    /// Opens the kernel has served from a local file so far.
    pub fn opened(&self) -> u64 {
        self.0.opened()
    }
}

fn errno(err: &FsError) -> Errno {
    Errno::from_i32(err.errno())
}

fn kind_of(attr: &Attr) -> FileType {
    if attr.is_dir {
        FileType::Directory
    } else if attr.is_link {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.blocks,
        atime: attr.mtime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        crtime: attr.ctime,
        kind: kind_of(attr),
        perm: attr.perm,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: crate::fs::IO_SIZE,
        flags: 0,
    }
}

fn name_str(name: &OsStr) -> Result<String, FsError> {
    if name.len() > crate::fs::NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| FsError::Invalid("file names must be UTF-8".into()))
}

/// xattr namespaces the kernel and tools ask about that Confluence has no notion of.
fn foreign_xattr(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.starts_with(b"security.") || name.starts_with(b"system.") || name.starts_with(b"trusted.")
}

impl fuser::Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // HANDLE_KILLPRIV_V2: we have no setuid bits to clear, and without it the kernel asks
        // for `security.capability` before every WRITE (docs/FUSE-NOTES.md §4).
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_HANDLE_KILLPRIV_V2;
        let offered = config.capabilities() & wanted;
        let _ = config.add_capabilities(offered);
        self.backings
            .set_enabled(self.negotiate_passthrough(config));
        let _ = config.set_max_background(64);
        let _ = config
            .set_max_readahead(u32::MAX)
            .or_else(|max| config.set_max_readahead(max));
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let ttl = self.ttl();
        self.on_name(
            req,
            "lookup",
            Kind::Ask,
            name,
            move |fs, name| async move { fs.lookup_entry(parent.0, &name).await },
            move |result| match result {
                Ok(attr) => reply.entry(&ttl, &file_attr(&attr), Generation(0)),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let fs = self.fs.clone();
        self.run(
            req,
            "readlink",
            Kind::Ask,
            async move { fs.readlink(ino.0) },
            move |result| match result {
                Ok(target) => reply.data(target.as_bytes()),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let fs = self.fs.clone();
        let ttl = self.ttl();
        self.run(
            req,
            "getattr",
            Kind::Ask,
            async move { fs.getattr(ino.0).await },
            move |result| match result {
                Ok(attr) => reply.attr(&ttl, &file_attr(&attr)),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let fs = self.fs.clone();
        let ttl = self.ttl();
        let change = SetAttr {
            mode,
            uid,
            gid,
            size,
            mtime: mtime.map(|t| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            }),
            caller_uid: req.uid(),
        };
        self.run(
            req,
            "setattr",
            Kind::Change,
            async move { fs.setattr(ino.0, change).await },
            move |result| match result {
                Ok(attr) => reply.attr(&ttl, &file_attr(&attr)),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let ttl = self.ttl();
        self.on_name(
            req,
            "mkdir",
            Kind::Change,
            name,
            move |fs, name| async move {
                let attr = fs.mkdir(parent.0, &name, mode).await?;
                counted(&fs, attr.ino).map(|()| attr)
            },
            move |result| match result {
                Ok(attr) => reply.entry(&ttl, &file_attr(&attr), Generation(0)),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(errno(&self.fs.refuse_special("device node")));
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(errno(&self.fs.refuse_special("symlink")));
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(errno(&self.fs.refuse_special("hard link")));
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.on_name(
            req,
            "unlink",
            Kind::Change,
            name,
            move |fs, name| async move { fs.unlink(parent.0, &name).await },
            move |result| reply_empty(reply, result),
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.on_name(
            req,
            "rmdir",
            Kind::Change,
            name,
            move |fs, name| async move { fs.rmdir(parent.0, &name).await },
            move |result| reply_empty(reply, result),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(Errno::from_i32(libc::EINVAL));
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let fs = self.fs.clone();
        let (name, newname) = (name_str(name), name_str(newname));
        self.run(
            req,
            "rename",
            Kind::Change,
            async move {
                match (name, newname) {
                    (Ok(name), Ok(newname)) => {
                        fs.rename(parent.0, &name, newparent.0, &newname, no_replace)
                            .await
                    }
                    (Err(err), _) | (_, Err(err)) => Err(err),
                }
            },
            move |result| reply_empty(reply, result),
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let ttl = self.ttl();
        let backings = self.backings.clone();
        let fs = self.fs.clone();
        self.on_name(
            req,
            "create",
            Kind::Change,
            name,
            move |fs, name| async move {
                let (attr, handle) = fs.create(parent.0, &name, mode).await?;
                counted(&fs, attr.ino).map(|()| (attr, handle))
            },
            move |result| match result {
                Ok((attr, opened)) => {
                    let handle = FileHandle(opened.handle);
                    let attr = file_attr(&attr);
                    match backings.choose(attr.ino.0, opened.handle, opened.backing, |file| {
                        reply.open_backing(file)
                    }) {
                        Choice::Passthrough(id) => {
                            fs.passthrough_started(opened.handle);
                            reply.created_passthrough(
                                &ttl,
                                &attr,
                                Generation(0),
                                handle,
                                FopenFlags::empty(),
                                &id,
                            )
                        }
                        Choice::Cached => {
                            reply.created(&ttl, &attr, Generation(0), handle, FopenFlags::empty())
                        }
                    }
                }
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        let started = self.fs.clone();
        let backings = self.backings.clone();
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        // An open for writing may wait for the file's upload: never cut short by a deadline.
        let kind = if write { Kind::Change } else { Kind::Ask };
        self.run(
            req,
            "open",
            kind,
            async move { fs.open(ino.0, write).await },
            move |result| match result {
                Ok(opened) => {
                    let mut flags = FopenFlags::empty();
                    if opened.keep_cache {
                        flags |= FopenFlags::FOPEN_KEEP_CACHE;
                    }
                    let handle = opened.handle;
                    match backings.choose(ino.0, handle, opened.backing, |file| {
                        reply.open_backing(file)
                    }) {
                        Choice::Passthrough(id) => {
                            started.passthrough_started(handle);
                            reply.opened_passthrough(FileHandle(handle), FopenFlags::empty(), &id)
                        }
                        Choice::Cached => reply.opened(FileHandle(handle), flags),
                    }
                }
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let fs = self.fs.clone();
        self.run(
            req,
            "read",
            Kind::Ask,
            async move { fs.read(fh.0, offset, size).await },
            move |result| match result {
                Ok(bytes) => reply.data(&bytes),
                Err(err) => {
                    tracing::debug!(handle = fh.0, offset, size, "read failed: {err}");
                    reply.error(errno(&err))
                }
            },
        );
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // The common case (appending to a staged file nobody else holds) is a pwrite: done here,
        // without copying the data into a task.
        if let Some(result) = self.fs.write_now(fh.0, offset, data) {
            return match result {
                Ok(written) => reply.written(written),
                Err(err) => reply.error(errno(&err)),
            };
        }
        let fs = self.fs.clone();
        let data = data.to_vec();
        self.run(
            req,
            "write",
            Kind::Change,
            async move { fs.write(fh.0, offset, &data).await },
            move |result| match result {
                Ok(written) => reply.written(written),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.upload_changes(req, "flush", fh, reply);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _runtime = self.runtime.enter();
        self.backings.released(fh.0);
        self.fs.release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.upload_changes(req, "fsync", fh, reply);
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        self.run(
            req,
            "opendir",
            Kind::Ask,
            async move { fs.opendir(ino.0).await },
            move |result| match result {
                Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.fs.readdir(fh.0) {
            Ok(entries) => entries,
            Err(err) => return reply.error(errno(&err)),
        };
        // Offsets: 1 = ".", 2 = "..", 3.. = entries; each entry carries the offset of the next.
        let dots = [(".", ino.0, true), ("..", ino.0, true)];
        let mut next = offset;
        while (next as usize) < dots.len() {
            let (name, dot_ino, _) = dots[next as usize];
            if reply.add(INodeNo(dot_ino), next + 1, FileType::Directory, name) {
                return reply.ok();
            }
            next += 1;
        }
        for (index, entry) in entries.iter().enumerate().skip(next as usize - dots.len()) {
            let kind = kind_of(&entry.attr);
            let entry_offset = (index + dots.len() + 1) as u64;
            if reply.add(INodeNo(entry.attr.ino), entry_offset, kind, &entry.name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let entries = match self.fs.readdir(fh.0) {
            Ok(entries) => entries,
            Err(err) => return reply.error(errno(&err)),
        };
        let ttl = self.ttl();
        // "." and ".." come without a lookup count; the kernel fills them in itself, but the
        // offsets stay as in readdir so a reader may switch between the two.
        let dot_attr = match self.fs.attr_now(ino.0) {
            Ok(attr) => file_attr(&attr),
            Err(err) => return reply.error(errno(&err)),
        };
        let mut next = offset;
        for name in [".", ".."].iter().skip(next as usize) {
            if reply.add(
                ino,
                next + 1,
                name,
                &Duration::ZERO,
                &dot_attr,
                Generation(0),
            ) {
                return reply.ok();
            }
            next += 1;
        }
        for (index, entry) in entries.iter().enumerate().skip(next as usize - 2) {
            let entry_offset = (index + 3) as u64;
            // Every entry but "." and ".." counts as a lookup; the open directory holds its
            // entries' inodes, so none is gone, but one that were would be skipped, not given.
            if !self.fs.remember_lookup(entry.attr.ino) {
                continue;
            }
            if reply.add(
                INodeNo(entry.attr.ino),
                entry_offset,
                &entry.name,
                &ttl,
                &file_attr(&entry.attr),
                Generation(0),
            ) {
                // Not added: the buffer is full, and the kernel asks again from here.
                self.fs.forget_now(entry.attr.ino, 1);
                break;
            }
        }
        reply.ok();
    }

    // fuser 0.18 keeps BATCH_FORGET's `ForgetOne` private, so its default calls this for each
    // entry of a batch: counting is a lock and a subtraction, and collections are coalesced.
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let _runtime = self.runtime.enter();
        self.fs.forget(ino.0, nlookup);
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let statfs = self.fs.statfs();
        reply.statfs(
            0,
            0,
            0,
            0,
            0,
            statfs.block_size,
            statfs.name_max,
            statfs.block_size,
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        if foreign_xattr(name) {
            return reply.error(Errno::from_i32(libc::EOPNOTSUPP));
        }
        let value = value.to_vec();
        self.on_name(
            req,
            "setxattr",
            Kind::Change,
            name,
            move |fs, name| async move { fs.setxattr(ino.0, &name, &value).await },
            move |result| reply_empty(reply, result),
        );
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if foreign_xattr(name) {
            return reply.error(Errno::from_i32(libc::ENODATA));
        }
        let fs = self.fs.clone();
        let name = name_str(name);
        self.run(
            req,
            "getxattr",
            Kind::Ask,
            async move {
                match name {
                    Ok(name) => fs.getxattr(ino.0, &name).await,
                    Err(_) => Err(FsError::NoAttribute),
                }
            },
            move |result| reply_xattr(reply, size, result),
        );
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let fs = self.fs.clone();
        self.run(
            req,
            "listxattr",
            Kind::Ask,
            async move { fs.listxattr(ino.0).await },
            move |result| reply_xattr(reply, size, result),
        );
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if foreign_xattr(name) {
            return reply.error(Errno::from_i32(libc::ENODATA));
        }
        self.on_name(
            req,
            "removexattr",
            Kind::Change,
            name,
            move |fs, name| async move { fs.removexattr(ino.0, &name).await },
            move |result| reply_empty(reply, result),
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    /// No ioctl means anything here; ENOTTY is what a terminal probe (`TCGETS`, sent by every
    /// Python `open()`) expects from a regular file, and it is answered without a log line.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(Errno::from_i32(libc::ENOTTY));
    }
}

/// What dropping an operation midway would do: nothing (a question), or leave a change half
/// made (it must run to its end).
#[derive(Clone, Copy)]
enum Kind {
    Ask,
    Change,
}

/// How often a waiting operation looks whether the process that asked is still there.
const REQUESTER_POLL: Duration = Duration::from_millis(200);

impl FuseAdapter {
    /// Asks the kernel for FUSE passthrough (`backing.rs`) when the mount wants it; `Err`
    /// says why it is off.
    fn negotiate_passthrough(&self, config: &mut KernelConfig) -> Result<(), String> {
        if !self.fs.config().passthrough {
            return Err("--no-passthrough".into());
        }
        if !config.capabilities().contains(InitFlags::FUSE_PASSTHROUGH) {
            return Err("the kernel does not offer it (Linux 6.9 or later)".into());
        }
        // Backing files on a filesystem that is not itself stacked (the cache directory).
        config
            .set_max_stack_depth(1)
            .map_err(|_| "the kernel refused a stacking depth of 1".to_string())?;
        config
            .add_capabilities(InitFlags::FUSE_PASSTHROUGH)
            .map_err(|_| "the kernel refused the capability".to_string())
    }

    /// Runs `op` on the runtime and hands its result to `finish`, which replies — bounded, so
    /// that no process is left stuck on us. A question (`Kind::Ask`) answers ETIMEDOUT after
    /// the deadline, and EINTR as soon as the process that asked is gone or killed; it is then
    /// dropped, which cancels its requests. A change runs to its end whatever happens (a half
    /// made rename or upload is worse than a slow one), but a killed process gets its EINTR
    /// at once and can exit. fuser answers FUSE_INTERRUPT itself with ENOSYS, after which the
    /// kernel waits for our reply uninterruptibly: looking at the process is how we know.
    fn run<T, Fut, Finish>(
        &self,
        req: &Request,
        what: &'static str,
        kind: Kind,
        op: Fut,
        finish: Finish,
    ) where
        T: Send + 'static,
        Fut: std::future::Future<Output = Result<T, FsError>> + Send + 'static,
        Finish: FnOnce(Result<T, FsError>) + Send + 'static,
    {
        let pid = req.pid();
        let deadline = self.deadline;
        let finish = move |result: Result<T, FsError>| {
            if let Err(err) = &result {
                log_failure(what, err);
            }
            finish(result)
        };
        match kind {
            Kind::Ask => {
                self.runtime.spawn(async move {
                    let result = tokio::select! {
                        result = op => result,
                        gone = requester_gone(pid) => Err(gone),
                        _ = tokio::time::sleep(deadline) => {
                            tracing::warn!(?deadline, "an operation took too long; answered ETIMEDOUT");
                            Err(FsError::TimedOut)
                        }
                    };
                    finish(result);
                });
            }
            Kind::Change => {
                let mut work = self.runtime.spawn(op);
                self.runtime.spawn(async move {
                    let result = tokio::select! {
                        done = &mut work => done.unwrap_or(Err(FsError::Errno(libc::EIO))),
                        gone = requester_gone(pid) => Err(gone),
                    };
                    finish(result);
                });
            }
        }
    }

    /// FLUSH and FSYNC: the changes of the handle's file go up, and `close()`/`fsync()` get
    /// the upload's answer; a handle opened read-only is answered at once.
    fn upload_changes(&self, req: &Request, what: &'static str, fh: FileHandle, reply: ReplyEmpty) {
        if !self.fs.has_changes_to_flush(fh.0) {
            return reply.ok();
        }
        let fs = self.fs.clone();
        self.run(
            req,
            what,
            Kind::Change,
            async move { fs.flush(fh.0).await },
            move |result| reply_empty(reply, result),
        );
    }

    /// [`run`](Self::run) with `name` as UTF-8 of at most 255 bytes (EINVAL, ENAMETOOLONG).
    fn on_name<T, Op, Fut, Finish>(
        &self,
        req: &Request,
        what: &'static str,
        kind: Kind,
        name: &OsStr,
        op: Op,
        finish: Finish,
    ) where
        T: Send + 'static,
        Op: FnOnce(Arc<ConfluenceFs>, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, FsError>> + Send + 'static,
        Finish: FnOnce(Result<T, FsError>) + Send + 'static,
    {
        let fs = self.fs.clone();
        let name = name_str(name);
        self.run(
            req,
            what,
            kind,
            async move {
                match name {
                    Ok(name) => op(fs, name).await,
                    Err(err) => Err(err),
                }
            },
            finish,
        );
    }
}

/// Logs a failure once, where it is answered: what went wrong with the server or the disk
/// (with the request it concerned, which names the URL and never the credential), and what
/// was refused. Ordinary answers (no such name, not empty, exists) are not failures.
/// Counts an entry about to be replied (CREATE, MKDIR); ESTALE if it is gone already, which
/// it cannot be while new (`inode::InodeTable::age_fresh`).
fn counted(fs: &ConfluenceFs, ino: u64) -> Result<(), FsError> {
    if fs.remember_lookup(ino) {
        Ok(())
    } else {
        Err(FsError::Errno(libc::ESTALE))
    }
}

fn log_failure(what: &'static str, err: &FsError) {
    use crate::confluence::ClientError;
    match err {
        FsError::Client(client) if matches!(**client, ClientError::NotFound { .. }) => {}
        FsError::Client(client) if client.status() == Some(404) => {}
        FsError::Client(_) | FsError::Io(_) | FsError::TimedOut => {
            tracing::warn!(op = what, "failed: {err}")
        }
        FsError::TooLarge
        | FsError::Invalid(_)
        | FsError::NotPermitted(_)
        | FsError::CrossDevice
        | FsError::ReadOnly => tracing::info!(op = what, "refused: {err}"),
        // An upload's errno was logged with its path where it failed; the rest are answers.
        _ => {}
    }
}

/// Resolves once the process (thread) `pid` is gone or has a SIGKILL pending: a killed process
/// blocked on a request we already read cannot die until we answer.
async fn requester_gone(pid: u32) -> FsError {
    loop {
        tokio::time::sleep(REQUESTER_POLL).await;
        if pid != 0 && !alive(pid) {
            tracing::debug!(pid, "the process that asked is gone; answered EINTR");
            return FsError::Interrupted;
        }
    }
}

fn alive(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let kill = 1u64 << (libc::SIGKILL - 1);
    !status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("SigPnd:")
                .or_else(|| l.strip_prefix("ShdPnd:"))
        })
        .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .any(|mask| mask & kill != 0)
}

fn reply_empty(reply: ReplyEmpty, result: Result<(), FsError>) {
    match result {
        Ok(()) => reply.ok(),
        Err(err) => reply.error(errno(&err)),
    }
}

/// The xattr size protocol: size 0 asks for the length, a too-small buffer is ERANGE.
fn reply_xattr(reply: ReplyXattr, size: u32, result: Result<Vec<u8>, FsError>) {
    match result {
        Ok(value) if size == 0 => reply.size(value.len() as u32),
        Ok(value) if value.len() > size as usize => reply.error(Errno::from_i32(libc::ERANGE)),
        Ok(value) => reply.data(&value),
        Err(err) => reply.error(errno(&err)),
    }
}
