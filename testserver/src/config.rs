//! What a server instance is: flavor, addresses, credentials and where its content comes from.
//!
//! The same struct is filled by the command line (`main.rs`) and by tests that start the server
//! in-process, so every knob the binary has is a plain public field here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which Confluence deployment the server imitates. The two differ in URL layout, id format,
/// timestamp format, authentication answers, download routes and the presence of v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Atlassian Cloud: `/wiki`, v1 and v2, downloads redirected to a media origin.
    Cloud,
    /// Confluence Data Center: an optional context path, v1 only, downloads served directly.
    Datacenter,
}

impl std::str::FromStr for Flavor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cloud" => Ok(Flavor::Cloud),
            "datacenter" | "dc" | "server" => Ok(Flavor::Datacenter),
            other => Err(format!(
                "unknown flavor {other:?} (expected cloud or datacenter)"
            )),
        }
    }
}

/// How to run one server; `Default` gives a Cloud server on a free loopback port with an empty
/// store held in memory.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the API listens; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Cloud only: where the media origin (the redirect target of downloads) listens.
    pub media_listen: Option<SocketAddr>,
    /// Which deployment to imitate.
    pub flavor: Flavor,
    /// Datacenter context path (`/confluence` or empty). Cloud always uses `/wiki`.
    pub context_path: String,
    /// Where the store and the attachment bytes persist across restarts; `None` keeps the store in
    /// memory and the bytes in a temporary directory.
    pub data_dir: Option<PathBuf>,
    /// A directory tree to import into a fresh store (folders become spaces and pages, files
    /// attachments); not used when `data_dir` already
    /// holds a store.
    pub seed_dir: Option<PathBuf>,
    /// Start a fresh store with the demo spaces, pages and attachments.
    pub demo: bool,
    /// Pages seeded from folders get generated storage-format bodies of a few KiB (varied,
    /// deterministic per title) instead of empty ones; an `@page.storage.xml` file in a page
    /// folder sets that page's body either way.
    pub seed_page_bodies: bool,
    /// The one user the server knows; `user` and `token` are the credentials it accepts.
    pub user: String,
    /// The one user's API token (or Data Center password or personal access token).
    pub token: String,
    /// Uploads larger than this many bytes are refused with `oversize_status`; `None` takes any size.
    pub max_attachment_size: Option<u64>,
    /// Largest `limit` a v1 list honours; larger requests are clamped and the clamp is echoed.
    pub v1_limit_cap: usize,
    /// How long a media-origin download token stays valid.
    pub media_token_ttl: Duration,
    /// Cloud: emit the legacy `/download/attachments/...` form in v1 `_links.download`
    /// instead of the current REST `/download` path (real sites have shown both).
    pub legacy_download_links: bool,
    /// Accept only `X-Atlassian-Token: no-check` (as some DC versions do), not `nocheck`.
    pub strict_xsrf: bool,
    /// The status of an upload over `max_attachment_size`: 413, or 404 as the v1 spec says.
    pub oversize_status: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            media_listen: None,
            flavor: Flavor::Cloud,
            context_path: String::new(),
            data_dir: None,
            seed_dir: None,
            demo: false,
            seed_page_bodies: false,
            user: "demo@example.com".to_string(),
            token: "demo-token".to_string(),
            max_attachment_size: None,
            v1_limit_cap: 200,
            media_token_ttl: Duration::from_secs(600),
            legacy_download_links: false,
            strict_xsrf: false,
            oversize_status: 413,
        }
    }
}

impl Config {
    /// The context path the server really uses: `/wiki` on Cloud, the configured one
    /// (normalised to a leading slash and no trailing slash) on Datacenter.
    pub fn effective_context(&self) -> String {
        match self.flavor {
            Flavor::Cloud => "/wiki".to_string(),
            Flavor::Datacenter => {
                let trimmed = self.context_path.trim_matches('/');
                if trimmed.is_empty() {
                    String::new()
                } else {
                    format!("/{trimmed}")
                }
            }
        }
    }
}
