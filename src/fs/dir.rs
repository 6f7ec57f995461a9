//! What each directory holds, and how one name in it is found.
//!
//! A listing is fetched on first use and cached for the metadata TTL; its entries carry their
//! attributes, so `ls -l` after `readdir` costs nothing more. Request budgets (docs/PERFORMANCE.md):
//! - the root: one request per 250 (cloud) / 200 (datacenter) spaces;
//! - a space: its top-level pages, one request per page of results; `@blog` is always there
//!   (it is a reserved name) and costs nothing until opened;
//! - a page: its child pages (one request per page of results) and its attachments (⌈N / 200⌉,
//!   v1 on both flavors), each bringing its `confluencefs` property (modes, times, chosen
//!   names: `kept_attrs`). Either is skipped when the answer that brought the page said it has
//!   none of that kind (`childTypes`), while that answer is within the TTL and nothing of ours
//!   changed the page since (`Tree::edited`): most pages of a wiki are leaves, and a walk or
//!   `grep -r` then costs one listing per leaf page with files and none per empty one. Such a
//!   listing is as old as that answer and lives only for the rest of its TTL;
//! - `@blog`: the space's blog posts; `@versions`: free once the page is listed;
//!   `@versions/<file>/`: the version list plus one request per older version (for its size).
//!
//! Looking up one name in a directory that has not been listed does not list it: in a page,
//! the name is tried as an attachment (one request, `filename=`) and then as a child page
//! (one more, by title), so a file costs one request and a miss two; misses are remembered
//! for the TTL, because file managers probe for `.hidden`, `.Trash` and friends constantly.
//! From the third name asked for in one directory within the TTL, the directory is listed
//! instead: a copy of many files into a page then costs one listing, not two requests a file.
//! A hidden name (`.directory`, `.hidden`, `.Trash`…, which file managers probe in every
//! folder they show) lists the page at once: a miss costs the same two requests, and the
//! listing answers the next probes and the `ls` that usually follows.
//! Our own changes (uploads, mkdir, renames) edit the cached listing in place; one that lands
//! while the listing is being fetched, and so finds none to edit, has it fetched again (the
//! answer may predate the change).
//!
//! A tree walk (the listings of two child pages of one directory asked for within the TTL)
//! fetches the listings of the pages it will reach next in the background (`ahead_listings`). They are
//! the listings above, fetched once each, so a walk that visits everything costs what it
//! costs without read-ahead, one that stops early at most 64 listings more, and the
//! operations above, which are not walks, cost no more.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::{stream, StreamExt, TryStreamExt};

use super::fs_error::FsError;
use super::inode::{Entry, Held, InodeTable, Node};
use super::names::{self, Child, EntryKind, NameQuery};
use super::page_text::TextForm;
use super::text_node::{self as page_text, raw_page_name, TextNode};
use super::{Attr, ConfluenceFs};
use crate::confluence::{Attachment, ChildTypes, ContentKind, Page};

/// A directory's children as of one fetch. It holds their inodes (`inode::Held`) for as long
/// as it lives, so a number it hands out by name is always in the table.
pub(crate) struct Listing {
    /// Listed entries, in the order readdir shows them.
    entries: Vec<(String, u64)>,
    /// Reachable by name but not listed (`@versions` unless `--show-versions`).
    hidden: Vec<(String, u64)>,
    /// How many of our own edits of the directory had found no listing to change when this
    /// one's fetch began (`Tree::missed_edits`): one made since is not in it.
    since: u64,
    /// When what it says was last confirmed by the server, when that was before it was made: a
    /// leaf page's listing made from its parent's answer (`childTypes`) is as old as that
    /// answer, and is kept only for what is left of the TTL (`tree.rs`).
    as_of: Option<Instant>,
    _held: Held,
}

impl Listing {
    /// A listing of these entries, holding their inodes; `Err` when one is gone already (it
    /// was dropped between being found and being held: the listing is made again).
    pub(crate) fn new(
        entries: Vec<(String, u64)>,
        hidden: Vec<(String, u64)>,
        since: u64,
        inodes: &InodeTable,
    ) -> Result<Listing, u64> {
        let inos = entries.iter().chain(hidden.iter()).map(|(_, ino)| *ino);
        let held = inodes.hold(inos.collect())?;
        Ok(Listing {
            entries,
            hidden,
            since,
            as_of: None,
            _held: held,
        })
    }

