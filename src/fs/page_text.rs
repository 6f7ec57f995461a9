//! Page text: `<name>.md` in every page directory, `@storage.xhtml` beside it, their history
//! under `@versions/<name>.md/`, `SPACE/@pages/<title>.md` links, and `@search`.
//!
//! A page's body arrives with the listing that named the page (`expand=body.storage`), so the
//! `.md` file's size is exact from the first `stat`, and reading it costs no request; a page
//! reached another way costs one (`get_page`). Bodies are kept beside the inode table, bounded
//! by bytes ([`Bodies`]), keyed by page id and version, so a new version is never served the
//! old text. The Markdown is rendered from the body with `crate::markdown`, whose links depend
//! on where the page sits (its depth), so it is rendered for each inode's place.
//!
//! A save is a page update based on the version the text was made from: Confluence refuses it
//! (409) when someone saved a newer version meanwhile, and then the user's text stays in the
//! spool as a conflict (`ESTALE` at `close`), never written over the other edit. Writing goes
//! through the same staging as attachments (`files.rs`), so `echo >>`, `O_TRUNC`, `truncate`
//! and editors' renames behave as they do for files; only the delivery differs.
//!
//! `@pages`, `@search` and the history are reachable, not listed, like `@versions`: a walk of
//! the tree never triggers a search or a history fetch.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::files::FileGuard;
use super::fs_error::FsError;
use super::inode::{Node, ROOT_INO};
use super::names;
use super::text_node::TEXT_EXTENSION;
use super::text_node::{raw_page_name, TextNode, PAGES_DIR, STORAGE_FILE};
use super::ConfluenceFs;
use crate::confluence::{ClientError, ContentKind, Page, SearchHit};
use crate::markdown::{self, PageContext};
use crate::spool::{EntryState, UploadRecord, UploadTarget};

/// Which form a saved text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextForm {
    Markdown,
    Storage,
}

fn decode_name(name: &str) -> Option<String> {
    names::decode(name)
}

impl ConfluenceFs {
    /// How many directories the page's directory is below the mount's root.
    pub(crate) fn depth_of(&self, ino: u64) -> usize {
        let mut depth = 0;
        let mut current = ino;
        while current != ROOT_INO && depth < 4096 {
            let Some(entry) = self.tree.inodes.get(current) else {
                break;
            };
            depth += 1;
            current = entry.parent;
        }
        depth
    }

    fn context(&self, page_ino: u64, page: &Page) -> PageContext {
        PageContext {
            space_key: page.space_key.clone().unwrap_or_default(),
            depth: self.depth_of(page_ino),
            encode: names::encode,
            decode: decode_name,
        }
    }

    /// The page's body at its version: kept, or fetched (one request). The page returned is
    /// the one the body belongs to (newer, if the page changed meanwhile).
    pub(crate) async fn body_of(&self, page: &Page) -> Result<(Page, Arc<str>), FsError> {
        if let Some(body) = &page.body {
            self.tree.inodes.bodies.keep(page);
            return Ok((page.clone(), body.clone()));
        }
        if let Some(body) = self.tree.inodes.bodies.get(&page.id, page.version) {
            return Ok((page.clone(), body));
        }
        let fresh = self.client.get_page(&page.id).await?;
        self.tree.inodes.bodies.keep(&fresh);
        let body = fresh.body.clone().unwrap_or_else(|| Arc::from(""));
        Ok((fresh, body))
    }

    /// The text of `page` (whose directory is `page_ino`) in `form`.
    pub(crate) fn render(&self, page_ino: u64, page: &Page, body: &str, form: TextForm) -> Bytes {
        match form {
            TextForm::Storage => Bytes::copy_from_slice(body.as_bytes()),
            TextForm::Markdown => {
                let context = self.context(page_ino, page);
                if let Some(written) =
                    self.tree
                        .inodes
                        .bodies
                        .written(&page.id, page.version, context.depth)
                {
                    return written;
                }
                Bytes::from(markdown::to_markdown(body, &context))
            }
        }
    }

