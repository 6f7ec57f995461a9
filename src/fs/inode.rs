//! Inode numbers and what each one stands for.
//!
//! An inode is keyed by the Confluence object behind it (a space key, a content id, an
//! attachment id and version), never by its path, so a rename on the server or a second name
//! for the same object (a lookup by a disambiguated name, a listing) lands on the same inode,
//! and the kernel's caches stay coherent. Numbers are never reused within a mount (a counter),
//! so a number the kernel still holds can never come to mean another object.
//!
//! The table shrinks: an entry stays while something may still ask for it by number, and no
//! longer. Three counts say who that is: the kernel's (`lookups`: every entry replied to a
//! LOOKUP, CREATE, MKDIR or READDIRPLUS, less what FORGET gives back), cached listings and open
//! directory snapshots (`listed`: they hand numbers out by name), and the entries that name it
//! as their parent (`children`: a page text's links and an upload's destination walk up
//! parents). An entry with all three at zero is a *candidate*; `ConfluenceFs::collect_inodes`
//! drops it unless something outside the tree needs it (an open handle, local bytes, a pending
//! upload, attributes not written yet). A dropped object found again gets a new number. New
//! entries become candidates only after a grace of one tick (`age_fresh`), so the operation
//! that made one has time to count or hold it; holding or counting an entry that is gone
//! fails, and the caller finds the name again instead of handing out a dropped number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::confluence::{Attachment, ContainerRef, Page, Space};

/// The inode number of the mount's root directory.
pub const ROOT_INO: u64 = 1;

/// What an inode is, with the metadata it was last seen with.
#[derive(Debug, Clone)]
pub enum Node {
    /// The mount's root: one directory per space.
    Root,
    /// A space: its top-level pages and `@blog`.
    Space(Space),
    /// A page or a blog post: a directory of its child pages and attachments.
    Page(Page),
    /// `@blog` of a space.
    Blog {
        /// The key of the space whose blog posts it lists.
        space_key: String,
    },
    /// An attachment's current version: a file.
    Attachment(Attachment),
    /// `@versions` of a page or blog post.
    Versions {
        /// The page or blog post whose attachments' history it shows.
        container: ContainerRef,
    },
    /// `@versions/<file>/`: one attachment's history.
    VersionsOf(Attachment),
    /// `@versions/<file>/<N>.<ext>`: one old (or the current) version, read-only.
    Version {
        /// The attachment, at its current version when it was looked up.
        attachment: Attachment,
        /// The version number this file shows.
        number: u64,
        /// The version's size in bytes.
        size: u64,
        /// When the version was uploaded.
        modified: SystemTime,
    },
    /// A file that exists only here so far: just created, a tool's scratch file, or an
    /// attachment renamed to a scratch name (`origin`), whose server copy stays put.
    Local(LocalFile),
    /// Page text and what reaches it: `<name>.md`, `@storage.xhtml`, their history, `@pages`
    /// links and `@search` (`page_text.rs`).
    Text(super::text_node::TextNode),
}

/// A file that has no attachment on the server yet.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// Distinguishes local files from each other (they have no Confluence id yet).
    pub serial: u64,
    /// The page or blog post it belongs to.
    pub container: ContainerRef,
    /// The attachment name it would get (unescaped).
    pub filename: String,
    /// An application's scratch file: never uploaded under this name.
    pub temporary: bool,
    /// The attachment whose bytes (at its version then) this file starts from.
    pub origin: Option<Attachment>,
    /// When it was created here; its times until it becomes an attachment.
    pub created: SystemTime,
}

impl Node {
    /// An answer that did not carry the `confluencefs` property (an upload's, a rename's, v2's)
    /// says nothing about it: what was known of the same object is kept.
    fn keep_fs_property(&mut self, old: &Node) {
        match (self, old) {
            (Node::Page(new), Node::Page(old)) if new.id == old.id && new.fs.is_none() => {
                new.fs = old.fs.clone();
            }
            (Node::Attachment(new), Node::Attachment(old))
                if new.id == old.id && new.fs.is_none() =>
            {
                new.fs = old.fs.clone();
            }
            _ => {}
        }
    }

    /// Whether this is an earlier version of the same page or attachment as `known`.
    fn older_than(&self, known: &Node) -> bool {
        match (self, known) {
            (Node::Page(new), Node::Page(old)) => new.id == old.id && new.version < old.version,
            (Node::Attachment(new), Node::Attachment(old)) => {
                new.id == old.id && new.version < old.version
            }
            _ => false,
        }
    }

