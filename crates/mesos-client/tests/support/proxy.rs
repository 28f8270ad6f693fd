//! A fault-injecting HTTP proxy for tests, placed between our client and the real Mesos
//! master (or between our test executor and its real agent): every fault is exercised against real Mesos behaviour, and nothing in it
//! imitates the master — it forwards requests and responses byte for byte unless told to:
//!
//! - [`Proxy::split_records`]: re-chunk event streams into pieces of 1–13 bytes, so records
//!   (and their length prefixes) straddle HTTP chunks;
//! - [`Proxy::drop_streams`]: cut every open event stream mid-flight (the client sees the
//!   connection fail; the master sees the framework disconnect);
//! - [`Proxy::stall_next_stream`]: on the next SUBSCRIBE, tell the client heartbeats come
//!   every 0.5 s (the SUBSCRIBED event rewritten), pass `n` records, then forward nothing
//!   while keeping the connection open — heartbeats stop arriving;
//! - [`Proxy::redirect_next`]: answer the next request with a 307 to the real master, with
//!   a protocol-relative `Location` as Mesos writes it;
//! - [`Proxy::swallow_reconciliation_answers`]: drop the next `n` UPDATE events that answer
//!   a RECONCILE (the master sends them once, unreliably).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesos_client::codec::ContentType;
use mesos_client::recordio::{Decoder, encode};
use mesos_client::v1::scheduler::Event;
use tokio::sync::{mpsc, watch};

/// The heartbeat interval a stalled stream's SUBSCRIBED announces.
pub const STALLED_HEARTBEAT_SECONDS: f64 = 0.5;

#[derive(Default)]
struct Faults {
    split: AtomicBool,
    redirect_next: AtomicBool,
    stall_next: Mutex<Option<usize>>,
    swallow: AtomicUsize,
    swallowed: AtomicUsize,
    subscribes: AtomicUsize,
    redirects: AtomicUsize,
    drops: AtomicUsize,
}

struct Shared {
    upstream: String,
    faults: Faults,
    drop_streams: watch::Sender<u64>,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// A proxy listening on 127.0.0.1; dropped, it stops accepting.
pub struct Proxy {
    addr: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Proxy {
    /// A proxy to the master at `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            faults: Faults::default(),
            drop_streams: watch::channel(0).0,
            http: Client::builder(TokioExecutor::new()).build_http(),
        });
        let serving = shared.clone();
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |r| handle(r, shared.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Self { addr, shared, server }
    }

    /// The proxy's `host:port`, to give the client as its master.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Re-chunk event streams into tiny pieces (from the next bytes on).
    pub fn split_records(&self, on: bool) {
        self.shared.faults.split.store(on, Ordering::SeqCst);
    }

    /// Answer the next request with a 307 to the real master.
    pub fn redirect_next(&self) {
        self.shared.faults.redirect_next.store(true, Ordering::SeqCst);
    }

    /// Stall the next event stream after `records` records.
    pub fn stall_next_stream(&self, records: usize) {
        *self.shared.faults.stall_next.lock().unwrap() = Some(records);
    }

    /// Drop the next `n` reconciliation answers on their way to the client.
    pub fn swallow_reconciliation_answers(&self, n: usize) {
        self.shared.faults.swallow.store(n, Ordering::SeqCst);
    }

    /// Reconciliation answers dropped so far.
    pub fn swallowed(&self) -> usize {
        self.shared.faults.swallowed.load(Ordering::SeqCst)
    }

    /// Cut every open event stream now.
    pub fn drop_streams(&self) {
        self.shared.drop_streams.send_modify(|n| *n += 1);
    }

    /// Event streams (SUBSCRIBE answers) passed through so far.
    pub fn subscribes(&self) -> usize {
        self.shared.faults.subscribes.load(Ordering::SeqCst)
    }

    /// 307s answered so far.
    pub fn redirects(&self) -> usize {
        self.shared.faults.redirects.load(Ordering::SeqCst)
    }

    /// Streams cut so far.
    pub fn drops(&self) -> usize {
        self.shared.faults.drops.load(Ordering::SeqCst)
    }
}

type ProxyBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed()
}

fn plain(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut r = Response::new(full(text));
    *r.status_mut() = status;
    r
}