    /// The name of a page's directory in its parent: the listed one, else the plain one.
    pub(crate) async fn own_name(&self, ino: u64) -> Option<String> {
        let entry = self.tree.inodes.get(ino)?;
        if let Some(listing) = self.tree.cached(entry.parent).await {
            if let Some((name, _)) = listing.entries().iter().find(|(_, child)| *child == ino) {
                return Some(name.clone());
            }
        }
        match &entry.node {
            Node::Page(page) => Some(names::encode(&raw_page_name(page))),
            _ => None,
        }
    }

    /// The name of the `.md` file in the directory of page `ino`.
    pub(crate) async fn text_name(&self, ino: u64) -> Option<String> {
        self.own_name(ino)
            .await
            .map(|name| format!("{name}{TEXT_EXTENSION}"))
    }

    /// The inode of a page's `.md` (or `@storage.xhtml`) file, with its size, from the body
    /// the page came with or one request.
    pub(crate) async fn text_inode(
        &self,
        page_ino: u64,
        page: &Page,
        form: TextForm,
    ) -> Result<u64, FsError> {
        let (page, body) = self.body_of(page).await?;
        let size = match form {
            TextForm::Storage => body.len() as u64,
            TextForm::Markdown => self.render(page_ino, &page, &body, form).len() as u64,
        };
        let node = match form {
            TextForm::Markdown => TextNode::Markdown { page, size },
            TextForm::Storage => TextNode::Storage { page, size },
        };
        Ok(self.tree.inodes.upsert(page_ino, Node::Text(node)))
    }

    /// The entry of a page directory's listing for its text: `(name, inode)`, the name tagged
    /// when an attachment or child page has it already. A page without text (a folder made
    /// by `mkdir`, `cp -r`, `git clone`) shows none, so a copied tree holds only what was
    /// copied (git, for one, reads every file under `refs/` as a ref); writing `<name>.md`
    /// there gives the page its text.
    pub(crate) async fn text_entry(
        &self,
        page_ino: u64,
        page: &Page,
        taken: &[(String, u64)],
    ) -> Result<Option<(String, u64)>, FsError> {
        let (page, body) = self.body_of(page).await?;
        if body.trim().is_empty() {
            return Ok(None);
        }
        let page = &page;
        let mut name = self
            .text_name(page_ino)
            .await
            .unwrap_or_else(|| format!("{}{TEXT_EXTENSION}", names::encode(&page.title)));
        if taken.iter().any(|(n, _)| *n == name) {
            let stem = name.trim_end_matches(TEXT_EXTENSION).to_string();
            name = format!("{stem} (page {}){TEXT_EXTENSION}", page.id);
        }
        let ino = self.text_inode(page_ino, page, TextForm::Markdown).await?;
        Ok(Some((name, ino)))
    }

    /// Whether the page has text (a `.md` file) to show.
    pub(crate) async fn has_text(&self, page: &Page) -> Result<bool, FsError> {
        let (_, body) = self.body_of(page).await?;
        Ok(!body.trim().is_empty())
    }

    /// The bytes a reader of text inode `ino` sees.
    pub(crate) async fn text_bytes(&self, ino: u64) -> Result<Bytes, FsError> {
        let entry = self.entry(ino)?;
        let Node::Text(text) = &entry.node else {
            return Err(FsError::IsDirectory);
        };
        match text {
            TextNode::Markdown { page, .. } | TextNode::Storage { page, .. } => {
                let form = if matches!(text, TextNode::Markdown { .. }) {
                    TextForm::Markdown
                } else {
                    TextForm::Storage
                };
                let (page, body) = self.body_of(page).await?;
                let bytes = self.render(entry.parent, &page, &body, form);
                let node = match form {
                    TextForm::Markdown => TextNode::Markdown {
                        page,
                        size: bytes.len() as u64,
                    },
                    TextForm::Storage => TextNode::Storage {
                        page,
                        size: bytes.len() as u64,
                    },
                };
                self.tree.inodes.rebind(ino, entry.parent, Node::Text(node));
                Ok(bytes)
            }
            TextNode::Old { page, number, .. } => {
                let old = self.client.get_page_version(&page.id, *number).await?;
                let body = old.body.clone().unwrap_or_else(|| Arc::from(""));
                // History renders for the place of the page directory, two levels up.
                let page_ino = self
                    .tree
                    .inodes
                    .get(entry.parent)
                    .and_then(|history| self.tree.inodes.get(history.parent))
                    .map_or(entry.parent, |versions| versions.parent);
                Ok(self.render(page_ino, page, &body, TextForm::Markdown))
            }
            _ => Err(FsError::IsDirectory),
        }
    }

