//! Content properties (the filesystem's `user.*` xattrs) on pages, blog posts and attachments.
//!
//! v1 on both flavors, addressed by key (`/rest/api/content/{id}/property/{key}`); v2 addresses
//! properties by a numeric id, which would cost a lookup per access. Setting is
//! read-then-write: `PUT` with the current version + 1, or version 1 to create (docs/CONFLUENCE.md §2.2).
//! If someone else wrote in between (409, or 404 because it was deleted meanwhile) we read
//! again and try exactly once more; a second conflict is returned as
//! [`ClientError::Conflict`].

use reqwest::Method;
use serde_json::json;

use super::client::Client;
use super::client_error::ClientError;
use super::model::Property;
use super::paging::{all_v1, V1_LIMIT};
use super::retry::Repeat;
use super::wire::V1Property;

impl Client {
    /// All properties of a page, blog post or attachment.
    pub async fn list_properties(&self, content_id: &str) -> Result<Vec<Property>, ClientError> {
        let site = self.site();
        let mut url = site.v1(&["content", content_id, "property"]);
        url.query_pairs_mut()
            .append_pair("limit", V1_LIMIT)
            .append_pair("expand", "version");
        let rows: Vec<V1Property> = all_v1(self.transport(), site, url).await?;
        Ok(rows.into_iter().map(V1Property::into_model).collect())
    }

    /// One property, or `None` if the content has no property with that key.
    pub async fn get_property(
        &self,
        content_id: &str,
        key: &str,
    ) -> Result<Option<Property>, ClientError> {
        let mut url = self.site().v1(&["content", content_id, "property", key]);
        url.query_pairs_mut().append_pair("expand", "version");
        match self
            .transport()
            .call_json::<V1Property>(Method::GET, url, None, Repeat::Idempotent)
            .await
        {
            Ok(property) => Ok(Some(property.into_model())),
            Err(ClientError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Creates or updates a property.
    pub async fn set_property(
        &self,
        content_id: &str,
        key: &str,
        value: serde_json::Value,
    ) -> Result<Property, ClientError> {
        match self.put_property(content_id, key, &value).await {
            Err(ClientError::Conflict { .. }) | Err(ClientError::NotFound { .. }) => {
                // Raced with another writer: the re-read inside gives the fresh version.
                self.put_property(content_id, key, &value).await
            }
            other => other,
        }
    }

    /// Creates or updates a property whose current version the caller knows (0: none), in one
    /// request; should the guess be stale (409, 404), it is read again and tried once more.
    pub async fn set_property_at(
        &self,
        content_id: &str,
        key: &str,
        value: serde_json::Value,
        known_version: u64,
    ) -> Result<Property, ClientError> {
        let body = json!({
            "key": key,
            "value": value,
            "version": {"number": known_version + 1, "minorEdit": true},
        });
        let url = self.site().v1(&["content", content_id, "property", key]);
        match self
            .transport()
            .call_json::<V1Property>(Method::PUT, url, Some(&body), Repeat::Idempotent)
            .await
        {
            Ok(property) => Ok(property.into_model()),
            Err(ClientError::Conflict { .. }) | Err(ClientError::NotFound { .. }) => {
                self.set_property(content_id, key, value).await
            }
            Err(error) => Err(error),
        }
    }

    async fn put_property(
        &self,
        content_id: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<Property, ClientError> {
        let next = match self.get_property(content_id, key).await? {
            Some(current) => current.version + 1,
            None => 1,
        };
        let body = json!({
            "key": key,
            "value": value,
            "version": {"number": next, "minorEdit": true},
        });
        let url = self.site().v1(&["content", content_id, "property", key]);
        let property: V1Property = self
            .transport()
            .call_json(Method::PUT, url, Some(&body), Repeat::Idempotent)
            .await?;
        Ok(property.into_model())
    }

    /// Deletes a property; [`ClientError::NotFound`] if there is none.
    pub async fn delete_property(&self, content_id: &str, key: &str) -> Result<(), ClientError> {
        let url = self.site().v1(&["content", content_id, "property", key]);
        self.transport()
            .call(Method::DELETE, url, None, Repeat::Idempotent)
            .await?;
        Ok(())
    }
}
