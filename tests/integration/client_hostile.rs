//! A hostile Confluence of our own: paging that never ends (two `next` links pointing at each
//! other, an endless chain of distinct links), `next` links to another origin, credentials in
//! the URL, one malformed entry in a listing, and a `Content-Range` that contradicts the size.
//!
//! The fake server is written by hand (the test server is well-behaved on purpose) and records
//! every request's target, `Host` and `Authorization`, so that a test can say exactly which
//! origin saw the credential. Every case has a time bound: a client that loops fails the test
//! instead of hanging it.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confluencefs::confluence::{
    Attachment, Client, ClientConfig, ClientError, ContainerRef, Credentials, Flavor,
};

use crate::support::{current_user_response, http_response};

const USER: &str = "ann@example.com";
/// The token every test client sends; no error message and no second origin may ever see it.
const SECRET: &str = "hostile-s3cret-token";

/// One request as the fake server received it.
#[derive(Debug, Clone)]
struct Seen {
    /// Path and query.
    target: String,
    host: String,
    authorization: Option<String>,
}

impl Seen {
    /// The value of query parameter `name`, if present.
    fn param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(&format!("http://x{}", self.target)).ok()?;
        let found = url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned());
        found
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// A fake server on 127.0.0.1 and what it has seen.
struct Hostile {
    /// `http://127.0.0.1:PORT`
    url: String,
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hostile {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Starts a fake server whose answers come from `answer`; `/rest/api/user/current` under any
/// context is answered for it, so that `Client::connect` works. One answer per connection.
async fn hostile(answer: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static) -> Hostile {
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let answer = Arc::new(answer);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (answer, log) = (answer.clone(), log.clone());
            tokio::spawn(async move {
                let Some(text) = crate::support::read_head(&mut socket).await else {
                    return;
                };
                let mut lines = text.split("\r\n");
                let mut words = lines.next().unwrap_or("").split_whitespace().skip(1);
                let mut request = Seen {
                    target: words.next().unwrap_or("").to_string(),
                    host: String::new(),
                    authorization: None,
                };
                for line in lines {
                    if let Some((name, value)) = line.split_once(':') {
                        match name.trim().to_ascii_lowercase().as_str() {
                            "host" => request.host = value.trim().to_string(),
                            "authorization" => request.authorization = Some(value.trim().into()),
                            _ => {}
                        }
                    }
                }
                log.lock().unwrap().push(request.clone());
                let response = if request.path().ends_with("/rest/api/user/current") {
                    current_user_response()
                } else {
                    answer(&request)
                };
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Hostile {
        url: format!("http://127.0.0.1:{port}"),
        port,
        seen,
    }
}

fn json(body: &serde_json::Value) -> Vec<u8> {
    http_response("200 OK", "application/json", body.to_string().as_bytes())
}

/// A JSON answer with a `Link: <next>; rel="next"` header (v2 paging).
fn json_with_link(body: &serde_json::Value, next: &str) -> Vec<u8> {
    let body = body.to_string();
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlink: <{next}>; rel=\"next\"\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn not_found() -> Vec<u8> {
    http_response(
        "404 Not Found",
        "application/json",
        br#"{"statusCode":404,"message":"nothing here"}"#,
    )
}

/// A client of `base` with the flavor forced (no probe) and quick retries.
async fn connect(base: &str, flavor: Flavor) -> Client {
    let mut config = ClientConfig::new(base, Credentials::basic(USER, SECRET));
    config.flavor = Some(flavor);
    config.retry.base_delay = Duration::from_millis(10);
    config.retry.max_delay = Duration::from_millis(50);
    Client::connect(config).await.expect("connects")
}

fn v1_space(n: u64) -> serde_json::Value {
    serde_json::json!({"id": n, "key": format!("S{n}"), "name": format!("Space {n}")})
}

fn v2_space(n: u64) -> serde_json::Value {
    serde_json::json!({"id": n.to_string(), "key": format!("S{n}"), "name": format!("Space {n}")})
}

fn keys(spaces: &[confluencefs::confluence::Space]) -> Vec<String> {
    spaces.iter().map(|s| s.key.clone()).collect()
}

/// Runs `listing` with a time bound and returns its error and how long it took.
async fn must_fail<T: std::fmt::Debug>(
    bound: Duration,
    listing: impl std::future::Future<Output = Result<T, ClientError>>,
) -> (ClientError, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(bound, listing)
        .await
        .unwrap_or_else(|_| panic!("the listing was still running after {bound:?}"));
    let took = started.elapsed();
    match result {
        Err(error) => (error, took),
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Paging that never ends

#[tokio::test]
async fn cyclic_next_v1_ends_with_an_error() {
    // Page 1 points at page 2, page 2 back at page 1.
    let server = hostile(|request| {
        let start = request.param("start");
        let next = match start.as_deref() {
            None => "/rest/api/space?start=1",
            Some("1") => "/rest/api/space?start=2",
            _ => "/rest/api/space?start=1",
        };
        json(&serde_json::json!({"results": [v1_space(1)], "_links": {"next": next}}))
    })
    .await;
    let client = connect(&server.url, Flavor::DataCenter).await;
    let before = server.count();
    let (error, took) = must_fail(Duration::from_secs(10), client.list_spaces(&[])).await;
    let pages = server.count() - before;
    eprintln!("cyclic v1: {error} after {pages} pages in {took:?}");
    assert!(pages <= 3, "{pages} pages fetched");
    let text = error.to_string();
    assert!(text.contains("start=1"), "the error names the link: {text}");
    assert!(!text.contains(SECRET), "{text}");
}

/// A v1 listing is fetched several pages at once at the step the server's first `next` link
/// shows; a server that changes its step (here from 1 to 2 after the fifth page) gets its own
/// links followed, and what was fetched on a guess is never listed. The page that changes the
/// step answers late, so that the guesses after it reach the server first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v1_pages_off_their_step_are_followed_by_their_links() {
    let server = hostile(|request| {
        let start: u64 = request.param("start").map_or(0, |s| s.parse().unwrap());
        if start == 4 {
            std::thread::sleep(Duration::from_millis(100));
        }
        let next = match start {
            0..=3 => Some(start + 1),
            4 => Some(6),
            6 | 8 => Some(start + 2),
            10 => None,
            // A guess: a space that must not be listed, and a link that must not be followed.
            _ => {
                return json(&serde_json::json!({
                    "results": [v1_space(1000 + start)],
                    "_links": {"next": format!("/rest/api/space?start={}", start + 1)}
                }))
            }
        };
        let mut body = serde_json::json!({"results": [v1_space(start)], "_links": {}});
        if let Some(next) = next {
            body["_links"]["next"] = format!("/rest/api/space?start={next}").into();
        }
        json(&body)
    })
    .await;
    let client = connect(&server.url, Flavor::DataCenter).await;
    let before = server.count();
    let spaces = client.list_spaces(&[]).await.unwrap();
    let fetched = server.count() - before;
    let mut listed = keys(&spaces);
    listed.sort_by_key(|key| key[1..].parse::<u64>().unwrap());
    assert_eq!(
        listed,
        ["S0", "S1", "S2", "S3", "S4", "S6", "S8", "S10"],
        "{fetched} pages fetched"
    );
    assert!(
        (9..=8 + 3).contains(&fetched),
        "{fetched} pages fetched: 8 named by the server, and guesses"
    );
}

#[tokio::test]
async fn cyclic_next_v2_ends_with_an_error() {
    // Cursors a → b → a, in the `Link` header as Cloud sends them.
    let server = hostile(|request| {
        if !request.path().starts_with("/wiki/api/v2/spaces") {
            return not_found();
        }
        let next = match request.param("cursor").as_deref() {
            Some("a") => "/wiki/api/v2/spaces?cursor=b",
            _ => "/wiki/api/v2/spaces?cursor=a",
        };
        json_with_link(&serde_json::json!({"results": [v2_space(1)]}), next)
    })
    .await;
    let client = connect(&format!("{}/wiki", server.url), Flavor::Cloud).await;
    let before = server.count();
    let (error, took) = must_fail(Duration::from_secs(10), client.list_spaces(&[])).await;
    let pages = server.count() - before;
    eprintln!("cyclic v2: {error} after {pages} pages in {took:?}");
    assert!(pages <= 3, "{pages} pages fetched");
    assert!(error.to_string().contains("cursor=a"), "{error}");
}

/// The documented page caps: enough for 1,000,000 results at our page sizes.
const V1_PAGE_CAP: usize = 1_000_000 / 200;
const V2_PAGE_CAP: usize = 1_000_000 / 250;

#[tokio::test]
async fn endless_next_v1_stops_at_the_cap() {
    // Every page names a new one: start=1, 2, 3, … (a page of one space each).
    let server = hostile(|request| {
        let start: u64 = request
            .param("start")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let next = format!("/rest/api/space?start={}", start + 1);
        json(&serde_json::json!({"results": [v1_space(start)], "_links": {"next": next}}))
    })
    .await;
    let client = connect(&server.url, Flavor::DataCenter).await;
    let before = server.count();
    let (error, took) = must_fail(Duration::from_secs(60), client.list_spaces(&[])).await;
    let pages = server.count() - before;
    eprintln!("endless v1: {error} after {pages} pages in {took:?}");
    assert_eq!(pages, V1_PAGE_CAP);
    assert!(
        error.to_string().contains(&V1_PAGE_CAP.to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn endless_next_v2_stops_at_the_cap() {
    let server = hostile(|request| {
        if !request.path().starts_with("/wiki/api/v2/spaces") {
            return not_found();
        }
        let n: u64 = request
            .param("cursor")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // The body's `_links.next` this time (v2 has both forms).
        let next = format!("/wiki/api/v2/spaces?cursor={}", n + 1);
        json(&serde_json::json!({"results": [v2_space(n)], "_links": {"next": next}}))
    })
    .await;
    let client = connect(&format!("{}/wiki", server.url), Flavor::Cloud).await;
    let before = server.count();
    let (error, took) = must_fail(Duration::from_secs(60), client.list_spaces(&[])).await;
    let pages = server.count() - before;
    eprintln!("endless v2: {error} after {pages} pages in {took:?}");
    assert_eq!(pages, V2_PAGE_CAP);
    assert!(
        error.to_string().contains(&V2_PAGE_CAP.to_string()),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// `next` links to another origin

/// The site under `/confluence` (Data Center) whose first page of spaces links to `next`; the
/// page at `start=1` ends the listing. Returns the site and the space keys it listed.
async fn v1_site_linking_to(next: impl Fn(u16) -> String + Send + Sync + 'static) -> Hostile {
    let port = Arc::new(Mutex::new(0u16));
    let own = port.clone();
    let server = hostile(move |request| {
        if !request.path().starts_with("/confluence/rest/api/space") {
            return not_found();
        }
        match request.param("start").as_deref() {
            None => {
                let next = next(*own.lock().unwrap());
                json(&serde_json::json!({"results": [v1_space(1)], "_links": {"next": next}}))
            }
            _ => json(&serde_json::json!({"results": [v1_space(2)], "_links": {}})),
        }
    })
    .await;
    *port.lock().unwrap() = server.port;
    server
}

/// A second origin that would answer anything with one more space, and records who asked.
async fn elsewhere() -> Hostile {
    hostile(|_| json(&serde_json::json!({"results": [v1_space(99)]}))).await
}

fn assert_no_credential(origin: &Hostile) {
    let seen = origin.seen();
    assert!(
        seen.iter().all(|r| r.authorization.is_none()),
        "the second origin received the credential: {seen:?}"
    );
    assert!(
        seen.is_empty(),
        "the second origin was asked at all: {seen:?}"
    );
}

#[tokio::test]
async fn cross_origin_next_v1_under_the_base_is_rebased() {
    // Another port.
    let other = elsewhere().await;
    let other_url = other.url.clone();
    let site = v1_site_linking_to(move |_| {
        format!("{other_url}/confluence/rest/api/space?limit=200&start=1")
    })
    .await;
    let client = connect(&format!("{}/confluence", site.url), Flavor::DataCenter).await;
    let spaces = tokio::time::timeout(Duration::from_secs(10), client.list_spaces(&[]))
        .await
        .expect("bounded")
        .expect("the rebased link is followed");
    assert_eq!(keys(&spaces), ["S1", "S2"]);
    assert_no_credential(&other);
    let rebased: Vec<Seen> = site
        .seen()
        .into_iter()
        .filter(|r| r.param("start").as_deref() == Some("1"))
        .collect();
    assert_eq!(rebased.len(), 1, "{rebased:?}");
    assert_eq!(rebased[0].path(), "/confluence/rest/api/space");
    assert_eq!(rebased[0].host, format!("127.0.0.1:{}", site.port));

    // `localhost` is another origin than `127.0.0.1`, even on the same port.
    let site = v1_site_linking_to(|port| {
        format!("http://localhost:{port}/confluence/rest/api/space?start=1")
    })
    .await;
    let client = connect(&format!("{}/confluence", site.url), Flavor::DataCenter).await;
    let spaces = tokio::time::timeout(Duration::from_secs(10), client.list_spaces(&[]))
        .await
        .expect("bounded")
        .expect("the rebased link is followed");
    assert_eq!(keys(&spaces), ["S1", "S2"]);
    let seen = site.seen();
    assert!(
        seen.iter()
            .all(|r| r.host == format!("127.0.0.1:{}", site.port)),
        "a request went to another origin: {seen:?}"
    );
}

#[tokio::test]
async fn cross_origin_next_v1_outside_the_base_is_refused() {
    let other = elsewhere().await;
    let other_url = other.url.clone();
    let site =
        v1_site_linking_to(move |_| format!("{other_url}/elsewhere/rest/api/space?start=1")).await;
    let client = connect(&format!("{}/confluence", site.url), Flavor::DataCenter).await;
    let (error, _) = must_fail(Duration::from_secs(10), client.list_spaces(&[])).await;
    let text = error.to_string();
    eprintln!("refused v1: {text}");
    assert!(
        text.contains(&format!("{}/elsewhere/rest/api/space", other.url)),
        "the error names the link: {text}"
    );
    assert!(!text.contains(SECRET), "{text}");
    assert_no_credential(&other);

    // The same through `localhost`: no request may reach it.
    let site =
        v1_site_linking_to(|port| format!("http://localhost:{port}/other/api?start=1")).await;
    let client = connect(&format!("{}/confluence", site.url), Flavor::DataCenter).await;
    let (error, _) = must_fail(Duration::from_secs(10), client.list_spaces(&[])).await;
    assert!(error.to_string().contains("localhost"), "{error}");
    let seen = site.seen();
    assert!(
        seen.iter().all(|r| !r.host.starts_with("localhost")),
        "{seen:?}"
    );
}

/// A Cloud site under `/wiki` whose first page of spaces links to `next` (in the `Link` header
/// when `in_header`, else in `_links.next`); the page with a cursor ends the listing.
async fn v2_site_linking_to(
    in_header: bool,
    next: impl Fn(u16) -> String + Send + Sync + 'static,
) -> Hostile {
    let port = Arc::new(Mutex::new(0u16));
    let own = port.clone();
    let server = hostile(move |request| {
        if !request.path().starts_with("/wiki/api/v2/spaces") {
            return not_found();
        }
        match request.param("cursor") {
            None => {
                let next = next(*own.lock().unwrap());
                if in_header {
                    json_with_link(&serde_json::json!({"results": [v2_space(1)]}), &next)
                } else {
                    json(&serde_json::json!({"results": [v2_space(1)], "_links": {"next": next}}))
                }
            }
            Some(_) => json(&serde_json::json!({"results": [v2_space(2)], "_links": {}})),
        }
    })
    .await;
    *port.lock().unwrap() = server.port;
    server
}

#[tokio::test]
async fn cross_origin_next_v2_is_rebased_or_refused() {
    for in_header in [true, false] {
        // Another port, under the base: rebased.
        let other = elsewhere().await;
        let other_url = other.url.clone();
        let site = v2_site_linking_to(in_header, move |_| {
            format!("{other_url}/wiki/api/v2/spaces?cursor=x")
        })
        .await;
        let client = connect(&format!("{}/wiki", site.url), Flavor::Cloud).await;
        let spaces = tokio::time::timeout(Duration::from_secs(10), client.list_spaces(&[]))
            .await
            .expect("bounded")
            .expect("the rebased link is followed");
        assert_eq!(keys(&spaces), ["S1", "S2"], "in_header={in_header}");
        assert_no_credential(&other);

        // `localhost`, under the base: rebased onto 127.0.0.1.
        let site = v2_site_linking_to(in_header, |port| {
            format!("http://localhost:{port}/wiki/api/v2/spaces?cursor=y")
        })
        .await;
        let client = connect(&format!("{}/wiki", site.url), Flavor::Cloud).await;
        let spaces = tokio::time::timeout(Duration::from_secs(10), client.list_spaces(&[]))
            .await
            .expect("bounded")
            .expect("the rebased link is followed");
        assert_eq!(keys(&spaces), ["S1", "S2"]);
        let seen = site.seen();
        assert!(
            seen.iter()
                .all(|r| r.host == format!("127.0.0.1:{}", site.port)),
            "{seen:?}"
        );

        // Another port, outside the base: refused.
        let other = elsewhere().await;
        let other_url = other.url.clone();
        let site = v2_site_linking_to(in_header, move |_| {
            format!("{other_url}/other/api/v2/spaces?cursor=z")
        })
        .await;
        let client = connect(&format!("{}/wiki", site.url), Flavor::Cloud).await;
        let (error, _) = must_fail(Duration::from_secs(10), client.list_spaces(&[])).await;
        let text = error.to_string();
        assert!(
            text.contains(&format!("{}/other/api/v2/spaces", other.url)),
            "{text}"
        );
        assert!(!text.contains(SECRET), "{text}");
        assert_no_credential(&other);
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials in the URL

#[tokio::test]
async fn userinfo_in_the_url_is_refused_without_echoing_the_password() {
    let server = hostile(|request| {
        if request.path().ends_with("/rest/api/space") {
            json(&serde_json::json!({"results": [v1_space(1)], "_links": {}}))
        } else {
            not_found()
        }
    })
    .await;
    let password = "pa55-in-the-url";
    let url = format!("http://me:{password}@127.0.0.1:{}/confluence", server.port);

    let config = ClientConfig::new(url.clone(), Credentials::basic(USER, SECRET));
    let error = Client::connect(config)
        .await
        .expect_err("a URL with credentials is refused");
    let text = error.to_string();
    eprintln!("library: {text}");
    assert!(matches!(error, ClientError::Config(_)), "{error:?}");
    assert!(!text.contains(password), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(server.count(), 0, "refused before any request");

    // The same through the binary: check, tree and mount refuse it in one line.
    let mountpoint = tempfile::tempdir().unwrap();
    let mountpoint = mountpoint.path().to_str().unwrap().to_string();
    let runs: [Vec<&str>; 3] = [
        vec!["check", "--url", &url],
        vec!["tree", "--url", &url],
        vec!["mount", &url, &mountpoint],
    ];
    for args in runs {
        let output = confluencefs(&args);
        let (out, err) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        eprintln!("{}: {}", args[0], err.trim_end());
        assert_eq!(output.status.code(), Some(1), "{args:?}: {out} {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("user name or password"),
            "{args:?}: the reason is given: {err}"
        );
        assert!(
            !out.contains(password) && !err.contains(password),
            "{out} {err}"
        );
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "{out} {err}"
        );
    }
    assert_eq!(server.count(), 0, "refused before any request");
}

fn confluencefs(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confluencefs"));
    command.args(args);
    for var in ["CONFLUENCE_URL", "CONFLUENCE_USER", "CONFLUENCE_TOKEN"] {
        command.env_remove(var);
    }
    command
        .env("CONFLUENCE_USER", USER)
        .env("CONFLUENCE_TOKEN", SECRET);
    command.output().expect("confluencefs runs")
}

// ---------------------------------------------------------------------------------------------
// One malformed entry

#[tokio::test]
async fn malformed_entries_v1_are_skipped() {
    let server = hostile(|request| {
        if !request
            .path()
            .starts_with("/rest/api/content/7/child/attachment")
        {
            return not_found();
        }
        let entry = |id: &str, size: serde_json::Value| {
            serde_json::json!({"id": id, "type": "attachment", "status": "current",
                "title": format!("f{id}.bin"), "version": {"number": 1},
                "extensions": {"mediaType": "application/octet-stream", "fileSize": size}})
        };
        let mut no_id = entry("x", 3.into());
        no_id.as_object_mut().unwrap().remove("id");
        json(&serde_json::json!({"results": [
            entry("1", 10.into()),
            entry("2", (-5).into()),
            entry("3", "many".into()),
            no_id,
            entry("4", 40.into()),
        ], "_links": {}}))
    })
    .await;
    let client = connect(&server.url, Flavor::DataCenter).await;
    let listed = client
        .list_attachments(&ContainerRef::page("7"))
        .await
        .expect("the good entries are listed");
    let got: Vec<(String, u64)> = listed.iter().map(|a| (a.id.clone(), a.size)).collect();
    assert_eq!(got, [("1".to_string(), 10), ("4".to_string(), 40)]);
}

#[tokio::test]
async fn malformed_entries_on_cloud_are_skipped() {
    // Cloud lists attachments through v1 too (the listing brings the `confluencefs` property),
    // paging by `_links.next`.
    let server = hostile(|request| {
        if !request
            .path()
            .starts_with("/wiki/rest/api/content/7/child/attachment")
        {
            return not_found();
        }
        let entry = |id: &str, size: serde_json::Value| {
            serde_json::json!({"id": id, "type": "attachment", "status": "current",
                "title": format!("{id}.bin"), "version": {"number": 1},
                "extensions": {"mediaType": "application/octet-stream", "fileSize": size}})
        };
        let first = serde_json::json!({"results": [
            entry("att1", 10.into()),
            entry("att2", (-1).into()),
            {"type": "attachment", "status": "current", "title": "no id.bin"},
        ], "_links": {"next": "/rest/api/content/7/child/attachment?start=3&limit=200"}});
        let second = serde_json::json!({"results": [
            entry("att3", "12kB".into()),
            entry("att4", 40.into()),
        ], "_links": {}});
        match request.param("start") {
            None => json(&first),
            Some(_) => json(&second),
        }
    })
    .await;
    let client = connect(&format!("{}/wiki", server.url), Flavor::Cloud).await;
    let listed = client
        .list_attachments(&ContainerRef::page("7"))
        .await
        .expect("the good entries are listed");
    let got: Vec<(String, u64)> = listed.iter().map(|a| (a.id.clone(), a.size)).collect();
    assert_eq!(got, [("att1".to_string(), 10), ("att4".to_string(), 40)]);
}

// ---------------------------------------------------------------------------------------------
// A size that contradicts itself

const LISTED: u64 = 500;

fn attachment(version: u64) -> Attachment {
    crate::support::attachment_of("file.bin", LISTED, version)
}

#[tokio::test]
async fn content_range_total_that_contradicts_the_size_is_an_error() {
    // The attachment is listed with 500 bytes. The server picks its answer by version:
    // version 2 says the file has 999 bytes (206 with Content-Range), version 3 sends a whole
    // 999-byte file (200, Range ignored), version 4 tells the truth, and version 1 (an older
    // version, whose size the client does not know) has 999 bytes.
    let server = hostile(|request| {
        if !request.path().starts_with("/download/attachments/1/file.bin") {
            return not_found();
        }
        let total: usize = match request.param("version").as_deref() {
            Some("2") | Some("3") | Some("1") => 999,
            _ => LISTED as usize,
        };
        if request.param("version").as_deref() == Some("3") {
            return http_response("200 OK", "application/octet-stream", &vec![7u8; total]);
        }
        let body = vec![7u8; 10];
        let mut out = format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-type: application/octet-stream\r\ncontent-range: bytes 0-9/{total}\r\ncontent-length: 10\r\nconnection: close\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    })
    .await;
    let client = connect(&server.url, Flavor::DataCenter).await;

    for version in [2, 3] {
        let error = tokio::time::timeout(
            Duration::from_secs(10),
            client.download_range(&attachment(version), version, 0, 10),
        )
        .await
        .expect("bounded")
        .expect_err("a contradicting size is an error");
        eprintln!("version {version}: {error}");
        assert!(
            matches!(error, ClientError::Decode { .. }),
            "version {version}: {error:?}"
        );
        assert!(error.to_string().contains("999"), "{error}");
    }

    // The truth is read as before.
    let bytes = client
        .download_range(&attachment(4), 4, 0, 10)
        .await
        .expect("a consistent size is fine");
    assert_eq!(&bytes[..], &[7u8; 10]);

    // An older version than the one the attachment describes has a size the client does not
    // know: nothing to contradict.
    let bytes = client
        .download_range(&attachment(4), 1, 0, 10)
        .await
        .expect("an older version's size is not checked against the current one");
    assert_eq!(bytes.len(), 10);
}

// ---------------------------------------------------------------------------------------------
// Answers too large to hold

#[tokio::test]
async fn an_answer_announced_larger_than_the_cap_is_refused_at_once() {
    // A listing that claims a gigabyte (listings carry page bodies now): refused from its
    // header, never read into memory, and not retried.
    let server = hostile(|_| {
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1073741824\r\nconnection: close\r\n\r\n{\"results\": ["
            .to_vec()
    })
    .await;
    let client = connect(&server.url, Flavor::DataCenter).await;
    let before = server.count();
    let (error, took) = must_fail(Duration::from_secs(10), client.list_spaces(&[])).await;
    assert!(error.to_string().contains("larger than"), "{error}");
    assert_eq!(server.count() - before, 1, "not retried");
    assert!(took < Duration::from_secs(5), "{took:?}");
}
