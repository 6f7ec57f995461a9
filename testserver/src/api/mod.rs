//! The HTTP face of the server: shared state, request parsing helpers, and the route table.
//!
//! Routes are declared relative to the context path and nested under it (`/wiki` on Cloud,
//! the configured path on Datacenter), so every handler works on context-relative paths, just
//! as Confluence's own `_links` are context-relative. Flavor differences are decided in the
//! route table where a route exists only on one flavor, and in the renderers otherwise.

pub(crate) mod attachments;
pub(crate) mod body;
pub(crate) mod content;
pub(crate) mod download;
pub(crate) mod errors;
pub(crate) mod guard;
pub(crate) mod multipart;
pub(crate) mod paging;
pub(crate) mod properties;
pub(crate) mod render;
pub(crate) mod render_v2;
pub(crate) mod search;
pub(crate) mod spaces;
pub(crate) mod upload;
pub(crate) mod v2;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::Router;

use crate::blobs::BlobDir;
use crate::config::{Config, Flavor};
use crate::hooks::Hooks;
use crate::persist::Persister;
use crate::store::Store;
use errors::ApiError;

/// Everything a handler can reach.
pub(crate) struct App {
    pub config: Config,
    /// `http://127.0.0.1:PORT` + context path, what `_links.base` says.
    pub base_url: String,
    /// The context path (`/wiki`, `/confluence` or empty), what `_links.context` says.
    pub context: String,
    pub media_url: Option<String>,
    pub store: Arc<Mutex<Store>>,
    pub blobs: BlobDir,
    pub persister: Arc<Persister>,
    pub media_grants: Mutex<HashMap<String, MediaGrant>>,
    pub hooks: Arc<Hooks>,
}

/// A short-lived permission to fetch one file from the media origin, like the JWT that
/// Atlassian's media platform puts in the redirect URL.
pub(crate) struct MediaGrant {
    pub file_id: String,
    pub expires: Instant,
}

pub(crate) type Shared = Arc<App>;

impl App {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn flavor(&self) -> Flavor {
        self.config.flavor
    }

    pub(crate) fn is_cloud(&self) -> bool {
        self.config.flavor == Flavor::Cloud
    }

    /// The id as it appears on the wire: Cloud attachments carry an `att` prefix.
    pub(crate) fn wire_id(&self, c: &crate::model::Content) -> String {
        if self.is_cloud() && c.kind == crate::model::ContentKind::Attachment {
            format!("att{}", c.id)
        } else {
            c.id.to_string()
        }
    }

    /// Parses an id from a path or body: digits, or `att` + digits on Cloud.
    pub(crate) fn parse_id(&self, s: &str) -> Result<u64, ApiError> {
        let digits = match s.strip_prefix("att") {
            Some(rest) if self.is_cloud() => rest,
            _ => s,
        };
        digits
            .parse::<u64>()
            .map_err(|_| ApiError::v1(404, format!("No content found with id: {s}")))
    }

    /// Records a change and waits until it is durable (a no-op without `--data`).
    pub(crate) async fn persist(&self) {
        let generation = self.persister.changed();
        self.persister.durable(generation).await;
    }

    pub(crate) fn grant_media(&self, file_id: &str) -> String {
        let token = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            rand::random::<[u8; 24]>(),
        );
        let mut grants = self.media_grants.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if grants.len() > 10_000 {
            grants.retain(|_, g| g.expires > now);
        }
        grants.insert(
            token.clone(),
            MediaGrant {
                file_id: file_id.to_string(),
                expires: now + self.config.media_token_ttl,
            },
        );
        token
    }
}

/// The raw query as ordered pairs: Confluence repeats parameters (`spaceKey=A&spaceKey=B`,
/// `status=current&status=archived`) and joins lists with commas, so both forms are read.
#[derive(Default, Debug, Clone)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a repeated and/or comma-separated parameter.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn number(&self, key: &str, default: usize) -> Result<usize, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .map(|n| n.max(0) as usize)
                .map_err(|_| ApiError::v1(400, format!("Invalid value for parameter {key}: {v}"))),
        }
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some(v) if v.eq_ignore_ascii_case("true"))
    }

    /// The pairs whose key is in `keep`, re-encoded, for building `next` links.
    pub(crate) fn encode_only(&self, keep: &[&str]) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if keep.contains(&k.as_str()) {
                ser.append_pair(k, v);
            }
        }
        ser.finish()
    }

    /// The pairs whose key is not in `drop`, re-encoded.
    pub(crate) fn encode_without(&self, drop: &[&str]) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !drop.contains(&k.as_str()) {
                ser.append_pair(k, v);
            }
        }
        ser.finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query()))
    }
}

/// The v1 `expand` parameter: a set of dotted paths (`children.page`, `body.storage`).
#[derive(Default, Debug, Clone)]
pub(crate) struct Expand(HashSet<String>);

