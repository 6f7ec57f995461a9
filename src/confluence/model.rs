//! What the client hands to the filesystem: plain owned structs, one shape per Confluence object
//! whatever API version or flavor it came from.
//!
//! v1 and v2 disagree on field names, nesting and which fields exist (v2 names authors only by
//! account id; Data Center has no account ids at all). The conversions in `wire.rs` fill these
//! structs from either; fields no source has are `Option`.

use std::time::SystemTime;

/// The two kinds of content that can hold attachments and appear as directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentKind {
    Page,
    BlogPost,
}

impl ContentKind {
    /// The v1 `type` value.
    pub fn v1_type(self) -> &'static str {
        match self {
            ContentKind::Page => "page",
            ContentKind::BlogPost => "blogpost",
        }
    }

    /// The v2 collection name in paths (`/pages/{id}`, `/blogposts/{id}`).
    pub(crate) fn v2_collection(self) -> &'static str {
        match self {
            ContentKind::Page => "pages",
            ContentKind::BlogPost => "blogposts",
        }
    }

    pub(crate) fn from_v1_type(value: &str) -> Option<ContentKind> {
        match value {
            "page" => Some(ContentKind::Page),
            "blogpost" => Some(ContentKind::BlogPost),
            _ => None,
        }
    }
}

/// A page or blog post named by id, as an attachment's container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    pub kind: ContentKind,
    pub id: String,
}

impl ContainerRef {
    pub fn page(id: impl Into<String>) -> ContainerRef {
        ContainerRef {
            kind: ContentKind::Page,
            id: id.into(),
        }
    }

    pub fn blog_post(id: impl Into<String>) -> ContainerRef {
        ContainerRef {
            kind: ContentKind::BlogPost,
            id: id.into(),
        }
    }
}

/// A Confluence user, as much as the answering API tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// Cloud account id.
    pub account_id: Option<String>,
    /// Data Center username.
    pub username: Option<String>,
    /// Data Center user key.
    pub user_key: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

impl User {
    /// The most readable name available.
    pub fn name(&self) -> &str {
        self.display_name
            .as_deref()
            .or(self.username.as_deref())
            .or(self.email.as_deref())
            .or(self.account_id.as_deref())
            .or(self.user_key.as_deref())
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    pub id: String,
    pub key: String,
    pub name: String,
    /// `global` or `personal` (Cloud v2 also knows `collaboration`, `knowledge_base`).
    pub space_type: Option<String>,
    pub homepage_id: Option<String>,
    pub web_url: Option<String>,
}

/// A page or a blog post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub id: String,
    pub kind: ContentKind,
    pub title: String,
    /// `current`, `trashed`, `draft`, `archived`.
    pub status: String,
    pub space_key: Option<String>,
    /// The direct parent page, when the answer said (not for blog posts or top-level pages).
    pub parent_id: Option<String>,
    pub version: u64,
    pub modified: Option<SystemTime>,
    /// When the page or post was first created (blog posts are named by this date).
    pub created: Option<SystemTime>,
    pub author: Option<User>,
    pub web_url: Option<String>,
}

impl Page {
    pub fn container(&self) -> ContainerRef {
        ContainerRef {
            kind: self.kind,
            id: self.id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: String,
    /// The filename.
    pub title: String,
    pub container: ContainerRef,
    pub media_type: String,
    /// Bytes of the current version.
    pub size: u64,
    /// Current version number (starts at 1).
    pub version: u64,
    /// When the current version was created.
    pub modified: SystemTime,
    /// The current version's comment (empty when none).
    pub comment: String,
    /// Author of the current version.
    pub author: Option<User>,
    /// `_links.download` / `downloadLink` as Confluence gave it (context-relative), for display.
    pub download_path: Option<String>,
    /// Absolute link to the attachment in the web UI.
    pub web_url: Option<String>,
    pub status: String,
    /// Cloud media file id.
    pub file_id: Option<String>,
}

/// One entry of an attachment's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentVersion {
    pub number: u64,
    pub created: Option<SystemTime>,
    pub message: String,
    pub minor_edit: bool,
    pub author: Option<User>,
}

/// A content property: a JSON value stored under a key on a page, blog post or attachment.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub id: String,
    pub key: String,
    pub value: serde_json::Value,
    pub version: u64,
}

/// One CQL search result.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchHit {
    Page(Page),
    Attachment(Attachment),
    /// Comments, custom content, folders…: named but not modelled.
    Other {
        id: String,
        content_type: String,
        title: String,
    },
}
