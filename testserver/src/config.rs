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
    Cloud,
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

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Cloud only: where the media origin (the redirect target of downloads) listens.
    pub media_listen: Option<SocketAddr>,
    pub flavor: Flavor,
    /// Datacenter context path (`/confluence` or empty). Cloud always uses `/wiki`.
    pub context_path: String,
    pub data_dir: Option<PathBuf>,
    pub seed_dir: Option<PathBuf>,
    pub demo: bool,
    pub user: String,
    pub token: String,
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