    /// This listing, known to be as old as `as_of`.
    fn dated(self, as_of: Option<Instant>) -> Listing {
        Listing { as_of, ..self }
    }

    /// When what it says was confirmed, when that was before it was made.
    pub(crate) fn as_of(&self) -> Option<Instant> {
        self.as_of
    }

    /// Our missed edits of the directory when its fetch began.
    pub(crate) fn since(&self) -> u64 {
        self.since
    }

    /// What the listing weighs in the listing cache's bound: one per name.
    pub(crate) fn weight(&self) -> u32 {
        (self.entries.len() + self.hidden.len() + 1).min(u32::MAX as usize) as u32
    }

    /// This listing with `name` standing for `ino` (after our own create, upload or move).
    pub(crate) fn with(&self, name: &str, ino: u64, inodes: &InodeTable) -> Result<Listing, u64> {
        let mut entries: Vec<(String, u64)> = self
            .entries
            .iter()
            .filter(|(n, i)| n != name && *i != ino)
            .cloned()
            .collect();
        entries.push((name.to_string(), ino));
        Listing::new(entries, self.hidden.clone(), self.since, inodes).map(|l| l.dated(self.as_of))
    }

    /// This listing less one name (after our own delete or move).
    pub(crate) fn without(&self, name: &str, inodes: &InodeTable) -> Result<Listing, u64> {
        let entries = self
            .entries
            .iter()
            .filter(|(n, _)| n != name)
            .cloned()
            .collect();
        Listing::new(entries, self.hidden.clone(), self.since, inodes).map(|l| l.dated(self.as_of))
    }

    /// The listed entries' inodes, in readdir order.
    pub(crate) fn inodes(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(|(_, ino)| *ino)
    }

    /// Listed entries (name, inode), in readdir order.
    pub(crate) fn entries(&self) -> &[(String, u64)] {
        &self.entries
    }

    pub(crate) fn find(&self, name: &str) -> Option<u64> {
        self.entries
            .iter()
            .chain(self.hidden.iter())
            .find(|(n, _)| n == name)
            .map(|(_, ino)| *ino)
    }
}

/// One readdir entry with its attributes (for readdirplus).
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// The file name shown in the directory.
    pub name: String,
    /// The entry's attributes, as `stat` shows them.
    pub attr: Attr,
}

/// Which of a page's listings a listing of it needs (`ConfluenceFs::page_listings`).
struct PageListings {
    pages: bool,
    attachments: bool,
    /// One was skipped on the word of an earlier answer.
    skipped: bool,
}

/// Times a listing or a lookup is made again when an inode it found was dropped meanwhile.
const HOLD_ATTEMPTS: usize = 3;

/// Fetches of one listing overtaken by our own changes to the directory before the last one
/// is kept as it is (its TTL bounds what it misses).
const FETCH_ATTEMPTS: usize = 4;

/// Names looked up one by one in a directory before it is listed instead.
const LIST_AFTER_LOOKUPS: u32 = 2;

/// Older versions whose sizes are fetched at once when a history directory is listed.
const VERSION_FETCH_PARALLELISM: usize = 4;

impl ConfluenceFs {
    pub(crate) fn entry(&self, ino: u64) -> Result<Entry, FsError> {
        self.tree.inodes.get(ino).ok_or(FsError::NotFound)
    }