    /// Where a symbolic link points.
    pub fn readlink(&self, ino: u64) -> Result<String, FsError> {
        match self.entry(ino)?.node {
            Node::Text(TextNode::Link { target, .. }) => Ok(target),
            _ => Err(FsError::Errno(libc::EINVAL)),
        }
    }

    /// The path of `page`'s directory inside its space's directory (from the ancestors' titles
    /// the answer carried), or None when the answer lacked them.
    fn path_in_space(page: &Page) -> Option<String> {
        let mut path = String::new();
        match page.kind {
            ContentKind::Page => {
                for title in page.ancestor_titles.as_ref()? {
                    path.push_str(&names::encode(title));
                    path.push('/');
                }
            }
            ContentKind::BlogPost => {
                path.push_str(names::BLOG_DIR);
                path.push('/');
            }
        }
        path.push_str(&names::encode(&raw_page_name(page)));
        Some(path)
    }

    /// The relative path from a directory `from_depth` below the root to `page`'s directory.
    fn path_to_page(from_depth: usize, page: &Page) -> Option<String> {
        let space = page.space_key.as_deref()?;
        Some(format!(
            "{}{}/{}",
            "../".repeat(from_depth),
            names::encode(space),
            Self::path_in_space(page)?
        ))
    }

    /// `SPACE/@pages/<name>` and `<name>.md`: a link to the page titled `<name>` (its
    /// directory, or its text), found with one request.
    pub(crate) async fn find_titled(
        &self,
        parent: u64,
        space_key: &str,
        name: &str,
    ) -> Result<u64, FsError> {
        let (stem, text) = match name.strip_suffix(TEXT_EXTENSION) {
            Some(stem) => (stem, true),
            None => (name, false),
        };
        let title = names::decode(stem).ok_or(FsError::NotFound)?;
        let found = self
            .client
            .find_page(space_key, ContentKind::Page, &title)
            .await?;
        let (page, leaf) = match found {
            Some(page) => (page, text),
            // A title ending in `.md` itself.
            None if text => {
                let title = names::decode(name).ok_or(FsError::NotFound)?;
                let page = self
                    .client
                    .find_page(space_key, ContentKind::Page, &title)
                    .await?
                    .ok_or(FsError::NotFound)?;
                (page, false)
            }
            None => return Err(FsError::NotFound),
        };
        self.tree.inodes.bodies.keep(&page);
        // From `SPACE/@pages/`, one `..` reaches the space.
        let dir = Self::path_in_space(&page).ok_or(FsError::NotFound)?;
        let mut target = format!("../{dir}");
        if leaf {
            let last = dir.rsplit('/').next().unwrap_or_default().to_string();
            target.push('/');
            target.push_str(&last);
            target.push_str(TEXT_EXTENSION);
        }
        Ok(self.tree.inodes.upsert(
            parent,
            Node::Text(TextNode::Link {
                key: format!("{parent}/{name}"),
                target,
            }),
        ))
    }

