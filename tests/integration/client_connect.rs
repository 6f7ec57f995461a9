//! Connecting: flavor and base detection from the URL shapes users type, refused credentials,
//! and URLs that are not Confluence.

use confluencefs::confluence::{Client, ClientConfig, ClientError, Credentials, Flavor};

use crate::both_flavors;
use crate::support::{Server, DC_CONTEXT, TOKEN, USER};

both_flavors!(
    detects_flavor_from_base_url,
    trailing_slashes_are_ignored,
    bad_credentials_are_unauthorized,
    forced_flavor_is_trusted
);

async fn detects_flavor_from_base_url(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    assert_eq!(client.flavor(), flavor);
    assert_eq!(
        client.base_url().as_str().trim_end_matches('/'),
        server.base_url().trim_end_matches('/')
    );
    assert_eq!(client.current_user().email.as_deref().unwrap_or(USER), USER);
}

async fn trailing_slashes_are_ignored(flavor: Flavor) {
    let server = Server::start(flavor);
    let mut config = server.config();
    config.url = format!("{}//", server.base_url());
    let client = Client::connect(config).await.unwrap();
    assert_eq!(client.flavor(), flavor);
    assert!(!client.base_url().path().ends_with("//"));
}

async fn bad_credentials_are_unauthorized(flavor: Flavor) {
    let server = Server::start(flavor);
    let mut config = server.config();
    config.credentials = Credentials::basic("mallory@example.com", "wrong-token");
    let error = Client::connect(config).await.unwrap_err();
    assert!(
        matches!(error, ClientError::Unauthorized { .. }),
        "got {error:?}"
    );
    let shown = error.to_string();
    assert!(shown.contains("mallory@example.com"), "{shown}");
    assert!(!shown.contains("wrong-token"), "the token leaked: {shown}");
    assert!(!shown.contains('\n'), "one line: {shown}");
}

async fn forced_flavor_is_trusted(flavor: Flavor) {
    let server = Server::start(flavor);
    server.clear_requests().await;
    let mut config = server.config();
    config.flavor = Some(flavor);
    let client = Client::connect(config).await.unwrap();
    assert_eq!(client.flavor(), flavor);
    // Only the credential check: no v2 probe.
    let log = server.requests().await;
    assert!(log.iter().all(|r| !r.path.contains("/api/v2/")), "{log:?}");
    assert_eq!(log.len(), 1, "{log:?}");
}

#[tokio::test]
async fn cloud_bare_host_finds_wiki() {
    let server = Server::start(Flavor::Cloud);
    let mut config = server.config();
    config.url = format!("{}/", server.root_url());
    let client = Client::connect(config).await.unwrap();
    assert_eq!(client.flavor(), Flavor::Cloud);
    assert_eq!(client.base_url().path(), "/wiki");
}

#[tokio::test]
async fn datacenter_context_path_is_kept() {
    let server = Server::start(Flavor::DataCenter);
    assert!(server.base_url().ends_with(DC_CONTEXT));
    let client = server.client().await;
    assert_eq!(client.base_url().path(), DC_CONTEXT);
    // The bare host of a DC with a context path is not Confluence: a clear error, not a guess.
    let mut config = server.config();
    config.url = server.root_url();
    let error = Client::connect(config).await.unwrap_err();
    assert!(
        matches!(error, ClientError::NotConfluence { .. }),
        "got {error:?}"
    );
    assert!(error.to_string().contains(&server.root_url()), "{error}");
}

#[tokio::test]
async fn datacenter_without_context_path() {
    let seed = tempfile::tempdir().unwrap();
    crate::support::seed_basic(seed.path());
    let config = confluence_testserver::Config {
        flavor: crate::support::server_flavor(Flavor::DataCenter),
        seed_dir: Some(seed.path().to_path_buf()),
        ..Default::default()
    };
    let server = Server::start_with(Flavor::DataCenter, config, vec![seed]);
    let client = server.client().await;
    assert_eq!(client.base_url().path(), "/");
    assert!(!client.list_spaces(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn connection_refused_names_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/confluence");
    let config = ClientConfig::new(url.clone(), Credentials::basic(USER, TOKEN));
    let started = std::time::Instant::now();
    let error = Client::connect(config).await.unwrap_err();
    assert!(
        matches!(error, ClientError::Transport { .. }),
        "got {error:?}"
    );
    assert!(error.to_string().contains(&url), "{error}");
    assert!(error.is_retryable());
    // Fails fast: no retry loop on a wrong URL.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn not_a_url_is_a_config_error() {
    let config = ClientConfig::new("confluence.example.com", Credentials::bearer("x"));
    let error = Client::connect(config).await.unwrap_err();
    assert!(matches!(error, ClientError::Config(_)), "got {error:?}");
}

#[tokio::test]
async fn datacenter_personal_access_token() {
    let server = Server::start(Flavor::DataCenter);
    let mut config = server.config();
    config.credentials = Credentials::bearer(TOKEN);
    let client = Client::connect(config).await.unwrap();
    assert_eq!(client.flavor(), Flavor::DataCenter);
    assert!(!client.list_spaces(&[]).await.unwrap().is_empty());

    let mut config = server.config();
    config.credentials = Credentials::bearer("not-the-token");
    let error = Client::connect(config).await.unwrap_err();
    assert!(
        matches!(error, ClientError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("personal access token"),
        "{error}"
    );
}
