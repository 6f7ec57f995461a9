//! Reading every page of a list.
//!
//! We ask for the largest page the server allows (v2: `limit=250`; v1: `limit=200`), then follow
//! `_links.next` (or, for v2, the `Link: <…>; rel="next"` header) until it is absent — never
//! compute offsets ourselves, because the server may cap `limit` lower than we asked and says so
//! only in its answer and its `next` link. A short page does not mean the end (FACTS §2.6); a
//! missing `next` does.
//!
//! Some servers drop parameters from `next` (Cloud's search drops `excerpt`; MF saw `next` links
//! without `expand`), so parameters of the first request that the `next` link lacks are carried
//! over — except the position itself (`start`, `cursor`).

use reqwest::header::LINK;
use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

use super::error::ClientError;
use super::retry::Repeat;
use super::site::Site;
use super::transport::{decode, Channel, Transport};
use super::wire::{V1List, V2List};

/// Page size asked of v1 endpoints (the test server and Cloud cap at 200).
pub(crate) const V1_LIMIT: &str = "200";
/// Page size asked of v2 endpoints (the documented maximum).
pub(crate) const V2_LIMIT: &str = "250";

/// All results of a v1 offset-paged list.
pub(crate) async fn all_v1<T: DeserializeOwned>(
    transport: &Transport,
    site: &Site,
    first: Url,
) -> Result<Vec<T>, ClientError> {
    let mut results = Vec::new();
    let mut url = first.clone();
    loop {
        let page: V1List<T> = transport
            .call_json(Method::GET, url.clone(), None, Repeat::Idempotent)
            .await?;
        results.extend(page.results);
        match page.links.get("next") {
            Some(next) => {
                let next = carry_params(&first, site.follow(next)?);
                if next == url {
                    break; // a server that points at the same page again would loop forever
                }
                url = next;
            }
            None => break,
        }
    }
    Ok(results)
}

/// All results of a v2 cursor-paged list.
pub(crate) async fn all_v2<T: DeserializeOwned>(
    transport: &Transport,
    site: &Site,
    first: Url,
) -> Result<Vec<T>, ClientError> {
    let mut results = Vec::new();
    let mut url = first.clone();
    loop {
        let line = Transport::line(Channel::Api, &Method::GET, &url);
        let answer = transport
            .call(Method::GET, url.clone(), None, Repeat::Idempotent)
            .await?;
        let page: V2List<T> = decode(&line, &answer.body)?;
        results.extend(page.results);
        let next = page.links.get("next").map(str::to_string).or_else(|| {
            answer
                .headers
                .get_all(LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_from_link_header)
        });
        match next {
            Some(next) => {
                let next = carry_params(&first, site.follow(&next)?);
                if next == url {
                    break;
                }
                url = next;
            }
            None => break,
        }
    }
    Ok(results)
}

/// The `rel="next"` target of a `Link` header value.
fn next_from_link_header(value: &str) -> Option<String> {
    value.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// `next` plus the parameters of `first` that it lacks (but not the position).
fn carry_params(first: &Url, mut next: Url) -> Url {
    let present: Vec<String> = next.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let missing: Vec<(String, String)> = first
        .query_pairs()
        .filter(|(k, _)| !matches!(k.as_ref(), "start" | "cursor" | "next"))
        .filter(|(k, _)| !present.iter().any(|p| p == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !missing.is_empty() {
        let mut pairs = next.query_pairs_mut();
        for (k, v) in &missing {
            pairs.append_pair(k, v);
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let value = r#"</wiki/api/v2/attachments?cursor=abc>; rel="next", <https://s.atlassian.net/wiki>; rel="base""#;
        assert_eq!(
            next_from_link_header(value).as_deref(),
            Some("/wiki/api/v2/attachments?cursor=abc")
        );
        assert_eq!(
            next_from_link_header(r#"<https://s/wiki>; rel="base""#),
            None
        );
    }

    #[test]
    fn carries_missing_params_but_not_position() {
        let first = Url::parse("http://h/rest/api/x?expand=version&limit=200&start=0").unwrap();
        let next = Url::parse("http://h/rest/api/x?next=true&limit=100&start=100").unwrap();
        let merged = carry_params(&first, next);
        assert_eq!(
            merged.as_str(),
            "http://h/rest/api/x?next=true&limit=100&start=100&expand=version"
        );
    }
}
