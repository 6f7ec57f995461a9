//! Pages and blog posts: listing, creating, renaming/moving, trashing and purging.
//!
//! Everything here is v1 on both flavors: `/rest/api/space/{key}/content/{type}` and
//! `/content/{id}/child/page` exist on Cloud and Data Center alike, whereas v2's child listing
//! silently omits folders and has no Data Center twin. Updates send `version = current + 1`,
//! which is why a rename first reads the page (and sends its body back unchanged, so that a
//! rename can never blank a page).
//!
//! Writes whose answer was lost are checked rather than blindly repeated: a create that failed
//! with a 5xx or a broken connection looks for the title first (titles are unique per space),
//! and a move whose retried `PUT` meets a 409 re-reads the page to see whether its own first
//! attempt already landed.

use reqwest::Method;
use serde_json::json;

use super::client::Client;
use super::client_error::ClientError;
use super::model::{ContentKind, Page};
use super::paging::{all_v1, all_v1_mapped, V1_LIMIT};
use super::retry::Repeat;
use super::site::Flavor;
use super::transport::{Channel, Transport};
use super::upload::may_have_landed;
use super::wire::{V1Content, V2Page};

/// `metadata.properties.confluencefs` brings the name, mode and time a user gave the page
/// (docs/SEMANTICS.md) in the same request.
/// `body.storage` brings the page's text (its `.md` file), so that reading or `grep -r` of a
/// listed page costs nothing more.
/// `childTypes.all` says whether a page has child pages and attachments, so that a leaf page's
/// directory is known to be empty without two more listings. (One expansion for both: Cloud
/// allows at most 8 on `GET /content` and `GET /content/{id}`; this makes 7.)
const PAGE_EXPAND: &str = "version,space,ancestors,history,metadata.properties.confluencefs,\
     body.storage,childTypes.all";

impl Client {
    /// The pages at the root of a space's page tree (usually just the home page).
    pub async fn list_top_level_pages(&self, space_key: &str) -> Result<Vec<Page>, ClientError> {
        self.list_space_content(space_key, ContentKind::Page).await
    }

    /// A space's blog posts.
    pub async fn list_blog_posts(&self, space_key: &str) -> Result<Vec<Page>, ClientError> {
        self.list_space_content(space_key, ContentKind::BlogPost)
            .await
    }

    async fn list_space_content(
        &self,
        space_key: &str,
        kind: ContentKind,
    ) -> Result<Vec<Page>, ClientError> {
        let site = self.site();
        let mut url = site.v1(&["space", space_key, "content", kind.v1_type()]);
        {
            let mut q = url.query_pairs_mut();
            if kind == ContentKind::Page {
                q.append_pair("depth", "root");
            }
            q.append_pair("limit", V1_LIMIT);
            q.append_pair("expand", PAGE_EXPAND);
        }
        all_v1_mapped(self.transport(), site, url, |c: V1Content| {
            c.into_page(site).filter(|p| p.kind == kind)
        })
        .await
    }

    /// The direct child pages of a page.
    pub async fn list_child_pages(&self, page_id: &str) -> Result<Vec<Page>, ClientError> {
        let site = self.site();
        let mut url = site.v1(&["content", page_id, "child", "page"]);
        url.query_pairs_mut()
            .append_pair("limit", V1_LIMIT)
            .append_pair("expand", PAGE_EXPAND);
        all_v1_mapped(self.transport(), site, url, |c: V1Content| {
            let mut p = c.into_page(site)?;
            // `ancestors` may not be expanded in a child listing; the parent is known anyway.
            p.parent_id = Some(page_id.to_string());
            Some(p)
        })
        .await
    }

    /// The page (or blog post) titled exactly `title` in a space, if there is one (one request;
    /// titles are unique per space and kind).
    pub async fn find_page(
        &self,
        space_key: &str,
        kind: ContentKind,
        title: &str,
    ) -> Result<Option<Page>, ClientError> {
        let site = self.site();
        let mut url = site.v1(&["content"]);
        url.query_pairs_mut()
            .append_pair("spaceKey", space_key)
            .append_pair("title", title)
            .append_pair("type", kind.v1_type())
            .append_pair("expand", PAGE_EXPAND);
        let content: Vec<V1Content> = all_v1(self.transport(), site, url).await?;
        Ok(content
            .into_iter()
            .filter_map(|c| c.into_page(site))
            .find(|p| p.kind == kind && p.title == title))
    }