impl Expand {
    pub(crate) fn from_params(p: &Params) -> Expand {
        Expand(p.list("expand").into_iter().collect())
    }

    pub(crate) fn none() -> Expand {
        Expand::default()
    }

    pub(crate) fn with(mut self, items: &[&str]) -> Expand {
        for i in items {
            self.0.insert(i.to_string());
        }
        self
    }

    /// True when `key` or any dotted path below it is requested.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.0
            .iter()
            .any(|e| e == key || (e.starts_with(key) && e[key.len()..].starts_with('.')))
    }

    /// Every requested path moved below `key` (`lastUpdated` → `history.lastUpdated`).
    pub(crate) fn prefixed(&self, key: &str) -> Expand {
        Expand(self.0.iter().map(|e| format!("{key}.{e}")).collect())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The expansion below `key` (`children.page.version` → `page.version` under `children`).
    pub(crate) fn below(&self, key: &str) -> Expand {
        let prefix = format!("{key}.");
        Expand(
            self.0
                .iter()
                .filter_map(|e| e.strip_prefix(&prefix).map(str::to_string))
                .collect(),
        )
    }
}

/// Builds the Confluence routes (context-relative; the caller nests them under the context).
pub(crate) fn routes(app: &Shared) -> Router<Shared> {
    let cloud = app.is_cloud();
    let mut r = Router::new()
        .route("/rest/api/user/current", get(content::current_user))
        .route("/rest/api/space", get(spaces::list))
        .route("/rest/api/space/{key}", get(spaces::one))
        .route("/rest/api/space/{key}/content", get(spaces::content))
        .route(
            "/rest/api/space/{key}/content/{type}",
            get(spaces::content_of_type),
        )
        .route(
            "/rest/api/content",
            get(content::lookup).post(content::create),
        )
        .route(
            "/rest/api/content/{id}",
            get(content::one)
                .put(content::update)
                .delete(content::delete),
        )
        .route("/rest/api/content/{id}/child", get(content::children_map))
        .route(
            "/rest/api/content/{id}/child/{type}",
            get(content::children_of_type),
        )
        .route(
            "/rest/api/content/{id}/child/attachment",
            get(attachments::list)
                .post(attachments::create)
                .put(attachments::create_or_update),
        )
        .route(
            "/rest/api/content/{id}/child/attachment/{att}",
            put(attachments::update_properties),
        )
        .route(
            "/rest/api/content/{id}/child/attachment/{att}/data",
            post(attachments::new_version),
        )
        .route("/rest/api/content/{id}/history", get(content::history))
        .route(
            "/rest/api/content/{id}/property",
            get(properties::list).post(properties::create),
        )
        .route(
            "/rest/api/content/{id}/property/{key}",
            get(properties::one)
                .post(properties::create_with_key)
                .put(properties::put)
                .delete(properties::delete),
        )
        .route("/rest/api/content/search", get(search::content_search))
        .route("/rest/api/search", get(search::search));
    let versions = if cloud {
        "/rest/api/content/{id}/version"
    } else {
        "/rest/experimental/content/{id}/version"
    };
    r = r.route(versions, get(content::versions)).route(
        &format!("{versions}/{{number}}"),
        get(content::version_one).delete(content::delete_version),
    );
    if cloud {
        r = r
            .route(
                "/rest/api/content/{id}/child/attachment/{att}/download",
                get(download::cloud_redirect),
            )
            .route("/download/{*rest}", get(download::cloud_servlet))
            .nest("/api/v2", v2::routes());
    } else {
        r = r.route(
            "/download/attachments/{page}/{name}",
            get(download::dc_servlet),
        );
    }
    r = r.fallback(not_found);
    // Uploads stream to disk with their own size limit; axum's 2 MB default must not apply.
    r.layer(DefaultBodyLimit::disable())
}

/// Unknown paths: under `/rest/` Jersey's v1 answer (`null for uri: …`), under `/api/v2`
/// the v2 shape, elsewhere a plain 404.
pub(crate) async fn not_found(
    State(app): State<Shared>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> errors::ApiError {
    let path = uri.path();
    let rel = path.strip_prefix(app.context.as_str()).unwrap_or(path);
    if rel.starts_with("/rest/") {
        let root = app
            .base_url
            .strip_suffix(app.context.as_str())
            .unwrap_or(&app.base_url);
        errors::ApiError::v1(404, format!("null for uri: {root}{uri}"))
    } else if rel.starts_with("/api/v2") {
        errors::ApiError::v2(404, "Not Found")
    } else {
        errors::ApiError::plain(404, "Not Found")
    }
}

/// The media origin (Cloud): a separate listener, as `api.media.atlassian.com` is a separate host.
pub(crate) fn media_routes() -> Router<Shared> {
    Router::new().route("/file/{file_id}/binary", get(download::media))
}