    /// Whether the node shows as a directory.
    pub fn is_dir(&self) -> bool {
        !matches!(
            self,
            Node::Attachment(_) | Node::Version { .. } | Node::Local(_)
        ) && !matches!(self, Node::Text(text) if !text.is_dir())
    }

    fn key(&self) -> NodeKey {
        match self {
            Node::Root => NodeKey::Root,
            Node::Space(space) => NodeKey::Space(space.key.clone()),
            Node::Page(page) => NodeKey::Content(page.id.clone()),
            Node::Blog { space_key } => NodeKey::Blog(space_key.clone()),
            Node::Attachment(att) => NodeKey::Attachment(att.id.clone()),
            Node::Versions { container } => NodeKey::Versions(container.id.clone()),
            Node::VersionsOf(att) => NodeKey::VersionsOf(att.id.clone()),
            Node::Version {
                attachment, number, ..
            } => NodeKey::Version(attachment.id.clone(), *number),
            Node::Local(local) => NodeKey::Local(local.serial),
            Node::Text(text) => NodeKey::Text(text.key()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum NodeKey {
    Root,
    Space(String),
    Content(String),
    Blog(String),
    Attachment(String),
    Versions(String),
    VersionsOf(String),
    Version(String, u64),
    Local(u64),
    Text(String),
}

/// An inode's node and when its metadata was last confirmed by the server.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What the inode is.
    pub node: Node,
    /// The inode of the directory it was last seen in.
    pub parent: u64,
    /// When the server last confirmed its metadata.
    pub refreshed: Instant,
}

/// An entry and who still needs its number.
struct Slot {
    entry: Entry,
    /// What the kernel holds (LOOKUP and friends, less FORGET).
    lookups: u64,
    /// Cached listings and open directory snapshots that hold it.
    listed: u32,
    /// Entries whose `parent` it is.
    children: u32,
}

#[derive(Default)]
struct Tables {
    next: u64,
    by_key: HashMap<NodeKey, u64>,
    /// Boxed: a `Node` is as large as its largest kind (an attachment with all its metadata,
    /// over 500 bytes), and a map of them inline kept that much again in empty buckets; boxed,
    /// a bucket is 16 bytes (a walk of 200,000 files peaked at 255 MiB instead of 302).
    entries: HashMap<u64, Box<Slot>>,
    /// Entries whose counts reached zero since the last collection (may hold duplicates and
    /// entries counted again since: the collection checks).
    candidates: Vec<u64>,
    /// Candidates something outside the tree needed at the last collection.
    parked: Vec<u64>,
    /// Entries made since the last tick, and during the tick before it (`age_fresh`).
    fresh: Vec<u64>,
    fresh_older: Vec<u64>,
}

impl Tables {
    fn adopt(&mut self, parent: u64, child: u64) {
        if parent != child {
            if let Some(slot) = self.entries.get_mut(&parent) {
                slot.children += 1;
            }
        }
    }

    fn disown(&mut self, parent: u64, child: u64) {
        if parent == child {
            return;
        }
        if let Some(slot) = self.entries.get_mut(&parent) {
            slot.children = slot.children.saturating_sub(1);
            if slot.children == 0 {
                self.candidates.push(parent);
            }
        }
    }

    /// Puts `node` in `ino`'s slot (a new slot for a new number), keeping the counts.
    fn put(&mut self, ino: u64, parent: u64, node: Node) {
        let entry = Entry {
            node,
            parent,
            refreshed: Instant::now(),
        };
        let old_parent = match self.entries.get_mut(&ino) {
            Some(slot) => Some(std::mem::replace(&mut slot.entry, entry).parent),
            None => {
                self.entries.insert(
                    ino,
                    Box::new(Slot {
                        entry,
                        lookups: 0,
                        listed: 0,
                        children: 0,
                    }),
                );
                self.fresh.push(ino);
                None
            }
        };
        if old_parent != Some(parent) {
            self.adopt(parent, ino);
            if let Some(old) = old_parent {
                self.disown(old, ino);
            }
        }
    }

    fn unhold(&mut self, ino: u64) {
        if let Some(slot) = self.entries.get_mut(&ino) {
            slot.listed = slot.listed.saturating_sub(1);
            if slot.listed == 0 {
                self.candidates.push(ino);
            }
        }
    }
}

/// Whether an entry stays whatever its counts say: the root, spaces and the directories every
/// space has are few, and found again only by listing their parent.
fn fixed(ino: u64, node: &Node) -> bool {
    use super::text_node::TextNode;
    ino == ROOT_INO
        || matches!(
            node,
            Node::Root
                | Node::Space(_)
                | Node::Blog { .. }
                | Node::Text(TextNode::Search { .. } | TextNode::Titles { .. })
        )
}

/// Entries held by a cached listing or an open directory snapshot, given back when dropped.
pub(crate) struct Held {
    tables: Arc<Mutex<Tables>>,
    inos: Vec<u64>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut tables = self.tables.lock().unwrap();
        for ino in &self.inos {
            tables.unhold(*ino);
        }
    }
}

/// What [`InodeTable::drop_if_unused`] did with a candidate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// It is gone; its number will not be handed out again.
    Yes,
    /// Its counts are zero but something outside the tree needs it: asked again later.
    Needed,
    /// It is counted, fixed or already gone.
    No,
}

/// Inode numbers and the Confluence objects they stand for. A number is handed out once per
/// object and never reused for another.
pub struct InodeTable {
    tables: Arc<Mutex<Tables>>,
    /// The bodies pages arrived with, bounded by bytes: a page node itself keeps none.
    pub(crate) bodies: super::text_node::Bodies,
}

/// Moves the body a page arrived with into `bodies`.
fn keep_body(bodies: &super::text_node::Bodies, node: &mut Node) {
    if let Node::Page(page) = node {
        bodies.keep(page);
        page.body = None;
        page.ancestor_titles = None;
    }
}

impl InodeTable {
    /// A table that knows only the root.
    pub fn new() -> InodeTable {
        let mut tables = Tables {
            next: ROOT_INO + 1,
            ..Default::default()
        };
        tables.by_key.insert(NodeKey::Root, ROOT_INO);
        tables.put(ROOT_INO, ROOT_INO, Node::Root);
        tables.fresh.clear();
        InodeTable {
            tables: Arc::new(Mutex::new(tables)),
            bodies: super::text_node::Bodies::new(),
        }
    }

