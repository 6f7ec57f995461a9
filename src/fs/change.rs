//! Changing the tree: create, unlink, mkdir, rmdir, rename, and the attribute changes that
//! `cp -a`, `rsync -a` and `tar -x` insist on.
//!
//! Each operation maps to the one Confluence call that means the same thing (a page created
//! or trashed, an attachment renamed or moved, a new version), and updates the cached
//! listing in place so the next `ls` costs nothing. The save patterns of editors and rsync
//! go through the local layer (`local.rs`): a scratch name never reaches the server, and the
//! rename that ends a save becomes exactly one new version of the file that was saved.
//!
//! Modes and times are accepted at once and kept on the server shortly after (`kept_attrs.rs`), so
//! tools that set them succeed and find them again after a remount; owners are not kept
//! (docs/SEMANTICS.md, What is kept of modes, owners and times).

use std::sync::Arc;
use std::time::SystemTime;

use super::files::FileGuard;
use super::fs_error::FsError;
use super::inode::Node;
use super::local::LocalAnswer;
use super::names;
use super::read::Opened;
use super::tempname::is_temporary;
use super::text_node::TextNode;
use super::{Attr, ConfluenceFs};
use crate::confluence::{Attachment, ClientError, ContentKind, Page};

/// What `setattr` asks for.
#[derive(Debug, Default, Clone)]
pub struct SetAttr {
    /// New permission bits (`chmod`).
    pub mode: Option<u32>,
    /// New owner (`chown`); accepted, never kept.
    pub uid: Option<u32>,
    /// New group (`chgrp`); accepted, never kept.
    pub gid: Option<u32>,
    /// New size (`truncate`, `O_TRUNC`).
    pub size: Option<u64>,
    /// New modification time (`utimens`).
    pub mtime: Option<SystemTime>,
    /// The caller's uid: only root and the mounting user may chown.
    pub caller_uid: u32,
}

