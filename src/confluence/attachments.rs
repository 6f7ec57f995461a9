//! Attachment metadata: listing, lookup, rename/move, history.
//!
//! Listings and lookups by name are v1 on both flavors (`/content/{id}/child/attachment`, 200 per
//! page, `start` offsets via `_links.next`, a `filename` filter, so finding one attachment by name
//! is one request): v1 expands `metadata.properties.confluencefs` in the same request, which is
//! where modes and times live (docs/SEMANTICS.md), whereas v2's listing (250 per page) carries no
//! properties and would cost a request per file. One attachment by id and its history are v2 on
//! Cloud. Renames and
//! moves are v1 on both (v2 has no attachment writes) and send the *current* version number
//! (docs/CONFLUENCE.md §1.5); a stale number is a 409, returned as [`ClientError::Conflict`].

use reqwest::Method;
use serde_json::json;

use super::client::Client;
use super::client_error::ClientError;
use super::model::{Attachment, AttachmentVersion, ContainerRef};
use super::paging::{all_v1, all_v1_mapped, all_v2, V1_LIMIT, V2_LIMIT};
use super::retry::Repeat;
use super::site::Flavor;
use super::transport::{Channel, Transport};
use super::wire::{V1Content, V1Version, V2Attachment, V2Version};

/// v1 expansions that make an attachment complete (container, size, comment, author).
pub(crate) const ATTACHMENT_EXPAND: &str =
    "version,container,metadata,extensions,metadata.properties.confluencefs";
/// The same for a listing of one container's attachments, whose container we know: without
/// `container`, each entry is a third smaller and the server does not render its page 200
/// times per answer (a listing of 10,000 attachments took half the time, docs/PERFORMANCE.md).
const LISTING_EXPAND: &str = "version,metadata,extensions,metadata.properties.confluencefs";

impl Client {
    /// Every current attachment of a page or blog post.
    pub async fn list_attachments(
        &self,
        container: &ContainerRef,
    ) -> Result<Vec<Attachment>, ClientError> {
        self.query_attachments(container, None).await
    }

    /// The attachment named `filename` in `container`, if there is one (one request).
    pub async fn find_attachment(
        &self,
        container: &ContainerRef,
        filename: &str,
    ) -> Result<Option<Attachment>, ClientError> {
        let found = self.query_attachments(container, Some(filename)).await?;
        // The filter is exact on Confluence; checking again guards against a server that
        // ignores it or matches loosely.
        Ok(found.into_iter().find(|a| a.title == filename))
    }

