//! Behaviour the test server does not produce, served by a minimal hand-written HTTP server:
//! a download answered with the whole file (200) despite `Range`, and a DELETE whose answer
//! is lost after the server acted on it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use confluencefs::confluence::{
    Attachment, Client, ClientConfig, ClientError, ContainerRef, Credentials, Flavor,
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
