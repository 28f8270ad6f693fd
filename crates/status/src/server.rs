//! The status server: axum on a runtime of its own, on its own thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tokio::sync::oneshot;

use crate::Board;

/// Why the status server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The address could not be bound.
    #[error("cannot serve the status page on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the system said.
        reason: String,
    },
    /// The server's thread or runtime could not start.
    #[error("cannot start the status server: {0}")]
    Start(String),
}

/// A running status server; stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The address actually bound (the port chosen, when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Requests in flight get a moment; a browser's idle connection does not hold the
        // run's exit.
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Serves `board` on `addr`: `/` (the page), `/api/status` (its figures as JSON), `/parts`
/// (the page's plot and tables, as the page's script fetches them), `/plot.svg` and
/// `/metrics` (Prometheus). Returns once the address is bound.
pub fn serve(addr: &str, board: Arc<Board>) -> Result<Server, StatusError> {
    let bind_error = |reason: String| StatusError::Bind { addr: addr.to_string(), reason };
    let listener = std::net::TcpListener::bind(addr).map_err(|e| bind_error(e.to_string()))?;
    listener.set_nonblocking(true).map_err(|e| bind_error(e.to_string()))?;
    let bound = listener.local_addr().map_err(|e| bind_error(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| StatusError::Start(e.to_string()))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = Router::new()
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/parts", get(parts))
        .route("/plot.svg", get(plot))
        .route("/metrics", get(metrics))
        .with_state(board);
    let thread = std::thread::Builder::new()
        .name("status".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "status server: cannot listen");
                        return;
                    }
                };
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                    tracing::error!(error = %e, "status server stopped");
                }
            });
        })
        .map_err(|e| StatusError::Start(e.to_string()))?;
    tracing::info!(%bound, "status page served");
    Ok(Server { addr: bound, stop: Some(stop), thread: Some(thread) })
}

async fn page(State(board): State<Arc<Board>>) -> Html<String> {
    Html(board.html())
}

fn json(value: &serde_json::Value) -> impl IntoResponse + use<> {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], value.to_string())
}

async fn status(State(board): State<Arc<Board>>) -> impl IntoResponse {
    json(&board.status())
}

async fn parts(State(board): State<Arc<Board>>) -> impl IntoResponse {
    json(&board.parts())
}

async fn plot(State(board): State<Arc<Board>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], board.plot(900, 380))
}

async fn metrics(State(board): State<Arc<Board>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], board.metrics_text())
}
