//! Reading every page of a list.
//!
//! We ask for the largest page the server allows (v2: `limit=250`; v1: `limit=200`), then follow
//! `_links.next` (or, for v2, the `Link: <…>; rel="next"` header) until it is absent — never
//! compute offsets ourselves, because the server may cap `limit` lower than we asked and says so
//! only in its answer and its `next` link. A short page does not mean the end (docs/CONFLUENCE.md §2.6); a
//! missing `next` does.
//!
//! A long v1 listing is fetched a few pages at once, because one page at a time made `ls` of a
//! page with 10,000 attachments fifty round trips in a row (docs/CONFLUENCE.md §2.7). The step
//! is the server's own: the difference between the `start` of the first request and the `start`
//! of the `next` link it answered with. Pages past the one the server named are only guesses,
//! fetched early; each is used only once the page before it names that very page as `next`.
//! A guess that is not named ends the guessing for the listing, and it goes on one link at a
//! time. Guessing starts with the fifth page, asked for with the fourth, and grows to
//! [`AHEAD_V1`] pages in flight, so a listing of up to three pages costs what it did, and a
//! longer one at most three requests past its end.
//!
//! Some servers drop parameters from `next` (Cloud's search drops `excerpt`; MF saw `next` links
//! without `expand`), so parameters of the first request that the `next` link lacks are carried
//! over — except the position itself (`start`, `cursor`).
//!
//! The server decides where a listing goes, so nothing it says is followed blindly:
//! - a `next` link that was already fetched ends the listing with an error (two pages pointing at
//!   each other would otherwise be fetched forever), and so does going past [`MAX_PAGES_V1`] /
//!   [`MAX_PAGES_V2`] pages (an endless chain of distinct links). Fetched links are remembered
//!   as 64-bit hashes, so a server's long links cannot make that memory grow either;
//! - a `next` link to another origin never gets the credential: it is rebased onto the site
//!   when its path lies under the site's base path, refused otherwise ([`Site::keep_home`]);
//! - an entry that does not have the shape we need (a negative size, no id) is skipped, and the
//!   listing says so once in the log, with its URL: one bad entry costs that entry, not the
//!   directory.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

use futures_util::stream::{FuturesOrdered, StreamExt};

use reqwest::header::LINK;
use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

use super::client_error::{ClientError, RequestLine};
use super::retry::Repeat;
use super::site::Site;
use super::transport::{decode, Channel, Transport};
use super::wire::{Listed, V1List, V2List};

/// Results one listing may bring before it is given up as endless. Generous: the largest
/// directory a user could want to list is far smaller.
pub const MAX_LISTED: usize = 1_000_000;
/// Page size asked of v1 endpoints (the test server and Cloud cap at 200).
pub(crate) const V1_LIMIT: &str = "200";
/// Page size asked of v2 endpoints (the documented maximum).
pub(crate) const V2_LIMIT: &str = "250";
/// Pages one v1 listing may take: [`MAX_LISTED`] at 200 a page, 5,000. (A server that caps
/// `limit` lower than we ask gets fewer results within the same number of pages.)
pub const MAX_PAGES_V1: usize = MAX_LISTED / 200;
/// Pages one v2 listing may take: [`MAX_LISTED`] at 250 a page, 4,000.
pub const MAX_PAGES_V2: usize = MAX_LISTED / 250;

/// Pages of one v1 listing in flight at most: the one named by the server and the guesses
/// after it.
pub(crate) const AHEAD_V1: usize = 4;

/// All results of a v1 offset-paged list.
pub(crate) async fn all_v1<T: DeserializeOwned>(
    transport: &Transport,
    site: &Site,
    first: Url,
) -> Result<Vec<T>, ClientError> {
    all_v1_mapped(transport, site, first, Some).await
}