    async fn query_attachments(
        &self,
        container: &ContainerRef,
        filename: Option<&str>,
    ) -> Result<Vec<Attachment>, ClientError> {
        let site = self.site();
        let mut url = site.v1_attachments(&container.id);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", V1_LIMIT);
            q.append_pair("expand", LISTING_EXPAND);
            if let Some(name) = filename {
                q.append_pair("filename", name);
            }
        }
        let cloud = site.flavor == Flavor::Cloud;
        all_v1_mapped(self.transport(), site, url, |row: V1Content| {
            let mut a = row.into_attachment(site, Some(container))?;
            if a.status != "current" {
                return None;
            }
            if cloud {
                // v1's download link is the servlet path, which Cloud refuses for API
                // tokens; the REST path is the one a user can fetch (docs/CONFLUENCE.md §1.6).
                a.download_path = Some(format!(
                    "/rest/api/content/{}/child/attachment/{}/download",
                    a.container.id, a.id
                ));
            }
            Some(a)
        })
        .await
    }

    /// One attachment by id.
    pub async fn get_attachment(&self, id: &str) -> Result<Attachment, ClientError> {
        self.fetch_attachment(id, None).await
    }

    /// One attachment as it was at `version` (its size, time and comment then).
    pub async fn get_attachment_version(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Attachment, ClientError> {
        self.fetch_attachment(id, Some(version)).await
    }

    async fn fetch_attachment(
        &self,
        id: &str,
        version: Option<u64>,
    ) -> Result<Attachment, ClientError> {
        let site = self.site();
        let (url, line);
        let attachment = match site.flavor {
            Flavor::Cloud => {
                let mut u = site.v2(&["attachments", id]);
                if let Some(version) = version {
                    u.query_pairs_mut()
                        .append_pair("version", &version.to_string());
                }
                url = u;
                line = Transport::line(Channel::Api, &Method::GET, &url);
                let row: V2Attachment = self
                    .transport()
                    .call_json(Method::GET, url, None, Repeat::Idempotent)
                    .await?;
                row.into_model(site, None)
            }
            Flavor::DataCenter => {
                let mut u = site.v1(&["content", id]);
                {
                    let mut q = u.query_pairs_mut();
                    q.append_pair("expand", ATTACHMENT_EXPAND);
                    if let Some(version) = version {
                        q.append_pair("version", &version.to_string());
                    }
                }
                line = Transport::line(Channel::Api, &Method::GET, &u);
                let row: V1Content = self
                    .transport()
                    .call_json(Method::GET, u, None, Repeat::Idempotent)
                    .await?;
                row.into_attachment(site, None)
            }
        };
        attachment.ok_or_else(|| ClientError::Decode {
            request: line,
            detail: format!("content {id} is not an attachment with a container"),
        })
    }

    /// Renames an attachment and/or moves it to another page or blog post, keeping its id and
    /// history. Sends `attachment.version` as the current version: if the attachment changed
    /// since it was read, Confluence answers 409 ([`ClientError::Conflict`]).
    pub async fn rename_attachment(
        &self,
        attachment: &Attachment,
        new_title: Option<&str>,
        new_container: Option<&ContainerRef>,
    ) -> Result<Attachment, ClientError> {
        let target = new_container.unwrap_or(&attachment.container);
        let body = json!({
            "id": attachment.id,
            "type": "attachment",
            "status": "current",
            "title": new_title.unwrap_or(&attachment.title),
            "version": {"number": attachment.version},
            "container": {"id": target.id, "type": target.kind.v1_type()},
        });
        let site = self.site();
        let url = site.v1_attachment(&attachment.container.id, &attachment.id, &[]);
        let line = Transport::line(Channel::Api, &Method::PUT, &url);
        let content: V1Content = self
            .transport()
            .call_json(Method::PUT, url, Some(&body), Repeat::Idempotent)
            .await?;
        let complete = content.extensions.is_some();
        let mut updated =
            content
                .into_attachment(site, Some(target))
                .ok_or_else(|| ClientError::Decode {
                    request: line,
                    detail: "the answer is not an attachment".into(),
                })?;
        if !complete {
            // The answer came without `extensions`; the bytes did not change.
            updated.size = attachment.size;
            updated.media_type = attachment.media_type.clone();
        }
        if new_container.is_some() {
            updated.container = target.clone();
        }
        Ok(updated)
    }

    /// The attachment's versions, oldest first.
    pub async fn list_attachment_versions(
        &self,
        attachment_id: &str,
    ) -> Result<Vec<AttachmentVersion>, ClientError> {
        self.list_content_versions("attachments", attachment_id)
            .await
    }

    /// The versions of content `id`, oldest first: v2 `{v2_base}/{id}/versions` on Cloud, the
    /// experimental v1 list on Data Center (docs/CONFLUENCE.md).
    pub(super) async fn list_content_versions(
        &self,
        v2_base: &str,
        id: &str,
    ) -> Result<Vec<AttachmentVersion>, ClientError> {
        let site = self.site();
        let mut versions: Vec<AttachmentVersion> = match site.flavor {
            Flavor::Cloud => {
                let mut url = site.v2(&[v2_base, id, "versions"]);
                url.query_pairs_mut().append_pair("limit", V2_LIMIT);
                all_v2::<V2Version>(self.transport(), site, url)
                    .await?
                    .into_iter()
                    .map(V2Version::into_model)
                    .collect()
            }
            Flavor::DataCenter => {
                let mut url = site.experimental(&["content", id, "version"]);
                url.query_pairs_mut().append_pair("limit", V1_LIMIT);
                all_v1::<V1Version>(self.transport(), site, url)
                    .await?
                    .into_iter()
                    .map(V1Version::into_model)
                    .collect()
            }
        };
        versions.sort_by_key(|v| v.number);
        Ok(versions)
    }
}