    /// The hits of a search directory, as links named uniquely (one request).
    pub(crate) async fn search_entries(
        &self,
        ino: u64,
        space_key: Option<&str>,
        query: &str,
    ) -> Result<Vec<(String, u64)>, FsError> {
        let query = names::decode(query).ok_or(FsError::NotFound)?;
        let mut cql = match query.strip_prefix("cql:") {
            Some(cql) => cql.trim().to_string(),
            None => format!(
                "text ~ \"{}\"",
                query.replace('\\', "\\\\").replace('"', "\\\"")
            ),
        };
        if let Some(key) = space_key {
            cql = format!("space = \"{key}\" AND ({cql})");
        }
        let found = self.client.search_first(&cql).await?;
        let depth = self.depth_of(ino);
        let mut entries: Vec<(String, u64)> = Vec::new();
        for item in found {
            let (name, target) = match &item.hit {
                SearchHit::Page(page) => {
                    let Some(dir) = Self::path_to_page(depth, page) else {
                        continue;
                    };
                    let leaf = dir.rsplit('/').next().unwrap_or_default().to_string();
                    (
                        format!("{leaf}{TEXT_EXTENSION}"),
                        format!("{dir}/{leaf}{TEXT_EXTENSION}"),
                    )
                }
                SearchHit::Attachment(att) => {
                    let (Some(container), Some(space)) = (
                        item.container_title.as_deref(),
                        // Attachments carry no space of their own in every answer.
                        space_key.map(str::to_string),
                    ) else {
                        continue;
                    };
                    let name = names::encode(&att.title);
                    let target = format!(
                        "{}{}/{PAGES_DIR}/{}/{}",
                        "../".repeat(depth),
                        names::encode(&space),
                        names::encode(container),
                        name
                    );
                    (name, target)
                }
                SearchHit::Other { .. } => continue,
            };
            let mut unique = name.clone();
            let mut n = 2;
            while entries.iter().any(|(taken, _)| *taken == unique) {
                unique = match name.rsplit_once('.') {
                    Some((stem, ext)) => format!("{stem} ({n}).{ext}"),
                    None => format!("{name} ({n})"),
                };
                n += 1;
            }
            let link = self.tree.inodes.upsert(
                ino,
                Node::Text(TextNode::Link {
                    key: format!("{ino}/{unique}"),
                    target,
                }),
            );
            entries.push((unique, link));
        }
        Ok(entries)
    }

    /// The versions of a page's text, as `<N>.md` files.
    pub(crate) async fn history_entries(
        &self,
        ino: u64,
        page: &Page,
    ) -> Result<Vec<(String, u64)>, FsError> {
        let versions = self.client.list_page_versions(&page.id, page.kind).await?;
        let page_ino = self.entry(ino)?.parent;
        let page_ino = self.entry(page_ino)?.parent;
        let mut entries = Vec::with_capacity(versions.len());
        for version in versions {
            // The current version's size is known; older ones are measured when read.
            let size = if version.number == page.version {
                self.body_of(page)
                    .await
                    .map(|(p, body)| self.render(page_ino, &p, &body, TextForm::Markdown).len())
                    .unwrap_or(0) as u64
            } else {
                let old = self
                    .client
                    .get_page_version(&page.id, version.number)
                    .await?;
                let body = old.body.unwrap_or_else(|| Arc::from(""));
                self.render(page_ino, page, &body, TextForm::Markdown).len() as u64
            };
            let node = TextNode::Old {
                page: page.clone(),
                number: version.number,
                size,
                modified: version.created.unwrap_or(SystemTime::UNIX_EPOCH),
            };
            let name = format!("{}{TEXT_EXTENSION}", version.number);
            entries.push((name, self.tree.inodes.upsert(ino, Node::Text(node))));
        }
        Ok(entries)
    }

