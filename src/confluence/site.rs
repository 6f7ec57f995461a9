//! The one place that turns a Confluence site into URLs.
//!
//! A site is a base URL (`https://x.atlassian.net/wiki`, `http://host:8090`,
//! `http://host/confluence`) plus a flavor. Every path is appended segment by segment, so ids
//! and filenames are percent-encoded exactly once, whatever they contain. `_links.next` values
//! come back in two shapes: v1 links are context-relative (`/rest/api/…`, join onto the base) and
//! v2 links are site-relative (`/wiki/api/v2/…`, join onto the origin); [`Site::follow`] tells them
//! apart by the context prefix.
//!
//! A link the server gave us is followed with the credential only on the site's own origin
//! (scheme, host and port, so `localhost` is not `127.0.0.1`): [`Site::keep_home`] rebases a link
//! to another origin onto ours when its path lies under our base path (a Data Center behind a
//! proxy reports its own idea of the base URL), and refuses it otherwise. A site URL that carries
//! a user name or password is refused outright: the credential comes from its own settings, and
//! a URL is shown in too many places (messages, logs, xattrs) to hold one.

use url::Url;

use super::client_error::ClientError;

/// Which product answers: Cloud has the v2 API and a media host for downloads; Data Center has
/// only v1 and serves attachment bytes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Atlassian's hosted Confluence (`*.atlassian.net`).
    Cloud,
    /// Confluence Data Center (or Server), run by its owner.
    DataCenter,
}

#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// Without a trailing slash in its path (`/wiki`, `/confluence`, or empty).
    base: Url,
    pub(crate) flavor: Flavor,
}

impl Site {
    pub(crate) fn new(base: Url, flavor: Flavor) -> Site {
        Site { base, flavor }
    }

    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// The context path (`/wiki`, `/confluence`, or `""`).
    pub(crate) fn context(&self) -> &str {
        self.base.path().trim_end_matches('/')
    }

    /// `{base}/{segments…}` with each segment percent-encoded.
    pub(crate) fn at(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            // Cannot fail: the base is an http(s) URL, checked in `normalize_site_url`.
            let mut path = url.path_segments_mut().expect("http URL has a path");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// `{base}/rest/api/{segments…}`
    pub(crate) fn v1(&self, segments: &[&str]) -> Url {
        let mut all = vec!["rest", "api"];
        all.extend_from_slice(segments);
        self.at(&all)
    }

    /// `{base}/rest/api/content/{container}/child/attachment`: a container's attachments
    /// (listed, looked up by name, uploaded to).
    pub(crate) fn v1_attachments(&self, container_id: &str) -> Url {
        self.v1(&["content", container_id, "child", "attachment"])
    }

    /// `{base}/rest/api/content/{container}/child/attachment/{id}/{more…}`: one attachment
    /// (`data` for a new version, `download` for its bytes, nothing for its metadata).
    pub(crate) fn v1_attachment(&self, container_id: &str, id: &str, more: &[&str]) -> Url {
        let mut all = vec!["content", container_id, "child", "attachment", id];
        all.extend_from_slice(more);
        self.v1(&all)
    }

    /// `{base}/api/v2/{segments…}` (Cloud only).
    pub(crate) fn v2(&self, segments: &[&str]) -> Url {
        let mut all = vec!["api", "v2"];
        all.extend_from_slice(segments);
        self.at(&all)
    }

    /// `{base}/rest/experimental/{segments…}` (Data Center's version history).
    pub(crate) fn experimental(&self, segments: &[&str]) -> Url {
        let mut all = vec!["rest", "experimental"];
        all.extend_from_slice(segments);
        self.at(&all)
    }

    /// Resolves a `_links` value (`next`, `webui`, `download`) to an absolute URL.
    pub(crate) fn follow(&self, link: &str) -> Result<Url, ClientError> {
        if link.starts_with("http://") || link.starts_with("https://") {
            return Url::parse(link)
                .map_err(|e| ClientError::Config(format!("bad link {link:?}: {e}")));
        }
        let context = self.context();
        let site_relative =
            !context.is_empty() && (link == context || link.starts_with(&format!("{context}/")));
        let mut joined = if site_relative {
            self.origin()
        } else {
            // The base has no query or fragment (normalized), so plain concatenation keeps the
            // link's own query intact.
            self.base.as_str().trim_end_matches('/').to_string()
        };
        if !link.starts_with('/') {
            joined.push('/');
        }
        joined.push_str(link);
        Url::parse(&joined).map_err(|e| ClientError::Config(format!("bad link {link:?}: {e}")))
    }

    /// `link` made fit to receive the credential: as it is on the site's own origin; on another
    /// origin rebased onto ours (path and query kept) when its path lies under the site's base
    /// path; otherwise refused with the reason, which names the link. A user name or password
    /// in the link is dropped either way.
    pub(crate) fn keep_home(&self, mut link: Url) -> Result<Url, String> {
        // Cannot fail for http(s) links, the only kind `follow` returns.
        let _ = link.set_username("");
        let _ = link.set_password(None);
        if same_origin(&link, &self.base) {
            return Ok(link);
        }
        let context = self.context();
        let path = link.path();
        let under_base =
            context.is_empty() || path == context || path.starts_with(&format!("{context}/"));
        if !under_base {
            return Err(format!(
                "its next link {link} leads away from {}; not followed, so that the credential \
                 stays with its own origin",
                self.base.as_str().trim_end_matches('/')
            ));
        }
        let mut rebased = self.base.clone();
        rebased.set_path(path);
        rebased.set_query(link.query());
        tracing::debug!(%link, %rebased, "a link to another origin, rebased onto the site");
        Ok(rebased)
    }

    /// `scheme://host[:port]`
    pub(crate) fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }
}

