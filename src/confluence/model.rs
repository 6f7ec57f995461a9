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
    /// A page: it has a parent page or is a top-level page of its space.
    Page,
    /// A blog post of a space; blog posts have no parent.
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
    /// Whether the id is a page's or a blog post's.
    pub kind: ContentKind,
    /// The page's or blog post's content id.
    pub id: String,
}

impl ContainerRef {
    /// The page with content id `id`.
    pub fn page(id: impl Into<String>) -> ContainerRef {
        ContainerRef {
            kind: ContentKind::Page,
            id: id.into(),
        }
    }

    /// The blog post with content id `id`.
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
    /// The name shown for the user; `None` when the answer gave only ids.
    pub display_name: Option<String>,
    /// The user's e-mail address, when the server shows it to us.
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

/// A space, as a listing or a lookup gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// The space's id, as the server spells it.
    pub id: String,
    /// The space key (`DOCS`): unique on the site, and the space's directory name.
    pub key: String,
    /// The space's human name (`Documentation`).
    pub name: String,
    /// `global` or `personal` (Cloud v2 also knows `collaboration`, `knowledge_base`).
    pub space_type: Option<String>,
    /// The content id of the space's home page, when the answer said.
    pub homepage_id: Option<String>,
    /// Absolute link to the space in the web UI, when the answer had one.
    pub web_url: Option<String>,
}

/// A page or a blog post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The content id.
    pub id: String,
    /// Page or blog post.
    pub kind: ContentKind,
    /// The title, unique among the pages (or among the blog posts) of a space.
    pub title: String,
    /// `current`, `trashed`, `draft`, `archived`.
    pub status: String,
    /// The key of the space it belongs to, when the answer said.
    pub space_key: Option<String>,
    /// The direct parent page, when the answer said (not for blog posts or top-level pages).
    pub parent_id: Option<String>,
    /// The current version number, counted from 1.
    pub version: u64,
    /// When the current version was made, when the answer said.
    pub modified: Option<SystemTime>,
    /// When the page or post was first created (blog posts are named by this date).
    pub created: Option<SystemTime>,
    /// Author of the current version, when the answer named one.
    pub author: Option<User>,
    /// Absolute link to the page in the web UI, when the answer had one.
    pub web_url: Option<String>,
    /// The `confluencefs` content property, when the answer carried it (listings do).
    pub fs: Option<FsProperty>,
    /// The body in the storage format at `version`, when the answer carried it (listings and
    /// reads of one page ask for it: it is the page's `.md` file).
    pub body: Option<std::sync::Arc<str>>,
    /// The titles of the pages above it, root first, when the answer carried them with titles.
    pub ancestor_titles: Option<Vec<String>>,
    /// Whether it has child pages and attachments, when the answer said (`childTypes`).
    pub child_types: ChildTypes,
}

/// What a listing said about a page's children without listing them (`expand=childTypes.…`):
/// `None` where it said nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildTypes {
    /// Whether it has child pages.
    pub pages: Option<bool>,
    /// Whether it has (current) attachments.
    pub attachments: Option<bool>,
}

impl Page {
    /// This page or blog post as the container of attachments.
    pub fn container(&self) -> ContainerRef {
        ContainerRef {
            kind: self.kind,
            id: self.id.clone(),
        }
    }
}

/// A file attached to a page or a blog post, at its current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The attachment's content id, the same for all its versions.
    pub id: String,
    /// The filename.
    pub title: String,
    /// The page or blog post it is attached to.
    pub container: ContainerRef,
    /// The media (MIME) type; `application/octet-stream` when the answer had none.
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
    /// `current`, or `trashed` for an attachment in the trash.
    pub status: String,
    /// Cloud media file id.
    pub file_id: Option<String>,
    /// The `confluencefs` content property, when the answer carried it (listings do).
    pub fs: Option<FsProperty>,
}

/// The key of the one content property confluencefs keeps on a page or attachment.
pub const FS_PROPERTY: &str = "confluencefs";

/// What the `confluencefs` content property says about a page or attachment: what POSIX knows
/// and Confluence has no field for. Only what differs from what Confluence shows is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsProperty {
    /// The name the user chose, when the title had to differ (titles are unique per space).
    pub name: Option<String>,
    /// Permission bits (`chmod`).
    pub mode: Option<u32>,
    /// Modification time set by `utimens`, in milliseconds since the epoch…
    pub mtime_ms: Option<i64>,
    /// …which holds while the object is at this version (a new version has its own time).
    pub mtime_version: Option<u64>,
    /// The property's own version; 0 when the object has none.
    pub version: u64,
}

impl FsProperty {
    /// From a property's JSON value and version.
    pub fn from_value(value: &serde_json::Value, version: u64) -> FsProperty {
        let int = |k: &str| value.get(k).and_then(serde_json::Value::as_i64);
        FsProperty {
            name: value
                .get("name")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            mode: int("mode").and_then(|m| u32::try_from(m).ok()),
            mtime_ms: int("mtime_ms"),
            mtime_version: int("mtime_version").and_then(|v| u64::try_from(v).ok()),
            version,
        }
    }

    /// The JSON value stored (the fields that are set).
    pub fn to_value(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Some(name) = &self.name {
            map.insert("name".into(), name.clone().into());
        }
        if let Some(mode) = self.mode {
            map.insert("mode".into(), mode.into());
        }
        if let (Some(ms), Some(v)) = (self.mtime_ms, self.mtime_version) {
            map.insert("mtime_ms".into(), ms.into());
            map.insert("mtime_version".into(), v.into());
        }
        serde_json::Value::Object(map)
    }

    /// Whether two properties say the same (their own versions aside).
    pub fn same_values(&self, other: &FsProperty) -> bool {
        self.to_value() == other.to_value()
    }
}

/// One entry of an attachment's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentVersion {
    /// The version number, counted from 1.
    pub number: u64,
    /// When this version was uploaded, when the answer said.
    pub created: Option<SystemTime>,
    /// The comment given with this version (empty when none).
    pub message: String,
    /// Whether the uploader marked the version as a minor edit (no notification to watchers).
    pub minor_edit: bool,
    /// Who uploaded this version, when the answer said.
    pub author: Option<User>,
}

/// A content property: a JSON value stored under a key on a page, blog post or attachment.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The property's own id.
    pub id: String,
    /// The key it is stored under, unique on its object.
    pub key: String,
    /// The stored JSON value.
    pub value: serde_json::Value,
    /// The property's version, counted from 1; an update must send the next one.
    pub version: u64,
}

/// One CQL search result.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchHit {
    /// A page or blog post.
    Page(Page),
    /// An attachment.
    Attachment(Attachment),
    /// Comments, custom content, folders…: named but not modelled.
    Other {
        /// The content id.
        id: String,
        /// Confluence's `type` of the result (`comment`, `folder`, …).
        content_type: String,
        /// The result's title.
        title: String,
    },
}