    /// The page whose text a staged file is, when it is one: a `.md` or `@storage.xhtml`
    /// inode, or a file made under the `.md` name (an editor's rename, `sed -i`).
    pub(crate) async fn text_target(&self, ino: u64) -> Option<(u64, Page, TextForm)> {
        let entry = self.tree.inodes.get(ino)?;
        match &entry.node {
            Node::Text(TextNode::Markdown { page, .. }) => {
                Some((entry.parent, page.clone(), TextForm::Markdown))
            }
            Node::Text(TextNode::Storage { page, .. }) => {
                Some((entry.parent, page.clone(), TextForm::Storage))
            }
            Node::Local(local) => {
                let parent = self.tree.inodes.get(entry.parent)?;
                let Node::Page(page) = &parent.node else {
                    return None;
                };
                let name = names::encode(&local.filename);
                if name == STORAGE_FILE {
                    return Some((entry.parent, page.clone(), TextForm::Storage));
                }
                (self.text_name(entry.parent).await.as_deref() == Some(name.as_str()))
                    .then(|| (entry.parent, page.clone(), TextForm::Markdown))
            }
            _ => None,
        }
    }

    /// Saves the staged bytes of `file` as the text of `page`: a page update based on the
    /// version the text was made from. A refusal keeps the text in the spool (a conflict
    /// when someone saved a newer version meanwhile) and answers its errno.
    pub(crate) async fn save_text(
        &self,
        ino: u64,
        file: &mut FileGuard,
        page_ino: u64,
        page: Page,
        form: TextForm,
    ) -> Result<(), FsError> {
        let comment = file.comment.take();
        let writer = self.writer()?;
        let comment = comment.unwrap_or_else(|| writer.config.comment.clone());
        let minor_edit = writer.config.minor_edit;
        self.fill_staged(file).await?;
        let staged = file.staged.as_mut().expect("filled above");
        let mut bytes = vec![0; staged.size as usize];
        std::os::unix::fs::FileExt::read_exact_at(&staged.file, &mut bytes, 0)?;
        let text = String::from_utf8(bytes).map_err(|_| FsError::Errno(libc::EILSEQ))?;
        let written = Bytes::from(text.clone());
        let (base_page, base_body) = match self.tree.inodes.bodies.get(&page.id, page.version) {
            Some(body) => (page.clone(), body),
            None => self.body_of(&page).await?,
        };
        let storage = match form {
            TextForm::Storage => text,
            // Unedited blocks keep their exact bytes; edited ones are converted.
            TextForm::Markdown => {
                markdown::to_storage_preserving(&text, &self.context(page_ino, &page), &base_body)
                    .map_err(|err| {
                    // The text stays as written here (still unsaved), to be put right and saved.
                    tracing::warn!(page = %page.id, "cannot convert the text: {err}");
                    FsError::Errno(libc::EINVAL)
                })?
            }
        };
        let staged = file.staged.as_mut().expect("filled above");
        staged.dirty = false;
        staged.written = false;
        if markdown::equivalent(&base_body, &storage) && base_page.version == page.version {
            // Saved unchanged (an editor's `:w`, `touch`, a copy of the same text written
            // another way): no new version, and reads show the bytes as written.
            if form == TextForm::Markdown {
                let depth = self.depth_of(page_ino);
                self.tree
                    .inodes
                    .bodies
                    .keep_written(&page.id, page.version, depth, written);
                let _ = self.text_inode(page_ino, &base_page, form).await;
            }
            return Ok(());
        }
        let result = self
            .client
            .update_page_body(&page, page.version, &storage, &comment, minor_edit)
            .await;
        match result {
            Ok(saved) => {
                if form == TextForm::Markdown && saved.body.as_deref() == Some(storage.as_str()) {
                    // The server keeps exactly what we sent: reads show what was written.
                    let depth = self.depth_of(page_ino);
                    self.tree
                        .inodes
                        .bodies
                        .keep_written(&page.id, saved.version, depth, written);
                }
                if let Some(Node::Local(local)) = self.tree.inodes.get(ino).map(|e| e.node) {
                    // A file made under the text's name is the text now.
                    let name = names::encode(&local.filename);
                    let node = match form {
                        TextForm::Markdown => TextNode::Markdown {
                            page: page.clone(),
                            size: 0,
                        },
                        TextForm::Storage => TextNode::Storage {
                            page: page.clone(),
                            size: 0,
                        },
                    };
                    self.tree.inodes.rebind(ino, page_ino, Node::Text(node));
                    // Into the listing before out of the local layer (see `uploaded`).
                    self.tree.add_name(page_ino, &name, ino).await;
                    self.tree.local.remove(page_ino, &name);
                    self.tree.local.unhide(page_ino, &name);
                }
                self.text_saved(page_ino, saved).await;
                Ok(())
            }
            Err(err) => {
                let errno = match &err {
                    ClientError::Conflict { .. } => libc::ESTALE,
                    other => crate::errno::of_client(other),
                };
                tracing::warn!(page = %page.id, "saving the page text failed: {err}");
                // After a conflict the file shows the page as it is now, so that what is read
                // (and the next save's base) is the newer version; the user's text waits.
                let current = if errno == libc::ESTALE {
                    self.client.get_page(&page.id).await.ok()
                } else {
                    None
                };
                let state = current
                    .as_ref()
                    .map(|now| crate::spool::conflict_state(page.version, now.version));
                self.spool_text(ino, &page, &base_body, &storage, &comment, &err, state)?;
                if let Some(current) = current {
                    self.text_saved(page_ino, current).await;
                }
                Err(FsError::Errno(errno))
            }
        }
    }

