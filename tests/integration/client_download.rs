//! Downloads: byte ranges, the Cloud redirect without a credential leak, resuming a cut body,
//! older versions and streaming.

use futures_util::StreamExt;
use serde_json::json;

use confluencefs::confluence::{Attachment, Client, ClientError, Flavor, UploadSource};

use crate::both_flavors;
use crate::support::{page_by_title, pattern, Server};

both_flavors!(
    ranges_match_the_seeded_bytes,
    range_past_the_end_is_416,
    redirect_to_media_carries_no_credential,
    reset_mid_download_is_resumed,
    streaming_whole_file,
    older_version_by_number
);

const DATA_LEN: usize = 300_000;

async fn data_bin(client: &Client) -> Attachment {
    let guide = page_by_title(client, "DOCS", "Guide").await;
    client
        .find_attachment(&guide.container(), "data.bin")
        .await
        .unwrap()
        .expect("data.bin is seeded")
}

async fn ranges_match_the_seeded_bytes(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let expected = pattern(DATA_LEN);
    let att = data_bin(&client).await;
    assert_eq!(att.size, DATA_LEN as u64);

    let first = client
        .download_range(&att, att.version, 0, 4096)
        .await
        .unwrap();
    assert_eq!(&first[..], &expected[..4096]);
    let middle = client
        .download_range(&att, att.version, 123_457, 70_001)
        .await
        .unwrap();
    assert_eq!(&middle[..], &expected[123_457..193_458]);
    let last = client
        .download_range(&att, att.version, DATA_LEN as u64 - 10, 10)
        .await
        .unwrap();
    assert_eq!(&last[..], &expected[DATA_LEN - 10..]);
    // Asking beyond the end returns what there is.
    let tail = client
        .download_range(&att, att.version, DATA_LEN as u64 - 5, 1000)
        .await
        .unwrap();
    assert_eq!(&tail[..], &expected[DATA_LEN - 5..]);

    // The server honoured Range: no full-file transfers.
    let log = server.requests().await;
    assert!(
        log.iter()
            .filter(|r| r.status == 200 && (r.origin == "media" || r.path.contains("/download/")))
            .count()
            == 0,
        "{log:#?}"
    );
}

async fn range_past_the_end_is_416(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let att = data_bin(&client).await;
    let error = client
        .download_range(&att, att.version, DATA_LEN as u64 + 100, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::RangeNotSatisfiable { .. }),
        "got {error:?}"
    );
    assert_eq!(error.status(), Some(416));
    if let ClientError::RangeNotSatisfiable { size, .. } = error {
        assert_eq!(size, Some(DATA_LEN as u64), "the size from Content-Range");
    }
}

async fn redirect_to_media_carries_no_credential(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let att = data_bin(&client).await;
    server.clear_requests().await;
    let bytes = client
        .download_range(&att, att.version, 10, 100)
        .await
        .unwrap();
    assert_eq!(&bytes[..], &pattern(DATA_LEN)[10..110]);
    let log = server.requests().await;
    match flavor {
        Flavor::Cloud => {
            // The API answers 302; the media host (which 401s any Authorization) answers 206.
            assert_eq!(log.len(), 2, "{log:#?}");
            assert_eq!(log[0].origin, "api");
            assert_eq!(log[0].status, 302);
            assert!(log[0].path.ends_with("/download"), "{log:#?}");
            assert!(log[0].query.contains("version=1"), "{log:#?}");
            assert_eq!(log[1].origin, "media");
            assert_eq!(log[1].status, 206, "{log:#?}");
        }
        Flavor::DataCenter => {
            assert_eq!(log.len(), 1, "{log:#?}");
            assert!(log[0].path.contains("/download/attachments/"), "{log:#?}");
            assert_eq!(log[0].status, 206);
        }
    }
}

async fn reset_mid_download_is_resumed(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let att = data_bin(&client).await;
    server.clear_requests().await;
    // The fault cuts the next N responses of either origin. On Cloud the first is the body-less
    // 302 of the API, so cut two to be sure the media body is among them.
    let cuts = if flavor == Flavor::Cloud { 2 } else { 1 };
    server.faults(json!({ "reset_next": cuts })).await;
    let bytes = client
        .download_range(&att, att.version, 0, DATA_LEN as u64)
        .await
        .unwrap();
    assert_eq!(bytes.len(), DATA_LEN);
    assert!(
        bytes[..] == pattern(DATA_LEN)[..],
        "bytes differ after resume"
    );
    let log = server.requests().await;
    let byte_requests: Vec<_> = log
        .iter()
        .filter(|r| r.origin == "media" || r.path.contains("/download/attachments/"))
        .collect();
    assert!(
        byte_requests.len() >= 2,
        "the cut body was fetched again: {log:#?}"
    );
    assert!(
        byte_requests[0].bytes < DATA_LEN as u64,
        "the first body was cut: {log:#?}"
    );
    // Resumed from the first missing byte, not from the start.
    let sent: u64 = byte_requests.iter().map(|r| r.bytes).sum();
    assert_eq!(sent, DATA_LEN as u64, "{log:#?}");
}

async fn streaming_whole_file(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let att = data_bin(&client).await;
    let mut stream = client
        .download_stream(&att, att.version, 1000, None)
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    assert!(chunks >= 1);
    assert!(
        got[..] == pattern(DATA_LEN)[1000..],
        "streamed bytes differ"
    );
}

async fn older_version_by_number(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let notes = client
        .find_attachment(&guide.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();
    let v2 = client
        .upload_new_version(
            &notes,
            UploadSource::Bytes(b"second version, longer\n".to_vec().into()),
            Some("v2"),
            true,
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let old = client.download_range(&v2, 1, 0, 1 << 20).await.unwrap();
    assert_eq!(&old[..], b"hello notes\n");
    let new = client.download_range(&v2, 2, 0, 1 << 20).await.unwrap();
    assert_eq!(&new[..], b"second version, longer\n");
    let versions = client.list_attachment_versions(&v2.id).await.unwrap();
    let numbers: Vec<u64> = versions.iter().map(|v| v.number).collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(versions[1].message, "v2");
}

/// The media host really refuses a credential, so the redirect test above means something.
#[tokio::test]
async fn media_host_refuses_authorization() {
    let server = Server::start(Flavor::Cloud);
    let client = server.client().await;
    let att = data_bin(&client).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let api = format!(
        "{}/rest/api/content/{}/child/attachment/{}/download?version=1",
        server.base_url(),
        att.container.id,
        att.id
    );
    let redirect = http
        .get(&api)
        .basic_auth(crate::support::USER, Some(crate::support::TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"].to_str().unwrap().to_string();
    assert!(
        !location.starts_with(&server.root_url()),
        "another origin: {location}"
    );
    let with_auth = http
        .get(&location)
        .basic_auth(crate::support::USER, Some(crate::support::TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(with_auth.status(), 401);
    let without = http.get(&location).send().await.unwrap();
    assert_eq!(without.status(), 200);
}
