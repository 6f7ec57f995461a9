//! The client handle and how it finds out what it is talking to.
//!
//! `Client::connect` turns what a user typed into a site: it probes
//! `{url}/rest/api/user/current` (which also checks the credentials, in one request), then
//! `{url}/wiki/rest/api/user/current` if the bare URL is not Confluence, because Cloud lives
//! under `/wiki` and users often paste the bare host. A base ending in `/wiki` is Cloud only if
//! `{base}/api/v2/spaces?limit=1` works — Data Center has no v2, and a Data Center may well use
//! `/wiki` as its context path. The caller may skip that probe by forcing the flavor.
//!
//! A wrong URL fails fast (no retries on a refused connection during connect) and names the
//! URL; refused credentials name the user.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use url::Url;

use super::client_error::ClientError;
use super::credentials::Credentials;
use super::model::User;
use super::retry::{Repeat, RetryPolicy};
use super::site::{normalize_site_url, with_wiki, Flavor, Site};
use super::transport::{decode, Limits, Timeouts, Transport};
use super::wire::V1User;

/// The slowest download we wait for, in bytes per second, averaged over [`RATE_WINDOW`].
pub const MIN_TRANSFER_RATE: u64 = 1024;

/// The span over which [`MIN_TRANSFER_RATE`] is measured.
pub const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything `connect` needs. Build with [`ClientConfig::new`] or [`ClientConfig::from_env`]
/// and adjust fields.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// What the user typed: `https://x.atlassian.net[/wiki]`, `http://host:8090`,
    /// `http://host/confluence`, with or without a trailing slash.
    pub url: String,
    /// Who we are to the server; the token inside never appears in logs or errors.
    pub credentials: Credentials,
    /// `None` detects the flavor; `Some` trusts the caller and skips the v2 probe.
    pub flavor: Option<Flavor>,
    /// How often and how long to retry a request that failed for a reason worth retrying.
    pub retry: RetryPolicy,
    /// Downloads and uploads in flight at once (default 8).
    pub max_concurrent_requests: usize,
    /// Other requests (listings, lookups, metadata) in flight at once (default 8). A budget of
    /// their own, so that they never wait behind slow downloads.
    pub max_metadata_requests: usize,
    /// TCP+TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Longest silence while waiting for or reading a response (default 30 s).
    pub read_timeout: Duration,
    /// Cap on one JSON request, body included (default 120 s).
    pub request_timeout: Duration,
    /// Slowest a download may be, in bytes per second averaged over `rate_window`, before it
    /// fails (default [`MIN_TRANSFER_RATE`](MIN_TRANSFER_RATE)).
    pub min_transfer_rate: u64,
    /// The span over which `min_transfer_rate` is measured (default
    /// [`RATE_WINDOW`](RATE_WINDOW)).
    pub rate_window: Duration,
    /// The `User-Agent` header of every request (default `confluencefs/<version>`).
    pub user_agent: String,
}

impl ClientConfig {
    /// A configuration for `url` with `credentials` and every other field at its default.
    pub fn new(url: impl Into<String>, credentials: Credentials) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            credentials,
            flavor: None,
            retry: RetryPolicy::default(),
            max_concurrent_requests: 8,
            max_metadata_requests: 8,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            min_transfer_rate: MIN_TRANSFER_RATE,
            rate_window: RATE_WINDOW,
            user_agent: concat!("confluencefs/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// `CONFLUENCE_URL` plus [`Credentials::from_env`].
    pub fn from_env() -> Result<ClientConfig, ClientError> {
        let url = std::env::var("CONFLUENCE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| ClientError::Config("CONFLUENCE_URL is not set".into()))?;
        Ok(ClientConfig::new(url, Credentials::from_env()?))
    }
}

/// A connected Confluence client. Cheap to clone; clones share the connection pool, the
/// concurrency limit and the detected site.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) site: Site,
    pub(crate) user: User,
    /// Where Cloud's download URLs redirected to lately (see `download.rs`).
    pub(crate) media_links: super::media_links::MediaLinks,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.site.base().as_str())
            .field("flavor", &self.inner.site.flavor)
            .field("user", &self.inner.user.name())
            .finish()
    }
}

impl Client {
    /// Finds the site, detects the flavor (unless forced) and checks the credentials, in one to
    /// three requests.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let typed = normalize_site_url(&config.url)?;
        let transport = Transport::new(
            config.credentials.clone(),
            config.retry.clone(),
            Limits {
                bulk: config.max_concurrent_requests,
                metadata: config.max_metadata_requests,
            },
            Timeouts {
                connect: config.connect_timeout,
                read: config.read_timeout,
                json_total: config.request_timeout,
                min_rate: config.min_transfer_rate,
                rate_window: config.rate_window,
            },
            &config.user_agent,
        )?;