    /// The attributes of `ino`, refreshed from the server when older than the TTL.
    pub async fn getattr(&self, ino: u64) -> Result<Attr, FsError> {
        let mut entry = self.entry(ino)?;
        // Local bytes decide a changed file's attributes; a deleted open file has none left
        // on the server to refresh from.
        let local_changes = self.files.has_staged(ino) || self.handles.is_orphan(ino);
        if !self.fresh(entry.refreshed) && !local_changes {
            let node = match &entry.node {
                Node::Attachment(att) => {
                    Some(Node::Attachment(self.client.get_attachment(&att.id).await?))
                }
                Node::Page(page) => Some(Node::Page(self.client.get_page(&page.id).await?)),
                Node::Text(TextNode::Markdown { page, .. } | TextNode::Storage { page, .. }) => {
                    // One request: the page with its body; the text follows its version.
                    let fresh = self.client.get_page(&page.id).await?;
                    let form = match &entry.node {
                        Node::Text(TextNode::Markdown { .. }) => TextForm::Markdown,
                        _ => TextForm::Storage,
                    };
                    self.text_inode(entry.parent, &fresh, form).await?;
                    if let Some(page_entry) = self.tree.inodes.get(entry.parent) {
                        self.tree
                            .inodes
                            .upsert(page_entry.parent, Node::Page(fresh));
                    }
                    None
                }
                _ => None,
            };
            entry = self.entry(ino)?;
            if let Some(node) = node {
                self.tree.inodes.upsert(entry.parent, node);
                entry = self.entry(ino)?;
            }
        }
        Ok(self.attr_of(ino, &entry))
    }

    /// Opens a directory: its listing, snapshotted for the handle so that readdir pages through
    /// one consistent list however long the reader takes. A tree walk reads ahead (`ahead_listings`).
    pub async fn opendir(self: &Arc<Self>, ino: u64) -> Result<u64, FsError> {
        let entry = self.entry(ino)?;
        if !entry.node.is_dir() {
            return Err(FsError::NotDirectory);
        }
        // The snapshot holds its entries' inodes until RELEASEDIR: READDIRPLUS hands them to
        // the kernel, which must never get a dropped number.
        for _ in 0..HOLD_ATTEMPTS {
            let entries = self.snapshot(ino).await?;
            let inos = entries.iter().map(|e| e.attr.ino).collect();
            if let Ok(held) = self.tree.inodes.hold(inos) {
                let handle = self.new_handle();
                self.handles.insert_dir(handle, Arc::new(entries));
                self.tree.open_dirs.lock().unwrap().insert(handle, held);
                return Ok(handle);
            }
        }
        Err(FsError::Errno(libc::ESTALE))
    }

    /// The entries of directory `ino` as readdir shows them: its listing merged with the local
    /// layer.
    async fn snapshot(self: &Arc<Self>, ino: u64) -> Result<Vec<DirEntry>, FsError> {
        // The local layer before the listing: a local file that becomes an attachment enters
        // the cached listing before it leaves the layer, so one of the two names it.
        let (local, hidden) = self.tree.local.view(ino);
        let listing = self.listing(ino).await?;
        self.walk_opened(ino, &listing).await;
        let mut entries = Vec::with_capacity(listing.entries.len() + local.len());
        let merged = listing
            .entries
            .iter()
            .filter(|(name, _)| {
                !hidden.contains(name) && !local.iter().any(|(local, _)| local == name)
            })
            .chain(local.iter());
        for (name, child) in merged {
            if let Some(child_entry) = self.tree.inodes.get(*child) {
                entries.push(DirEntry {
                    name: name.clone(),
                    attr: self.attr_of(*child, &child_entry),
                });
            }
        }
        Ok(entries)
    }

    /// The entries of an open directory handle (without `.` and `..`).
    pub fn readdir(&self, handle: u64) -> Result<Arc<Vec<DirEntry>>, FsError> {
        self.handles.dir(handle).ok_or(FsError::BadHandle)
    }

    /// Forgets the directory handle and its frozen listing (RELEASEDIR).
    pub fn releasedir(&self, handle: u64) {
        self.handles.remove_dir(handle);
        let held = self.tree.open_dirs.lock().unwrap().remove(&handle);
        drop(held);
    }

    /// LOOKUP: finds `name` in `parent` and counts the answer as one the kernel now holds
    /// (until its FORGET). An inode dropped between being found and being counted is found
    /// again (under a new number) rather than handed out.
    pub async fn lookup_entry(&self, parent: u64, name: &str) -> Result<Attr, FsError> {
        for _ in 0..HOLD_ATTEMPTS {
            let attr = self.lookup(parent, name).await?;
            if self.tree.inodes.remember(attr.ino, 1) {
                return Ok(attr);
            }
        }
        Err(FsError::Errno(libc::ESTALE))
    }