async fn handle(request: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<ProxyBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(plain(StatusCode::BAD_REQUEST, "unreadable request body".into()));
    };
    if shared.faults.redirect_next.swap(false, Ordering::SeqCst) {
        shared.faults.redirects.fetch_add(1, Ordering::SeqCst);
        let mut r = plain(StatusCode::TEMPORARY_REDIRECT, String::new());
        r.headers_mut().insert(header::LOCATION, format!("//{}{path}", shared.upstream).parse().unwrap());
        return Ok(r);
    }
    let mut forward = Request::builder().method(parts.method).uri(format!("http://{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            forward = forward.header(name, value);
        }
    }
    let response = match shared.http.request(forward.body(Full::new(body)).unwrap()).await {
        Ok(r) => r,
        Err(e) => return Ok(plain(StatusCode::BAD_GATEWAY, format!("proxy: upstream failed: {e}"))),
    };
    let (parts, body) = response.into_parts();
    // Event streams (the scheduler's and the executor's SUBSCRIBE) are 200 and chunked;
    // every other answer has a length.
    let streaming = parts.status == StatusCode::OK && !parts.headers.contains_key(header::CONTENT_LENGTH);
    if !streaming {
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Ok(Response::from_parts(parts, full(bytes)));
    }
    shared.faults.subscribes.fetch_add(1, Ordering::SeqCst);
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(ContentType::from_mime)
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel(256);
    let stall = shared.faults.stall_next.lock().unwrap().take();
    tokio::spawn(pump(body, tx, shared.clone(), content_type, stall));
    Ok(Response::from_parts(parts, ChannelBody(rx).boxed()))
}

type Piece = Result<Frame<Bytes>, std::io::Error>;

/// Moves one event stream from the master to the client, injecting the faults.
async fn pump(
    mut upstream: Incoming,
    tx: mpsc::Sender<Piece>,
    shared: Arc<Shared>,
    content_type: ContentType,
    stall: Option<usize>,
) {
    let mut dropped = shared.drop_streams.subscribe();
    dropped.mark_unchanged();
    let mut records = Decoder::default();
    let mut passed = 0;
    loop {
        let frame = tokio::select! {
            _ = dropped.changed() => {
                shared.faults.drops.fetch_add(1, Ordering::SeqCst);
                // An error frame makes the server abort the connection mid-stream.
                let _ = tx.send(Err(std::io::Error::other("stream cut by the test proxy"))).await;
                return;
            }
            () = tx.closed() => return,
            frame = upstream.frame() => frame,
        };
        let data = match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(e)) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                return;
            }
            None => return,
        };
        records.push(&data);
        loop {
            let record = match records.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let record = match stall {
                Some(limit) if passed >= limit => continue, // stalled: the master's heartbeats go nowhere
                Some(_) if passed == 0 => slow_heartbeats(&record, content_type),
                _ => record.to_vec(),
            };
            if shared.faults.swallow.load(Ordering::SeqCst) > 0
                && is_reconciliation_answer(&record, content_type)
                && shared.faults.swallow.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
            {
                shared.faults.swallowed.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            passed += 1;
            if !send(&tx, Bytes::from(encode(&record)), &shared).await {
                return;
            }
        }
    }
}

/// Whether a record is a scheduler UPDATE answering a RECONCILE.
fn is_reconciliation_answer(record: &[u8], content_type: ContentType) -> bool {
    use mesos_client::v1::task_status::Reason;
    content_type
        .decode::<Event>(record)
        .is_ok_and(|e| e.update.is_some_and(|u| u.status.reason == Some(Reason::Reconciliation as i32)))
}

/// The SUBSCRIBED event with [`STALLED_HEARTBEAT_SECONDS`] as its heartbeat interval.
fn slow_heartbeats(record: &[u8], content_type: ContentType) -> Vec<u8> {
    let mut event: Event = content_type.decode(record).expect("the master's SUBSCRIBED decodes");
    if let Some(s) = event.subscribed.as_mut() {
        s.heartbeat_interval_seconds = Some(STALLED_HEARTBEAT_SECONDS);
    }
    content_type.encode(&event).unwrap()
}

/// Sends `data` whole, or in pieces of 1, 2, 3, 5, 7, 11, 13 bytes when splitting.
async fn send(tx: &mpsc::Sender<Piece>, mut data: Bytes, shared: &Shared) -> bool {
    if !shared.faults.split.load(Ordering::SeqCst) {
        return tx.send(Ok(Frame::data(data))).await.is_ok();
    }
    for size in [1, 2, 3, 5, 7, 11, 13].into_iter().cycle() {
        if data.is_empty() {
            return true;
        }
        let piece = data.split_to(size.min(data.len()));
        if tx.send(Ok(Frame::data(piece))).await.is_err() {
            return false;
        }
    }
    true
}

/// A response body fed by the pump.
struct ChannelBody(mpsc::Receiver<Piece>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Piece>> {
        self.0.poll_recv(cx)
    }
}
