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

pub struct FuseAdapter {
    fs: Arc<ConfluenceFs>,
    runtime: Handle,
}

impl FuseAdapter {
    pub fn new(fs: Arc<ConfluenceFs>, runtime: Handle) -> FuseAdapter {
        FuseAdapter { fs, runtime }
    }

    fn ttl(&self) -> Duration {
        self.fs.kernel_ttl()
    }
}

fn errno(err: &FsError) -> Errno {
    Errno::from_i32(err.errno())
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
        kind: if attr.is_dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
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
        let _ = config.set_max_background(64);
        let _ = config
            .set_max_readahead(u32::MAX)
            .or_else(|max| config.set_max_readahead(max));
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let ttl = self.ttl();
        self.on_name(
            name,
            move |fs, name| async move { fs.lookup(parent.0, &name).await },
            move |result| match result {
                Ok(attr) => reply.entry(&ttl, &file_attr(&attr), Generation(0)),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let fs = self.fs.clone();
        let ttl = self.ttl();
        self.runtime.spawn(async move {
            match fs.getattr(ino.0).await {
                Ok(attr) => reply.attr(&ttl, &file_attr(&attr)),
                Err(err) => reply.error(errno(&err)),
            }
        });
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
        self.runtime.spawn(async move {
            match fs.setattr(ino.0, change).await {
                Ok(attr) => reply.attr(&ttl, &file_attr(&attr)),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let ttl = self.ttl();
        self.on_name(
            name,
            move |fs, name| async move { fs.mkdir(parent.0, &name).await },
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

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.on_name(
            name,
            move |fs, name| async move { fs.unlink(parent.0, &name).await },
            move |result| reply_empty(reply, result),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.on_name(
            name,
            move |fs, name| async move { fs.rmdir(parent.0, &name).await },
            move |result| reply_empty(reply, result),
        );
    }

    fn rename(
        &self,
        _req: &Request,
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
        let (name, newname) = (name.to_owned(), newname.to_owned());
        self.runtime.spawn(async move {
            let result = match (name_str(&name), name_str(&newname)) {
                (Ok(name), Ok(newname)) => {
                    fs.rename(parent.0, &name, newparent.0, &newname, no_replace)
                        .await
                }
                (Err(err), _) | (_, Err(err)) => Err(err),
            };
            reply_empty(reply, result);
        });
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let ttl = self.ttl();
        self.on_name(
            name,
            move |fs, name| async move { fs.create(parent.0, &name).await },
            move |result| match result {
                Ok((attr, handle)) => reply.created(
                    &ttl,
                    &file_attr(&attr),
                    Generation(0),
                    FileHandle(handle),
                    FopenFlags::empty(),
                ),
                Err(err) => reply.error(errno(&err)),
            },
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        self.runtime.spawn(async move {
            match fs.open(ino.0, write).await {
                Ok(opened) => {
                    let mut flags = FopenFlags::empty();
                    if opened.keep_cache {
                        flags |= FopenFlags::FOPEN_KEEP_CACHE;
                    }
                    reply.opened(FileHandle(opened.handle), flags)
                }
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            match fs.read(fh.0, offset, size).await {
                Ok(bytes) => reply.data(&bytes),
                Err(err) => {
                    tracing::warn!(handle = fh.0, offset, size, "read failed: {err}");
                    reply.error(errno(&err))
                }
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
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
        self.runtime.spawn(async move {
            match fs.write(fh.0, offset, &data).await {
                Ok(written) => reply.written(written),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        if !self.fs.has_changes_to_flush(fh.0) {
            return reply.ok();
        }
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            let result = fs.flush(fh.0).await;
            reply_empty(reply, result);
        });
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
        self.fs.release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        if !self.fs.has_changes_to_flush(fh.0) {
            return reply.ok();
        }
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            let result = fs.flush(fh.0).await;
            reply_empty(reply, result);
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            match fs.opendir(ino.0).await {
                Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
                Err(err) => reply.error(errno(&err)),
            }
        });
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
            let kind = if entry.attr.is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
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
            if reply.add(
                INodeNo(entry.attr.ino),
                entry_offset,
                &entry.name,
                &ttl,
                &file_attr(&entry.attr),
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
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
        _req: &Request,
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
            name,
            move |fs, name| async move { fs.setxattr(ino.0, &name, &value).await },
            move |result| reply_empty(reply, result),
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if foreign_xattr(name) {
            return reply.error(Errno::from_i32(libc::ENODATA));
        }
        let fs = self.fs.clone();
        let name = name.to_owned();
        self.runtime.spawn(async move {
            let result = match name_str(&name) {
                Ok(name) => fs.getxattr(ino.0, &name).await,
                Err(_) => Err(FsError::NoAttribute),
            };
            reply_xattr(reply, size, result);
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            let result = fs.listxattr(ino.0).await;
            reply_xattr(reply, size, result);
        });
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if foreign_xattr(name) {
            return reply.error(Errno::from_i32(libc::ENODATA));
        }
        self.on_name(
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

impl FuseAdapter {
    /// Runs `op` on the runtime with `name` as UTF-8 (EINVAL when it is not), then hands its
    /// result to `finish`, which replies.
    fn on_name<T, Op, Fut, Finish>(&self, name: &OsStr, op: Op, finish: Finish)
    where
        T: Send + 'static,
        Op: FnOnce(Arc<ConfluenceFs>, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, FsError>> + Send + 'static,
        Finish: FnOnce(Result<T, FsError>) + Send + 'static,
    {
        let fs = self.fs.clone();
        let name = name_str(name);
        self.runtime.spawn(async move {
            let result = match name {
                Ok(name) => op(fs, name).await,
                Err(err) => Err(err),
            };
            finish(result);
        });
    }
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