    /// Finds `name` in the directory `parent` (without counting it as the kernel's: see
    /// [`lookup_entry`](Self::lookup_entry)).
    pub async fn lookup(&self, parent: u64, name: &str) -> Result<Attr, FsError> {
        let entry = self.entry(parent)?;
        if !entry.node.is_dir() {
            return Err(FsError::NotDirectory);
        }
        match self.tree.local.lookup(parent, name) {
            super::local::LocalAnswer::Entry(ino) => return self.attr_by_ino(ino),
            super::local::LocalAnswer::Hidden => return Err(FsError::NotFound),
            super::local::LocalAnswer::Unknown => {}
        }
        if matches!(
            entry.node,
            Node::Text(TextNode::Search { .. } | TextNode::Titles { .. })
        ) {
            // Reachable, not listed: every name is a question of its own (a search, a
            // title), never answered by the (empty) listing.
            let ino = self.find(parent, &entry.node, name).await?;
            return self.attr_by_ino(ino);
        }
        if let Some(listing) = self.tree.cached(parent).await {
            let ino = listing.find(name).ok_or(FsError::NotFound)?;
            return self.attr_by_ino(ino);
        }
        let negative_key = (parent, name.to_string());
        if self.tree.negatives.contains_key(&negative_key) {
            return Err(FsError::NotFound);
        }
        // A directory asked about name after name (a copy into it, a tool probing) is cheaper
        // listed once than looked up per name.
        let asked = self
            .tree
            .targeted_lookups
            .get_with(parent, async { Arc::new(AtomicU32::new(0)) })
            .await;
        // A hidden name (`.directory`, `.hidden`, `.Trash`, `.git`: what file managers and
        // shells probe for in every folder they pass) is most likely a miss, which costs two
        // requests either way: spent on the listing, they answer every later name too.
        let probe = name.starts_with('.') && matches!(entry.node, Node::Page(_));
        if asked.fetch_add(1, Ordering::Relaxed) >= LIST_AFTER_LOOKUPS || probe {
            let listing = self.listing(parent).await?;
            return match listing.find(name) {
                Some(ino) => self.attr_by_ino(ino),
                None => {
                    self.tree.negatives.insert(negative_key, ()).await;
                    Err(FsError::NotFound)
                }
            };
        }
        match self.find(parent, &entry.node, name).await {
            Ok(ino) => self.attr_by_ino(ino),
            Err(FsError::NotFound) => {
                self.tree.negatives.insert(negative_key, ()).await;
                Err(FsError::NotFound)
            }
            Err(err) => Err(err),
        }
    }

    pub(crate) fn attr_by_ino(&self, ino: u64) -> Result<Attr, FsError> {
        let entry = self.entry(ino)?;
        Ok(self.attr_of(ino, &entry))
    }

    /// A directory's listing, from the cache or fetched (one fetch however many ask at once).
    /// A listing whose fetch was under way when our own change to the directory landed, and
    /// so may not hold it (the change found no listing to edit), is fetched again.
    pub(crate) async fn listing(&self, ino: u64) -> Result<Arc<Listing>, FsError> {
        let mut attempts = 0;
        loop {
            let listing = self
                .tree
                .listings
                .try_get_with(ino, async { self.fetch_listing(ino).await.map(Arc::new) })
                .await
                .map_err(|shared: Arc<FsError>| match Arc::try_unwrap(shared) {
                    Ok(err) => err,
                    Err(shared) => share(&shared),
                })?;
            attempts += 1;
            if listing.since == self.tree.missed_edits(ino) || attempts >= FETCH_ATTEMPTS {
                return Ok(listing);
            }
            tracing::debug!(ino, "a change landed while the listing was fetched; again");
            self.tree.listings.invalidate(&ino).await;
        }
    }

    /// Forgets what is cached about the children of `ino` (after our own changes).
    pub async fn invalidate_dir(&self, ino: u64) {
        self.tree.mark_edited(ino);
        self.tree.listings.invalidate(&ino).await;
    }

