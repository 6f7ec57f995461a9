//! Uploads: the XSRF header, non-ASCII names and comments, duplicates, new versions, streaming
//! from a file, several files per request, rename/move, and retry without duplicates.

use serde_json::json;

use confluencefs::confluence::{ClientError, Flavor, NewAttachment, UploadSource};

use crate::both_flavors;
use crate::support::{page_by_title, pattern, Server, TOKEN, USER};

both_flavors!(
    multipart_without_xsrf_header_is_refused,
    non_ascii_names_and_comments_round_trip,
    duplicate_upload_is_already_exists,
    new_version_keeps_id_and_bumps_version,
    upload_streams_a_local_file,
    several_files_in_one_request,
    rename_and_move_attachment,
    upload_after_5xx_is_retried_without_duplicate
);

async fn multipart_without_xsrf_header_is_refused(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let url = format!(
        "{}/rest/api/content/{}/child/attachment",
        server.base_url(),
        guide.id
    );
    let form = || {
        reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("raw.txt"),
            )
            .text("minorEdit", "true")
    };
    let http = reqwest::Client::new();
    let refused = http
        .post(&url)
        .basic_auth(USER, Some(TOKEN))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let accepted = http
        .post(&url)
        .basic_auth(USER, Some(TOKEN))
        .header("X-Atlassian-Token", "no-check")
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);

    // The client's own uploads pass the same guard (it 403s without the header).
    let uploaded = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_bytes("ok.txt", "ok"),
            true,
        )
        .await
        .unwrap();
    client
        .upload_new_version(&uploaded, UploadSource::Bytes("ok2".into()), None, true)
        .await
        .unwrap();
    let log = server.requests().await;
    let posts: Vec<_> = log.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 4, "{log:#?}");
    assert!(posts[2..].iter().all(|r| r.status == 200), "{log:#?}");
}

async fn non_ascii_names_and_comments_round_trip(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let name = "Grüße – 報告 ✓ (draft) #1.txt";
    let comment = "Kommentar: äöü – 日本語 – emoji 🚀";
    let body = "Inhalt: ÄÖÜ\n".as_bytes();
    let uploaded = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_bytes(name, body.to_vec()).with_comment(comment),
            false,
        )
        .await
        .unwrap();
    assert_eq!(uploaded.title, name);
    assert_eq!(uploaded.comment, comment);

    let listed = client
        .find_attachment(&guide.container(), name)
        .await
        .unwrap()
        .expect("found by its UTF-8 name");
    assert_eq!(listed.id, uploaded.id);
    assert_eq!(listed.comment, comment);
    assert_eq!(listed.size, body.len() as u64);
    let bytes = client
        .download_range(&listed, listed.version, 0, 1 << 20)
        .await
        .unwrap();
    assert_eq!(&bytes[..], body);
}

async fn duplicate_upload_is_already_exists(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let error = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_bytes("notes.txt", "again"),
            true,
        )
        .await
        .unwrap_err();
    match &error {
        ClientError::AlreadyExists {
            status, message, ..
        } => {
            assert_eq!(*status, 400);
            assert!(
                message.contains("Cannot add a new attachment with same file name"),
                "{message}"
            );
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert!(!error.is_retryable());
    // The existing attachment is untouched.
    let notes = client
        .find_attachment(&guide.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notes.version, 1);
}

async fn new_version_keeps_id_and_bumps_version(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let notes = client
        .find_attachment(&guide.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();
    let updated = client
        .upload_new_version(
            &notes,
            UploadSource::Bytes("new notes\n".into()),
            Some("zweite Fassung ✓"),
            false,
        )
        .await
        .unwrap();
    assert_eq!(updated.id, notes.id);
    assert_eq!(updated.version, notes.version + 1);
    assert_eq!(updated.size, 10);
    let fetched = client.get_attachment(&notes.id).await.unwrap();
    assert_eq!(fetched.version, notes.version + 1);
    assert_eq!(fetched.comment, "zweite Fassung ✓");
    let all = client.list_attachments(&guide.container()).await.unwrap();
    assert_eq!(
        all.iter().filter(|a| a.title == "notes.txt").count(),
        1,
        "still one attachment"
    );
}

async fn upload_streams_a_local_file(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let len = 3 * 1024 * 1024 + 17;
    let content = pattern(len);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &content).unwrap();
    let uploaded = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_path("big.bin", file.path()),
            true,
        )
        .await
        .unwrap();
    assert_eq!(uploaded.size, len as u64);
    let back = client
        .download_range(&uploaded, uploaded.version, 0, len as u64)
        .await
        .unwrap();
    assert!(back[..] == content[..], "uploaded bytes differ");

    let missing = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_path("nope.bin", "/nonexistent/nope.bin"),
            true,
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, ClientError::Io { .. }), "{missing:?}");
}

