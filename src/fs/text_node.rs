//! What a page-text inode is (`TextNode`), the names page text lives under, and the bodies
//! kept for it (`Bodies`).
//!
//! The inode table holds these (`inode.rs`) and the page-text operations make them
//! (`page_text.rs`); keeping them here lets both use them without importing each other.

use std::sync::Arc;
use std::time::SystemTime;

use super::names;
use crate::confluence::{ContentKind, Page};

/// The file holding a page's exact body.
pub const STORAGE_FILE: &str = "@storage.xhtml";
/// A space's directory of page links by title.
pub const PAGES_DIR: &str = "@pages";
/// Where searches are asked, at the root and in every space.
pub const SEARCH_DIR: &str = "@search";
/// The extension of page text files.
pub(crate) const TEXT_EXTENSION: &str = ".md";
/// Bytes of page bodies kept in memory.
const BODY_BYTES: u64 = 64 << 20;

/// What a page-text inode is.
#[derive(Debug, Clone)]
pub enum TextNode {
    /// `<name>.md`: the page's text as Markdown, at `page.version`.
    Markdown {
        /// The page, at the version the text shows.
        page: Page,
        /// The rendered text's bytes.
        size: u64,
    },
    /// `@storage.xhtml`: the body exactly as Confluence stores it.
    Storage {
        /// The page, at the version the body is of.
        page: Page,
        /// The body's bytes.
        size: u64,
    },
    /// `@versions/<name>.md/`: the versions of the page's text.
    History {
        /// The page whose versions are listed.
        page: Page,
    },
    /// `@versions/<name>.md/<N>.md`: one version's text, read-only.
    Old {
        /// The page (its current metadata).
        page: Page,
        /// The version shown.
        number: u64,
        /// The rendered text's bytes.
        size: u64,
        /// When the version was made.
        modified: SystemTime,
    },
    /// `SPACE/@pages/`: the space's pages by title (links), reachable, not listed.
    Titles {
        /// The space.
        space_key: String,
    },
    /// A symbolic link: a `@pages` entry or a search hit.
    Link {
        /// What makes it unique (the directory and name it is in).
        key: String,
        /// The relative path it points to.
        target: String,
    },
    /// `@search/`, at the mount's root (`space_key` None) or in a space.
    Search {
        /// The space searched, or every space.
        space_key: Option<String>,
    },
    /// `@search/<query>/`: what the search found, as links.
    Found {
        /// The space searched, or every space.
        space_key: Option<String>,
        /// The query as the directory is named.
        query: String,
    },
}

impl TextNode {
    /// Whether it shows as a directory.
    pub fn is_dir(&self) -> bool {
        matches!(
            self,
            TextNode::History { .. }
                | TextNode::Titles { .. }
                | TextNode::Search { .. }
                | TextNode::Found { .. }
        )
    }

    /// A key unique among text nodes (see `inode.rs`).
    pub(crate) fn key(&self) -> String {
        match self {
            TextNode::Markdown { page, .. } => format!("md:{}", page.id),
            TextNode::Storage { page, .. } => format!("xhtml:{}", page.id),
            TextNode::History { page } => format!("history:{}", page.id),
            TextNode::Old { page, number, .. } => format!("old:{}:{number}", page.id),
            TextNode::Titles { space_key } => format!("titles:{space_key}"),
            TextNode::Link { key, .. } => format!("link:{key}"),
            TextNode::Search { space_key } => format!("search:{space_key:?}"),
            TextNode::Found { space_key, query } => format!("found:{space_key:?}:{query}"),
        }
    }

    /// (size, mtime, is a symbolic link, read-only).
    pub(crate) fn shape(&self, mounted_at: SystemTime) -> (u64, SystemTime, bool, bool) {
        match self {
            TextNode::Markdown { page, size } | TextNode::Storage { page, size } => {
                (*size, page.modified.unwrap_or(mounted_at), false, false)
            }
            TextNode::Old { size, modified, .. } => (*size, *modified, false, true),
            TextNode::Link { target, .. } => (target.len() as u64, mounted_at, true, true),
            TextNode::History { page } => (0, page.modified.unwrap_or(mounted_at), false, true),
            TextNode::Titles { .. } | TextNode::Search { .. } | TextNode::Found { .. } => {
                (0, mounted_at, false, true)
            }
        }
    }