/// All results of a v1 offset-paged list, each passed through `map` as its page arrives
/// (`None` drops it): a long listing then holds its answer's wire form one page at a time, not
/// whole (about 2 KB an entry for attachments, against a few hundred bytes converted).
pub(crate) async fn all_v1_mapped<T: DeserializeOwned, U>(
    transport: &Transport,
    site: &Site,
    first: Url,
    mut map: impl FnMut(T) -> Option<U>,
) -> Result<Vec<U>, ClientError> {
    let fetch = |url: Url| {
        transport.call_json::<V1List<Listed<T>>>(Method::GET, url, None, Repeat::Idempotent)
    };
    let mut walk = Walk::new(site, first.clone(), MAX_PAGES_V1);
    let mut results = Vec::new();
    // Pages requested and not yet used, in order; `queued[0]` is always `url`.
    let mut in_flight = FuturesOrdered::new();
    let mut queued: VecDeque<Url> = VecDeque::new();
    // The server's step between pages, once known and while its links keep to it.
    let mut step: Option<u64> = None;
    let mut used = 0usize;
    let mut url = first;
    loop {
        if queued.is_empty() {
            queued.push_back(url.clone());
            in_flight.push_back(fetch(url.clone()));
        }
        if let Some(step) = step {
            while queued.len() < used.saturating_sub(1).clamp(1, AHEAD_V1)
                && walk.visited.len() + queued.len() < walk.cap
            {
                let Some(guess) = queued.back().and_then(|last| advanced(last, step)) else {
                    break;
                };
                queued.push_back(guess.clone());
                in_flight.push_back(fetch(guess));
            }
        }
        let page = in_flight
            .next()
            .await
            .expect("the page named last is always in flight")?;
        queued.pop_front();
        used += 1;
        walk.keep(&url, page.results, &mut map, &mut results);
        let Some(next) = walk.next(&url, page.links.get("next"))? else {
            break;
        };
        if used == 1 {
            step = step_between(&url, &next);
        }
        if queued.front().is_some_and(|guess| !same_page(guess, &next)) {
            tracing::debug!(listing = %walk.first, named = %next, "a listing's next page is not where its step says; following its links one at a time");
            in_flight = FuturesOrdered::new();
            queued.clear();
            step = None;
        }
        url = next;
    }
    walk.finish();
    Ok(results)
}

/// How far the server's first `next` link moved `start` from the first request (which may have
/// none: 0); `None` when it did not move it forward, or when the listing goes by cursor.
fn step_between(first: &Url, next: &Url) -> Option<u64> {
    if has_param(next, "cursor") {
        return None;
    }
    let step = start_of(next)?.checked_sub(start_of(first).unwrap_or(0))?;
    (step > 0).then_some(step)
}

/// The value of `start` in `url`'s query, when it is a number.
fn start_of(url: &Url) -> Option<u64> {
    url.query_pairs()
        .find(|(k, _)| k == "start")
        .and_then(|(_, v)| v.parse().ok())
}

fn has_param(url: &Url, name: &str) -> bool {
    url.query_pairs().any(|(k, _)| k == name)
}

/// `url` with its `start` moved on by `step`, everything else exactly as the server wrote it;
/// `None` without a numeric `start`.
fn advanced(url: &Url, step: u64) -> Option<Url> {
    let start = start_of(url)?.checked_add(step)?;
    let query = url.query()?;
    let moved: Vec<String> = query
        .split('&')
        .map(|pair| match pair.strip_prefix("start=") {
            Some(_) => format!("start={start}"),
            None => pair.to_string(),
        })
        .collect();
    let mut next = url.clone();
    next.set_query(Some(&moved.join("&")));
    Some(next)
}

/// Whether two URLs ask for the same page: equal, or equal but for the order and the encoding
/// of their query's parameters.
fn same_page(a: &Url, b: &Url) -> bool {
    if a == b {
        return true;
    }
    let mut a_pairs: Vec<_> = a.query_pairs().collect();
    let mut b_pairs: Vec<_> = b.query_pairs().collect();
    a_pairs.sort();
    b_pairs.sort();
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
        && a_pairs == b_pairs
}

/// All results of a v2 cursor-paged list.
pub(crate) async fn all_v2<T: DeserializeOwned>(
    transport: &Transport,
    site: &Site,
    first: Url,
) -> Result<Vec<T>, ClientError> {
    let mut walk = Walk::new(site, first.clone(), MAX_PAGES_V2);
    let mut results = Vec::new();
    let mut url = first;
    loop {
        let line = Transport::line(Channel::Api, &Method::GET, &url);
        let answer = transport
            .call(Method::GET, url.clone(), None, Repeat::Idempotent)
            .await?;
        let page: V2List<Listed<T>> = decode(&line, &answer.body)?;
        walk.keep(&url, page.results, &mut Some, &mut results);
        let next = page.links.get("next").map(str::to_string).or_else(|| {
            answer
                .headers
                .get_all(LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_from_link_header)
        });
        match walk.next(&url, next.as_deref())? {
            Some(next) => url = next,
            None => break,
        }
    }
    walk.finish();
    Ok(results)
}

/// One listing in progress: where it started, which pages it has fetched, and what it skipped.
struct Walk<'a> {
    site: &'a Site,
    first: Url,
    cap: usize,
    /// Hashes of the URLs fetched so far (the first one included).
    visited: HashSet<u64>,
    hasher: RandomState,
    skipped: usize,
    /// The first skipped entry: the page it came from, and why.
    example: Option<String>,
}

