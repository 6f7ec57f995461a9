//! Spaces: the top-level directories.
//!
//! Cloud lists them through v2 (`/api/v2/spaces`, 250 per page, the home page id included);
//! Data Center through v1 (`/rest/api/space?expand=homepage`, 200 per page).

use reqwest::Method;

use super::client::Client;
use super::client_error::ClientError;
use super::model::Space;
use super::paging::{all_v1, all_v2, V1_LIMIT, V2_LIMIT};
use super::retry::Repeat;
use super::site::Flavor;
use super::wire::{V1Space, V2Space};

impl Client {
    /// Every space the user can see, or only those whose key is in `keys` (when not empty),
    /// sorted by key.
    pub async fn list_spaces(&self, keys: &[&str]) -> Result<Vec<Space>, ClientError> {
        let site = self.site();
        let mut spaces: Vec<Space> = match site.flavor {
            Flavor::Cloud => {
                let mut url = site.v2(&["spaces"]);
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("limit", V2_LIMIT);
                    for key in keys {
                        q.append_pair("keys", key);
                    }
                }
                all_v2::<V2Space>(self.transport(), site, url)
                    .await?
                    .into_iter()
                    .map(|s| s.into_model(site))
                    .collect()
            }
            Flavor::DataCenter => {
                let mut url = site.v1(&["space"]);
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("limit", V1_LIMIT);
                    q.append_pair("expand", "homepage");
                    for key in keys {
                        q.append_pair("spaceKey", key);
                    }
                }
                all_v1::<V1Space>(self.transport(), site, url)
                    .await?
                    .into_iter()
                    .map(|s| s.into_model(site))
                    .collect()
            }
        };
        // A server that ignores the key filter must not widen the mount.
        if !keys.is_empty() {
            spaces.retain(|s| keys.contains(&s.key.as_str()));
        }
        spaces.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(spaces)
    }

    /// One space by key, with its home page id.
    pub async fn get_space(&self, key: &str) -> Result<Space, ClientError> {
        let site = self.site();
        match site.flavor {
            Flavor::Cloud => {
                let mut url = site.v2(&["spaces"]);
                url.query_pairs_mut()
                    .append_pair("keys", key)
                    .append_pair("limit", "1");
                let line = super::transport::Transport::line(
                    super::transport::Channel::Api,
                    &Method::GET,
                    &url,
                );
                let list: super::wire::V2List<V2Space> = self
                    .transport()
                    .call_json(Method::GET, url, None, Repeat::Idempotent)
                    .await?;
                list.results
                    .into_iter()
                    .find(|s| s.key == key)
                    .map(|s| s.into_model(site))
                    .ok_or_else(|| ClientError::NotFound {
                        message: format!("no space with key {key}"),
                        request: line,
                    })
            }
            Flavor::DataCenter => {
                let mut url = site.v1(&["space", key]);
                url.query_pairs_mut().append_pair("expand", "homepage");
                let space: V1Space = self
                    .transport()
                    .call_json(Method::GET, url, None, Repeat::Idempotent)
                    .await?;
                Ok(space.into_model(site))
            }
        }
    }
}