    async fn fetch_listing(&self, ino: u64) -> Result<Listing, FsError> {
        // An entry found again may have been dropped between its upsert and the hold (it was a
        // candidate): fetched again, it gets a new number. That is rare; twice running, rarer.
        for _ in 0..HOLD_ATTEMPTS {
            let since = self.tree.missed_edits(ino);
            let (entries, hidden, as_of) = self.fetch_entries(ino).await?;
            if let Ok(listing) = Listing::new(entries, hidden, since, &self.tree.inodes) {
                return Ok(listing.dated(as_of));
            }
        }
        Err(FsError::Errno(libc::ESTALE))
    }

    /// A directory's listed and hidden entries, fetched, and when what they say was confirmed
    /// if that was before now (a leaf page known from its parent's answer).
    #[allow(clippy::type_complexity)]
    async fn fetch_entries(
        &self,
        ino: u64,
    ) -> Result<(Vec<(String, u64)>, Vec<(String, u64)>, Option<Instant>), FsError> {
        let entry = self.entry(ino)?;
        let mut hidden = Vec::new();
        let mut as_of = None;
        let entries = match &entry.node {
            Node::Root => {
                let keys: Vec<&str> = self.config.spaces.iter().map(String::as_str).collect();
                let spaces = self.client.list_spaces(&keys).await?;
                // The key names the directory, under the rules every name follows: a key too
                // long, reserved or listed twice by a server gets a tagged name, never a clash.
                let children: Vec<Child> = spaces
                    .iter()
                    .map(|space| Child {
                        kind: EntryKind::Space,
                        id: &space.id,
                        name: &space.key,
                    })
                    .collect();
                let assigned = names::assign_names(&children);
                drop(children);
                let search = self
                    .tree
                    .inodes
                    .upsert(ino, Node::Text(TextNode::Search { space_key: None }));
                hidden.push((page_text::SEARCH_DIR.to_string(), search));
                assigned
                    .into_iter()
                    .zip(spaces)
                    .map(|(name, space)| (name, self.tree.inodes.upsert(ino, Node::Space(space))))
                    .collect()
            }
            Node::Space(space) => {
                let pages = self.client.list_top_level_pages(&space.key).await?;
                let mut entries = self.name_pages(ino, pages, Vec::new());
                let blog = self.tree.inodes.upsert(
                    ino,
                    Node::Blog {
                        space_key: space.key.clone(),
                    },
                );
                entries.push((names::BLOG_DIR.to_string(), blog));
                for (name, node) in [
                    (
                        page_text::PAGES_DIR,
                        TextNode::Titles {
                            space_key: space.key.clone(),
                        },
                    ),
                    (
                        page_text::SEARCH_DIR,
                        TextNode::Search {
                            space_key: Some(space.key.clone()),
                        },
                    ),
                ] {
                    hidden.push((
                        name.to_string(),
                        self.tree.inodes.upsert(ino, Node::Text(node)),
                    ));
                }
                entries
            }
            Node::Blog { space_key } => {
                let posts = self.client.list_blog_posts(space_key).await?;
                self.name_pages(ino, posts, Vec::new())
            }
            Node::Page(page) => {
                let container = page.container();
                let needed = self.page_listings(ino, &entry, page);
                let (list_pages, list_attachments) = (needed.pages, needed.attachments);
                if needed.skipped {
                    as_of = Some(entry.refreshed);
                }
                let started = std::time::Instant::now();
                let (children, attachments) = tokio::try_join!(
                    async {
                        if list_pages {
                            self.client.list_child_pages(&page.id).await
                        } else {
                            Ok(Vec::new())
                        }
                    },
                    async {
                        if list_attachments {
                            self.client.list_attachments(&container).await
                        } else {
                            Ok(Vec::new())
                        }
                    }
                )?;
                // A listing that took long (a slow server, thousands of files) may finish with
                // the parent's answer it leaned on nearly expired: cached as old as that answer,
                // it would expire at once, and every lookup in it would list it again, each
                // one as slow (found with a 1 s TTL: `ls -l` of 10,000 files never ended). When
                // less of the answer's TTL is left than the listing took, the skipped listing is
                // fetched after all, and the listing is as fresh as any other.
                let left = self
                    .config
                    .metadata_ttl
                    .saturating_sub(entry.refreshed.elapsed());
                let leaned_too_long = needed.skipped && left < started.elapsed();
                let (children, attachments) = if leaned_too_long {
                    as_of = None;
                    let children = if list_pages || page.kind != ContentKind::Page {
                        children
                    } else {
                        self.client.list_child_pages(&page.id).await?
                    };
                    let attachments = if list_attachments {
                        attachments
                    } else {
                        self.client.list_attachments(&container).await?
                    };
                    (children, attachments)
                } else {
                    (children, attachments)
                };
                let mut entries = self.name_pages(ino, children, attachments);
                if let Some(text) = self.text_entry(ino, page, &entries).await? {
                    entries.push(text);
                }
                let storage = self.text_inode(ino, page, TextForm::Storage).await?;
                hidden.push((page_text::STORAGE_FILE.to_string(), storage));
                let versions = self.tree.inodes.upsert(ino, Node::Versions { container });
                let pair = (names::VERSIONS_DIR.to_string(), versions);
                if self.config.show_versions {
                    let mut entries = entries;
                    entries.push(pair);
                    entries
                } else {
                    hidden.push(pair);
                    entries
                }
            }
            Node::Versions { .. } => {
                // The same names as the page directory, each a directory of versions.
                let page_listing = Box::pin(self.listing(entry.parent)).await?;
                page_listing
                    .entries
                    .iter()
                    .filter_map(|(name, child)| match self.tree.inodes.get(*child)?.node {
                        Node::Attachment(att) => Some((
                            name.clone(),
                            self.tree.inodes.upsert(ino, Node::VersionsOf(att)),
                        )),
                        Node::Text(TextNode::Markdown { page, .. }) => Some((
                            name.clone(),
                            self.tree
                                .inodes
                                .upsert(ino, Node::Text(TextNode::History { page })),
                        )),
                        _ => None,
                    })
                    .collect()
            }
            Node::VersionsOf(att) => self.version_entries(ino, att).await?,
            Node::Text(TextNode::History { page }) => self.history_entries(ino, page).await?,
            Node::Text(TextNode::Found { space_key, query }) => {
                self.search_entries(ino, space_key.as_deref(), query)
                    .await?
            }
            // Reachable, not listed: asking is what finds things there.
            Node::Text(TextNode::Titles { .. } | TextNode::Search { .. }) => Vec::new(),
            Node::Attachment(_) | Node::Version { .. } | Node::Local(_) | Node::Text(_) => {
                return Err(FsError::NotDirectory)
            }
        };
        Ok((entries, hidden, as_of))
    }

