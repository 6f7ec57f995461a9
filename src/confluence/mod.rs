//! The typed async REST client for Confluence Cloud and Data Center.
//!
//! The filesystem calls methods on [`Client`] and gets plain structs back ([`Space`], [`Page`],
//! [`Attachment`], …); it never builds a URL and never sees JSON. The client in turn knows
//! nothing about inodes or errnos: its errors are one enum, [`ClientError`], which keeps "the
//! service said no" apart from "the transport failed".
//!
//! Module map: `client` (connect, flavor detection), `site` (every URL), `transport` (one request:
//! auth, concurrency, retries), `traffic` (what was sent, for `confluencefs status`), `retry`
//! (the policy), `paging` (following `next`), `wire` (the JSON shapes) → `model` (what callers get); one module per kind of operation: `spaces`,
//! `pages`, `attachments`, `download`, `upload` (its bodies read by `file_chunks`), `streamed`,
//! `properties`, `search`.

mod attachments;
mod client;
mod client_error;
mod credentials;
mod download;
mod file_chunks;
mod media_links;
mod model;
mod page_text;
mod pages;
mod paging;
mod properties;
mod retry;
mod search;
mod site;
mod spaces;
mod streamed;
mod timestamp;
mod traffic;
mod transport;
mod upload;
mod wire;

pub use client::{Client, ClientConfig};
pub use client::{MIN_TRANSFER_RATE, RATE_WINDOW};
pub use client_error::{ClientError, RequestLine};
pub use credentials::{Credentials, Secret};
pub use download::ByteStream;
pub(crate) use file_chunks::read_at_most;
pub use model::{
    Attachment, AttachmentVersion, ChildTypes, ContainerRef, ContentKind, FsProperty, Page,
    Property, SearchHit, Space, User, FS_PROPERTY,
};
pub use page_text::{Found, PageVersion, SEARCH_LIMIT};
pub use paging::{MAX_LISTED, MAX_PAGES_V1, MAX_PAGES_V2};
pub use retry::RetryPolicy;
pub use site::{check_site_url, Flavor};
pub use streamed::{StreamLabels, StreamTarget, StreamedUpload};
pub use traffic::{TrafficStats, UploadInFlight};
pub(crate) use upload::may_have_landed;
pub use upload::{guess_media_type, NewAttachment, UploadSource};