impl ConfluenceFs {
    /// The inode behind `name` in `parent`, local layer first; `None` if there is none.
    pub(crate) async fn resolve(&self, parent: u64, name: &str) -> Result<Option<u64>, FsError> {
        match self.lookup(parent, name).await {
            Ok(attr) => Ok(Some(attr.ino)),
            Err(FsError::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn page_of(&self, ino: u64) -> Result<Page, FsError> {
        match self.entry(ino)?.node {
            Node::Page(page) => Ok(page),
            Node::Versions { .. } | Node::VersionsOf(_) => Err(FsError::Permission),
            _ => Err(FsError::NotPermitted("files live in page directories")),
        }
    }

    /// `creat`/`open(O_CREAT)`: a local file, uploaded on close unless it is a scratch file.
    /// `creat`/`open(O_CREAT)` with `mode` (the umask already applied by the kernel).
    pub async fn create(
        self: &Arc<Self>,
        parent: u64,
        name: &str,
        mode: u32,
    ) -> Result<(Attr, Opened), FsError> {
        self.writer()?;
        let page = self.page_of(parent)?;
        let filename = names::decode(name).ok_or_else(|| FsError::Invalid(name.into()))?;
        if name == names::VERSIONS_DIR {
            return Err(FsError::Exists);
        }
        if self.resolve(parent, name).await?.is_some() {
            return Err(FsError::Exists);
        }
        let ino = self.new_local_file(parent, page.container(), filename, is_temporary(name), None);
        let mut file = self.files.lock(ino).await;
        self.ensure_staged(&mut file)?.mark_new();
        self.tree.local.add(parent, name, ino);
        self.forget_negative(parent, name).await;
        let handle = self.add_staged_handle(&mut file, true);
        let backing = self.passthrough_offer(file.cell(), &file, true);
        drop(file);
        self.keep_created_mode(ino, mode, false);
        let opened = Opened {
            handle,
            keep_cache: false,
            backing,
        };
        Ok((self.attr_now(ino)?, opened))
    }

    /// `unlink`: an attachment to the trash, a local file dropped; kept alive while open.
    pub async fn unlink(&self, parent: u64, name: &str) -> Result<(), FsError> {
        self.writer()?;
        let ino = self.resolve(parent, name).await?.ok_or(FsError::NotFound)?;
        match self.entry(ino)?.node {
            Node::Attachment(_) | Node::Local(_) => {}
            Node::Version { .. } => return Err(FsError::Permission),
            Node::Text(TextNode::Markdown { .. } | TextNode::Storage { .. }) => {
                // A page's text is not a file of its own: removing it changes nothing on the
                // server (`rm -r` of a page goes on to `rmdir`, which trashes the page). The
                // name stays away in this mount; emptying the text is `: > name.md`.
                self.tree.local.hide(parent, name);
                return Ok(());
            }
            Node::Text(_) => return Err(FsError::Permission),
            _ => return Err(FsError::IsDirectory),
        }
        // After an upload of this file still running (the background one of an empty file at
        // its last close), so that the delete is the last word; a waiting retry is taken back.
        let mut file = self.files.lock(ino).await;
        self.withdraw_pending(&mut file).await?;
        match self.entry(ino)?.node {
            Node::Attachment(att) => {
                self.keep_for_readers(&mut file).await?;
                self.client.trash_content(&att.id).await?;
                self.drop_from_listing(parent, name).await;
            }
            Node::Local(_) => self.discard_local(parent, name, ino).await?,
            _ => return Err(FsError::NotFound),
        }
        self.bury(ino, &mut file);
        Ok(())
    }

    /// Before an attachment goes to the trash: readers that hold it open keep reading it (as
    /// on a local disk), so its whole bytes are staged here first and they read those.
    async fn keep_for_readers(&self, file: &mut FileGuard) -> Result<(), FsError> {
        let ino = file.cell().ino();
        if !self.handles.has_reader(ino) {
            return Ok(());
        }
        self.ensure_staged(file)?;
        self.fill_staged(file).await?;
        self.restage_readers(file);
        Ok(())
    }

    /// The name of `ino` is gone: so are its local state and its inode, unless handles still
    /// hold it (then it lives on, nameless, until the last one closes: `handles.rs`).
    fn bury(&self, ino: u64, file: &mut FileGuard) {
        if self.handles.orphan_if_open(ino) {
            self.files.settle(file, false);
            return;
        }
        self.files.retire(file);
        self.tree.inodes.remove(ino);
    }

    /// The states of a file and of the file it replaces, locked in inode order, so that two
    /// renames crossing each other cannot each hold the lock the other waits for.
    async fn lock_pair(&self, ino: u64, other: Option<u64>) -> (FileGuard, Option<FileGuard>) {
        match other {
            None => (self.files.lock(ino).await, None),
            Some(other) if other < ino => {
                let second = self.files.lock(other).await;
                (self.files.lock(ino).await, Some(second))
            }
            Some(other) => {
                let first = self.files.lock(ino).await;
                (first, Some(self.files.lock(other).await))
            }
        }
    }

    /// `mkdir` with `mode` (the umask already applied): a child page, a top-level page or a
    /// blog post, by where it is made.
    pub async fn mkdir(
        self: &Arc<Self>,
        parent: u64,
        name: &str,
        mode: u32,
    ) -> Result<Attr, FsError> {
        self.writer()?;
        let raw = names::decode(name).ok_or_else(|| FsError::Invalid(name.into()))?;
        if self.resolve(parent, name).await?.is_some() {
            return Err(FsError::Exists);
        }
        let (page, renamed) = match self.entry(parent)?.node {
            Node::Page(page) if page.kind == ContentKind::Page => {
                self.create_named(Place::Under(&page), &raw).await?
            }
            Node::Space(space) => self.create_named(Place::Top(&space), &raw).await?,
            Node::Blog { space_key } => {
                let title = strip_date(&raw);
                let post = self
                    .client
                    .create_page(&space_key, ContentKind::BlogPost, None, title)
                    .await?;
                (post, false)
            }
            Node::Page(_) => return Err(FsError::NotPermitted("blog posts have no child pages")),
            _ => return Err(FsError::Permission),
        };
        // Where the server filed it, which is not always where it was asked for (a server that
        // files top-level pages under the home page): shown there, not where it would vanish
        // from at the next listing.
        let placed = self.placed_parent(parent, &page);
        let ino = self.tree.inodes.upsert(placed, Node::Page(page));
        if renamed {
            // The title had to differ from the name: the name goes into the property now, so
            // that every listing, here and elsewhere, shows it.
            self.write_fs_property(ino, Some(Some(raw.clone())), true)
                .await?;
        }
        self.forget_negative(parent, name).await;
        if placed == parent {
            self.add_to_listing(parent, name, ino).await;
        } else {
            tracing::info!(name, "the server filed the new page under another page");
            self.forget_listing(placed).await;
        }
        self.keep_created_mode(ino, mode, true);
        self.attr_now(ino)
    }

    /// A mode given at creation is kept like one `chmod` sets (`kept_attrs.rs`): a file made
    /// 0600 or a directory made 0700 shows so here, after a remount and on other machines, and
    /// the kernel's permission checks follow it. The usual modes (0644, 0755) cost nothing.
    fn keep_created_mode(self: &Arc<Self>, ino: u64, mode: u32, is_dir: bool) {
        let mode = (mode & 0o7777) as u16;
        if mode == if is_dir { 0o755 } else { 0o644 } {
            return;
        }
        self.attributes
            .overrides
            .lock()
            .unwrap()
            .entry(ino)
            .or_default()
            .mode = Some(mode);
        self.schedule_attr_write(ino);
    }

    /// Creates a page named `raw` under a page or at the top of a space. Titles are unique in a
    /// space: when `raw` is taken elsewhere, the page gets a [`names::unique_title`] instead,
    /// and `true` says that its name must be kept in its property.
    async fn create_named(&self, place: Place<'_>, raw: &str) -> Result<(Page, bool), FsError> {
        let mut attempt = 0;
        loop {
            let title = if attempt == 0 {
                raw.to_string()
            } else {
                names::unique_title(raw, place.tag(), attempt)
            };
            let made = match place {
                Place::Under(page) => {
                    let space = page.space_key.clone().unwrap_or_default();
                    self.client
                        .create_page(&space, ContentKind::Page, Some(&page.id), &title)
                        .await
                }
                Place::Top(space) => self.client.create_top_level_page(space, &title).await,
            };
            match made {
                Ok(page) => return Ok((page, attempt > 0)),
                Err(ClientError::AlreadyExists { .. }) if attempt < TITLE_TRIES => attempt += 1,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The directory a newly made page belongs in, by the parent the server answered with.
    fn placed_parent(&self, asked: u64, page: &Page) -> u64 {
        let Some(parent_id) = page.parent_id.as_deref() else {
            return asked;
        };
        match self.entry(asked).map(|e| e.node) {
            Ok(Node::Page(p)) if p.id == parent_id => asked,
            _ => self.tree.inodes.find_content(parent_id).unwrap_or(asked),
        }
    }

    /// `rmdir`: an empty page to the trash (`ENOTEMPTY` otherwise).
    pub async fn rmdir(&self, parent: u64, name: &str) -> Result<(), FsError> {
        self.writer()?;
        let ino = self.resolve(parent, name).await?.ok_or(FsError::NotFound)?;
        let page = match self.entry(ino)?.node {
            Node::Page(page) => page,
            Node::Attachment(_) | Node::Local(_) | Node::Version { .. } => {
                return Err(FsError::NotDirectory)
            }
            _ => return Err(FsError::Permission),
        };
        self.forget_listing(ino).await;
        let listing = self.listing(ino).await?;
        let (local, _) = self.tree.local.view(ino);
        // The page's own text is not a child: it goes with the page.
        let children = listing.entries().iter().filter(|(_, child)| {
            !matches!(
                self.tree.inodes.get(*child).map(|e| e.node),
                Some(Node::Text(_))
            )
        });
        if children.count() > 0 || !local.is_empty() {
            return Err(FsError::NotEmpty);
        }
        self.client.trash_content(&page.id).await?;
        self.drop_from_listing(parent, name).await;
        self.tree.inodes.remove(ino);
        Ok(())
    }

    /// `rename(2)`: a page retitled or moved, an attachment renamed or moved, or the end of an
    /// editor's or rsync's save (one new version of the file saved).
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        no_replace: bool,
    ) -> Result<(), FsError> {
        self.writer()?;
        let ino = self.resolve(parent, name).await?.ok_or(FsError::NotFound)?;
        let target = self.resolve(new_parent, new_name).await?;
        if target == Some(ino) {
            return Ok(());
        }
        if target.is_some() && no_replace {
            return Err(FsError::Exists);
        }
        let new_raw = names::decode(new_name).ok_or_else(|| FsError::Invalid(new_name.into()))?;
        self.forget_negative(new_parent, new_name).await;
        match self.entry(ino)?.node {
            Node::Page(page) => {
                return self
                    .rename_page(parent, name, &page, new_parent, &new_raw, target)
                    .await
            }
            Node::Attachment(_) | Node::Local(_) => {}
            _ => return Err(FsError::Permission),
        }
        if let Some(t) = target {
            let onto_text = matches!(self.entry(t)?.node, Node::Text(_));
            if onto_text && !matches!(self.entry(ino)?.node, Node::Local(_)) {
                // A page's text is replaced by writing it, not by an attachment.
                return Err(FsError::Permission);
            }
        }
        // After any upload of either file still running; waiting retries are taken back (the
        // bytes go up under the new name, or the moved attachment takes them as a version).
        let (mut file, mut replaced) = self.lock_pair(ino, target).await;
        self.withdraw_pending(&mut file).await?;
        if let Some(replaced) = replaced.as_mut() {
            self.withdraw_pending(replaced).await?;
        }
        match self.entry(ino)?.node {
            Node::Attachment(att) => {
                self.rename_attachment(parent, name, &mut file, att, new_parent, new_name, target)
                    .await?
            }
            Node::Local(_) => {
                self.rename_local(parent, name, &mut file, new_parent, new_name, target)
                    .await?
            }
            _ => return Err(FsError::NotFound),
        }
        if let (Some(t), Some(mut replaced)) = (target, replaced) {
            self.bury(t, &mut replaced);
        }
        let local = self.is_local(ino);
        self.files.settle(&mut file, local);
        Ok(())
    }

    async fn rename_page(
        &self,
        parent: u64,
        name: &str,
        page: &Page,
        new_parent: u64,
        new_title: &str,
        target: Option<u64>,
    ) -> Result<(), FsError> {
        if target.is_some() {
            return Err(FsError::NotEmpty);
        }
        let parent_id = if new_parent == parent {
            None
        } else {
            match self.entry(new_parent)?.node {
                Node::Page(p) if p.kind == ContentKind::Page && p.space_key == page.space_key => {
                    Some(p.id)
                }
                Node::Page(_) | Node::Space(_) | Node::Blog { .. } => {
                    return Err(FsError::CrossDevice)
                }
                _ => return Err(FsError::Permission),
            }
        };
        // The title changes only with the name (a page under a unique title keeps it when it
        // merely moves).
        let chosen = page.fs.as_ref().and_then(|fs| fs.name.clone());
        let shown = chosen.as_deref().unwrap_or(&page.title);
        let title = (new_title != shown).then_some(new_title);
        let (moved, name_fix) = match self
            .client
            .move_page(&page.id, title, parent_id.as_deref())
            .await
        {
            // The title is the name again: a name kept in the property goes.
            Ok(moved) => (moved, (title.is_some() && chosen.is_some()).then_some(None)),
            Err(ClientError::AlreadyExists { .. }) if title.is_some() => {
                let tag = parent_id
                    .clone()
                    .or_else(|| page.parent_id.clone())
                    .or_else(|| page.space_key.clone())
                    .unwrap_or_default();
                let mut attempt = 1;
                let moved = loop {
                    let unique = names::unique_title(new_title, &tag, attempt);
                    match self
                        .client
                        .move_page(&page.id, Some(&unique), parent_id.as_deref())
                        .await
                    {
                        Ok(moved) => break moved,
                        Err(ClientError::AlreadyExists { .. }) if attempt < TITLE_TRIES => {
                            attempt += 1
                        }
                        Err(err) => return Err(err.into()),
                    }
                };
                (moved, Some(Some(new_title.to_string())))
            }
            Err(err) => return Err(err.into()),
        };
        // A time the user set holds for one version of the page, and a rename makes another.
        let (_, kept_mtime) = super::kept_attrs::kept(page.fs.as_ref(), page.version);
        let mut moved = moved;
        let moved_text = self.moved_text(page, &mut moved);
        let moved_ino = self
            .tree
            .inodes
            .upsert(new_parent, Node::Page(moved.clone()));
        if moved_text {
            // Its text is the same one version later: what is open or read keeps its base.
            self.text_saved(moved_ino, moved).await;
        }
        if let Some(mtime) = kept_mtime {
            let mut overrides = self.attributes.overrides.lock().unwrap();
            let slot = overrides.entry(moved_ino).or_default();
            slot.mtime.get_or_insert(mtime);
        }
        if name_fix.is_some() || kept_mtime.is_some() {
            self.write_fs_property(moved_ino, name_fix, true).await?;
        }
        self.drop_from_listing(parent, name).await;
        self.add_to_listing(new_parent, &names::encode(new_title), moved_ino)
            .await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn rename_attachment(
        &self,
        parent: u64,
        name: &str,
        file: &mut FileGuard,
        att: Attachment,
        new_parent: u64,
        new_name: &str,
        target: Option<u64>,
    ) -> Result<(), FsError> {
        let ino = file.cell().ino();
        let new_page = self.page_of(new_parent)?;
        if is_temporary(new_name) {
            // An editor moving the file aside before writing it anew: keep the attachment
            // where it is on the server, show it under the scratch name here, and let the
            // next file created under the old name become its next version.
            if let Some(old) = target {
                self.discard_local(new_parent, new_name, old).await?;
            }
            let raw = names::decode(new_name).unwrap_or_default();
            // The kernel keeps this inode for the new name, so the inode becomes the alias.
            let serial = self.new_handle();
            self.tree.inodes.rebind(
                ino,
                new_parent,
                Node::Local(super::inode::LocalFile {
                    serial,
                    container: new_page.container(),
                    filename: raw,
                    temporary: true,
                    origin: Some(att.clone()),
                    created: SystemTime::now(),
                }),
            );
            self.tree.local.add(new_parent, new_name, ino);
            self.tree.local.hide(parent, name);
            self.tree.local.vacate(parent, name, att);
            return Ok(());
        }
        // The attachment already under the new name: a listed one, or one an editor moved
        // aside (its name is held for it).
        let (dest, local_target) = match target.map(|t| (t, self.entry(t).map(|e| e.node))) {
            Some((_, Ok(Node::Attachment(dest)))) => (Some(dest), None),
            // A file only here, made under a name an editor vacated: the name still stands
            // for that attachment on the server.
            Some((t, _)) => (self.tree.local.vacated(new_parent, new_name), Some(t)),
            None => (self.tree.local.vacated(new_parent, new_name), None),
        };
        if let Some(dest) = dest {
            // Over an existing file: the source's bytes become the target's next version,
            // and the inode the kernel keeps (the source's) stands for the target.
            if let Some(t) = local_target {
                self.discard_local(new_parent, new_name, t).await?;
            }
            self.ensure_staged(file)?.mark_dirty();
            self.tree
                .inodes
                .rebind(ino, new_parent, Node::Attachment(dest));
            self.upload_staged(ino, file).await?;
            self.client.trash_content(&att.id).await?;
            self.drop_from_listing(parent, name).await;
            return Ok(());
        }
        if let Some(t) = local_target {
            self.discard_local(new_parent, new_name, t).await?;
        }
        self.move_attachment(parent, name, ino, att, new_parent, new_name, &new_page)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn move_attachment(
        &self,
        parent: u64,
        name: &str,
        ino: u64,
        att: Attachment,
        new_parent: u64,
        new_name: &str,
        new_page: &Page,
    ) -> Result<(), FsError> {
        let raw = names::decode(new_name).ok_or_else(|| FsError::Invalid(new_name.into()))?;
        let title = (raw != att.title).then_some(raw.as_str());
        let container = new_page.container();
        let moved_to = (container.id != att.container.id).then_some(&container);
        let moved = self.client.rename_attachment(&att, title, moved_to).await?;
        self.tree
            .inodes
            .rebind(ino, new_parent, Node::Attachment(moved));
        self.drop_from_listing(parent, name).await;
        self.forget_negative(new_parent, new_name).await;
        self.add_to_listing(new_parent, new_name, ino).await;
        Ok(())
    }

    async fn rename_local(
        &self,
        parent: u64,
        name: &str,
        file: &mut FileGuard,
        new_parent: u64,
        new_name: &str,
        target: Option<u64>,
    ) -> Result<(), FsError> {
        let ino = file.cell().ino();
        let new_page = self.page_of(new_parent)?;
        let Node::Local(mut local) = self.entry(ino)?.node else {
            return Err(FsError::NotFound);
        };
        if let Some(t) = target {
            match self.entry(t)?.node {
                Node::Local(_) => self.discard_local(new_parent, new_name, t).await?,
                Node::Attachment(dest) => {
                    // The end of a save: the scratch file becomes the target's next version.
                    // Its bytes are staged before the inode turns into the target.
                    self.ensure_staged(file)?;
                    let set_aside = self.set_aside(&local);
                    self.tree.local.remove(parent, name);
                    self.tree
                        .inodes
                        .rebind(ino, new_parent, Node::Attachment(dest));
                    self.ensure_staged(file)?.mark_dirty();
                    self.upload_staged(ino, file).await?;
                    if let Some(origin) = set_aside {
                        if origin.id != self.attachment_id(ino) {
                            self.client.trash_content(&origin.id).await?;
                        }
                        self.settle_set_aside(&origin).await;
                    }
                    return Ok(());
                }
                Node::Text(text @ (TextNode::Markdown { .. } | TextNode::Storage { .. })) => {
                    // `sed -i`, rsync, an editor's save: the new text of the page, saved now
                    // (the rename answers the save).
                    self.ensure_staged(file)?;
                    self.tree.local.remove(parent, name);
                    self.tree.inodes.rebind(ino, new_parent, Node::Text(text));
                    self.ensure_staged(file)?.mark_dirty();
                    self.add_to_listing(new_parent, new_name, ino).await;
                    self.upload_staged(ino, file).await?;
                    return Ok(());
                }
                _ => return Err(FsError::IsDirectory),
            }
        }
        let set_aside = self.set_aside(&local);
        self.tree.local.remove(parent, name);
        local.filename =
            names::decode(new_name).ok_or_else(|| FsError::Invalid(new_name.into()))?;
        local.container = new_page.container();
        local.temporary = is_temporary(new_name);
        let origin = local.origin.clone();
        let back_home = set_aside.as_ref().is_some_and(|a| {
            self.tree
                .local
                .vacated(new_parent, new_name)
                .is_some_and(|v| v.id == a.id)
        });
        if let (Some(att), false, false) = (&set_aside, local.temporary, back_home) {
            // A file moved aside and now to an ordinary name elsewhere: the attachment itself
            // moves there (same id), then takes any changes as a new version.
            self.ensure_staged(file)?;
            let title = (local.filename != att.title).then_some(local.filename.as_str());
            let container = local.container.clone();
            let moved_to = (container.id != att.container.id).then_some(&container);
            let moved = self.client.rename_attachment(att, title, moved_to).await?;
            self.settle_set_aside(att).await;
            self.tree
                .inodes
                .rebind(ino, new_parent, Node::Attachment(moved));
            self.forget_negative(new_parent, new_name).await;
            self.add_to_listing(new_parent, new_name, ino).await;
            if file.is_dirty() {
                self.upload_staged(ino, file).await?;
            }
            return Ok(());
        }
        let temporary = local.temporary;
        self.tree.inodes.rebind(ino, new_parent, Node::Local(local));
        self.tree.local.add(new_parent, new_name, ino);
        self.forget_negative(new_parent, new_name).await;
        if temporary {
            return Ok(());
        }
        // A scratch file renamed to an ordinary name: upload it there. An editor's backup
        // renamed back over its own vacated name changes nothing on the server.
        if let (Some(origin), Some(vacated)) = (
            origin.as_ref(),
            self.tree.local.vacated(new_parent, new_name),
        ) {
            if origin.id == vacated.id && !file.is_dirty() {
                self.tree.local.take_vacated(new_parent, new_name);
                self.tree.local.unhide(new_parent, new_name);
                self.tree.local.remove(new_parent, new_name);
                self.tree
                    .inodes
                    .rebind(ino, new_parent, Node::Attachment(vacated));
                return Ok(());
            }
        }
        self.ensure_staged(file)?.mark_dirty();
        self.upload_staged(ino, file).await
    }

    /// Removes a local entry (unlinked, or replaced by a rename). If it was an attachment that
    /// an editor moved aside and nothing took the attachment's name since, the user has in
    /// effect deleted that file: it goes to the trash on the server.
    async fn discard_local(&self, parent: u64, name: &str, ino: u64) -> Result<(), FsError> {
        if let Node::Local(local) = self.entry(ino)?.node {
            if let Some(origin) = self.set_aside(&local) {
                self.client.trash_content(&origin.id).await?;
                self.settle_set_aside(&origin).await;
            }
        }
        self.tree.local.remove(parent, name);
        Ok(())
    }

    /// The attachment a local file stands for, when it was renamed to a scratch name and its
    /// old name has not been taken again.
    fn set_aside(&self, local: &super::inode::LocalFile) -> Option<Attachment> {
        let origin = local.origin.as_ref()?;
        let (home, old_name) = self.tree.local.vacated_name_of(&origin.id)?;
        self.tree
            .local
            .lookup(home, &old_name)
            .is_hidden()
            .then(|| origin.clone())
    }

    /// The set-aside attachment moved or went: its old name is no longer held for it.
    async fn settle_set_aside(&self, origin: &Attachment) {
        if let Some((home, old_name)) = self.tree.local.vacated_name_of(&origin.id) {
            self.tree.local.take_vacated(home, &old_name);
            self.tree.local.unhide(home, &old_name);
            self.drop_from_listing(home, &old_name).await;
        }
    }

    fn attachment_id(&self, ino: u64) -> String {
        match self.tree.inodes.get(ino).map(|e| e.node) {
            Some(Node::Attachment(att)) => att.id,
            _ => String::new(),
        }
    }

    /// `chmod`, `chown`, `utimens`, `truncate`.
    pub async fn setattr(self: &Arc<Self>, ino: u64, change: SetAttr) -> Result<Attr, FsError> {
        self.writer()?;
        let entry = self.entry(ino)?;
        if matches!(
            entry.node,
            Node::Version { .. } | Node::VersionsOf(_) | Node::Versions { .. }
        ) {
            return Err(FsError::Permission);
        }
        let owner_ok = |id: Option<u32>, own: u32| match id {
            None => true,
            Some(id) => id == own || change.caller_uid == 0,
        };
        if !owner_ok(change.uid, self.config.uid) || !owner_ok(change.gid, self.config.gid) {
            return Err(FsError::NotPermitted("chown to another user"));
        }
        if let Some(size) = change.size {
            if entry.node.is_dir() {
                return Err(FsError::IsDirectory);
            }
            self.truncate(ino, size).await?;
        }
        {
            let mut overrides = self.attributes.overrides.lock().unwrap();
            let slot = overrides.entry(ino).or_default();
            if let Some(mode) = change.mode {
                slot.mode = Some((mode & 0o7777) as u16);
            }
            if let Some(mtime) = change.mtime {
                slot.mtime = Some(mtime);
            }
        }
        if change.mode.is_some() || change.mtime.is_some() {
            self.schedule_attr_write(ino);
        }
        self.getattr(ino).await
    }

    /// Removes `name` from the cached listing of `parent` (after a delete or a move).
    pub(crate) async fn drop_from_listing(&self, parent: u64, name: &str) {
        self.tree.drop_name(parent, name).await;
    }

    /// Adds (or replaces) `name` in the cached listing of `parent` after our own change.
    pub(crate) async fn add_to_listing(&self, parent: u64, name: &str, ino: u64) {
        self.tree.add_name(parent, name, ino).await;
    }

    pub(crate) async fn forget_listing(&self, parent: u64) {
        self.tree.listings.invalidate(&parent).await;
    }

    pub(crate) async fn forget_negative(&self, parent: u64, name: &str) {
        self.tree
            .negatives
            .invalidate(&(parent, name.to_string()))
            .await;
    }
}

/// Unique titles tried for one page before giving up with the server's `EEXIST`.
const TITLE_TRIES: u32 = 3;

/// Where a new page goes.
#[derive(Clone, Copy)]
enum Place<'a> {
    Under(&'a Page),
    Top(&'a crate::confluence::Space),
}

impl Place<'_> {
    /// What a unique title names: the parent page's id, or the space's key.
    fn tag(&self) -> &str {
        match self {
            Place::Under(page) => &page.id,
            Place::Top(space) => &space.key,
        }
    }
}

/// `2024-01-15 Title` → `Title` (blog post directories carry their date).
fn strip_date(raw: &str) -> &str {
    let bytes = raw.as_bytes();
    let dated = bytes.len() > 11
        && bytes[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && bytes[10] == b' ';
    if dated {
        &raw[11..]
    } else {
        raw
    }
}

impl LocalAnswer {
    pub(crate) fn is_hidden(&self) -> bool {
        matches!(self, LocalAnswer::Hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::strip_date;

    #[test]
    fn blog_directory_names_lose_their_date() {
        assert_eq!(strip_date("2024-01-15 Q4 results"), "Q4 results");
        assert_eq!(strip_date("Q4 results"), "Q4 results");
        assert_eq!(strip_date("2024-01-15"), "2024-01-15");
        assert_eq!(strip_date("2024-1-15 x"), "2024-1-15 x");
    }
}