    /// The server has `saved` now: its page inode, body and text inodes follow.
    pub(crate) async fn text_saved(&self, page_ino: u64, saved: Page) {
        self.tree.inodes.bodies.keep(&saved);
        if let Some(entry) = self.tree.inodes.get(page_ino) {
            let mut page = saved.clone();
            page.body = None;
            self.tree
                .inodes
                .rebind(page_ino, entry.parent, Node::Page(page));
        }
        for form in [TextForm::Markdown, TextForm::Storage] {
            let _ = self.text_inode(page_ino, &saved, form).await;
        }
    }

    /// After our own rename or move of `page`, which sent its body back unchanged: the body
    /// at the new version is the one known at the old, when nobody saved a version between.
    /// True when `moved` carries it then.
    pub(crate) fn moved_text(&self, page: &Page, moved: &mut Page) -> bool {
        if moved.version != page.version + 1 {
            return false;
        }
        if moved.body.is_none() {
            moved.body = self.tree.inodes.bodies.get(&page.id, page.version);
        }
        moved.body.is_some()
    }

    /// Keeps a text the server refused in the spool, where `confluencefs pending` shows it.
    #[allow(clippy::too_many_arguments)]
    fn spool_text(
        &self,
        ino: u64,
        page: &Page,
        base_body: &str,
        storage: &str,
        comment: &str,
        err: &ClientError,
        conflict: Option<EntryState>,
    ) -> Result<(), FsError> {
        let writer = self.writer()?;
        let dir = tempfile::Builder::new()
            .prefix("text-")
            .tempdir_in(&writer.staging_dir)?;
        let data = dir.path().join("text");
        std::fs::write(&data, storage)?;
        let is_conflict = conflict.is_some() || matches!(err, ClientError::Conflict { .. });
        let record = UploadRecord {
            target: UploadTarget::PageText {
                page_id: page.id.clone(),
                kind: page.kind,
                title: page.title.clone(),
                space_key: page.space_key.clone(),
                base_version: page.version,
                base_body: base_body.to_string(),
                merge: false,
            },
            filename: format!("{}{TEXT_EXTENSION}", page.title),
            comment: comment.to_string(),
            minor_edit: writer.config.minor_edit,
            size: storage.len() as u64,
            display_path: self.display_path(ino),
            site: self.client.base_url().to_string(),
            created_unix_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            attempts: 1,
            last_error: Some(err.to_string()),
            state: match conflict {
                Some(state) => state,
                None if is_conflict => crate::spool::conflict_state(page.version, page.version + 1),
                None => EntryState::Pending,
            },
        };
        writer.spool.admit(&data, record).map_err(|err| {
            tracing::warn!("cannot spool a page text: {err}");
            FsError::Errno(err.errno())
        })?;
        if !is_conflict {
            writer.uploader.nudge();
        }
        Ok(())
    }
}