    /// Which of a page's two listings are needed. Either is skipped when the answer that brought
    /// the page said it has none of that kind (`childTypes`), while that answer is within the
    /// TTL and nothing of ours changed the directory since (`Tree::edited`).
    fn page_listings(&self, ino: u64, entry: &Entry, page: &Page) -> PageListings {
        let known = if self.fresh(entry.refreshed) && !self.tree.edited(ino) {
            page.child_types
        } else {
            ChildTypes::default()
        };
        PageListings {
            pages: page.kind == ContentKind::Page && known.pages != Some(false),
            attachments: known.attachments != Some(false),
            skipped: known.pages == Some(false) || known.attachments == Some(false),
        }
    }

    /// The requests listing `ino` would cost now (the walk's read-ahead counts them): none, one
    /// or two for a page, two for anything else.
    pub(crate) fn listing_requests(&self, ino: u64) -> usize {
        let Some(entry) = self.tree.inodes.get(ino) else {
            return 2;
        };
        match &entry.node {
            Node::Page(page) => {
                let needed = self.page_listings(ino, &entry, page);
                usize::from(needed.pages) + usize::from(needed.attachments)
            }
            _ => 2,
        }
    }

    /// Names child pages (or blog posts) and attachments of one directory together, so that
    /// collisions between them are resolved the documented way, and gives each an inode.
    fn name_pages(
        &self,
        parent: u64,
        pages: Vec<Page>,
        attachments: Vec<Attachment>,
    ) -> Vec<(String, u64)> {
        let page_names: Vec<String> = pages.iter().map(raw_page_name).collect();
        let mut children: Vec<Child> = pages
            .iter()
            .zip(&page_names)
            .map(|(page, raw)| Child {
                kind: page_kind(page),
                id: &page.id,
                name: raw,
            })
            .collect();
        children.extend(attachments.iter().map(|att| Child {
            kind: EntryKind::Attachment,
            id: &att.id,
            name: &att.title,
        }));
        let assigned = names::assign_names(&children);
        drop(children);
        let nodes = pages
            .into_iter()
            .map(Node::Page)
            .chain(attachments.into_iter().map(Node::Attachment));
        assigned
            .into_iter()
            .zip(nodes)
            .map(|(name, node)| (name, self.tree.inodes.upsert(parent, node)))
            .collect()
    }

