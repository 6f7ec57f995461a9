//! Page text: a page's body in the storage format, its history, and saving a new version.
//!
//! Bodies travel with the listings that already happen (`expand=body.storage` on the child
//! and space listings, `pages.rs`), so most pages' text is known before anyone opens it; the
//! calls here are for what a listing does not carry. A save sends `version = base + 1`, where
//! `base` is the version the user's text was made from: Confluence answers 409 when that is no
//! longer the current version, which is how we never overwrite an edit made meanwhile. A 409
//! after a retried `PUT` can also be our own first attempt, landed: the page is read again,
//! and if it is exactly our text one version later, the save succeeded.
//!
//! History is v1 `GET /content/{id}?status=historical&version=N` on both flavors, and the
//! version list is the same endpoint attachments use (`/content/{id}/version`, experimental on
//! Data Center; v2 `pages/{id}/versions` on Cloud), docs/CONFLUENCE.md.

use reqwest::Method;
use serde_json::json;

use super::client::Client;
use super::client_error::ClientError;
use super::model::{AttachmentVersion, ContentKind, Page};
use super::retry::Repeat;
use super::transport::{Channel, Transport};
use super::wire::V1Content;

/// What a page's text versions are listed as: the same fields as an attachment's.
pub type PageVersion = AttachmentVersion;

/// One search result and the title of its container (for an attachment).
#[derive(Debug, Clone)]
pub struct Found {
    /// The page, blog post, attachment or other content found.
    pub hit: super::SearchHit,
    /// The title of the page or blog post an attachment belongs to, when the answer said.
    pub container_title: Option<String>,
}

/// Most hits one `@search` listing shows (one request).
pub const SEARCH_LIMIT: usize = 100;

impl Client {
    /// Saves `storage` as the page's new body, one version after `base` (the version the text
    /// was made from). [`ClientError::Conflict`] when someone else saved a version meanwhile.
    pub async fn update_page_body(
        &self,
        page: &Page,
        base: u64,
        storage: &str,
        message: &str,
        minor_edit: bool,
    ) -> Result<Page, ClientError> {
        let mut version = json!({"number": base + 1, "minorEdit": minor_edit});
        if !message.is_empty() {
            version["message"] = json!(message);
        }
        let mut body = json!({
            "id": page.id,
            "type": page.kind.v1_type(),
            "status": "current",
            "title": page.title,
            "version": version,
            "body": {"storage": {"value": storage, "representation": "storage"}},
        });
        if let Some(key) = &page.space_key {
            body["space"] = json!({ "key": key });
        }
        let site = self.site();
        let mut url = site.v1(&["content", &page.id]);
        url.query_pairs_mut()
            .append_pair("expand", "version,space,ancestors,history,body.storage");
        let line = Transport::line(Channel::Api, &Method::PUT, &url);
        match self
            .transport()
            .call_json::<V1Content>(Method::PUT, url, Some(&body), Repeat::Idempotent)
            .await
        {
            Ok(content) => {
                let mut saved = content.into_page(site).ok_or_else(|| ClientError::Decode {
                    request: line,
                    detail: "the updated content is not a page".into(),
                })?;
                if saved.parent_id.is_none() {
                    saved.parent_id = page.parent_id.clone();
                }
                if saved.body.is_none() {
                    saved.body = Some(storage.into());
                }
                saved.fs = saved.fs.or_else(|| page.fs.clone());
                Ok(saved)
            }
            Err(ClientError::Conflict { message, request }) => {
                let now = self.get_page(&page.id).await?;
                if now.version == base + 1 && now.body.as_deref() == Some(storage) {
                    tracing::info!(id = %page.id, "page save answered 409 but had landed");
                    return Ok(now);
                }
                Err(ClientError::Conflict { message, request })
            }
            Err(error) => Err(error),
        }
    }

    /// The page (or blog post) as it was at version `number`, with that version's body.
    pub async fn get_page_version(&self, id: &str, number: u64) -> Result<Page, ClientError> {
        let (page, _) = self
            .read_content_at(id, "version,space,history,body.storage", Some(number))
            .await?;
        Ok(page)
    }

    /// A page's (or blog post's) versions, oldest first.
    pub async fn list_page_versions(
        &self,
        id: &str,
        kind: ContentKind,
    ) -> Result<Vec<PageVersion>, ClientError> {
        let v2_base = match kind {
            ContentKind::Page => "pages",
            ContentKind::BlogPost => "blogposts",
        };
        self.list_content_versions(v2_base, id).await
    }

    /// The first [`SEARCH_LIMIT`] results of a CQL query, with what it takes to place each in
    /// the tree (space, ancestors with titles, the container of an attachment): one request.
    pub async fn search_first(&self, cql: &str) -> Result<Vec<Found>, ClientError> {
        let site = self.site();
        let mut url = site.v1(&["content", "search"]);
        url.query_pairs_mut()
            .append_pair("cql", cql)
            .append_pair("limit", &SEARCH_LIMIT.to_string())
            .append_pair("expand", "version,space,ancestors,container,history");
        let raw: serde_json::Value = self
            .transport()
            .call_json(Method::GET, url, None, Repeat::Idempotent)
            .await?;
        let rows = raw
            .get("results")
            .cloned()
            .unwrap_or(serde_json::Value::Array(Vec::new()));
        let rows: Vec<V1Content> = serde_json::from_value(rows).unwrap_or_default();
        Ok(rows
            .into_iter()
            .take(SEARCH_LIMIT)
            .map(|row| {
                let container_title = row.container.as_ref().and_then(|c| c.title.clone());
                Found {
                    hit: row.into_search_hit(site),
                    container_title,
                }
            })
            .collect())
    }
}
