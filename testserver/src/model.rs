//! The content a Confluence site holds, as this server stores it.
//!
//! One record type (`Content`) covers pages, blog posts and attachments because Confluence
//! itself puts them in one id space and one `/content/{id}` route. Each record keeps its whole
//! version history; an attachment version also names the bytes of that version, so older
//! versions stay downloadable. These types are what the state file holds, so they derive serde.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ContentKind {
    Page,
    Blogpost,
    Attachment,
}

impl ContentKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ContentKind::Page => "page",
            ContentKind::Blogpost => "blogpost",
            ContentKind::Attachment => "attachment",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Current,
    Trashed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Trashed => "trashed",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Space {
    pub id: u64,
    pub key: String,
    pub name: String,
    pub homepage: u64,
    pub created_ms: i64,
}

/// Where the bytes of one attachment version live. Seeded files are referenced where they
/// are (seeding 20,000 files must not copy them); uploads are owned by the server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Blob {
    /// `<blob dir>/<file_id>`, owned by the server and deleted on purge.
    Stored,
    /// A file outside the server's directories, never modified or deleted.
    External(PathBuf),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FileVersion {
    /// The media-platform file id (a UUID); each version has its own.
    pub file_id: String,
    pub size: u64,
    pub media_type: String,
    pub blob: Blob,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Version {
    pub number: u32,
    pub when_ms: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub minor_edit: bool,
    /// Present for attachment versions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileVersion>,
    /// Pages and blog posts: the title and body this version had, kept once a later version
    /// supersedes it (`GET /content/{id}?version=N`); the current one reads the content's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Property {
    pub id: u64,
    pub key: String,
    pub value: serde_json::Value,
    pub version: u32,
    pub when_ms: i64,
    #[serde(default)]
    pub minor_edit: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Content {
    pub id: u64,
    pub kind: ContentKind,
    pub status: Status,
    pub space_key: String,
    pub title: String,
    /// Pages: the parent page (None for a root page). Attachments: the container.
    /// Blog posts: always None.
    pub parent: Option<u64>,
    pub created_ms: i64,
    /// Oldest first; never empty.
    pub versions: Vec<Version>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Property>,
}

impl Content {
    pub(crate) fn current(&self) -> &Version {
        self.versions.last().expect("content always has a version")
    }

    pub(crate) fn version(&self, number: u32) -> Option<&Version> {
        self.versions.iter().find(|v| v.number == number)
    }

    /// The file of the current version (attachments only).
    pub(crate) fn file(&self) -> Option<&FileVersion> {
        self.current().file.as_ref()
    }

    pub(crate) fn is_current(&self) -> bool {
        self.status == Status::Current
    }
}
