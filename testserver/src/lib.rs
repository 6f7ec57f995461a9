//! A Confluence-compatible HTTP server for confluencefs's tests and demo.
//!
//! It speaks the Cloud or the Datacenter dialect of the REST API (v1, plus v2 on Cloud) from
//! an in-memory store whose records can persist in a data directory, with attachment bytes
//! always on disk. It is written from Atlassian's API reference, not from the client, so that
//! it catches the client's mistakes instead of repeating them. Test hooks under
//! `/__testserver/` log requests and inject faults.
//!
//! `spawn` runs a server on its own thread and runtime (for in-process tests); `serve` runs it
//! on the caller's runtime until SIGTERM/SIGINT (for the binary).

mod api;
mod blobs;
mod clock;
mod config;
mod cql;
mod demo;
mod demo_pages;
mod filler;
mod hooks;
mod model;
mod persist;
mod seed;
mod storage;
mod store;

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use config::{Config, Flavor};

use api::{App, Shared};
use blobs::BlobDir;
use hooks::Hooks;
use persist::Persister;
use store::Store;

/// The addresses of a running server.
#[derive(Clone, Debug)]
pub struct Bound {
    /// The REST base: the root plus the context path (`/wiki` on Cloud).
    pub base_url: String,
    /// `http://ADDR` of the API listener, without a path.
    pub root_url: String,
    /// `http://ADDR` of the media origin (Cloud only).
    pub media_url: Option<String>,
}

/// A server running on its own thread; dropping it shuts the server down.
pub struct ServerHandle {
    bound: Bound,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The REST base URL a client connects to.
    pub fn base_url(&self) -> &str {
        &self.bound.base_url
    }

    /// `http://ADDR` of the API listener, without a path.
    pub fn root_url(&self) -> String {
        self.bound.root_url.clone()
    }

    /// `http://ADDR` of the media origin that downloads redirect to; `None` on Data Center.
    pub fn media_url(&self) -> Option<String> {
        self.bound.media_url.clone()
    }

    /// Stops listening, ends open connections, writes the state, and waits for all of it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts a server on its own thread with its own runtime; returns once it accepts connections.
pub fn spawn(config: Config) -> io::Result<ServerHandle> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<Bound>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("confluence-testserver".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let err_tx = ready_tx.clone();
            let result = rt.block_on(run(
                config,
                async {
                    let _ = stop_rx.await;
                },
                move |b| {
                    let _ = ready_tx.send(Ok(b.clone()));
                },
            ));
            if let Err(e) = result {
                let _ = err_tx.send(Err(e));
            }
            rt.shutdown_timeout(Duration::from_millis(100));
        })?;
    match ready_rx.recv() {
        Ok(Ok(bound)) => Ok(ServerHandle {
            bound,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other(
                "the server thread ended before it was ready",
            ))
        }
    }
}

/// Runs a server until SIGTERM or SIGINT; `ready` gets the base URL once it accepts connections.
pub async fn serve(config: Config, ready: impl FnOnce(&str)) -> io::Result<()> {
    // Register the handlers before anyone can learn the URL: a SIGTERM sent right after the
    // URL is printed must stop the server cleanly, not kill it.
    let stop = shutdown_signal()?;
    run(config, stop, |b| ready(&b.base_url)).await
}

#[cfg(unix)]
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn trim_trailing_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(pq) = pq.parse::<axum::http::uri::PathAndQuery>() {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// Loads (or seeds) the store for a configuration.
fn open_store(config: &Config, blobs: &BlobDir) -> io::Result<Store> {
    if let Some(dir) = &config.data_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("data dir {}: {e}", dir.display())))?;
        if let Some(store) = Persister::load(dir)? {
            return Ok(store);
        }
    }
    let mut store = Store::new();
    if config.demo {
        demo::load(&mut store, blobs, config.flavor)?;
    }
    if let Some(seed) = &config.seed_dir {
        seed::import(&mut store, seed, config.seed_page_bodies).map_err(|e| {
            io::Error::new(e.kind(), format!("seeding from {}: {e}", seed.display()))
        })?;
    }
    Ok(store)
}

async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(&Bound),
) -> io::Result<()> {
    let blobs = BlobDir::open(config.data_dir.as_deref())?;
    let store = open_store(&config, &blobs)?;
    let store = Arc::new(Mutex::new(store));
    let persister = Arc::new(Persister::new(config.data_dir.as_deref()));
    // A fresh site gets its first snapshot; a loaded one folds its journal into a new one.
    persister.write_now(&store)?;

    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let root_url = format!("http://{addr}");
    let context = config.effective_context();
    let media_listener = match config.flavor {
        Flavor::Cloud => {
            let at = config
                .media_listen
                .unwrap_or_else(|| std::net::SocketAddr::new(addr.ip(), 0));
            Some(TcpListener::bind(at).await?)
        }
        Flavor::Datacenter => None,
    };
    let media_url = match &media_listener {
        Some(l) => Some(format!("http://{}", l.local_addr()?)),
        None => None,
    };
    let bound = Bound {
        base_url: format!("{root_url}{context}"),
        root_url,
        media_url: media_url.clone(),
    };
    let app: Shared = Arc::new(App {
        config,
        base_url: bound.base_url.clone(),
        context: context.clone(),
        media_url,
        store: store.clone(),
        blobs,
        persister: persister.clone(),
        media_grants: Mutex::new(HashMap::new()),
        hooks: Arc::new(Hooks::default()),
    });

    let writer = tokio::spawn(persister.clone().run(store.clone()));

    let confluence = api::routes(&app);
    let confluence = if context.is_empty() {
        confluence
    } else {
        Router::new()
            .nest(&context, confluence)
            .fallback(api::not_found)
    };
    let main_router = confluence
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            (app.clone(), "api"),
            hooks::observe,
        ))
        .merge(hooks::routes())
        .with_state(app.clone());

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::new();
    {
        let mut rx = stop_tx.subscribe();
        // Jersey matches `/rest/api/space/` like `/rest/api/space`; axum does not, so trailing
        // slashes are trimmed before routing.
        let main_service = tower::ServiceExt::map_request(main_router, trim_trailing_slash);
        servers.push(tokio::spawn(
            axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service(main_service),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.recv().await;
            })
            .into_future(),
        ));
    }
    if let Some(l) = media_listener {
        let media_router = api::media_routes()
            .layer(axum::middleware::from_fn_with_state(
                (app.clone(), "media"),
                hooks::observe,
            ))
            .with_state(app.clone());
        let mut rx = stop_tx.subscribe();
        servers.push(tokio::spawn(
            axum::serve(l, media_router)
                .with_graceful_shutdown(async move {
                    let _ = rx.recv().await;
                })
                .into_future(),
        ));
    }

    ready(&bound);
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    // Open downloads get a moment to finish; then they are cut when the runtime stops.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        for s in servers {
            let _ = s.await;
        }
    })
    .await;
    tracing::info!("listeners closed");
    writer.abort();
    persister.write_now(&store)?;
    tracing::info!("state written");
    Ok(())
}