    /// One page or blog post by id.
    pub async fn get_page(&self, id: &str) -> Result<Page, ClientError> {
        let (page, _) = self.read_content(id, PAGE_EXPAND).await?;
        Ok(page)
    }

    async fn read_content(
        &self,
        id: &str,
        expand: &str,
    ) -> Result<(Page, serde_json::Value), ClientError> {
        self.read_content_at(id, expand, None).await
    }

    /// `GET /content/{id}`, at version `version` (`status=historical`) when given.
    pub(super) async fn read_content_at(
        &self,
        id: &str,
        expand: &str,
        version: Option<u64>,
    ) -> Result<(Page, serde_json::Value), ClientError> {
        let site = self.site();
        let mut url = site.v1(&["content", id]);
        if let Some(number) = version {
            url.query_pairs_mut()
                .append_pair("status", "historical")
                .append_pair("version", &number.to_string());
        }
        url.query_pairs_mut().append_pair("expand", expand);
        let line = Transport::line(Channel::Api, &Method::GET, &url);
        let raw: serde_json::Value = self
            .transport()
            .call_json(Method::GET, url, None, Repeat::Idempotent)
            .await?;
        let content: V1Content =
            serde_json::from_value(raw.clone()).map_err(|e| ClientError::Decode {
                request: line.clone(),
                detail: e.to_string(),
            })?;
        let page = content
            .into_page(site)
            .ok_or_else(|| ClientError::NotFound {
                message: format!("content {id} is not a page or blog post"),
                request: line,
            })?;
        Ok((page, raw))
    }

    /// Creates an empty page (under `parent_id`, or at the root of the space) or blog post.
    /// A title already used in the space gives [`ClientError::AlreadyExists`].
    pub async fn create_page(
        &self,
        space_key: &str,
        kind: ContentKind,
        parent_id: Option<&str>,
        title: &str,
    ) -> Result<Page, ClientError> {
        let mut body = json!({
            "type": kind.v1_type(),
            "title": title,
            "space": {"key": space_key},
            "body": {"storage": {"value": "", "representation": "storage"}},
        });
        if let Some(parent) = parent_id {
            body["ancestors"] = json!([{ "id": parent }]);
        }
        let site = self.site();
        let url = site.v1(&["content"]);
        let line = Transport::line(Channel::Api, &Method::POST, &url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self
                .transport()
                .call_json::<V1Content>(
                    Method::POST,
                    url.clone(),
                    Some(&body),
                    Repeat::NotIdempotent,
                )
                .await
            {
                Ok(content) => {
                    let mut page = content.into_page(site).ok_or_else(|| ClientError::Decode {
                        request: line.clone(),
                        detail: "the created content is not a page".into(),
                    })?;
                    if page.parent_id.is_none() {
                        page.parent_id = parent_id.map(str::to_string);
                    }
                    // A new page has no properties yet.
                    page.fs.get_or_insert_with(Default::default);
                    return Ok(page);
                }
                Err(error) if may_have_landed(&error) => error,
                Err(error) => return Err(error),
            };
            // The POST may have created the page before failing: titles are unique per space,
            // so a page with this title now is ours (had it existed before, the answer would
            // have been 400, not a 5xx or a broken connection).
            match self.find_page(space_key, kind, title).await {
                Ok(Some(mut page)) => {
                    let parent_differs = matches!(
                        (parent_id, page.parent_id.as_deref()),
                        (Some(wanted), Some(actual)) if wanted != actual
                    );
                    if parent_differs {
                        return Err(error);
                    }
                    if page.parent_id.is_none() {
                        page.parent_id = parent_id.map(str::to_string);
                    }
                    tracing::info!(error = %error, "page creation failed in transit but arrived");
                    return Ok(page);
                }
                Ok(None) => {}
                Err(_) => return Err(error),
            }
            let policy = &self.transport().retry;
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            tokio::time::sleep(policy.backoff(attempt)).await;
        }
    }

