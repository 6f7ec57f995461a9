//! Test plumbing: a test server per test (stopped when the guard drops), a connected client,
//! and the server's hooks — the request log and fault injection.

use std::path::Path;
use std::time::Duration;

use confluence_testserver::{spawn, Config};
use confluencefs::confluence::{Client, ClientConfig, Credentials, Flavor, RetryPolicy};
use serde_json::Value;

pub(crate) const USER: &str = "demo@example.com";
pub(crate) const TOKEN: &str = "demo-token";
/// Data Center runs under a context path, as many real installations do.
pub(crate) const DC_CONTEXT: &str = "/confluence";

/// Files of the seed tree most tests use: `KEY/Page/file`; files at the space root belong to
/// the space's home page "KEY Home"; `@blog/DATE Title/` is a blog post.
pub(crate) fn seed_basic(root: &Path) {
    let files: &[(&str, &[u8])] = &[
        ("DOCS/welcome.txt", b"welcome to docs\n"),
        ("DOCS/Guide/notes.txt", b"hello notes\n"),
        ("DOCS/Guide/Chapter One/ch1.txt", b"chapter one\n"),
        ("DOCS/Reference/spec.txt", b"the spec\n"),
        (
            "DOCS/@blog/2026-01-15 Launch Notes/launch.txt",
            b"we launched\n",
        ),
        ("ENG/Runbook/run.sh", b"#!/bin/sh\necho run\n"),
    ];
    for (rel, data) in files {
        write(root, rel, data);
    }
    write(root, "DOCS/Guide/data.bin", &pattern(300_000));
}

pub(crate) fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Deterministic bytes where every offset has a distinct-looking value, so that a range taken
/// from the wrong place does not compare equal by accident.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + 3) % 251) as u8 ^ ((i >> 8) as u8))
        .collect()
}

/// Our flavor → the server's.
pub(crate) fn server_flavor(flavor: Flavor) -> confluence_testserver::Flavor {
    match flavor {
        Flavor::Cloud => confluence_testserver::Flavor::Cloud,
        Flavor::DataCenter => confluence_testserver::Flavor::Datacenter,
    }
}

/// A running test server; dropping it stops the server and removes its directories.
pub(crate) struct Server {
    pub flavor: Flavor,
    inner: confluence_testserver::ServerHandle,
    _dirs: Vec<tempfile::TempDir>,
    http: reqwest::Client,
}

impl Server {
    /// A server of `flavor` seeded with [`seed_basic`].
    pub(crate) fn start(flavor: Flavor) -> Server {
        Server::start_seeded(flavor, seed_basic)
    }

    /// A server seeded by `seed` (which fills the directory it is given).
    pub(crate) fn start_seeded(flavor: Flavor, seed: impl FnOnce(&Path)) -> Server {
        let seed_dir = tempfile::tempdir().unwrap();
        seed(seed_dir.path());
        let config = Config {
            flavor: server_flavor(flavor),
            context_path: if flavor == Flavor::DataCenter {
                DC_CONTEXT.to_string()
            } else {
                String::new()
            },
            seed_dir: Some(seed_dir.path().to_path_buf()),
            ..Default::default()
        };
        Server::start_with(flavor, config, vec![seed_dir])
    }

    pub(crate) fn start_with(
        flavor: Flavor,
        config: Config,
        dirs: Vec<tempfile::TempDir>,
    ) -> Server {
        let inner = spawn(config).expect("the test server starts");
        Server {
            flavor,
            inner,
            _dirs: dirs,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn base_url(&self) -> String {
        self.inner.base_url().to_string()
    }

    pub(crate) fn root_url(&self) -> String {
        self.inner.root_url().to_string()
    }

    /// A client config for this server with fast retries, so fault tests do not crawl.
    pub(crate) fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(self.base_url(), Credentials::basic(USER, TOKEN));
        config.retry = RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        };
        config
    }

    pub(crate) async fn client(&self) -> Client {
        let client = Client::connect(self.config()).await.expect("connects");
        assert_eq!(client.flavor(), self.flavor);
        client
    }

    /// The server's request log since the last [`clear_requests`](Self::clear_requests).
    pub(crate) async fn requests(&self) -> Vec<Logged> {
        let url = format!("{}/__testserver/requests", self.root_url());
        let log: Vec<Value> = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        log.into_iter().map(Logged::from).collect()
    }