    /// The name it is shown under, for messages.
    pub(crate) fn display_name(&self) -> String {
        match self {
            TextNode::Markdown { page, .. } => {
                format!("{}{TEXT_EXTENSION}", names::encode(&page.title))
            }
            TextNode::Storage { .. } => STORAGE_FILE.to_string(),
            TextNode::History { page } => format!("{}{TEXT_EXTENSION}", names::encode(&page.title)),
            TextNode::Old { number, .. } => format!("{number}{TEXT_EXTENSION}"),
            TextNode::Titles { .. } => PAGES_DIR.to_string(),
            TextNode::Link { key, .. } => key.rsplit('/').next().unwrap_or(key).to_string(),
            TextNode::Search { .. } => SEARCH_DIR.to_string(),
            TextNode::Found { query, .. } => query.clone(),
        }
    }
}

/// Page bodies by page id, at one version each, bounded by bytes.
pub(crate) struct Bodies {
    cache: moka::sync::Cache<String, (u64, Arc<str>)>,
    /// The Markdown a user saved, by (page id, the version it became, depth): what reads of
    /// that version show in this mount, so that what was written is what is read back (and
    /// `rsync` finds nothing to do), rather than our own rendering of the same body.
    written: moka::sync::Cache<(String, u64, usize), bytes::Bytes>,
}

impl Bodies {
    pub(crate) fn new() -> Bodies {
        Bodies {
            cache: moka::sync::Cache::builder()
                .weigher(|k: &String, v: &(u64, Arc<str>)| {
                    (k.len() + v.1.len() + 64).min(u32::MAX as usize) as u32
                })
                .max_capacity(BODY_BYTES)
                .build(),
            written: moka::sync::Cache::builder()
                .weigher(|k: &(String, u64, usize), v: &bytes::Bytes| {
                    (k.0.len() + v.len() + 64).min(u32::MAX as usize) as u32
                })
                .max_capacity(BODY_BYTES / 4)
                .build(),
        }
    }

    /// Remembers the Markdown a user saved as version `version` of page `id`.
    pub(crate) fn keep_written(&self, id: &str, version: u64, depth: usize, text: bytes::Bytes) {
        self.written.insert((id.to_string(), version, depth), text);
    }

    /// The Markdown a user saved as this version, if this mount saved it.
    pub(crate) fn written(&self, id: &str, version: u64, depth: usize) -> Option<bytes::Bytes> {
        self.written.get(&(id.to_string(), version, depth))
    }

    /// Keeps the body a page arrived with, if it came with one.
    pub(crate) fn keep(&self, page: &Page) {
        if let Some(body) = &page.body {
            self.cache
                .insert(page.id.clone(), (page.version, body.clone()));
        }
    }

    /// The page's body at `version`, if kept.
    pub(crate) fn get(&self, id: &str, version: u64) -> Option<Arc<str>> {
        self.cache
            .get(id)
            .filter(|(v, _)| *v == version)
            .map(|(_, body)| body)
    }
}

/// The raw (unescaped) name of a page or blog post: the chosen name or the title, or
/// `YYYY-MM-DD Title`.
pub(crate) fn raw_page_name(page: &Page) -> String {
    match page.kind {
        // The name the user chose, when the title had to differ from it (`names`).
        ContentKind::Page => page
            .fs
            .as_ref()
            .and_then(|fs| fs.name.clone())
            .unwrap_or_else(|| page.title.clone()),
        ContentKind::BlogPost => {
            let date = page.created.or(page.modified);
            names::blog_post_name(date, &page.title)
        }
    }
}
