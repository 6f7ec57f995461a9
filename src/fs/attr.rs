//! `stat` for Confluence objects.
//!
//! Sizes are exact (the server's byte count), `st_blocks` is that size in 512-byte units so
//! `du` adds up to what a copy would take, and `st_mtime` is the time of the version a user
//! sees. Everything belongs to the mounting user (or to `--uid`/`--gid`); the mode is the one
//! chmod set, else the mount's default for files or directories, and says what may be done
//! (no `w` on a read-only mount, and never on `@versions`, which is history).

use std::time::SystemTime;

use super::inode::{Entry, Node};
use super::ConfluenceFs;

/// The block size `statfs` reports.
pub const BLOCK_SIZE: u32 = 4096;

/// `st_blksize`, the preferred I/O size: `cp`, `cat` and friends size their buffers by it
/// (at least 128 KiB). One cache block means 1 MiB READs and WRITEs, eight times fewer FUSE
/// round trips than 128 KiB for the same bytes.
pub const IO_SIZE: u32 = 1 << 20;

/// Kernel-independent attributes; the FUSE adapter turns them into `fuser::FileAttr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// The inode number (`st_ino`).
    pub ino: u64,
    /// Exact size in bytes: the server's, or the staged bytes' while a file has local changes.
    pub size: u64,
    /// `size` in 512-byte units, so that `du` adds up to what a copy takes.
    pub blocks: u64,
    /// The version's time, or the time a user set and the object keeps.
    pub mtime: SystemTime,
    /// The same as `mtime`: Confluence keeps no separate change time.
    pub ctime: SystemTime,
    /// A directory (space, page, `@blog`, `@versions`) rather than a file.
    pub is_dir: bool,
    /// A symbolic link (`@pages` entries, search hits).
    pub is_link: bool,
    /// Permission bits: the kept mode, or the default for the kind and the mount.
    pub perm: u16,
    /// 2 for directories, 1 for files, 0 for a file deleted while open.
    pub nlink: u32,
    /// Owner: the mounting user, or the mount's `--uid`.
    pub uid: u32,
    /// Group: the mounting user's, or the mount's `--gid`.
    pub gid: u32,
}

impl ConfluenceFs {
    pub(crate) fn attr_of(&self, ino: u64, entry: &Entry) -> Attr {
        let writable = !self.config.read_only;
        let mut is_link = false;
        let (size, mtime, is_dir, history) = match &entry.node {
            Node::Text(text) => {
                let (size, mtime, link, read_only) = text.shape(self.mounted_at);
                is_link = link;
                (size, mtime, text.is_dir(), read_only)
            }
            Node::Root => (0, self.mounted_at, true, false),
            Node::Space(_) | Node::Blog { .. } => (0, self.mounted_at, true, false),
            Node::Page(page) => (0, page.modified.unwrap_or(self.mounted_at), true, false),
            Node::Attachment(att) => (att.size, att.modified, false, false),
            Node::Versions { .. } => (0, self.mounted_at, true, true),
            Node::VersionsOf(att) => (0, att.modified, true, true),
            Node::Version { size, modified, .. } => (*size, *modified, false, true),
            // An attachment an editor moved aside has its bytes until it is staged.
            Node::Local(local) => (
                local.origin.as_ref().map_or(0, |o| o.size),
                local.created,
                false,
                false,
            ),
        };
        // Local bytes (being written, or waiting to upload) decide the size.
        let size = match self.staged_size(ino) {
            Some(staged) if !is_dir => staged,
            _ => size,
        };
        let overrides = self.attributes.overrides_of(ino);
        // What the user set: here in memory, or kept on the server (`kept_attrs.rs`).
        let (kept_mode, kept_mtime) = match &entry.node {
            Node::Page(page) => super::kept_attrs::kept(page.fs.as_ref(), page.version),
            Node::Attachment(att) => super::kept_attrs::kept(att.fs.as_ref(), att.version),
            _ => (None, None),
        };
        let mtime = overrides.mtime.or(kept_mtime).unwrap_or(mtime);
        // The mount's defaults (0755 and 0644 unless --dir-mode, --file-mode or --umask say
        // otherwise), without `w` where nothing may be written.
        let default = if is_dir {
            self.config.dir_mode
        } else {
            self.config.file_mode
        };
        let perm = if writable && !history {
            default & 0o7777
        } else {
            default & 0o7777 & !0o222
        };
        // A mode set by chmod is shown, but never more than the mount allows.
        let perm = match overrides.mode.or(kept_mode) {
            Some(mode) if writable && !history => mode & 0o7777,
            _ => perm,
        };
        Attr {
            ino,
            // Directories have no bytes of their own, so `du -sb` adds up to the attachments.
            size: if is_dir { 0 } else { size },
            blocks: if is_dir { 0 } else { size.div_ceil(512) },
            mtime,
            ctime: mtime,
            is_dir,
            is_link,
            perm: if is_link { 0o777 } else { perm },
            // A file deleted while open has no name left (`fstat` says so, as on a local disk).
            // A page's text counts two links, so that vim saves it in place (`backupcopy=auto`
            // copies rather than renames a file with more than one link): the page keeps one
            // version per save, and the text is reachable from `@pages` as well.
            nlink: if is_dir
                || matches!(
                    entry.node,
                    Node::Text(super::text_node::TextNode::Markdown { .. })
                ) {
                2
            } else if self.handles.is_orphan(ino) {
                0
            } else {
                1
            },
            uid: self.config.uid,
            gid: self.config.gid,
        }
    }
}