    async fn version_entries(
        &self,
        ino: u64,
        att: &Attachment,
    ) -> Result<Vec<(String, u64)>, FsError> {
        let versions = self.client.list_attachment_versions(&att.id).await?;
        let nodes: Vec<Node> = stream::iter(versions)
            .map(|version| async move {
                let (size, modified) = if version.number == att.version {
                    (att.size, att.modified)
                } else {
                    let old = self
                        .client
                        .get_attachment_version(&att.id, version.number)
                        .await?;
                    (old.size, old.modified)
                };
                Ok::<_, FsError>(Node::Version {
                    attachment: att.clone(),
                    number: version.number,
                    size,
                    modified: version.created.unwrap_or(modified),
                })
            })
            .buffered(VERSION_FETCH_PARALLELISM)
            .try_collect()
            .await?;
        Ok(nodes
            .into_iter()
            .map(|node| {
                let Node::Version { number, .. } = &node else {
                    unreachable!("built as versions above")
                };
                let name = names::version_file_name(&att.title, *number);
                (name, self.tree.inodes.upsert(ino, node))
            })
            .collect())
    }

    /// Finds one name without listing the directory, where a targeted request can do it.
    async fn find(&self, parent: u64, node: &Node, name: &str) -> Result<u64, FsError> {
        match node {
            Node::Root if name == page_text::SEARCH_DIR => Ok(self
                .tree
                .inodes
                .upsert(parent, Node::Text(TextNode::Search { space_key: None }))),
            Node::Space(space) if name == page_text::SEARCH_DIR => Ok(self.tree.inodes.upsert(
                parent,
                Node::Text(TextNode::Search {
                    space_key: Some(space.key.clone()),
                }),
            )),
            Node::Space(space) if name == page_text::PAGES_DIR => Ok(self.tree.inodes.upsert(
                parent,
                Node::Text(TextNode::Titles {
                    space_key: space.key.clone(),
                }),
            )),
            Node::Page(page) if name == page_text::STORAGE_FILE => {
                self.text_inode(parent, page, TextForm::Storage).await
            }
            Node::Page(page)
                if name.ends_with(".md")
                    && self.text_name(parent).await.as_deref() == Some(name) =>
            {
                if !self.has_text(page).await? {
                    return Err(FsError::NotFound);
                }
                self.text_inode(parent, page, TextForm::Markdown).await
            }
            Node::Text(TextNode::Titles { space_key }) => {
                self.find_titled(parent, space_key, name).await
            }
            Node::Text(TextNode::Search { space_key }) => Ok(self.tree.inodes.upsert(
                parent,
                Node::Text(TextNode::Found {
                    space_key: space_key.clone(),
                    query: name.to_string(),
                }),
            )),
            Node::Space(space) if name == names::BLOG_DIR => Ok(self.tree.inodes.upsert(
                parent,
                Node::Blog {
                    space_key: space.key.clone(),
                },
            )),
            Node::Page(page) if name == names::VERSIONS_DIR => Ok(self.tree.inodes.upsert(
                parent,
                Node::Versions {
                    container: page.container(),
                },
            )),
            Node::Space(space) => {
                for query in names::parse(name) {
                    let found = match query {
                        NameQuery::Plain(title) => {
                            self.client
                                .find_page(&space.key, ContentKind::Page, &title)
                                .await?
                        }
                        NameQuery::ById(EntryKind::Page, id) => self.page_if_exists(&id).await?,
                        NameQuery::ById(..) => None,
                    };
                    match found {
                        Some(page)
                            if page.parent_id.is_none()
                                && page.space_key.as_deref() == Some(&space.key) =>
                        {
                            return self.confirm_name(parent, name, vec![page], Vec::new());
                        }
                        // The title is taken elsewhere: a page here may carry the name as its
                        // chosen name under another title, which only the listing shows.
                        Some(_) => return self.find_in_listing(parent, name).await,
                        None => {}
                    }
                }
                Err(FsError::NotFound)
            }
            Node::Page(page) => {
                let container = page.container();
                for query in names::parse(name) {
                    match query {
                        NameQuery::Plain(title) => {
                            if let Some(att) =
                                self.client.find_attachment(&container, &title).await?
                            {
                                return self.confirm_name(parent, name, Vec::new(), vec![att]);
                            }
                            if page.kind != ContentKind::Page {
                                continue;
                            }
                            let space = page.space_key.as_deref().unwrap_or_default();
                            match self
                                .client
                                .find_page(space, ContentKind::Page, &title)
                                .await?
                            {
                                Some(child) if child.parent_id.as_deref() == Some(&page.id) => {
                                    return self.confirm_name(
                                        parent,
                                        name,
                                        vec![child],
                                        Vec::new(),
                                    );
                                }
                                // Taken elsewhere in the space: a child here may hold the name
                                // as its chosen name (`names`), which only the listing shows.
                                Some(_) => return self.find_in_listing(parent, name).await,
                                None => {}
                            }
                        }
                        NameQuery::ById(EntryKind::Attachment, id) => {
                            if let Some(att) = self
                                .attachment_if_exists(&id)
                                .await?
                                .filter(|a| a.container.id == page.id)
                            {
                                return self.confirm_name(parent, name, Vec::new(), vec![att]);
                            }
                        }
                        NameQuery::ById(_, id) => {
                            if let Some(child) = self
                                .page_if_exists(&id)
                                .await?
                                .filter(|c| c.parent_id.as_deref() == Some(&page.id))
                            {
                                // A disambiguated name stands for a page that collides with an
                                // attachment; the listing decides, so list to be exact.
                                let _ = child.id;
                                let listing = self.listing(parent).await?;
                                return listing.find(name).ok_or(FsError::NotFound);
                            }
                        }
                    }
                }
                Err(FsError::NotFound)
            }
            // Root, @blog and history directories are one listing request anyway.
            _ => {
                let listing = self.listing(parent).await?;
                listing.find(name).ok_or(FsError::NotFound)
            }
        }
    }

