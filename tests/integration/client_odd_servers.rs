//! Behaviour the test server does not produce, served by a minimal hand-written HTTP server:
//! a download answered with the whole file (200) despite `Range`, writes (DELETE, a page
//! move) whose answer is lost after the server acted on them, and uploads refused before the
//! server read them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use confluencefs::confluence::{
    Client, ClientConfig, ClientError, ContainerRef, Credentials, Flavor, NewAttachment,
    UploadSource,
};

use crate::support::{current_user_response, http_response, pattern, plain_server};

const LEN: usize = 50_000;

async fn connect(url: String) -> Client {
    let mut config = ClientConfig::new(url, Credentials::bearer("t"));
    config.flavor = Some(Flavor::DataCenter);
    config.retry.base_delay = std::time::Duration::from_millis(10);
    Client::connect(config).await.unwrap()
}

#[tokio::test]
async fn whole_file_answer_is_cut_to_the_range() {
    let downloads = Arc::new(AtomicUsize::new(0));
    let counter = downloads.clone();
    let url = plain_server(move |_, path, _| {
        if path.starts_with("/rest/api/user/current") {
            current_user_response()
        } else if path.starts_with("/download/attachments/1/file.bin") {
            counter.fetch_add(1, Ordering::SeqCst);
            http_response("200 OK", "application/octet-stream", &pattern(LEN))
        } else {
            http_response("404 Not Found", "text/plain", b"nope")
        }
    })
    .await;
    let client = connect(url).await;
    assert_eq!(client.current_user().name(), "Plain");
    let attachment = crate::support::attachment_of("file.bin", LEN as u64, 1);
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

#[tokio::test]
async fn delete_whose_answer_was_lost_is_done() {
    let deletes = Arc::new(AtomicUsize::new(0));
    let counter = deletes.clone();
    let not_found = br#"{"statusCode":404,"message":"No content found with id: ContentId{id=5}"}"#;
    let url = plain_server(move |method, path, nth| {
        if path.starts_with("/rest/api/user/current") {
            return current_user_response();
        }
        if method == "DELETE" {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        match (method, path, nth) {
            // The server trashed id 5, then the connection died inside its answer.
            ("DELETE", "/rest/api/content/5", 0) => {
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"tru".to_vec()
            }
            _ => http_response("404 Not Found", "application/json", not_found),
        }
    })
    .await;
    let client = connect(url).await;
    client.trash_content("5").await.unwrap();
    assert_eq!(
        deletes.load(Ordering::SeqCst),
        2,
        "retried once, then saw it gone"
    );

    // Without an earlier ambiguous attempt, 404 still means "not there".
    let error = client.trash_content("6").await.unwrap_err();
    assert!(
        matches!(error, ClientError::NotFound { .. }),
        "got {error:?}"
    );
    assert_eq!(deletes.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn move_whose_answer_was_lost_is_done() {
    let page = |version: u64, title: &str| {
        format!(
            r#"{{"id":"7","type":"page","status":"current","title":"{title}","space":{{"key":"S"}},
               "version":{{"number":{version},"when":"2026-01-01T00:00:00.000Z"}},
               "ancestors":[{{"id":"1"}}],"body":{{"storage":{{"value":"<p>x</p>"}}}}}}"#
        )
    };
    let puts = Arc::new(AtomicUsize::new(0));
    let counter = puts.clone();
    let url = plain_server(move |method, path, _| {
        if path.starts_with("/rest/api/user/current") {
            return current_user_response();
        }
        match method {
            "GET" if path.starts_with("/rest/api/content/7?") => {
                // Before any PUT: version 3, old title; after: version 4, new title.
                let body = if counter.load(Ordering::SeqCst) == 0 {
                    page(3, "Old")
                } else {
                    page(4, "New")
                };
                http_response("200 OK", "application/json", body.as_bytes())
            }
            "PUT" if path == "/rest/api/content/7" => {
                // The first PUT is applied, then its answer is cut; the retry meets a 409.
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{\"id\"".to_vec()
                } else {
                    http_response(
                        "409 Conflict",
                        "application/json",
                        br#"{"statusCode":409,"message":"Version must be incremented on update. Current version is: 4"}"#,
                    )
                }
            }
            _ => http_response("404 Not Found", "text/plain", b"nope"),
        }
    })
    .await;
    let client = connect(url).await;
    let moved = client.move_page("7", Some("New"), None).await.unwrap();
    assert_eq!(moved.title, "New");
    assert_eq!(moved.version, 4);
    assert_eq!(
        puts.load(Ordering::SeqCst),
        2,
        "retried once, then recognised its own write"
    );
}

/// A server may refuse an upload before it reads the body (a 404 for a page or an attachment
/// that is gone) and close the connection, and the client may then see the connection break
/// instead of the answer (a write into a closed connection). The check that follows meets the
/// 404 itself: that is the answer, as nothing can have landed where nothing is, not the broken
/// connection, which would make the spool retry an upload that can only be refused.
#[tokio::test]
async fn upload_cut_off_on_its_way_to_something_gone_is_not_found() {
    let posts = Arc::new(AtomicUsize::new(0));
    let counter = posts.clone();
    let not_found = br#"{"statusCode":404,"message":"No content found with id: ContentId{id=1}"}"#;
    let url = plain_server(move |method, path, _| {
        if path.starts_with("/rest/api/user/current") {
            return current_user_response();
        }
        if method == "POST" {
            // Refused unread: the connection closes without an answer reaching the client.
            counter.fetch_add(1, Ordering::SeqCst);
            return Vec::new();
        }
        http_response("404 Not Found", "application/json", not_found)
    })
    .await;
    let client = connect(url).await;

    let error = client
        .upload_attachment(
            &ContainerRef::page("1"),
            NewAttachment::from_bytes("orphan.txt", &b"orphan"[..]),
            true,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::NotFound { .. }),
        "got {error:?}"
    );
    assert_eq!(posts.load(Ordering::SeqCst), 1, "not sent again");

    let gone = crate::support::attachment_of("gone.txt", 6, 1);
    let error = client
        .upload_new_version(
            &gone,
            UploadSource::Bytes((&b"orphan"[..]).into()),
            None,
            true,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::NotFound { .. }),
        "got {error:?}"
    );
    assert_eq!(posts.load(Ordering::SeqCst), 2, "not sent again");
}

#[tokio::test]
async fn html_site_is_not_confluence() {
    let url = plain_server(|_, _, _| {
        http_response(
            "200 OK",
            "text/html",
            b"<!doctype html><title>Intranet</title><p>Welcome</p>",
        )
    })
    .await;
    let config = ClientConfig::new(format!("{url}/"), Credentials::basic("ann", "t"));
    let error = Client::connect(config).await.unwrap_err();
    match &error {
        ClientError::NotConfluence { url: named, detail } => {
            assert!(named.starts_with(&url), "{error}");
            assert!(detail.contains("text/html"), "{detail}");
        }
        other => panic!("expected NotConfluence, got {other:?}"),
    }
}
