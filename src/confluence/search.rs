//! CQL search (`/rest/api/content/search`), for finding content without walking the tree.
//!
//! It pages by cursor: `_links.next` carries `cursor=…` and its absence is the end — a short
//! page is not (docs/CONFLUENCE.md §2.6). Results may be pages, blog posts, attachments or other types.

use super::client::Client;
use super::client_error::ClientError;
use super::model::SearchHit;
use super::paging::{all_v1, V1_LIMIT};
use super::wire::V1Content;

impl Client {
    /// Every result of a CQL query, e.g. `type=attachment and title="report.pdf"`.
    pub async fn search(&self, cql: &str) -> Result<Vec<SearchHit>, ClientError> {
        let site = self.site();
        let mut url = site.v1(&["content", "search"]);
        url.query_pairs_mut()
            .append_pair("cql", cql)
            .append_pair("limit", V1_LIMIT)
            .append_pair(
                "expand",
                "version,space,ancestors,container,metadata,extensions",
            );
        let rows: Vec<V1Content> = all_v1(self.transport(), site, url).await?;
        Ok(rows
            .into_iter()
            .map(|row| row.into_search_hit(site))
            .collect())
    }
}