async fn several_files_in_one_request(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let reference = page_by_title(&client, "DOCS", "Reference").await;
    server.clear_requests().await;
    let files = vec![
        NewAttachment::from_bytes("a.txt", "aaa").with_comment("first"),
        NewAttachment::from_bytes("b.txt", "bb"),
        NewAttachment::from_bytes("c.txt", "c").with_comment("third ✓"),
    ];
    let uploaded = client
        .upload_attachments(&reference.container(), files, true)
        .await
        .unwrap();
    let names: Vec<&str> = uploaded.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(names, ["a.txt", "b.txt", "c.txt"]);
    let log = server.requests().await;
    assert_eq!(
        log.iter().filter(|r| r.method == "POST").count(),
        1,
        "{log:#?}"
    );
    let c = client
        .find_attachment(&reference.container(), "c.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.comment, "third ✓");
    assert_eq!(c.size, 1);
}

async fn rename_and_move_attachment(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let reference = page_by_title(&client, "DOCS", "Reference").await;
    let notes = client
        .find_attachment(&guide.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();

    let renamed = client
        .rename_attachment(&notes, Some("renamed ü.txt"), None)
        .await
        .unwrap();
    assert_eq!(renamed.id, notes.id);
    assert_eq!(renamed.title, "renamed ü.txt");
    assert!(client
        .find_attachment(&guide.container(), "notes.txt")
        .await
        .unwrap()
        .is_none());

    let current = client.get_attachment(&notes.id).await.unwrap();
    let moved = client
        .rename_attachment(&current, None, Some(&reference.container()))
        .await
        .unwrap();
    assert_eq!(moved.container, reference.container());
    let there = client
        .find_attachment(&reference.container(), "renamed ü.txt")
        .await
        .unwrap()
        .expect("moved to Reference");
    assert_eq!(there.id, notes.id);
    let bytes = client
        .download_range(&there, there.version, 0, 100)
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"hello notes\n");

    // A stale version is a typed conflict.
    let newer = client
        .upload_new_version(&there, UploadSource::Bytes("v2".into()), None, true)
        .await
        .unwrap();
    assert!(newer.version > there.version);
    let error = client
        .rename_attachment(&there, Some("stale.txt"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Conflict { .. }),
        "got {error:?}"
    );
}

async fn upload_after_5xx_is_retried_without_duplicate(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    server.clear_requests().await;
    server.faults(json!({"fail_next": [500]})).await;
    let uploaded = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_bytes("retry.txt", "retry me"),
            true,
        )
        .await
        .unwrap();
    assert_eq!(uploaded.title, "retry.txt");
    let log = server.requests().await;
    let posts: Vec<u16> = log
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [500, 200], "{log:#?}");
    // It looked before sending again.
    let first_post = log.iter().position(|r| r.method == "POST").unwrap();
    assert!(
        log[first_post + 1..]
            .iter()
            .take_while(|r| r.method != "POST")
            .any(|r| r.query.contains("filename=")),
        "{log:#?}"
    );
    let all = client.list_attachments(&guide.container()).await.unwrap();
    assert_eq!(all.iter().filter(|a| a.title == "retry.txt").count(), 1);
}

both_flavors!(
    lost_upload_answer_is_not_uploaded_twice,
    lost_new_version_answer_is_not_uploaded_twice
);

