//! What a spool entry says about its bytes: where they go, and how far they got.
//!
//! The record is the only thing that survives a crash besides the bytes, so it carries
//! everything an upload needs without asking the filesystem: the container, the filename, the
//! comment, and, for a new version, the attachment id and the version the user's bytes were
//! based on (which is how a restarted upload tells "my version landed" from "not yet"). The
//! site's base URL is recorded too, so a spool is never replayed against another site.
//!
//! On disk it is `record.json`, written with a `format` number so that a later release can
//! read an older spool. The container is written through a small mirror type, so the file's
//! shape belongs to this module and not to the client's model.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::confluence::{ContainerRef, ContentKind};

/// The on-disk format number written into every `record.json`.
pub(crate) const FORMAT: u32 = 1;

/// Where an entry's bytes go.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum UploadTarget {
    /// A new attachment named `filename` in the container.
    New {
        /// The page or blog post that gets the attachment.
        #[serde(with = "container_json")]
        container: ContainerRef,
    },
    /// A new version of an existing attachment (same id), based on `base_version`.
    Version {
        /// The page or blog post that holds the attachment.
        #[serde(with = "container_json")]
        container: ContainerRef,
        /// The attachment that gets the new version.
        attachment_id: String,
        /// The attachment's version the user's bytes replace: after a crash, a newer version of the
        /// same size is taken to be this upload, landed.
        base_version: u64,
    },
    /// A page's (or blog post's) text: the bytes are its new body in the storage format.
    PageText {
        /// The page.
        page_id: String,
        /// Page or blog post.
        #[serde(with = "kind_json")]
        kind: ContentKind,
        /// Its title (a page update sends it unchanged).
        title: String,
        /// Its space, when known.
        space_key: Option<String>,
        /// The version the text was made from: the save is version `base_version + 1`.
        base_version: u64,
        /// The body at `base_version`, for merging with a newer version (`pending --retry`).
        base_body: String,
        /// The user asked to retry (`pending --retry`): merge onto a newer version when the two
        /// edits touch different blocks.
        #[serde(default)]
        merge: bool,
    },
}

impl UploadTarget {
    /// The page or blog post the bytes go to, whichever the target.
    pub fn container(&self) -> ContainerRef {
        match self {
            UploadTarget::New { container } | UploadTarget::Version { container, .. } => {
                container.clone()
            }
            UploadTarget::PageText { page_id, kind, .. } => ContainerRef {
                kind: *kind,
                id: page_id.clone(),
            },
        }
    }
}

mod kind_json {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::confluence::ContentKind;

    pub(super) fn serialize<S: Serializer>(kind: &ContentKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.v1_type())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ContentKind, D::Error> {
        let text = String::deserialize(d)?;
        ContentKind::from_v1_type(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a page type: {text}")))
    }
}

/// Whether the uploader should keep trying.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Waiting for its (next) upload attempt.
    Pending,
    /// Refused for good (403, 413, a rejected name …): kept until the user retries or drops it.
    Failed {
        /// The errno the refusal maps to.
        errno: i32,
        /// The refusal, as text.
        reason: String,
    },
}

/// Everything an upload needs, as kept in an entry's `record.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    /// A new attachment or a new version of one.
    pub target: UploadTarget,
    /// The attachment's name on the server.
    pub filename: String,
    /// The comment of the new version; empty sends none.
    pub comment: String,
    /// Marks the new version as a minor edit (no notification to watchers).
    pub minor_edit: bool,
    /// Bytes of the entry's data file, as admitted.
    pub size: u64,
    /// Where the user wrote it, relative to the mount root, for `pending`.
    pub display_path: String,
    /// The site's base URL, so a spool is never replayed against another site.
    pub site: String,
    /// When the entry was admitted, in milliseconds since the Unix epoch; entries are listed and
    /// named in this order.
    pub created_unix_ms: u64,
    /// Upload attempts that have failed so far.
    pub attempts: u32,
    /// The error of the last failed attempt, as text; `None` before any failure.
    pub last_error: Option<String>,
    /// Whether the uploader still tries, or has given up.
    pub state: EntryState,
}

/// One admitted upload: its id (the entry directory's name), its record and its bytes.
#[derive(Clone, Debug)]
pub struct SpoolEntry {
    /// The entry directory's name: the admission time and a random salt.
    pub id: String,
    /// What the upload needs.
    pub record: UploadRecord,
    /// The bytes to upload: `data` in the entry's directory.
    pub data_path: PathBuf,
}

/// `record.json` as written: the record plus the format number.
#[derive(Serialize, Deserialize)]
pub(crate) struct RecordFile {
    pub format: u32,
    #[serde(flatten)]
    pub record: UploadRecord,
}

/// `ContainerRef` as `{"kind":"page","id":"123"}`.
mod container_json {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Container {
        kind: String,
        id: String,
    }

    pub(super) fn serialize<S: Serializer>(
        container: &ContainerRef,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        Container {
            kind: container.kind.v1_type().to_string(),
            id: container.id.clone(),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ContainerRef, D::Error> {
        let c = Container::deserialize(d)?;
        let kind = match c.kind.as_str() {
            "page" => ContentKind::Page,
            "blogpost" => ContentKind::BlogPost,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown container kind {other:?}"
                )))
            }
        };
        Ok(ContainerRef { kind, id: c.id })
    }
}