    async fn find_in_listing(&self, parent: u64, name: &str) -> Result<u64, FsError> {
        let listing = self.listing(parent).await?;
        listing.find(name).ok_or(FsError::NotFound)
    }

    /// Keeps a found object only if the listing would give it exactly `name` (a page whose
    /// title collides with an attachment is listed under a disambiguated name instead).
    fn confirm_name(
        &self,
        parent: u64,
        name: &str,
        pages: Vec<Page>,
        attachments: Vec<Attachment>,
    ) -> Result<u64, FsError> {
        let named = self.name_pages(parent, pages, attachments);
        named
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, ino)| ino)
            .ok_or(FsError::NotFound)
    }

    async fn page_if_exists(&self, id: &str) -> Result<Option<Page>, FsError> {
        match self.client.get_page(id).await {
            Ok(page) => Ok(Some(page)),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn attachment_if_exists(&self, id: &str) -> Result<Option<Attachment>, FsError> {
        match self.client.get_attachment(id).await {
            Ok(att) => Ok(Some(att)),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

fn page_kind(page: &Page) -> EntryKind {
    match page.kind {
        ContentKind::Page => EntryKind::Page,
        ContentKind::BlogPost => EntryKind::BlogPost,
    }
}

/// An error shared by several waiters of one listing, re-created for each of them.
fn share(err: &FsError) -> FsError {
    match err {
        FsError::NotFound => FsError::NotFound,
        FsError::NotDirectory => FsError::NotDirectory,
        FsError::Client(client) => FsError::Client(client.clone()),
        FsError::Io(io) => FsError::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => FsError::Invalid(other.to_string()),
    }
}
