//! Inode numbers and what each one stands for.
//!
//! An inode is keyed by the Confluence object behind it (a space key, a content id, an
//! attachment id and version), never by its path, so a rename on the server or a second name
//! for the same object (a lookup by a disambiguated name, a listing) lands on the same inode,
//! and the kernel's caches stay coherent. Numbers are never reused within a mount: the table
//! only grows by one small entry per object seen, which is cheap next to the kernel's own
//! dentry cache, and it spares us the FORGET bookkeeping that a reusing scheme would need.

use std::collections::HashMap;
use std::sync::Mutex;
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

#[derive(Default)]
struct Tables {
    next: u64,
    by_key: HashMap<NodeKey, u64>,
    entries: HashMap<u64, Entry>,
}

/// Inode numbers and the Confluence objects they stand for. A number is handed out once per
/// object and never reused for another.
pub struct InodeTable {
    tables: Mutex<Tables>,
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
        tables.entries.insert(
            ROOT_INO,
            Entry {
                node: Node::Root,
                parent: ROOT_INO,
                refreshed: Instant::now(),
            },
        );
        InodeTable {
            tables: Mutex::new(tables),
            bodies: super::text_node::Bodies::new(),
        }
    }

    /// The inode of `node` (a new one the first time the object is seen), with its metadata
    /// replaced by this fresher copy.
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
            node.keep_fs_property(&old.node);
        }
        tables.entries.insert(
            ino,
            Entry {
                node,
                parent,
                refreshed: Instant::now(),
            },
        );
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
            node.keep_fs_property(&old.node);
        }
        if let Some(old) = tables.entries.get(&ino).map(|e| e.node.key()) {
            if tables.by_key.get(&old) == Some(&ino) {
                tables.by_key.remove(&old);
            }
        }
        tables.by_key.insert(key, ino);
        tables.entries.insert(
            ino,
            Entry {
                node,
                parent,
                refreshed: Instant::now(),
            },
        );
    }

    /// Records what the `confluencefs` property of `ino`'s object now says (after our write).
    pub fn set_fs_property(&self, ino: u64, fs: crate::confluence::FsProperty) {
        let mut tables = self.tables.lock().unwrap();
        if let Some(entry) = tables.entries.get_mut(&ino) {
            match &mut entry.node {
                Node::Page(page) => page.fs = Some(fs),
                Node::Attachment(att) => att.fs = Some(fs),
                _ => {}
            }
        }
    }

    /// Drops `ino` (a deleted object); its number is never handed out again.
    pub fn remove(&self, ino: u64) {
        let mut tables = self.tables.lock().unwrap();
        if let Some(entry) = tables.entries.remove(&ino) {
            let key = entry.node.key();
            if tables.by_key.get(&key) == Some(&ino) {
                tables.by_key.remove(&key);
            }
        }
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
        self.tables.lock().unwrap().entries.get(&ino).cloned()
    }

    /// The inodes among `inos` whose node passes `keep`, in order (one lock, no copies).
    pub fn select(
        &self,
        inos: impl Iterator<Item = u64>,
        keep: impl Fn(&Node) -> bool,
    ) -> Vec<u64> {
        let tables = self.tables.lock().unwrap();
        inos.filter(|ino| tables.entries.get(ino).is_some_and(|e| keep(&e.node)))
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
        })
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
}