impl<'a> Walk<'a> {
    fn new(site: &'a Site, first: Url, cap: usize) -> Walk<'a> {
        let mut walk = Walk {
            site,
            cap,
            visited: HashSet::new(),
            hasher: RandomState::new(),
            skipped: 0,
            example: None,
            first,
        };
        let hash = walk.hasher.hash_one(walk.first.as_str());
        walk.visited.insert(hash);
        walk
    }

    /// Moves the well-formed entries of a page into `results`, through `map`, and counts the
    /// others.
    fn keep<T, U>(
        &mut self,
        page: &Url,
        entries: Vec<Listed<T>>,
        map: &mut impl FnMut(T) -> Option<U>,
        results: &mut Vec<U>,
    ) {
        for entry in entries {
            match entry {
                Listed::Good(value) => results.extend(map(value)),
                Listed::Bad { id, reason } => {
                    self.skipped += 1;
                    if self.example.is_none() {
                        let which =
                            id.map_or_else(|| "an entry".to_string(), |id| format!("id {id}"));
                        self.example = Some(format!("{which} on {page}: {reason}"));
                    }
                }
            }
        }
    }

    /// The page to fetch after `page`, whose answer named `link` as its `next`; `None` at the
    /// end. A link already fetched, a listing past its cap and a link that would take the
    /// credential elsewhere are errors.
    fn next(&mut self, page: &Url, link: Option<&str>) -> Result<Option<Url>, ClientError> {
        let Some(link) = link else {
            return Ok(None);
        };
        let unusable = |detail: String| ClientError::Decode {
            request: RequestLine {
                method: Method::GET,
                url: page.to_string(),
            },
            detail,
        };
        let next = self
            .site
            .follow(link)
            .map_err(|_| unusable(format!("its next link {link:?} is not a URL")))?;
        let next = self.site.keep_home(next).map_err(unusable)?;
        let next = carry_params(&self.first, next);
        if self.visited.len() >= self.cap {
            return Err(unusable(format!(
                "the listing goes on past {} pages (the most we follow, {MAX_LISTED} results at \
                 our page size); given up before {next}",
                self.cap
            )));
        }
        if !self.visited.insert(self.hasher.hash_one(next.as_str())) {
            return Err(unusable(format!(
                "its next link {next} was fetched before in this listing: the server's paging \
                 goes round in a circle"
            )));
        }
        Ok(Some(next))
    }

    /// Says once, for the whole listing, what was skipped.
    fn finish(self) {
        if self.skipped > 0 {
            tracing::warn!(
                listing = %self.first,
                skipped = self.skipped,
                first = self.example.as_deref().unwrap_or(""),
                "skipped malformed entries of a listing; the rest of it is used"
            );
        }
    }
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
    fn caps_match_the_page_sizes() {
        assert_eq!(
            MAX_PAGES_V1 * V1_LIMIT.parse::<usize>().unwrap(),
            MAX_LISTED
        );
        assert_eq!(
            MAX_PAGES_V2 * V2_LIMIT.parse::<usize>().unwrap(),
            MAX_LISTED
        );
    }

    #[test]
    fn a_guess_moves_only_start_and_keeps_the_servers_spelling() {
        let next =
            Url::parse("http://h/rest/api/content/1/child/attachment?limit=200&start=200&expand=version,container")
                .unwrap();
        let guess = advanced(&next, 200).unwrap();
        assert_eq!(
            guess.as_str(),
            "http://h/rest/api/content/1/child/attachment?limit=200&start=400&expand=version,container"
        );
        assert_eq!(start_of(&guess), Some(400));
        assert!(advanced(&Url::parse("http://h/x?limit=2").unwrap(), 2).is_none());
        assert!(advanced(&Url::parse("http://h/x?start=abc").unwrap(), 2).is_none());
    }

    #[test]
    fn the_step_is_the_servers_and_never_a_cursors() {
        let first = Url::parse("http://h/x?limit=200").unwrap();
        let next = Url::parse("http://h/x?limit=200&start=200").unwrap();
        assert_eq!(step_between(&first, &next), Some(200));
        let capped = Url::parse("http://h/x?limit=50&start=50").unwrap();
        assert_eq!(step_between(&first, &capped), Some(50));
        let cursor = Url::parse("http://h/x?cursor=abc&start=25").unwrap();
        assert_eq!(step_between(&first, &cursor), None);
        let back = Url::parse("http://h/x?start=0").unwrap();
        assert_eq!(step_between(&first, &back), None);
    }

    #[test]
    fn the_same_page_spelled_differently_is_the_same_page() {
        let a = Url::parse("http://h/x?expand=a,b&start=400&limit=200").unwrap();
        let b = Url::parse("http://h/x?limit=200&start=400&expand=a%2Cb").unwrap();
        assert!(same_page(&a, &b));
        let c = Url::parse("http://h/x?limit=200&start=600&expand=a%2Cb").unwrap();
        assert!(!same_page(&a, &c));
        let d = Url::parse("http://h/y?expand=a,b&start=400&limit=200").unwrap();
        assert!(!same_page(&a, &d));
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