async fn lost_upload_answer_is_not_uploaded_twice(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    server.clear_requests().await;
    // The server stores the upload, then the connection dies half-way through its answer.
    server.faults(json!({"reset_next": 1})).await;
    let uploaded = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_bytes("once.txt", "only once"),
            true,
        )
        .await
        .unwrap();
    assert_eq!(uploaded.title, "once.txt");
    assert_eq!(uploaded.size, 9);
    let log = server.requests().await;
    assert_eq!(
        log.iter().filter(|r| r.method == "POST").count(),
        1,
        "the upload was not sent again: {log:#?}"
    );
    let all = client.list_attachments(&guide.container()).await.unwrap();
    assert_eq!(all.iter().filter(|a| a.title == "once.txt").count(), 1);
}

async fn lost_new_version_answer_is_not_uploaded_twice(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let notes = client
        .find_attachment(&guide.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();
    server.clear_requests().await;
    server.faults(json!({"reset_next": 1})).await;
    let updated = client
        .upload_new_version(&notes, UploadSource::Bytes("v2 bytes".into()), None, true)
        .await
        .unwrap();
    assert_eq!(updated.version, notes.version + 1);
    let log = server.requests().await;
    assert_eq!(
        log.iter().filter(|r| r.method == "POST").count(),
        1,
        "{log:#?}"
    );
    let versions = client.list_attachment_versions(&notes.id).await.unwrap();
    assert_eq!(versions.len(), 2, "exactly one new version: {versions:?}");
}

#[tokio::test]
async fn strict_xsrf_server_accepts_our_header() {
    let seed = tempfile::tempdir().unwrap();
    crate::support::seed_basic(seed.path());
    let config = confluence_testserver::Config {
        flavor: crate::support::server_flavor(Flavor::DataCenter),
        seed_dir: Some(seed.path().to_path_buf()),
        strict_xsrf: true,
        ..Default::default()
    };
    let server = Server::start_with(Flavor::DataCenter, config, vec![seed]);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_bytes("s.txt", "s"),
            true,
        )
        .await
        .unwrap();
}

both_flavors!(oversize_upload_is_too_large);

async fn oversize_upload_is_too_large(flavor: Flavor) {
    let seed = tempfile::tempdir().unwrap();
    crate::support::seed_basic(seed.path());
    let config = confluence_testserver::Config {
        flavor: crate::support::server_flavor(flavor),
        seed_dir: Some(seed.path().to_path_buf()),
        max_attachment_size: Some(1000),
        ..Default::default()
    };
    let server = Server::start_with(flavor, config, vec![seed]);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    server.clear_requests().await;
    let error = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_bytes("huge.bin", vec![7u8; 5000]),
            true,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::TooLarge { .. }),
        "got {error:?}"
    );
    assert!(!error.is_retryable());
    let log = server.requests().await;
    assert_eq!(log.len(), 1, "refusals are not retried: {log:#?}");
    assert!(client
        .find_attachment(&guide.container(), "huge.bin")
        .await
        .unwrap()
        .is_none());
}

both_flavors!(awkward_filenames_round_trip);

/// Quotes, percent signs, spaces and NFC non-ASCII survive the multipart header and the
/// `filename=` filter (docs/CONFLUENCE.md §5.7: `%2F` is allowed literally).
async fn awkward_filenames_round_trip(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    for name in [
        "say \"hi\".txt",
        "100% sure %2F not a slash.txt",
        "  spaced  out  .txt",
        "ünïcødé – 中文 – ελληνικά.md",
        "semi;colon=equals&amp.txt",
    ] {
        let uploaded = client
            .upload_attachment(
                &guide.container(),
                NewAttachment::from_bytes(name, name.as_bytes().to_vec()),
                true,
            )
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(uploaded.title, name);
        let found = client
            .find_attachment(&guide.container(), name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name:?} not found by name"));
        let bytes = client
            .download_range(&found, found.version, 0, 1000)
            .await
            .unwrap();
        assert_eq!(&bytes[..], name.as_bytes(), "{name:?}");
    }
}
