//! Retries: 429 and 503 wait for Retry-After, other 5xx back off, POSTs are not repeated blindly,
//! and attempts are bounded.

use std::time::{Duration, Instant};

use serde_json::json;

use confluencefs::confluence::{ClientError, ContentKind, Flavor};

use crate::both_flavors;
use crate::support::Server;

both_flavors!(
    rate_limit_waits_for_retry_after,
    unavailable_waits_for_retry_after,
    server_errors_are_retried,
    retries_are_bounded,
    create_after_500_looks_then_retries
);

async fn rate_limit_waits_for_retry_after(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    server.clear_requests().await;
    server
        .faults(json!({"fail_next": [429], "retry_after": 1}))
        .await;
    let started = Instant::now();
    let spaces = client.list_spaces(&[]).await.unwrap();
    let waited = started.elapsed();
    assert!(!spaces.is_empty());
    // Our backoff in tests is ≤ 200 ms, so a wait of about a second is Retry-After's.
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    let statuses: Vec<u16> = server.requests().await.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

async fn unavailable_waits_for_retry_after(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    server.clear_requests().await;
    server
        .faults(json!({"fail_next": [503], "retry_after": 1}))
        .await;
    let started = Instant::now();
    client.get_space("DOCS").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950));
    let statuses: Vec<u16> = server.requests().await.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200]);
}

async fn server_errors_are_retried(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    server.clear_requests().await;
    server.faults(json!({"fail_next": [500, 502, 504]})).await;
    let space = client.get_space("DOCS").await.unwrap();
    assert_eq!(space.key, "DOCS");
    let statuses: Vec<u16> = server.requests().await.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 502, 504, 200]);
}

async fn retries_are_bounded(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    server.clear_requests().await;
    server
        .faults(json!({"fail_next": [500, 500, 500, 500, 500, 500, 500]}))
        .await;
    let error = client.get_space("DOCS").await.unwrap_err();
    assert!(
        matches!(error, ClientError::Service { status: 500, .. }),
        "got {error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(server.requests().await.len(), 5, "default: 5 attempts");
    server.faults(json!({})).await;
}

async fn create_after_500_looks_then_retries(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let space = client.get_space("DOCS").await.unwrap();
    server.clear_requests().await;
    server.faults(json!({"fail_next": [500]})).await;
    let page = client
        .create_page(
            "DOCS",
            ContentKind::Page,
            space.homepage_id.as_deref(),
            "Once",
        )
        .await
        .unwrap();
    assert_eq!(page.title, "Once");
    let log = server.requests().await;
    let shape: Vec<(&str, u16)> = log.iter().map(|r| (r.method.as_str(), r.status)).collect();
    // The failed POST, a lookup by title (nothing there), then the POST again.
    assert_eq!(
        shape,
        [("POST", 500), ("GET", 200), ("POST", 200)],
        "{log:#?}"
    );
    assert!(log[1].query.contains("title=Once"), "{log:#?}");
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let server = Server::start(Flavor::DataCenter);
    let mut config = server.config();
    config.max_metadata_requests = 2;
    let client = confluencefs::confluence::Client::connect(config)
        .await
        .unwrap();
    server.faults(json!({"latency_ms": 200})).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_space("DOCS").await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // Six 200 ms requests, two at a time: at least three rounds.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(590), "took only {took:?}");
    server.faults(json!({})).await;
}
