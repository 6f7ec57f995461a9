//! A server that ignores `Range` and always sends the whole file with 200 (allowed by HTTP, and
//! what some proxies do): the client must skip to the offset itself. The test server always
//! honours ranges, so this uses a minimal hand-written HTTP/1.1 server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use confluencefs::confluence::{
    Attachment, Client, ClientConfig, ContainerRef, Credentials, Flavor,
};

use crate::support::pattern;

const LEN: usize = 50_000;

/// Serves `/rest/api/user/current` and any `/download/...` with the whole file; counts
/// downloads.
async fn start_plain_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let downloads = Arc::new(AtomicUsize::new(0));
    let counter = downloads.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buffer).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                let (content_type, body) = if path.starts_with("/rest/api/user/current") {
                    (
                        "application/json",
                        br#"{"type":"known","username":"plain","displayName":"Plain"}"#.to_vec(),
                    )
                } else if path.starts_with("/download/attachments/") {
                    counter.fetch_add(1, Ordering::SeqCst);
                    ("application/octet-stream", pattern(LEN))
                } else {
                    ("text/plain", b"nope".to_vec())
                };
                let status = if body == b"nope" {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                socket.write_all(head.as_bytes()).await.unwrap();
                socket.write_all(&body).await.unwrap();
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, downloads)
}

#[tokio::test]
async fn whole_file_answer_is_cut_to_the_range() {
    let (url, downloads) = start_plain_server().await;
    let mut config = ClientConfig::new(url, Credentials::bearer("t"));
    config.flavor = Some(Flavor::DataCenter);
    let client = Client::connect(config).await.unwrap();
    assert_eq!(client.current_user().name(), "Plain");
    let attachment = Attachment {
        id: "2".into(),
        title: "file.bin".into(),
        container: ContainerRef::page("1"),
        media_type: "application/octet-stream".into(),
        size: LEN as u64,
        version: 1,
        modified: UNIX_EPOCH,
        comment: String::new(),
        author: None,
        download_path: None,
        web_url: None,
        status: "current".into(),
        file_id: None,
    };
    let expected = pattern(LEN);
    let middle = client
        .download_range(&attachment, 1, 12_345, 1000)
        .await
        .unwrap();
    assert_eq!(&middle[..], &expected[12_345..13_345]);
    let tail = client
        .download_range(&attachment, 1, LEN as u64 - 7, 100)
        .await
        .unwrap();
    assert_eq!(&tail[..], &expected[LEN - 7..]);
    assert_eq!(downloads.load(Ordering::SeqCst), 2, "one request per range");
}