        let mut candidates = vec![typed.clone()];
        if !typed.path().trim_end_matches('/').ends_with("/wiki") {
            candidates.push(with_wiki(&typed));
        }
        let mut found = None;
        let mut last_detail = String::new();
        for base in candidates {
            match probe_user(&transport, &base).await? {
                Probe::User(user) => {
                    found = Some((base, user));
                    break;
                }
                Probe::NotHere(detail) => last_detail = detail,
            }
        }
        let (base, user) = found.ok_or_else(|| ClientError::NotConfluence {
            url: typed.to_string(),
            detail: last_detail,
        })?;

        let flavor = match config.flavor {
            Some(flavor) => flavor,
            None => detect_flavor(&transport, &base).await?,
        };
        tracing::info!(base = %base, ?flavor, user = user.name(), "connected to Confluence");
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                site: Site::new(base, flavor),
                user,
                media_links: Default::default(),
            }),
        })
    }

    /// The product this client talks to, detected at connect or given in the configuration.
    pub fn flavor(&self) -> Flavor {
        self.inner.site.flavor
    }

    /// The REST base (`https://x.atlassian.net/wiki`, `http://host/confluence`).
    pub fn base_url(&self) -> &Url {
        self.inner.site.base()
    }

    /// The user the credentials belong to, as `connect` found it.
    pub fn current_user(&self) -> &User {
        &self.inner.user
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// What this client has sent since it was built (its connect included): requests,
    /// retries, and the uploads on the wire now.
    pub fn traffic(&self) -> super::TrafficStats {
        self.inner.transport.traffic.stats()
    }

    pub(crate) fn site(&self) -> &Site {
        &self.inner.site
    }
}

enum Probe {
    User(User),
    /// Reachable, but not a Confluence REST API at this base; why, for the error message.
    NotHere(String),
}

async fn probe_user(transport: &Transport, base: &Url) -> Result<Probe, ClientError> {
    let url = Site::new(base.clone(), Flavor::DataCenter).v1(&["user", "current"]);
    let line = Transport::line(super::transport::Channel::Api, &Method::GET, &url);
    let answer = match transport
        .call(Method::GET, url.clone(), None, Repeat::Probe)
        .await
    {
        Ok(answer) => answer,
        Err(ClientError::NotFound { .. }) => {
            return Ok(Probe::NotHere(format!("GET {url} answered 404")))
        }
        Err(ClientError::Service { status, .. }) if status != 429 && status < 500 => {
            return Ok(Probe::NotHere(format!("GET {url} answered {status}")))
        }
        Err(other) => return Err(other),
    };
    let content_type = answer
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !answer.status.is_success() || !content_type.contains("json") {
        return Ok(Probe::NotHere(format!(
            "GET {url} answered {} with {}",
            answer.status.as_u16(),
            if content_type.is_empty() {
                "no content type"
            } else {
                content_type
            }
        )));
    }
    let user: V1User = match decode(&line, &answer.body) {
        Ok(user) => user,
        Err(e) => return Ok(Probe::NotHere(e.to_string())),
    };
    // Data Center answers an unknown Basic user with 401, but a server that allows anonymous
    // access may answer "anonymous": credentials that were not recognised all the same.
    if user.user_type.as_deref() == Some("anonymous") {
        return Err(ClientError::Unauthorized {
            who: transport.credentials().who(),
            url: url.to_string(),
            message: "the server treated the request as anonymous".into(),
        });
    }
    Ok(Probe::User(user.into_model()))
}

async fn detect_flavor(transport: &Transport, base: &Url) -> Result<Flavor, ClientError> {
    if !base.path().trim_end_matches('/').ends_with("/wiki") {
        return Ok(Flavor::DataCenter);
    }
    let mut url = Site::new(base.clone(), Flavor::Cloud).v2(&["spaces"]);
    url.query_pairs_mut().append_pair("limit", "1");
    match transport.call(Method::GET, url, None, Repeat::Probe).await {
        Ok(answer) if answer.status.is_success() => Ok(Flavor::Cloud),
        Ok(_) => Ok(Flavor::DataCenter),
        Err(e)
            if e.status()
                .is_some_and(|s| (400..500).contains(&s) && s != 429) =>
        {
            Ok(Flavor::DataCenter)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_can_be_shared_across_tasks() {
        fn shared<T: Send + Sync + Clone + 'static>() {}
        fn sent<T: Send + 'static>() {}
        shared::<Client>();
        sent::<super::super::ByteStream>();
    }

    #[test]
    fn config_debug_hides_the_token() {
        let config = ClientConfig::new("http://h", Credentials::basic("u", "hunter2"));
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
