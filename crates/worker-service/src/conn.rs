//! The connections a worker accepts: at most `max_connections` at a time, each closed when
//! it does not finish its HTTP/2 preface within the handshake timeout or sends nothing for
//! a whole idle interval, and never a busy loop when the process runs out of file descriptors.
//!
//! A live HTTP/2 client is never idle for long: the server pings every connection
//! ([`Limits::keepalive`]) and the client's answer is a read. So the idle timeout only
//! closes connections whose other end stopped answering (a hung or partitioned peer, or a
//! socket that a local process opened and left), and a valid client keeps being served
//! whatever such connections do: they hold a slot for a bounded time, never forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The HTTP/2 client preface (RFC 9113 §3.4) is 24 bytes: a connection has completed its
/// handshake, for the purposes of the handshake timeout, once it has sent that many.
const PREFACE_BYTES: u64 = 24;

/// How long the accept loop waits before trying again after the process or the system ran
/// out of file descriptors or buffers (accepting again at once would spin on a core).
const EXHAUSTED_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds a worker puts on its connections. [`Default`] suits a worker on a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections held at once (default 512); beyond it new ones wait in the kernel's
    /// backlog until a slot frees.
    pub max_connections: usize,
    /// Time a new connection has to send its HTTP/2 preface (default 5 s).
    pub handshake_timeout: Duration,
    /// An established connection that sends nothing for a whole such interval is closed
    /// (checked once per interval, so silence ends it after 60 to 120 s by default); the
    /// server's keepalive pings make a live client answer well within it.
    pub idle_timeout: Duration,
    /// Interval of the server's HTTP/2 keepalive pings (default 15 s); a ping unanswered
    /// for as long again closes the connection.
    pub keepalive: Duration,
    /// Once told to stop, time the worker gives calls in flight to finish (default 2 s);
    /// then it returns whatever they are doing (e.g. a delivery to a hung peer).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            keepalive: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

impl Limits {
    /// These limits with `max_connections` lowered to fit the process's soft limit on open
    /// files (`RLIMIT_NOFILE`, read from `/proc/self/limits`), keeping a quarter of it (at
    /// most 64) for everything else a worker opens: so that the limit, not the operating
    /// system, is what refuses a connection too many. Unchanged where the limit cannot be
    /// read.
    pub fn within_open_file_limit(mut self) -> Self {
        if let Some(soft) = open_file_limit() {
            let reserve = (soft / 4).min(64);
            self.max_connections = self.max_connections.min(soft.saturating_sub(reserve).max(1));
        }
        self
    }
}

/// The soft limit on open files, from the "Max open files" line of `/proc/self/limits`.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Whether an accept error means the process or system is out of a resource, so that the
/// next accept would fail the same way at once.
fn exhausted(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM (Linux errno values).
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

/// Accepts connections on `listener` into a stream for tonic, under `limits`, until the
/// stream is dropped. `stopping` turns true when the server begins to shut down: a
/// connection still in its handshake is then closed at once.
pub(crate) fn incoming(
    listener: TcpListener,
    limits: Limits,
    stopping: watch::Receiver<bool>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Guarded>> {
    let (tx, rx) = mpsc::channel(1);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot { Ok(s) => s, Err(_) => return },
                () = tx.closed() => return,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) if exhausted(&e) => {
                    tokio::time::sleep(EXHAUSTED_BACKOFF).await;
                    continue;
                }
                // A connection reset before it was accepted, and the like: that one only.
                Err(_) => continue,
            };
            // Nagle's algorithm meets delayed ACKs and a small answer can wait 40 ms (seen:
            // the first phase of a run took 44 ms instead of 2).
            let _ = stream.set_nodelay(true);
            let guarded = Guarded::new(stream, slot, limits, stopping.clone());
            if tx.send(Ok(guarded)).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// An accepted connection holding its slot, with the handshake and idle deadlines.
pub(crate) struct Guarded {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    limits: Limits,
    /// Bytes read while in the handshake (not counted after it).
    received: u64,
    /// Whether anything was read since the deadline was last set: the deadline is checked
    /// when it fires rather than moved on every read, which keeps reads free of timer work.
    read_since_check: bool,
    deadline: Pin<Box<Sleep>>,
    /// Until the handshake completes: resolves when the server starts shutting down.
    stopping: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Guarded {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, limits: Limits, mut stopping: watch::Receiver<bool>) -> Self {
        let deadline = Box::pin(tokio::time::sleep(limits.handshake_timeout));
        let stopping = Box::pin(async move {
            // An error means the server is gone: stopping too.
            let _ = stopping.wait_for(|s| *s).await;
        });
        Self { stream, _slot: slot, limits, received: 0, read_since_check: false, deadline, stopping: Some(stopping) }
    }

    fn established(&self) -> bool {
        self.stopping.is_none()
    }

    /// Notes `read` bytes; ends the handshake once the preface is in.
    fn note_read(&mut self, read: usize) {
        if self.established() {
            self.read_since_check = true;
            return;
        }
        self.received = self.received.saturating_add(read as u64);
        if self.received >= PREFACE_BYTES {
            // Established: from now on only silence closes it.
            self.stopping = None;
            let next = Instant::now() + self.limits.idle_timeout;
            self.deadline.as_mut().reset(next);
        }
    }

    /// While the read is pending: why the connection must end now, if it must.
    fn must_end(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if let Some(stopping) = self.stopping.as_mut() {
            if stopping.as_mut().poll(cx).is_ready() {
                return Some(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the worker is stopping and this connection never completed its handshake",
                ));
            }
        }
        while self.deadline.as_mut().poll(cx).is_ready() {
            if !self.established() {
                let limit = self.limits.handshake_timeout;
                return Some(io::Error::new(io::ErrorKind::TimedOut, format!("no HTTP/2 handshake within {limit:?}")));
            }
            if !std::mem::take(&mut self.read_since_check) {
                let limit = self.limits.idle_timeout;
                return Some(io::Error::new(io::ErrorKind::TimedOut, format!("nothing read for {limit:?}")));
            }
            // Read from since the last check: check again one interval on (polled again
            // by the loop, so that the new deadline wakes this task).
            let next = Instant::now() + self.limits.idle_timeout;
            self.deadline.as_mut().reset(next);
        }
        None
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if read > 0 {
                    self.note_read(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.must_end(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}