    /// Creates an empty page at the top of `space`, beside its home page rather than under it.
    /// Cloud files a v1 page without ancestors under the home page, so there the v2 call with
    /// `root-level=true` is made (docs/CONFLUENCE.md §3); Data Center's v1 is asked without
    /// ancestors. Either way the answer says where the page went (`parent_id`), which callers
    /// must believe over what they asked for.
    pub async fn create_top_level_page(
        &self,
        space: &crate::confluence::Space,
        title: &str,
    ) -> Result<Page, ClientError> {
        if self.flavor() != Flavor::Cloud {
            return self
                .create_page(&space.key, ContentKind::Page, None, title)
                .await;
        }
        let site = self.site();
        let mut url = site.v2(&["pages"]);
        url.query_pairs_mut().append_pair("root-level", "true");
        let body = json!({
            "spaceId": space.id,
            "status": "current",
            "title": title,
            "body": {"representation": "storage", "value": ""},
        });
        let created = self
            .transport()
            .call_json::<V2Page>(Method::POST, url, Some(&body), Repeat::NotIdempotent)
            .await;
        match created {
            Ok(page) => {
                let mut page = page.into_page(site, &space.key);
                page.fs = Some(Default::default());
                Ok(page)
            }
            // Titles are unique per space: a page with this title now is ours if the POST
            // failed in transit (had it existed before, the answer would have been 400).
            Err(error) if may_have_landed(&error) => {
                match self.find_page(&space.key, ContentKind::Page, title).await {
                    Ok(Some(page)) => Ok(page),
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Renames and/or moves a page under another parent in the same space. Reads the page first
    /// for its version, space and body; a concurrent change in between gives
    /// [`ClientError::Conflict`].
    pub async fn move_page(
        &self,
        id: &str,
        new_title: Option<&str>,
        new_parent_id: Option<&str>,
    ) -> Result<Page, ClientError> {
        let (current, raw) = self
            .read_content(id, "version,space,ancestors,body.storage")
            .await?;
        let mut body = json!({
            "id": id,
            "type": current.kind.v1_type(),
            "status": "current",
            "title": new_title.unwrap_or(&current.title),
            "version": {"number": current.version + 1, "minorEdit": true},
        });
        if let Some(key) = &current.space_key {
            body["space"] = json!({ "key": key });
        }
        if let Some(storage) = raw.pointer("/body/storage").filter(|s| s.is_object()) {
            body["body"] = json!({ "storage": {
                "value": storage.get("value").cloned().unwrap_or(json!("")),
                "representation": "storage",
            }});
        }
        if let Some(parent) = new_parent_id {
            body["ancestors"] = json!([{ "id": parent }]);
        }
        let site = self.site();
        let url = site.v1(&["content", id]);
        let line = Transport::line(Channel::Api, &Method::PUT, &url);
        let wanted_title = new_title.unwrap_or(&current.title).to_string();
        let content: V1Content = match self
            .transport()
            .call_json(Method::PUT, url, Some(&body), Repeat::Idempotent)
            .await
        {
            Ok(content) => content,
            Err(ClientError::Conflict { message, request }) => {
                // A retried PUT whose first attempt landed meets its own new version. If the
                // page is now exactly what we asked for, one version later, the move happened.
                let now = self.get_page(id).await?;
                let parent_ok =
                    new_parent_id.is_none() || now.parent_id.as_deref() == new_parent_id;
                if now.title == wanted_title && parent_ok && now.version == current.version + 1 {
                    return Ok(now);
                }
                return Err(ClientError::Conflict { message, request });
            }
            Err(error) => return Err(error),
        };
        let mut page = content.into_page(site).ok_or_else(|| ClientError::Decode {
            request: line,
            detail: "the updated content is not a page".into(),
        })?;
        if let Some(parent) = new_parent_id {
            page.parent_id = Some(parent.to_string());
        } else if page.parent_id.is_none() {
            page.parent_id = current.parent_id;
        }
        Ok(page)
    }

    /// Moves a page, blog post or attachment to the trash (`DELETE /rest/api/content/{id}`).
    pub async fn trash_content(&self, id: &str) -> Result<(), ClientError> {
        let url = self.site().v1(&["content", id]);
        self.transport()
            .call(Method::DELETE, url, None, Repeat::Idempotent)
            .await?;
        Ok(())
    }

    /// Deletes trashed content for good (`DELETE /rest/api/content/{id}?status=trashed`).
    pub async fn purge_content(&self, id: &str) -> Result<(), ClientError> {
        let mut url = self.site().v1(&["content", id]);
        url.query_pairs_mut().append_pair("status", "trashed");
        self.transport()
            .call(Method::DELETE, url, None, Repeat::Idempotent)
            .await?;
        Ok(())
    }
}