    /// The inode of `node` (a new one the first time the object is seen), with its metadata
    /// replaced by this fresher copy. A copy older than what is known (a listing or a lookup
    /// answered before our own upload or rename landed, and read after it) changes nothing:
    /// versions only grow.
    pub fn upsert(&self, parent: u64, mut node: Node) -> u64 {
        keep_body(&self.bodies, &mut node);
        let key = node.key();
        let mut tables = self.tables.lock().unwrap();
        let ino = match tables.by_key.get(&key) {
            Some(ino) => *ino,
            None => {
                let ino = tables.next;
                tables.next += 1;
                tables.by_key.insert(key, ino);
                ino
            }
        };
        if let Some(old) = tables.entries.get(&ino) {
            if node.older_than(&old.entry.node) {
                return ino;
            }
            node.keep_fs_property(&old.entry.node);
        }
        tables.put(ino, parent, node);
        ino
    }

    /// Gives `ino` a new identity (a local file that became an attachment, an attachment that
    /// became a local scratch alias). Whatever inode the new identity had before loses it.
    pub fn rebind(&self, ino: u64, parent: u64, mut node: Node) {
        keep_body(&self.bodies, &mut node);
        let key = node.key();
        let mut tables = self.tables.lock().unwrap();
        let earlier = [
            tables.entries.get(&ino),
            tables.by_key.get(&key).and_then(|i| tables.entries.get(i)),
        ];
        for old in earlier.into_iter().flatten() {
            node.keep_fs_property(&old.entry.node);
        }
        if let Some(old) = tables.entries.get(&ino).map(|s| s.entry.node.key()) {
            if tables.by_key.get(&old) == Some(&ino) {
                tables.by_key.remove(&old);
            }
        }
        tables.by_key.insert(key, ino);
        tables.put(ino, parent, node);
    }

    /// Records what the `confluencefs` property of `ino`'s object now says (after our write).
    pub fn set_fs_property(&self, ino: u64, fs: crate::confluence::FsProperty) {
        let mut tables = self.tables.lock().unwrap();
        if let Some(slot) = tables.entries.get_mut(&ino) {
            match &mut slot.entry.node {
                Node::Page(page) => page.fs = Some(fs),
                Node::Attachment(att) => att.fs = Some(fs),
                _ => {}
            }
        }
    }

