//! `confluence-testserver`: the command line around `confluence_testserver::serve`.
//! It prints the base URL as the first line on stdout once it accepts connections, because
//! test harnesses and the demo script wait for exactly that line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use confluence_testserver::{serve, Config, Flavor};

/// A Confluence-compatible HTTP server for confluencefs's tests and demo.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Cloud only: address of the media origin that downloads redirect to.
    #[arg(long)]
    media_listen: Option<SocketAddr>,
    /// Which deployment to imitate: cloud or datacenter.
    #[arg(long, default_value = "cloud")]
    flavor: Flavor,
    /// Datacenter context path, e.g. /confluence (Cloud always uses /wiki).
    #[arg(long, default_value = "")]
    context_path: String,
    /// Keep content in this directory (state.json and blobs/) across restarts.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Import a directory tree: top-level folders are spaces, nested folders pages, files attachments.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Load the built-in demo content.
    #[arg(long)]
    demo: bool,
    /// Give pages seeded from folders generated storage-format bodies of a few KiB each
    /// (varied, deterministic), so that full-text search and `grep` have text to find.
    #[arg(long)]
    seed_page_bodies: bool,
    /// User name (Cloud: the account email).
    #[arg(long, default_value = "demo@example.com")]
    user: String,
    /// API token (or DC personal access token).
    #[arg(long, default_value = "demo-token")]
    token: String,
    /// Refuse uploads larger than this many bytes (413).
    #[arg(long)]
    max_attachment_size: Option<u64>,
    /// Largest v1 `limit` honoured; larger requests are clamped and the clamp echoed.
    #[arg(long, default_value_t = 200)]
    v1_limit_cap: usize,
    /// Lifetime of media download tokens, in seconds.
    #[arg(long, default_value_t = 600)]
    media_token_ttl: u64,
    /// Cloud: emit `/download/attachments/...` in v1 `_links.download` (the pre-2026 form).
    #[arg(long)]
    legacy_download_links: bool,
    /// Accept only `X-Atlassian-Token: no-check`, not `nocheck`.
    #[arg(long)]
    strict_xsrf: bool,
    /// Status for uploads over --max-attachment-size: 413, or 404 as the v1 spec documents.
    #[arg(long, default_value_t = 413, value_parser = parse_oversize_status)]
    oversize_status: u16,
}

fn parse_oversize_status(s: &str) -> Result<u16, String> {
    match s {
        "413" => Ok(413),
        "404" => Ok(404),
        other => Err(format!("{other}: expected 413 or 404")),
    }
}

impl From<Args> for Config {
    fn from(a: Args) -> Config {
        Config {
            listen: a.listen,
            media_listen: a.media_listen,
            flavor: a.flavor,
            context_path: a.context_path,
            data_dir: a.data,
            seed_dir: a.seed,
            demo: a.demo,
            seed_page_bodies: a.seed_page_bodies,
            user: a.user,
            token: a.token,
            max_attachment_size: a.max_attachment_size,
            v1_limit_cap: a.v1_limit_cap.max(1),
            media_token_ttl: Duration::from_secs(a.media_token_ttl),
            legacy_download_links: a.legacy_download_links,
            strict_xsrf: a.strict_xsrf,
            oversize_status: a.oversize_status,
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let config = Config::from(Args::parse());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("confluence-testserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(config, |url| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{url}");
        let _ = out.flush();
    }));
    // Everything that matters (listeners, state) is closed and written when `serve` returns;
    // idle blocking-pool threads need not be waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confluence-testserver: {e}");
            ExitCode::FAILURE
        }
    }
}