    pub(crate) async fn clear_requests(&self) {
        let url = format!("{}/__testserver/requests", self.root_url());
        self.http
            .delete(url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Sets faults (`{"fail_next":[503],"retry_after":1}`, `{"reset_next":1}`, …); `{}` clears.
    pub(crate) async fn faults(&self, faults: Value) {
        let url = format!("{}/__testserver/faults", self.root_url());
        self.http
            .post(url)
            .json(&faults)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

/// One entry of the server's request log.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// Response body bytes actually sent.
    pub bytes: u64,
    /// Request body bytes the server has read so far.
    pub request_bytes: u64,
    pub origin: String,
    /// Requests the server was handling when this one arrived, itself included.
    pub concurrent: u64,
}

impl From<Value> for Logged {
    fn from(v: Value) -> Logged {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        Logged {
            method: s("method"),
            path: s("path"),
            query: s("query"),
            status: v.get("status").and_then(|x| x.as_u64()).unwrap_or(0) as u16,
            bytes: v.get("bytes").and_then(|x| x.as_u64()).unwrap_or(0),
            request_bytes: v.get("request_bytes").and_then(|x| x.as_u64()).unwrap_or(0),
            concurrent: v.get("concurrent").and_then(|x| x.as_u64()).unwrap_or(0),
            origin: s("origin"),
        }
    }
}

/// Runs an async test body once per flavor, each in its own test: `both_flavors!(name);`
/// expects `async fn name(flavor: Flavor)` in the same module.
#[macro_export]
macro_rules! both_flavors {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn cloud() {
                    super::$name(confluencefs::confluence::Flavor::Cloud).await
                }
                #[tokio::test]
                async fn datacenter() {
                    super::$name(confluencefs::confluence::Flavor::DataCenter).await
                }
            }
        )+
    };
}

/// The page titled `title` in space `key`, found by walking from the top-level pages.
pub(crate) async fn page_by_title(
    client: &Client,
    key: &str,
    title: &str,
) -> confluencefs::confluence::Page {
    let mut queue = client.list_top_level_pages(key).await.unwrap();
    while let Some(page) = queue.pop() {
        if page.title == title {
            return page;
        }
        queue.extend(client.list_child_pages(&page.id).await.unwrap());
    }
    panic!("no page {title:?} in {key}");
}

/// Reads a request's head (up to the blank line) from a raw test server's socket; `None`
/// when the client went away first.
pub(crate) async fn read_head(socket: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A minimal HTTP/1.1 server for behaviour the test server does not produce (a server that
/// ignores `Range`, an answer lost after the work was done). `answer(method, path, nth)` returns
/// the raw response, `nth` counting earlier requests with the same method and path. Every
/// connection is closed after one answer. Returns the base URL.
pub(crate) async fn plain_server(
    answer: impl Fn(&str, &str, usize) -> Vec<u8> + Send + Sync + 'static,
) -> String {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (answer, seen) = (answer.clone(), seen.clone());
            tokio::spawn(async move {
                let Some(text) = crate::support::read_head(&mut socket).await else {
                    return;
                };
                let mut words = text.split_whitespace();
                let method = words.next().unwrap_or("").to_string();
                let path = words.next().unwrap_or("").to_string();
                let nth = {
                    let mut seen = seen.lock().unwrap();
                    let count = seen.entry(format!("{method} {path}")).or_insert(0);
                    *count += 1;
                    *count - 1
                };
                let response = answer(&method, &path, nth);
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

/// A complete raw HTTP/1.1 response.
pub(crate) fn http_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The `/rest/api/user/current` answer `Client::connect` needs from a plain server.
pub(crate) fn current_user_response() -> Vec<u8> {
    http_response(
        "200 OK",
        "application/json",
        br#"{"type":"known","username":"plain","displayName":"Plain"}"#,
    )
}

/// An attachment `2` of page `1` as a listing would describe it, for clients pointed at a fake
/// server that serves its bytes.
pub(crate) fn attachment_of(
    title: &str,
    size: u64,
    version: u64,
) -> confluencefs::confluence::Attachment {
    confluencefs::confluence::Attachment {
        id: "2".into(),
        title: title.into(),
        container: confluencefs::confluence::ContainerRef::page("1"),
        media_type: "application/octet-stream".into(),
        size,
        version,
        modified: std::time::UNIX_EPOCH,
        comment: String::new(),
        author: None,
        download_path: None,
        web_url: None,
        status: "current".into(),
        file_id: None,
        fs: None,
    }
}

/// `listing` (one path per line, `find` style, maybe followed by more fields) without the page
/// text files: `DIR/DIR.md` in every page directory, `ROOT.md` for `./ROOT.md` where the listing
/// was made inside the page directory `root`. Tests that compare a copied tree with its source
/// use it, since a source tree has no page text.
pub(crate) fn without_page_text(listing: &str, root: &str) -> String {
    listing
        .lines()
        .filter(|line| !is_page_text_line(line, root))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn is_page_text_line(line: &str, root: &str) -> bool {
    let parts: Vec<&str> = line.split('/').collect();
    parts.windows(2).any(|pair| {
        let dir = if pair[0] == "." { root } else { pair[0] };
        let text = format!("{dir}.md");
        pair[1] == text || pair[1].starts_with(&format!("{text} "))
    })
}

/// Whether `name` in the directory `dir` is that page directory's text file.
pub(crate) fn is_page_text(dir: &std::path::Path, name: &str) -> bool {
    dir.file_name()
        .is_some_and(|d| format!("{}.md", d.to_string_lossy()) == name)
}