    /// Drops `ino` (a deleted object); its number is never handed out again.
    pub fn remove(&self, ino: u64) {
        let mut tables = self.tables.lock().unwrap();
        if let Some(slot) = tables.entries.remove(&ino) {
            let key = slot.entry.node.key();
            if tables.by_key.get(&key) == Some(&ino) {
                tables.by_key.remove(&key);
            }
            tables.disown(slot.entry.parent, ino);
        }
    }

    /// Counts `n` more lookups of `ino` by the kernel; false if `ino` is gone (it must then
    /// not be handed out).
    pub(crate) fn remember(&self, ino: u64, n: u64) -> bool {
        let mut tables = self.tables.lock().unwrap();
        match tables.entries.get_mut(&ino) {
            Some(slot) => {
                slot.lookups += n;
                true
            }
            None => false,
        }
    }

    /// The kernel forgot `n` lookups of `ino` (FORGET); unknown numbers are ignored.
    pub(crate) fn forget(&self, ino: u64, n: u64) {
        let mut tables = self.tables.lock().unwrap();
        if let Some(slot) = tables.entries.get_mut(&ino) {
            slot.lookups = slot.lookups.saturating_sub(n);
            if slot.lookups == 0 {
                tables.candidates.push(ino);
            }
        }
    }

    /// Holds `inos` for a listing or a directory snapshot, all or none: `Err` names one that
    /// is gone (the listing must be made again rather than hand it out).
    pub(crate) fn hold(&self, inos: Vec<u64>) -> Result<Held, u64> {
        let mut tables = self.tables.lock().unwrap();
        for (at, ino) in inos.iter().enumerate() {
            match tables.entries.get_mut(ino) {
                Some(slot) => slot.listed += 1,
                None => {
                    for earlier in &inos[..at] {
                        tables.unhold(*earlier);
                    }
                    return Err(*ino);
                }
            }
        }
        Ok(Held {
            tables: self.tables.clone(),
            inos,
        })
    }

    /// One tick of the clock new entries age by: what was made before the previous tick
    /// becomes a candidate (if nothing counted or held it since, it is dropped).
    pub(crate) fn age_fresh(&self) {
        let mut tables = self.tables.lock().unwrap();
        let older = std::mem::take(&mut tables.fresh_older);
        tables.candidates.extend(older);
        tables.fresh_older = std::mem::take(&mut tables.fresh);
    }

