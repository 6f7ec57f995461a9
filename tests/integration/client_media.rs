//! Cloud's download redirect: the media link it leads to is reused for a while (one round trip
//! per range instead of two), and an expired link is followed again, not failed.

use std::time::Duration;

use confluence_testserver::Config;
use confluencefs::confluence::Flavor;

use crate::support::{page_by_title, pattern, seed_basic, server_flavor, Server};

fn cloud_server(token_ttl: Duration) -> Server {
    let seed = tempfile::tempdir().unwrap();
    seed_basic(seed.path());
    let config = Config {
        flavor: server_flavor(Flavor::Cloud),
        seed_dir: Some(seed.path().to_path_buf()),
        media_token_ttl: token_ttl,
        ..Default::default()
    };
    Server::start_with(Flavor::Cloud, config, vec![seed])
}

#[tokio::test]
async fn ranges_of_one_version_follow_the_redirect_once() {
    let server = cloud_server(Duration::from_secs(600));
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let att = client
        .find_attachment(&guide.container(), "data.bin")
        .await
        .unwrap()
        .unwrap();
    server.clear_requests().await;
    let whole = pattern(300_000);
    for (offset, len) in [(0u64, 1000u64), (5000, 70_000), (299_000, 1000)] {
        let bytes = client
            .download_range(&att, att.version, offset, len)
            .await
            .unwrap();
        assert!(bytes[..] == whole[offset as usize..(offset + len) as usize]);
    }
    let log = server.requests().await;
    let redirects = log.iter().filter(|r| r.origin == "api").count();
    let media = log.iter().filter(|r| r.origin == "media").count();
    assert_eq!((redirects, media), (1, 3), "{log:?}");
}

#[tokio::test]
async fn an_expired_media_link_is_followed_again() {
    let server = cloud_server(Duration::from_millis(300));
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let att = client
        .find_attachment(&guide.container(), "data.bin")
        .await
        .unwrap()
        .unwrap();
    let first = client
        .download_range(&att, att.version, 0, 100)
        .await
        .unwrap();
    assert_eq!(first.len(), 100);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.clear_requests().await;
    let again = client
        .download_range(&att, att.version, 100, 100)
        .await
        .unwrap();
    assert!(again[..] == pattern(300_000)[100..200]);
    let log = server.requests().await;
    let statuses: Vec<(String, u16)> = log.iter().map(|r| (r.origin.clone(), r.status)).collect();
    assert_eq!(
        statuses,
        [
            ("media".to_string(), 401),
            ("api".to_string(), 302),
            ("media".to_string(), 206)
        ],
        "{log:?}"
    );
}
