//! Slow servers do not hold the client up: listings do not wait behind slow downloads, and a
//! download that trickles, or falls silent after its headers, fails in bounded time with an
//! error that says so, while a slow download that keeps moving completes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confluencefs::confluence::{Attachment, Client, ClientConfig, Credentials, Flavor};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{page_by_title, pattern, write, Server};

#[tokio::test]
async fn a_listing_does_not_wait_behind_twelve_slow_downloads() {
    let server = Server::start_seeded(Flavor::DataCenter, |root| {
        write(root, "DOCS/Home.txt", b"home\n");
        for i in 0..12 {
            write(root, &format!("DOCS/Big/f{i:02}.bin"), &pattern(20_000));
        }
    });
    let client = server.client().await;
    let page = page_by_title(&client, "DOCS", "Big").await;
    let files = client.list_attachments(&page.container()).await.unwrap();
    assert_eq!(files.len(), 12);

    // Every download waits this long for its headers; listings are not slowed.
    let latency = Duration::from_secs(3);
    server
        .faults(json!({"path_contains": "/download/attachments/", "latency_ms": latency.as_millis() as u64}))
        .await;
    server.clear_requests().await;
    let started = Instant::now();
    let downloads: Vec<_> = files
        .iter()
        .map(|file| {
            let (client, file) = (client.clone(), file.clone());
            tokio::spawn(async move { client.download_range(&file, file.version, 0, 20_000).await })
        })
        .collect();
    // Wait until the downloads hold every request slot they can get.
    loop {
        let sent = server
            .requests()
            .await
            .iter()
            .filter(|r| r.path.contains("/download/"))
            .count();
        if sent >= 8 {
            break;
        }
        assert!(started.elapsed() < latency, "the downloads were never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let asked = Instant::now();
    let spaces = client.list_spaces(&[]).await.unwrap();
    let took = asked.elapsed();
    assert_eq!(spaces.len(), 1);
    assert!(
        took < latency / 4 && took < Duration::from_secs(1),
        "a listing took {took:?} behind downloads delayed by {latency:?}"
    );
    eprintln!("listing during 12 slow downloads: {took:?} (downloads delayed {latency:?})");
    for download in downloads {
        assert_eq!(download.await.unwrap().unwrap().len(), 20_000);
    }
}

/// How a fake download server sends its body after the headers.
#[derive(Clone, Copy)]
enum Drip {
    /// `bytes` bytes every `every`.
    Every { bytes: usize, every: Duration },
    /// Nothing at all.
    Silent,
}

/// A server that answers `user/current`, and every other request with a 206 for `[0, len)` of
/// a `len`-byte file whose body drips as `drip` says. Returns the URL and a count of the
/// download requests it received.
async fn drip_server(len: usize, drip: Drip) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let downloads = Arc::new(AtomicUsize::new(0));
    let counter = downloads.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Some(text) = crate::support::read_head(&mut socket).await else {
                    return;
                };
                if text.contains("/rest/api/user/current") {
                    let body = br#"{"type":"known","username":"drip","displayName":"Drip"}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body).await;
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\ncontent-type: application/octet-stream\r\ncontent-range: bytes 0-{}/{len}\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n",
                    len - 1
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let body = pattern(len);
                match drip {
                    Drip::Silent => {
                        // Holds the connection open until the client gives up.
                        let _ = socket.read(&mut [0u8; 64]).await;
                    }
                    Drip::Every { bytes, every } => {
                        for piece in body.chunks(bytes) {
                            if socket.write_all(piece).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(every).await;
                        }
                    }
                }
            });
        }
    });
    (url, downloads)
}

fn file(len: usize) -> Attachment {
    crate::support::attachment_of("slow.bin", len as u64, 1)
}

/// A client that wants at least 1 KiB/s over each second, with quick retries.
async fn connect(url: String) -> Client {
    let mut config = ClientConfig::new(url, Credentials::bearer("t"));
    config.flavor = Some(Flavor::DataCenter);
    config.retry.base_delay = Duration::from_millis(10);
    config.read_timeout = Duration::from_secs(5);
    config.min_transfer_rate = 1024;
    config.rate_window = Duration::from_secs(1);
    Client::connect(config).await.unwrap()
}

/// Downloads the whole `len`-byte file, failing the test if that takes longer than `bound`.
async fn timed_download(client: &Client, len: usize, bound: Duration) -> (Duration, String) {
    let started = Instant::now();
    let outcome =
        tokio::time::timeout(bound, client.download_range(&file(len), 1, 0, len as u64)).await;
    let took = started.elapsed();
    match outcome {
        Err(_) => panic!("the download was still running after {bound:?}"),
        Ok(Ok(bytes)) => (took, format!("ok: {} bytes", bytes.len())),
        Ok(Err(error)) => (took, error.to_string()),
    }
}

#[tokio::test]
async fn a_trickling_download_fails_in_bounded_time() {
    // 4 bytes a second: the read timeout never trips, and 1,000 bytes would take 250 s.
    let drip = Drip::Every {
        bytes: 1,
        every: Duration::from_millis(250),
    };
    let (url, downloads) = drip_server(1000, drip).await;
    let client = connect(url).await;
    let (took, outcome) = timed_download(&client, 1000, Duration::from_secs(15)).await;
    eprintln!("trickle: failed after {took:?}: {outcome}");
    assert!(outcome.contains("slower than"), "{outcome}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(
        downloads.load(Ordering::SeqCst),
        1,
        "a slow server is not asked again"
    );
}

#[tokio::test]
async fn a_download_silent_after_its_headers_fails_in_bounded_time() {
    let (url, _) = drip_server(1000, Drip::Silent).await;
    let client = connect(url).await;
    let (took, outcome) = timed_download(&client, 1000, Duration::from_secs(15)).await;
    eprintln!("silent: failed after {took:?}: {outcome}");
    assert!(outcome.contains("slower than"), "{outcome}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn a_slow_download_that_keeps_moving_completes() {
    // 2,000 bytes a second, twice the minimum, for three seconds.
    let drip = Drip::Every {
        bytes: 100,
        every: Duration::from_millis(50),
    };
    let (url, _) = drip_server(6000, drip).await;
    let client = connect(url).await;
    let (took, outcome) = timed_download(&client, 6000, Duration::from_secs(15)).await;
    assert_eq!(outcome, "ok: 6000 bytes", "after {took:?}");
}