    /// The candidates to collect now; with `parked`, also those needed last time.
    pub(crate) fn take_candidates(&self, parked: bool) -> Vec<u64> {
        let mut tables = self.tables.lock().unwrap();
        let mut out = std::mem::take(&mut tables.candidates);
        if parked {
            out.append(&mut tables.parked);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Drops `ino` if its counts are zero, it is not fixed, and `needed` does not say that
    /// something outside the tree still needs it (then it is parked and asked again later).
    pub(crate) fn drop_if_unused(&self, ino: u64, needed: impl Fn(u64) -> bool) -> Dropped {
        let mut tables = self.tables.lock().unwrap();
        let Some(slot) = tables.entries.get(&ino) else {
            return Dropped::No;
        };
        if slot.lookups > 0 || slot.listed > 0 || slot.children > 0 || fixed(ino, &slot.entry.node)
        {
            return Dropped::No;
        }
        if needed(ino) {
            tables.parked.push(ino);
            return Dropped::Needed;
        }
        let slot = tables.entries.remove(&ino).expect("checked above");
        let key = slot.entry.node.key();
        if tables.by_key.get(&key) == Some(&ino) {
            tables.by_key.remove(&key);
        }
        tables.disown(slot.entry.parent, ino);
        Dropped::Yes
    }

    /// How many entries the table holds.
    pub fn len(&self) -> usize {
        self.tables.lock().unwrap().entries.len()
    }

    /// Whether the table holds only the root (never: the root stays).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kernel's lookup count of `ino` (tests).
    #[cfg(test)]
    fn lookups(&self, ino: u64) -> Option<u64> {
        self.tables
            .lock()
            .unwrap()
            .entries
            .get(&ino)
            .map(|s| s.lookups)
    }

    /// The inode of page or blog post `id`, if it has one.
    pub fn find_content(&self, id: &str) -> Option<u64> {
        self.tables
            .lock()
            .unwrap()
            .by_key
            .get(&NodeKey::Content(id.to_string()))
            .copied()
    }

    /// The entry of inode `ino`, if the table has it.
    pub fn get(&self, ino: u64) -> Option<Entry> {
        self.tables
            .lock()
            .unwrap()
            .entries
            .get(&ino)
            .map(|s| s.entry.clone())
    }

    /// The inodes among `inos` whose node passes `keep`, in order (one lock, no copies).
    pub fn select(
        &self,
        inos: impl Iterator<Item = u64>,
        keep: impl Fn(&Node) -> bool,
    ) -> Vec<u64> {
        let tables = self.tables.lock().unwrap();
        inos.filter(|ino| tables.entries.get(ino).is_some_and(|s| keep(&s.entry.node)))
            .collect()
    }
}

impl Default for InodeTable {
    fn default() -> Self {
        InodeTable::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluence::ContentKind;

    fn page(id: &str, title: &str) -> Node {
        Node::Page(Page {
            id: id.into(),
            kind: ContentKind::Page,
            title: title.into(),
            status: "current".into(),
            space_key: Some("DOCS".into()),
            parent_id: None,
            version: 1,
            modified: None,
            created: None,
            author: None,
            web_url: None,
            fs: None,
            body: None,
            ancestor_titles: None,
            child_types: Default::default(),
        })
    }

    #[test]
    fn a_bucket_of_the_table_is_small_whatever_the_node() {
        // The map's buckets are allocated ahead of its entries (a quarter or more stay empty):
        // they hold a pointer, not the node.
        assert_eq!(std::mem::size_of::<(u64, Box<Slot>)>(), 16);
    }

    #[test]
    fn an_answer_without_the_property_keeps_what_was_known() {
        let table = InodeTable::new();
        let Node::Page(mut known) = page("7", "images (under 3)") else {
            unreachable!()
        };
        known.fs = Some(crate::confluence::FsProperty {
            name: Some("images".into()),
            version: 1,
            ..Default::default()
        });
        let ino = table.upsert(1, Node::Page(known));
        table.upsert(1, page("7", "images (under 3)"));
        match table.get(ino).unwrap().node {
            Node::Page(p) => assert_eq!(p.fs.unwrap().name.as_deref(), Some("images")),
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_older_answer_does_not_undo_a_newer_version() {
        let table = InodeTable::new();
        let Node::Page(mut newer) = page("12", "Renamed") else {
            unreachable!()
        };
        newer.version = 3;
        let ino = table.upsert(ROOT_INO, Node::Page(newer));
        // A listing answered before the rename (version 2), read after it.
        table.upsert(ROOT_INO, page("12", "Old title"));
        match table.get(ino).unwrap().node {
            Node::Page(p) => assert_eq!((p.title.as_str(), p.version), ("Renamed", 3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_object_one_inode_and_fresh_metadata_wins() {
        let table = InodeTable::new();
        let a = table.upsert(ROOT_INO, page("10", "Old title"));
        let b = table.upsert(ROOT_INO, page("11", "Other"));
        assert_ne!(a, b);
        assert_ne!(a, ROOT_INO);
        let again = table.upsert(ROOT_INO, page("10", "New title"));
        assert_eq!(a, again);
        match table.get(a).unwrap().node {
            Node::Page(p) => assert_eq!(p.title, "New title"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(table.get(ROOT_INO).unwrap().node, Node::Root));
        assert!(table.get(9999).is_none());
    }

    #[test]
    fn an_entry_goes_when_no_count_holds_it_and_its_number_is_not_reused() {
        let table = InodeTable::new();
        let dir = table.upsert(ROOT_INO, page("1", "Dir"));
        let file = table.upsert(dir, page("2", "File"));
        assert!(table.remember(file, 2));
        assert!(table.remember(dir, 1));
        let held = table.hold(vec![file]).unwrap();
        table.forget(file, 2);
        assert_eq!(table.lookups(file), Some(0));
        let never = |_| false;
        // Held by a listing, and the directory by its child.
        assert_eq!(table.drop_if_unused(file, never), Dropped::No);
        table.forget(dir, 1);
        assert_eq!(table.drop_if_unused(dir, never), Dropped::No);
        drop(held);
        assert_eq!(table.drop_if_unused(file, |_| true), Dropped::Needed);
        assert_eq!(table.drop_if_unused(file, never), Dropped::Yes);
        assert_eq!(table.take_candidates(true), vec![dir, file]);
        assert_eq!(table.drop_if_unused(dir, never), Dropped::Yes);
        assert!(table.get(file).is_none() && !table.remember(file, 1));
        assert!(table.hold(vec![file]).is_err());
        let again = table.upsert(ROOT_INO, page("2", "File"));
        assert!(again > file, "{again} after {file}");
        assert_eq!(table.drop_if_unused(ROOT_INO, never), Dropped::No);
    }
}