/// Refuses a site URL that the client would refuse, without a request: one that is not an
/// http(s) URL, or that carries a user name or password. The reason never shows the password.
pub fn check_site_url(raw: &str) -> Result<(), ClientError> {
    normalize_site_url(raw).map(|_| ())
}

/// Cleans up what a user typed: http(s) only, no user name or password, no query or fragment,
/// no trailing slash, and the `/wiki` context added for a bare `*.atlassian.net` host.
pub(crate) fn normalize_site_url(raw: &str) -> Result<Url, ClientError> {
    let raw = raw.trim();
    let mut url = Url::parse(raw).map_err(|e| {
        ClientError::Config(format!(
            "{:?} is not a URL ({e}); expected e.g. https://example.atlassian.net/wiki",
            shown(raw)
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ClientError::Config(format!(
            "the URL {:?} carries a user name or password; give the user in CONFLUENCE_USER or \
             --user and the token in CONFLUENCE_TOKEN or --token-file instead",
            shown(raw)
        )));
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ClientError::Config(format!(
            "{:?} is not an http(s) URL",
            shown(raw)
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    let trimmed = url.path().trim_end_matches('/').to_string();
    let is_cloud_host = url
        .host_str()
        .is_some_and(|h| h.to_ascii_lowercase().ends_with(".atlassian.net"));
    if trimmed.is_empty() && is_cloud_host {
        url.set_path("/wiki");
    } else {
        url.set_path(&trimmed);
    }
    Ok(url)
}

/// What a user typed, fit for a message: whatever stands before an `@` in the authority (a
/// user name and password) becomes `***`, even when the rest does not parse as a URL.
fn shown(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    match raw[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_string(),
    }
}

/// `base` with `/wiki` appended, for the second probe when a bare host 404s.
pub(crate) fn with_wiki(base: &Url) -> Url {
    let mut url = base.clone();
    let path = format!("{}/wiki", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// True when `a` and `b` have the same scheme, host and port: only then does a credential follow
/// a redirect.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_the_usual_shapes() {
        let n = |s| normalize_site_url(s).unwrap().to_string();
        assert_eq!(n("https://x.atlassian.net"), "https://x.atlassian.net/wiki");
        assert_eq!(
            n("https://x.atlassian.net/"),
            "https://x.atlassian.net/wiki"
        );
        assert_eq!(
            n("https://x.atlassian.net/wiki/"),
            "https://x.atlassian.net/wiki"
        );
        assert_eq!(n("http://host:8090"), "http://host:8090/");
        assert_eq!(n("http://host:8090//"), "http://host:8090/");
        assert_eq!(n("http://host/confluence/"), "http://host/confluence");
        assert_eq!(n("http://host/confluence?x=1#y"), "http://host/confluence");
        assert!(normalize_site_url("ftp://host").is_err());
        assert!(normalize_site_url("not a url").is_err());
    }

    #[test]
    fn userinfo_is_refused_without_showing_it() {
        for raw in [
            "https://me:hunter2@x.atlassian.net/wiki",
            "https://hunter2@x.atlassian.net",
            "http://me:hunter2@host:8090/confluence?x=1",
            "ftp://me:hunter2@host/",
            "https://me:hunter2@ho st/wiki",
            "me:hunter2@host/wiki",
        ] {
            let message = normalize_site_url(raw).unwrap_err().to_string();
            assert!(!message.contains("hunter2"), "{raw}: {message}");
            assert!(!message.contains('\n'), "{raw}: {message}");
            assert!(check_site_url(raw).is_err(), "{raw}");
        }
        let message = normalize_site_url("https://me:pw@h/wiki")
            .unwrap_err()
            .to_string();
        assert!(message.contains("user name or password"), "{message}");
        assert!(message.contains("https://***@h/wiki"), "{message}");
        assert_eq!(shown("http://h/a@b"), "http://h/a@b");
        assert!(check_site_url("http://host:8090").is_ok());
    }

    #[test]
    fn builds_encoded_paths() {
        let site = Site::new(
            normalize_site_url("http://h/confluence").unwrap(),
            Flavor::DataCenter,
        );
        assert_eq!(
            site.at(&["download", "attachments", "12", "a b/ü?.txt"])
                .as_str(),
            "http://h/confluence/download/attachments/12/a%20b%2F%C3%BC%3F.txt"
        );
        let root = Site::new(
            normalize_site_url("http://h:8090").unwrap(),
            Flavor::DataCenter,
        );
        assert_eq!(root.v1(&["space"]).as_str(), "http://h:8090/rest/api/space");
        assert_eq!(root.context(), "");
    }

    #[test]
    fn follows_v1_and_v2_links() {
        let site = Site::new(
            normalize_site_url("https://x.atlassian.net/wiki").unwrap(),
            Flavor::Cloud,
        );
        assert_eq!(
            site.follow("/rest/api/content/1/child/attachment?limit=200&start=200")
                .unwrap()
                .as_str(),
            "https://x.atlassian.net/wiki/rest/api/content/1/child/attachment?limit=200&start=200"
        );
        assert_eq!(
            site.follow("/wiki/api/v2/pages/1/attachments?cursor=abc")
                .unwrap()
                .as_str(),
            "https://x.atlassian.net/wiki/api/v2/pages/1/attachments?cursor=abc"
        );
        let dc = Site::new(
            normalize_site_url("http://h:8090").unwrap(),
            Flavor::DataCenter,
        );
        assert_eq!(
            dc.follow("/rest/api/space?start=200").unwrap().as_str(),
            "http://h:8090/rest/api/space?start=200"
        );
    }

    #[test]
    fn links_to_another_origin_are_rebased_or_refused() {
        let site = Site::new(
            normalize_site_url("https://h:8443/confluence").unwrap(),
            Flavor::DataCenter,
        );
        let home = |link: &str| site.keep_home(Url::parse(link).unwrap());
        // Our own origin, with a user name dropped.
        assert_eq!(
            home("https://x:y@h:8443/confluence/rest/api/space?start=2")
                .unwrap()
                .as_str(),
            "https://h:8443/confluence/rest/api/space?start=2"
        );
        // Another scheme, host or port, under our base path: rebased.
        for other in ["http://h:8443", "https://proxy.example", "https://h:9443"] {
            assert_eq!(
                home(&format!("{other}/confluence/rest/api/space?start=2"))
                    .unwrap()
                    .as_str(),
                "https://h:8443/confluence/rest/api/space?start=2",
                "{other}"
            );
        }
        // Elsewhere: refused, naming the link.
        for away in [
            "https://proxy.example/rest/api/space?start=2",
            "https://proxy.example/confluence2/rest/api/space",
            "https://proxy.example/confluence/../admin",
        ] {
            let reason = home(away).unwrap_err();
            assert!(reason.contains("proxy.example/"), "{reason}");
        }
        // A site at the root: every path is under it.
        let root = Site::new(
            normalize_site_url("http://127.0.0.1:8090").unwrap(),
            Flavor::DataCenter,
        );
        assert_eq!(
            root.keep_home(Url::parse("http://localhost:8090/rest/api/space?start=2").unwrap())
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8090/rest/api/space?start=2"
        );
    }
}
