//! Real workers on loopback over real gRPC: delivery between peers, the token, the
//! protocol version, and bad payloads (each refused with a clear status, the worker
//! serving on).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use worker_service::pb::ConfigureRequest;
use worker_service::{
    BatchDecoder, ClientError, Job, Limits, Outbox, Registry, ShardWork, WorkError, WorkerClient, WorkerConfig,
};

const TOKEN: &str = "0123456789abcdef";

/// A job: "scatter n" sends 0..n to shard i % shards; "sum" adds up what arrived. It
/// works ahead on an announced "scatter" ("aheads" answers how often it did, and how often
/// that work was taken up and undone).
struct Scatter {
    shards: u32,
    total: u64,
    early: Option<Vec<u8>>,
    aheads: [u64; 3],
}

impl Scatter {
    fn scatter(&self, payload: &[u8], outbox: &mut Outbox<Vec<u64>>) -> Result<(), WorkError> {
        let n = decode_values(payload)?.first().copied().unwrap_or(0);
        let mut per: Vec<Vec<u8>> = vec![Vec::new(); self.shards as usize];
        for i in 0..n {
            per[(i % u64::from(self.shards)) as usize].extend_from_slice(&i.to_le_bytes());
        }
        for (to, batch) in per.into_iter().enumerate() {
            outbox.send(to as u32, batch);
        }
        Ok(())
    }
}

fn decode_values(payload: &[u8]) -> Result<Vec<u64>, WorkError> {
    if payload.len() % 8 != 0 {
        return Err(WorkError::Invalid {
            what: "delivery",
            why: format!("{} bytes is not a list of u64", payload.len()),
        });
    }
    Ok(payload.chunks(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

impl ShardWork for Scatter {
    type Batch = Vec<u64>;

    fn phase(
        &mut self,
        phase: &str,
        payload: &[u8],
        deliveries: Vec<Vec<u64>>,
        outbox: &mut Outbox<Vec<u64>>,
    ) -> Result<Vec<u8>, WorkError> {
        for values in deliveries {
            self.total += values.iter().sum::<u64>();
        }
        if let Some(early) = self.early.take() {
            if phase == "scatter" && early == payload {
                self.aheads[1] += 1;
                return Ok(Vec::new());
            }
            self.aheads[2] += 1;
        }
        match phase {
            "scatter" => {
                self.scatter(payload, outbox)?;
                Ok(Vec::new())
            }
            "aheads" => Ok(self.aheads.iter().flat_map(|n| n.to_le_bytes()).collect()),
            "keep" => {
                // Its own batch, already decoded: it never becomes bytes.
                outbox.keep(decode_values(payload)?);
                Ok(Vec::new())
            }
            "sum" => Ok(self.total.to_le_bytes().to_vec()),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_millis(
                    decode_values(payload)?.first().copied().unwrap_or(0),
                ));
                Ok(Vec::new())
            }
            other => Err(WorkError::UnknownPhase(other.to_string())),
        }
    }

    fn ahead(&mut self, phase: &str, payload: &[u8], outbox: &mut Outbox<Vec<u64>>) -> Result<bool, WorkError> {
        if phase != "scatter" {
            return Ok(false);
        }
        self.scatter(payload, outbox)?;
        // Its note to every peer: the payload it worked on.
        outbox.note(payload.to_vec());
        self.early = Some(payload.to_vec());
        self.aheads[0] += 1;
        Ok(true)
    }

    /// A chained step goes on unless it scatters nothing; every peer's note must be this
    /// shard's own payload.
    fn go_on(&mut self, notes: &[(u32, worker_service::Bytes)]) -> Result<bool, WorkError> {
        let own = self.early.clone().unwrap_or_default();
        if notes.len() + 1 != self.shards as usize || notes.iter().any(|(_, n)| **n != *own) {
            return Err(WorkError::Invalid { what: "notes", why: format!("{notes:?} against {own:?}") });
        }
        if decode_values(&own)?.first().copied().unwrap_or(0) > 0 {
            return Ok(true);
        }
        self.early = None;
        self.aheads[2] += 1;
        Ok(false)
    }
}

struct Values;

impl BatchDecoder<Vec<u64>> for Values {
    fn decode(&self, payload: &[u8]) -> Result<Vec<u64>, WorkError> {
        decode_values(payload)
    }
}

/// Every value a [`Recorded`] decoder decoded, in this test process (both workers' alike).
static DECODED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());
static DECODED_MORE: std::sync::Condvar = std::sync::Condvar::new();

/// Decodes like [`Values`], and records what it decoded in [`DECODED`].
struct Recorded;

impl BatchDecoder<Vec<u64>> for Recorded {
    fn decode(&self, payload: &[u8]) -> Result<Vec<u64>, WorkError> {
        let values = decode_values(payload)?;
        DECODED.lock().unwrap().extend(&values);
        DECODED_MORE.notify_all();
        Ok(values)
    }
}

/// A job of two shards that releases its step's delivery early: "send n" sends `n + shard`
/// to the other shard; worked ahead, it releases that delivery, then waits until the other
/// shard has decoded it (so the step fails unless the delivery went while the job still
/// worked), and with an odd `n` then sends another batch, which a released step may not.
/// "sum" adds up what arrived.
struct Early {
    shard: u32,
    total: u64,
    early: Option<Vec<u8>>,
}

impl ShardWork for Early {
    type Batch = Vec<u64>;

    fn phase(
        &mut self,
        phase: &str,
        payload: &[u8],
        deliveries: Vec<Vec<u64>>,
        outbox: &mut Outbox<Vec<u64>>,
    ) -> Result<Vec<u8>, WorkError> {
        self.total += deliveries.iter().flatten().sum::<u64>();
        if self.early.take().is_some_and(|early| phase == "send" && early == payload) {
            return Ok(Vec::new());
        }
        match phase {
            "send" => {
                let n = decode_values(payload)?.first().copied().unwrap_or(0);
                outbox.send(1 - self.shard, (n + u64::from(self.shard)).to_le_bytes().to_vec());
                Ok(Vec::new())
            }
            "sum" => Ok(self.total.to_le_bytes().to_vec()),
            other => Err(WorkError::UnknownPhase(other.to_string())),
        }
    }

    fn ahead(&mut self, phase: &str, payload: &[u8], outbox: &mut Outbox<Vec<u64>>) -> Result<bool, WorkError> {
        if phase != "send" {
            return Ok(false);
        }
        let n = decode_values(payload)?.first().copied().unwrap_or(0);
        let value = n + u64::from(self.shard);
        outbox.send(1 - self.shard, value.to_le_bytes().to_vec());
        outbox.release();
        // The other shard decodes this very value only if it got the delivery now.
        let decoded = DECODED.lock().unwrap();
        let (decoded, waited) =
            DECODED_MORE.wait_timeout_while(decoded, Duration::from_secs(20), |d| !d.contains(&value)).unwrap();
        if waited.timed_out() {
            return Err(WorkError::Failed(format!("{value} was released but not delivered while the job worked")));
        }
        drop(decoded);
        if n % 2 == 1 {
            outbox.send(1 - self.shard, value.to_le_bytes().to_vec());
        }
        self.early = Some(payload.to_vec());
        Ok(true)
    }
}

struct Jobs;

impl Registry for Jobs {
    fn create(&self, job: &str, _config: &[u8], shard: u32, shards: u32) -> Result<Job, WorkError> {
        match job {
            "scatter" => Ok(Job::new(Scatter { shards, total: 0, early: None, aheads: [0; 3] }, Values)),
            "early" => Ok(Job::new(Early { shard, total: 0, early: None }, Recorded)),
            other => Err(WorkError::UnknownJob(other.to_string())),
        }
    }
}

async fn start(max_message_bytes: usize) -> (String, JoinHandle<()>) {
    start_with(max_message_bytes, Limits::default()).await
}

async fn start_with(max_message_bytes: usize, limits: Limits) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut config = WorkerConfig::new(TOKEN, Arc::new(Jobs));
    config.max_message_bytes = max_message_bytes;
    config.limits = limits;
    let handle = tokio::spawn(async move {
        worker_service::serve(listener, config, std::future::pending()).await.unwrap();
    });
    (endpoint, handle)
}

/// Opens `n` TCP connections to `endpoint` that never send a byte.
async fn silent_connections(endpoint: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let address = endpoint.trim_start_matches("http://");
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(tokio::net::TcpStream::connect(address).await.unwrap());
    }
    held
}

/// Whether the worker closed `stream` (EOF or reset) within `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        // The server's SETTINGS frame may come first: read past it.
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Two workers of a "scatter" run, started and configured, with their server tasks.
async fn two_workers() -> (Vec<WorkerClient>, [JoinHandle<()>; 2]) {
    let (a, ha) = start(1 << 20).await;
    let (b, hb) = start(1 << 20).await;
    (configure(&[a, b]).await, [ha, hb])
}

async fn configure(endpoints: &[String]) -> Vec<WorkerClient> {
    configure_job(endpoints, "scatter").await
}

async fn configure_job(endpoints: &[String], job: &str) -> Vec<WorkerClient> {
    let mut clients = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        let mut c = WorkerClient::connect_lazy(e, TOKEN).unwrap();
        c.configure(ConfigureRequest {
            run_id: "test".into(),
            job: job.into(),
            shard: i as u32,
            shards: endpoints.len() as u32,
            peers: endpoints.to_vec(),
            config: Default::default(),
        })
        .await
        .unwrap();
        clients.push(c);
    }
    clients
}

/// What one worker's "scatter n" sends shard `shard` of `shards`: the sum of its values.
fn scattered_to(shard: u64, shards: u64, n: u64) -> u64 {
    (0..n).filter(|v| v % shards == shard).sum()
}

fn sum(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_reach_their_shard_before_the_phase_answers() {
    let (mut clients, _servers) = two_workers().await;
    // Both scatter concurrently (each delivering to the other mid-phase), then both sum.
    let (x, y) = (clients[0].clone(), clients[1].clone());
    let (r1, r2) =
        tokio::join!(async move { x.clone().phase("scatter", 10u64.to_le_bytes().to_vec()).await }, async move {
            y.clone().phase("scatter", 10u64.to_le_bytes().to_vec()).await
        });
    r1.unwrap();
    r2.unwrap();
    let even = sum(&clients[0].phase("sum", Vec::new()).await.unwrap());
    let odd = sum(&clients[1].phase("sum", Vec::new()).await.unwrap());
    // Each worker scattered 0..10: shard 0 got the evens twice, shard 1 the odds twice.
    assert_eq!((even, odd), (2 * 20, 2 * 25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_and_large_batches_are_queued_and_a_large_malformed_one_is_refused() {
    let (a, _h) = start(4 << 20).await;
    let mut clients = configure(std::slice::from_ref(&a)).await;
    let c = &mut clients[0];
    c.phase("keep", 7u64.to_le_bytes().to_vec()).await.unwrap();
    // Large enough to be decoded on a blocking thread.
    let n = 100_000u64;
    let large: Vec<u8> = (0..n).flat_map(u64::to_le_bytes).collect();
    assert_eq!(c.deliver("test", 0, large.clone()).await.unwrap(), 2);
    let mut malformed = large;
    malformed.extend_from_slice(&[1, 2, 3]);
    let err = c.deliver("test", 0, malformed).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(err.to_string().contains("800003 bytes is not a list of u64"), "{err}");
    assert_eq!(sum(&c.phase("sum", Vec::new()).await.unwrap()), 7 + n * (n - 1) / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_at_once_mid_phase_and_only_with_the_token() {
    let (a, _h) = start(1 << 20).await;
    let mut clients = configure(std::slice::from_ref(&a)).await;
    let mut busy = clients[0].clone();
    // No wall-clock bound (a loaded machine can be slow): the ping must simply be answered
    // while a phase of several seconds still runs.
    let phase = tokio::spawn(async move { busy.phase("sleep", 4000u64.to_le_bytes().to_vec()).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    clients[0].ping().await.unwrap();
    assert!(!phase.is_finished(), "the ping was answered while the phase ran");
    phase.await.unwrap().unwrap();
    let err = WorkerClient::connect_lazy(&a, "not-the-token").unwrap().ping().await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Unauthenticated), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_unauthenticated_and_the_worker_serves_on() {
    let (a, _h) = start(1 << 20).await;
    let mut intruder = WorkerClient::connect_lazy(&a, "not-the-token").unwrap();
    let err = intruder.deliver("test", 0, Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Unauthenticated), "{err}");
    assert!(err.to_string().contains(&a), "the error names the worker: {err}");
    let mut clients = configure(&[a]).await;
    assert_eq!(sum(&clients[0].phase("sum", Vec::new()).await.unwrap()), 0);
}

/// A raw call with only the metadata given (no token, no version unless asked).
async fn raw_ping(endpoint: &str, metadata: &[(&'static str, &str)]) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string()).unwrap().connect().await.unwrap();
    let mut raw = worker_service::pb::worker_client::WorkerClient::new(channel);
    let mut request = tonic::Request::new(worker_service::pb::PingRequest {});
    for (key, value) in metadata {
        request.metadata_mut().insert(*key, value.parse().unwrap());
    }
    raw.ping(request).await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_the_token_learns_nothing_not_even_the_protocol_version() {
    let (a, _h) = start(1 << 20).await;
    for metadata in [&[][..], &[("x-exelixi-protocol", "1")][..], &[("authorization", "Bearer wrong")][..]] {
        let status = raw_ping(&a, metadata).await;
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{metadata:?}: {status:?}");
        assert!(!status.message().contains("protocol"), "{metadata:?}: {status:?}");
    }
    // With the token, a wrong version is then named.
    let bearer = format!("Bearer {TOKEN}");
    let status = raw_ping(&a, &[("authorization", &bearer), ("x-exelixi-protocol", "1")]).await;
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains(&format!("speaks {}", worker_service::PROTOCOL_VERSION)), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_protocol_version_is_refused_and_the_worker_serves_on() {
    let (a, _h) = start(1 << 20).await;
    let mut future_client = WorkerClient::with_version(&a, TOKEN, 99).unwrap();
    let err = future_client.phase("sum", Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::FailedPrecondition), "{err}");
    assert!(err.to_string().contains("protocol version 99"), "{err}");
    let mut clients = configure(&[a]).await;
    assert!(clients[0].phase("sum", Vec::new()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_payloads_get_clear_errors() {
    let (a, _h) = start(1024).await;
    let mut unconfigured = WorkerClient::connect_lazy(&a, TOKEN).unwrap();
    let err = unconfigured.deliver("test", 0, vec![0; 8]).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::FailedPrecondition), "{err}");

    let mut clients = configure(std::slice::from_ref(&a)).await;
    let c = &mut clients[0];
    let err = c.deliver("test", 0, vec![1, 2, 3]).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(err.to_string().contains("3 bytes is not a list of u64"), "{err}");

    let err = c.deliver("test", 0, vec![0; 4096]).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::OutOfRange), "{err}");
    assert!(err.to_string().contains("too large"), "{err}");

    let err = c.phase("no-such-phase", Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");

    let mut bad = WorkerClient::connect_lazy(&a, TOKEN).unwrap();
    let err = bad
        .configure(ConfigureRequest { job: "scatter".into(), shard: 3, shards: 2, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    let err = bad
        .configure(ConfigureRequest {
            job: "nope".into(),
            shard: 0,
            shards: 1,
            peers: vec![a.clone()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::NotFound), "{err}");

    // Still serving, state intact.
    assert_eq!(c.deliver("test", 0, 5u64.to_le_bytes().to_vec()).await.unwrap(), 1);
    assert_eq!(sum(&c.phase("sum", Vec::new()).await.unwrap()), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_of_an_earlier_configuration_is_refused_and_the_queue_starts_empty() {
    let (a, _h) = start(1 << 20).await;
    let mut clients = configure(std::slice::from_ref(&a)).await;
    assert_eq!(clients[0].deliver("test", 0, 7u64.to_le_bytes().to_vec()).await.unwrap(), 1);
    // Reconfigured (a recovery): the batch queued before is gone, and one sent by a peer
    // still on the old configuration is refused.
    let request = ConfigureRequest {
        run_id: "test.r1".into(),
        job: "scatter".into(),
        shard: 0,
        shards: 1,
        peers: vec![a.clone()],
        config: Default::default(),
    };
    clients[0].configure(request).await.unwrap();
    let err = clients[0].deliver("test", 0, 5u64.to_le_bytes().to_vec()).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::FailedPrecondition), "{err}");
    assert!(err.to_string().contains("a delivery of run test; this worker now serves run test.r1"), "{err}");
    assert_eq!(clients[0].deliver("test.r1", 0, 3u64.to_le_bytes().to_vec()).await.unwrap(), 1);
    assert_eq!(sum(&clients[0].phase("sum", Vec::new()).await.unwrap()), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_server() {
    let (a, handle) = start(1 << 20).await;
    WorkerClient::connect_lazy(&a, TOKEN).unwrap().stop().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), handle).await.expect("stopped in time").unwrap();
    let err: ClientError = WorkerClient::connect_lazy(&a, TOKEN).unwrap().stop().await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Unavailable), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_ends_at_once_even_with_a_silent_connection_open() {
    // The handshake timeout is long here: the stop must not wait for it.
    let limits = Limits { handshake_timeout: Duration::from_secs(600), ..Limits::default() };
    let (a, handle) = start_with(1 << 20, limits).await;
    let _held = silent_connections(&a, 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    WorkerClient::connect_lazy(&a, TOKEN).unwrap().stop().await.unwrap();
    // Before: graceful shutdown waited for the silent connections, as long as they were held.
    let ended = tokio::time::timeout(limits.shutdown_grace + Duration::from_secs(10), handle).await;
    ended.expect("the worker ended while the silent connections were still held").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_stuck_on_a_hung_peer_does_not_keep_a_stopped_worker_alive() {
    // Shard 1 is a socket that accepts and then answers nothing: a hung (SIGSTOPped) peer.
    let hung = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_endpoint = format!("http://{}", hung.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hung.accept().await {
            held.push(s);
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = Limits { shutdown_grace: Duration::from_millis(500), ..Limits::default() };
    let mut config = WorkerConfig::new(TOKEN, Arc::new(Jobs));
    config.limits = limits;
    let handle = tokio::spawn(async move {
        worker_service::serve(listener, config, async move {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    let mut client = WorkerClient::connect_lazy(&a, TOKEN).unwrap();
    client
        .configure(ConfigureRequest {
            run_id: "test".into(),
            job: "scatter".into(),
            shard: 0,
            shards: 2,
            peers: vec![a.clone(), hung_endpoint],
            config: Default::default(),
        })
        .await
        .unwrap();
    // The phase delivers to shard 1 and waits for it forever.
    let mut stuck = client.clone();
    let phase = tokio::spawn(async move { stuck.phase("scatter", 10u64.to_le_bytes().to_vec()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!phase.is_finished(), "the phase waits on the hung peer");
    // What the end of stdin does for a worker process: the shutdown future completes.
    let asked = Instant::now();
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), handle).await.expect("the worker ended").unwrap();
    assert!(asked.elapsed() >= limits.shutdown_grace, "calls in flight had their grace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_handshake_timeout_and_dead_ones_after_the_idle_timeout() {
    let limits = Limits {
        handshake_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        keepalive: Duration::from_secs(1),
        ..Limits::default()
    };
    let (a, _h) = start_with(1 << 20, limits).await;
    let mut silent = silent_connections(&a, 20).await;
    // One sends the HTTP/2 preface, then goes silent: it answers no ping.
    let mut dead = silent_connections(&a, 1).await.pop().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut dead, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(closed_within(s, Duration::from_secs(20)).await, "silent connection {i} still open");
    }
    assert!(closed_within(&mut dead, Duration::from_secs(20)).await, "the silent HTTP/2 connection is still open");
    // A live client is not idle: the server's pings are answered, so it is served on after
    // several idle timeouts.
    let mut clients = configure(std::slice::from_ref(&a)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(sum(&clients[0].phase("sum", Vec::new()).await.unwrap()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_client_is_served_while_silent_connections_hold_every_slot() {
    let limits = Limits { max_connections: 8, handshake_timeout: Duration::from_secs(1), ..Limits::default() };
    let (a, _h) = start_with(1 << 20, limits).await;
    let _held = silent_connections(&a, 40).await;
    // The slots free as the silent ones time out, so the ping gets through (after about
    // 40 / 8 handshake timeouts at worst).
    let mut client = WorkerClient::connect_lazy(&a, TOKEN).unwrap();
    tokio::time::timeout(Duration::from_secs(30), client.ping()).await.expect("served in time").unwrap();
}

/// A step `scatter n` then `sum` on every worker of `clients`, worker i scattering `n[i]`.
async fn step_all(clients: &[WorkerClient], n: &[u64], step: u64) -> Vec<Result<u64, ClientError>> {
    let calls: Vec<_> = clients.iter().zip(n).map(|(c, n)| spawn_step(c, *n, step)).collect();
    let mut sums = Vec::new();
    for call in calls {
        sums.push(call.await.unwrap().map(|a| sum(&a)));
    }
    sums
}

/// Starts a step `scatter n` then `sum` on the worker of `client`; its answer is the sum.
fn spawn_step(client: &WorkerClient, n: u64, step: u64) -> JoinHandle<Result<worker_service::Bytes, ClientError>> {
    let mut c = client.clone();
    tokio::spawn(async move { c.step(("scatter", n.to_le_bytes().to_vec()), ("sum", Vec::new()), step).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_runs_its_second_phase_once_every_peers_batches_are_in() {
    let mut endpoints = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..3 {
        let (e, h) = start(1 << 20).await;
        endpoints.push(e);
        servers.push(h);
    }
    let clients = configure(&endpoints).await;
    // Worker 0 scatters 0..10, worker 1 0..1 (a batch for shard 0 only: shards 1 and 2 get
    // an empty delivery, which still counts), worker 2 nothing at all.
    let sums: Vec<u64> = step_all(&clients, &[10, 1, 0], 1).await.into_iter().map(Result::unwrap).collect();
    let owned = |shard: u64, n: u64| scattered_to(shard, 3, n);
    let expected: Vec<u64> = (0..3).map(|s| owned(s, 10) + owned(s, 1)).collect();
    assert_eq!(sums, expected);
    // A second step adds its batches to the totals.
    let again: Vec<u64> = step_all(&clients, &[3, 3, 3], 2).await.into_iter().map(Result::unwrap).collect();
    let more: Vec<u64> = (0..3).map(|s| expected[s as usize] + 3 * owned(s, 3)).collect();
    assert_eq!(again, more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_waits_for_a_slow_peer_and_gives_up_when_configured_anew() {
    let (a, _ha) = start(1 << 20).await;
    let (b, _hb) = start(1 << 20).await;
    let clients = configure(&[a.clone(), b.clone()]).await;
    // Worker 0 alone: its second phase must wait for worker 1's delivery of the step.
    let waiting = spawn_step(&clients[0], 4, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the step answered before its peer delivered");
    let other = spawn_step(&clients[1], 4, 1).await.unwrap().unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("answered").unwrap().unwrap();
    // 0..4 from both: evens to shard 0, odds to shard 1.
    assert_eq!((sum(&done), sum(&other)), (2 * 2, 2 * 4));

    // Waiting again, and the worker is configured anew (a recovery): the step gives up.
    let waiting = spawn_step(&clients[0], 4, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = clients[0].clone();
    c.configure(anew(0, vec![a, b])).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("answered").unwrap().unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Aborted), "{err}");
    assert!(err.to_string().contains("configured anew while it waited"), "{err}");
}

/// Shard `shard` of the scatter job configured anew (a recovery's run id) over `peers`.
fn anew(shard: u32, peers: Vec<String>) -> ConfigureRequest {
    let shards = peers.len() as u32;
    ConfigureRequest {
        run_id: "test.r1".into(),
        job: "scatter".into(),
        shard,
        shards,
        peers,
        config: Default::default(),
    }
}

/// A Deliver call as any client could make it (with the token and the protocol version).
async fn raw_deliver(endpoint: &str, request: worker_service::pb::DeliverRequest) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string()).unwrap().connect().await.unwrap();
    let mut raw = worker_service::pb::worker_client::WorkerClient::new(channel);
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    request.metadata_mut().insert("x-exelixi-protocol", worker_service::PROTOCOL_VERSION.to_string().parse().unwrap());
    raw.deliver(request).await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_steps_and_step_deliveries_get_clear_errors() {
    let (a, _ha) = start(1 << 20).await;
    let (b, _hb) = start(1 << 20).await;
    let clients = configure(&[a.clone(), b]).await;
    let mut c = clients[0].clone();
    let check = |err: ClientError, code: tonic::Code, says: &str| {
        assert_eq!(err.code(), Some(code), "{err}");
        assert!(err.to_string().contains(says), "{err}");
    };
    let value = |v: u64| v.to_le_bytes().to_vec();

    check(
        c.step(("scatter", value(1)), ("sum", Vec::new()), 0).await.unwrap_err(),
        tonic::Code::InvalidArgument,
        "need a step number",
    );
    check(
        c.deliver_step("test", 0, 1, vec![], Default::default()).await.unwrap_err(),
        tonic::Code::InvalidArgument,
        "must come from another shard",
    );
    check(
        c.deliver_step("test", 2, 1, vec![], Default::default()).await.unwrap_err(),
        tonic::Code::InvalidArgument,
        "must come from another shard",
    );
    check(
        c.deliver_step("test", 1, 1, vec![vec![1, 2, 3]], Default::default()).await.unwrap_err(),
        tonic::Code::InvalidArgument,
        "3 bytes is not a list of u64",
    );
    check(
        c.deliver_step("other", 1, 1, vec![], Default::default()).await.unwrap_err(),
        tonic::Code::FailedPrecondition,
        "a delivery of run other",
    );
    assert_eq!(c.deliver_step("test", 1, 1, vec![value(5), value(6)], Default::default()).await.unwrap(), 2);
    check(
        c.deliver_step("test", 1, 1, vec![], Default::default()).await.unwrap_err(),
        tonic::Code::InvalidArgument,
        "shard 1 already delivered step 1",
    );
    // A peer far ahead: steps 2 to 4 wait, a fifth is refused.
    for step in 2..=4 {
        c.deliver_step("test", 1, step, vec![], Default::default()).await.unwrap();
    }
    check(
        c.deliver_step("test", 1, 9, vec![], Default::default()).await.unwrap_err(),
        tonic::Code::FailedPrecondition,
        "too far ahead",
    );

    let both = worker_service::pb::DeliverRequest {
        from_shard: 1,
        payload: value(1).into(),
        run_id: "test".into(),
        step: 5,
        batches: vec![],
        ..Default::default()
    };
    let status = raw_deliver(&a, both).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("carries its batches in `batches`"), "{status:?}");
    let loose = worker_service::pb::DeliverRequest {
        from_shard: 1,
        run_id: "test".into(),
        batches: vec![value(1).into()],
        ..Default::default()
    };
    let status = raw_deliver(&a, loose).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("step 0"), "{status:?}");

    // Step 1 is complete at worker 0 (its one peer delivered): the step runs at once and
    // its second phase gets the peer's batches (5 + 6) and its own (the evens of 0..4).
    let answer = c.step(("scatter", value(4)), ("sum", Vec::new()), 1).await;
    // Worker 1 never ran the step, so worker 0's delivery to it waits there as step 1.
    assert_eq!(sum(&answer.unwrap()), 5 + 6 + 2);
}

/// Starts a step `scatter n` then `sum` announcing `scatter ahead` as the next step's.
fn spawn_announcing(
    client: &WorkerClient,
    n: u64,
    step: u64,
    ahead: u64,
) -> JoinHandle<Result<worker_service::Bytes, ClientError>> {
    let mut c = client.clone();
    tokio::spawn(async move {
        c.step_announcing(
            ("scatter", n.to_le_bytes().to_vec()),
            ("sum", Vec::new()),
            step,
            ahead.to_le_bytes().to_vec(),
        )
        .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_step_is_worked_on_ahead_once_and_a_broken_announcement_is_refused() {
    let (clients, _servers) = two_workers().await;
    let owned = |shard: u64, n: u64| scattered_to(shard, 2, n);
    let aheads = |c: &WorkerClient| {
        let mut c = c.clone();
        async move {
            let a = c.phase("aheads", Vec::new()).await.unwrap();
            let n: Vec<u64> = a.chunks(8).map(sum).collect();
            (n[0], n[1], n[2])
        }
    };
    // Steps 1 and 2 announce the next (scatter 6, then scatter 3); step 3 is asked as
    // announced, announcing nothing. Each worker's batches count once, wherever they were
    // made: the totals are those of steps run when asked.
    let mut totals = [0u64; 2];
    for (step, n, next) in [(1, 4, Some(6)), (2, 6, Some(3)), (3, 3, None)] {
        let calls: Vec<_> = clients
            .iter()
            .map(|c| match next {
                Some(next) => spawn_announcing(c, n, step, next),
                None => spawn_step(c, n, step),
            })
            .collect();
        for (shard, call) in calls.into_iter().enumerate() {
            totals[shard] += 2 * owned(shard as u64, n);
            assert_eq!(sum(&call.await.unwrap().unwrap()), totals[shard], "step {step}, shard {shard}");
        }
    }
    for c in &clients {
        assert_eq!(aheads(c).await, (2, 2, 0), "both announced steps were worked on ahead and taken up");
    }
    // Step 4 announces scatter 2; worker 0 is then asked for step 5 with scatter 9.
    let calls: Vec<_> = clients.iter().map(|c| spawn_announcing(c, 1, 4, 2)).collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let err = spawn_step(&clients[0], 9, 5).await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::FailedPrecondition), "{err}");
    assert!(err.to_string().contains("step 5 (phase \"scatter\") is not the one announced"), "{err}");
    // Worker 1 is asked a lone phase instead: any work ahead is undone, never seen.
    let (worked, taken, undone) = aheads(&clients[1]).await;
    assert_eq!(taken, 2);
    assert_eq!(worked, taken + undone, "work ahead not taken up is undone");
    assert_eq!(sum(&clients[1].clone().phase("sum", Vec::new()).await.unwrap()), totals[1] + owned(1, 1) * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_runs_its_steps_without_requests_until_a_job_ends_it() {
    let (clients, _servers) = two_workers().await;
    let owned = |shard: u64, n: u64| scattered_to(shard, 2, n);
    let link = |n: u64| (n.to_le_bytes().to_vec(), Vec::new());
    // Step 1 (scatter 4), then links scatter 6 and 3 run on their own; the link scattering 0
    // ends the chain (its work ahead undone), and the one after it never runs, nor the
    // announced step.
    let calls: Vec<_> = clients
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let links = vec![link(6), link(3), link(0), link(5)];
            tokio::spawn(async move {
                c.step_chain(
                    ("scatter", 4u64.to_le_bytes().to_vec()),
                    ("sum", Vec::new()),
                    1,
                    links,
                    Some(7u64.to_le_bytes().to_vec()),
                )
                .await
            })
        })
        .collect();
    for (shard, call) in calls.into_iter().enumerate() {
        let (answer, chained, ended) = call.await.unwrap().unwrap();
        let s = shard as u64;
        assert!(ended, "shard {shard}");
        let mut totals = vec![2 * owned(s, 4)];
        totals.push(totals[0] + 2 * owned(s, 6));
        totals.push(totals[1] + 2 * owned(s, 3));
        let got: Vec<u64> = std::iter::once(&answer).chain(&chained).map(|a| sum(a)).collect();
        assert_eq!(got, totals, "shard {shard}");
        // Three links worked ahead, two taken up, one undone; the announced step not begun.
        let mut c = clients[shard].clone();
        let a = c.phase("aheads", Vec::new()).await.unwrap();
        let n: Vec<u64> = a.chunks(8).map(sum).collect();
        assert_eq!(n, [3, 2, 1], "shard {shard}");
    }
    // The workers go on with the next step as asked (numbered after every link asked).
    let calls: Vec<_> = clients.iter().map(|c| spawn_step(c, 2, 6)).collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chained_steps_second_phase_delivers_its_batches_before_the_next_link() {
    let (clients, _servers) = two_workers().await;
    let owned = |shard: u64, n: u64| scattered_to(shard, 2, n);
    // Every step scatters twice: its first phase as the step's batches, its second as loose
    // batches, which each owner takes up in its next phase (the next link's, or the "sum"
    // asked afterwards). Links 2 and 3 run on the chain's thread.
    let scatters = [(4u64, 3u64), (6, 5), (2, 1)];
    let calls: Vec<_> = clients
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let links =
                scatters[1..].iter().map(|(n, m)| (n.to_le_bytes().to_vec(), m.to_le_bytes().to_vec())).collect();
            let (n, m) = scatters[0];
            tokio::spawn(async move {
                c.step_chain(
                    ("scatter", n.to_le_bytes().to_vec()),
                    ("scatter", m.to_le_bytes().to_vec()),
                    1,
                    links,
                    None,
                )
                .await
            })
        })
        .collect();
    for (shard, call) in calls.into_iter().enumerate() {
        let (_, chained, ended) = call.await.unwrap().unwrap();
        assert_eq!((chained.len(), ended), (2, false), "shard {shard}");
    }
    // Both workers scattered the same values; each reached its owner once from each: none
    // lost, none counted twice.
    for (shard, c) in clients.iter().enumerate() {
        let s = shard as u64;
        let want: u64 = scatters.iter().map(|&(n, m)| 2 * (owned(s, n) + owned(s, m))).sum();
        assert_eq!(sum(&c.clone().phase("sum", Vec::new()).await.unwrap()), want, "shard {shard}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_delivery_reaches_the_peers_while_the_job_still_works() {
    let (a, _ha) = start(1 << 20).await;
    let (b, _hb) = start(1 << 20).await;
    let clients = configure_job(&[a, b], "early").await;
    let step = |c: &WorkerClient, (n, step): (u64, u64), ahead: Option<u64>| {
        let mut c = c.clone();
        tokio::spawn(async move {
            let (first, then) = (("send", n.to_le_bytes().to_vec()), ("sum", Vec::new()));
            match ahead {
                Some(ahead) => c.step_announcing(first, then, step, ahead.to_le_bytes().to_vec()).await,
                None => c.step(first, then, step).await,
            }
        })
    };
    // Step 1 asked as such (send 10), announcing step 2 (send 200): worked ahead, each
    // worker's job waits, after its release, for the other worker to have its batch.
    let calls: Vec<_> = clients.iter().map(|c| step(c, (10, 1), Some(200))).collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // Step 2 as announced, announcing step 3 (send 40).
    let calls: Vec<_> = clients.iter().map(|c| step(c, (200, 2), Some(40))).collect();
    for (shard, call) in calls.into_iter().enumerate() {
        // Shard 0 received 10 + 1 and 200 + 1; shard 1 received 10 and 200.
        let other = 1 - shard as u64;
        assert_eq!(sum(&call.await.unwrap().unwrap()), 10 + other + 200 + other, "shard {shard}");
    }
    // Step 3 as announced, then links 4 and 5 (send 500, send 60) run on the chain's thread,
    // which must send each link's released delivery while its job still waits for the
    // peer's; announcing step 6 (send 301: a batch sent after the release).
    let calls: Vec<_> = clients
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let links = [500u64, 60].map(|n| (n.to_le_bytes().to_vec(), Vec::new())).to_vec();
            tokio::spawn(async move {
                let (first, then) = (("send", 40u64.to_le_bytes().to_vec()), ("sum", Vec::new()));
                c.step_chain(first, then, 3, links, Some(301u64.to_le_bytes().to_vec())).await
            })
        })
        .collect();
    for (shard, call) in calls.into_iter().enumerate() {
        let (answer, chained, ended) = call.await.unwrap().unwrap();
        let other = 1 - shard as u64;
        let before = 10 + other + 200 + other;
        let got: Vec<u64> = std::iter::once(&answer).chain(&chained).map(|a| sum(a)).collect();
        let want = [40, 500, 60].iter().scan(before, |t, n| {
            *t += n + other;
            Some(*t)
        });
        assert_eq!(got, want.collect::<Vec<_>>(), "shard {shard}");
        assert!(!ended, "shard {shard}");
    }
    // Step 6: the job addressed a peer after it released the step's delivery.
    let calls: Vec<_> = clients.iter().map(|c| step(c, (301, 6), None)).collect();
    for (shard, call) in calls.into_iter().enumerate() {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Some(tonic::Code::Internal), "shard {shard}: {err}");
        assert!(
            err.to_string().contains("step 6 addressed shard") && err.to_string().contains("was released"),
            "shard {shard}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_waiting_for_a_peer_gives_up_when_configured_anew_and_the_worker_serves_on() {
    let (a, _ha) = start(1 << 20).await;
    let (b, _hb) = start(1 << 20).await;
    let clients = configure(&[a.clone(), b.clone()]).await;
    let link = |n: u64| (n.to_le_bytes().to_vec(), Vec::new());
    // Worker 0 runs step 1 and a chain of two links; worker 1 only step 1, so that the first
    // link (step 2) waits for a delivery that never comes, on the chain's computing thread.
    let mut c = clients[0].clone();
    let chain = tokio::spawn(async move {
        c.step_chain(("scatter", 4u64.to_le_bytes().to_vec()), ("sum", Vec::new()), 1, vec![link(2), link(3)], None)
            .await
    });
    spawn_step(&clients[1], 4, 1).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!chain.is_finished(), "the chain answered before its peer delivered step 2");
    // Configured anew (a recovery): the configuration is not held up by the waiting chain,
    // which gives up, and the worker runs the new configuration's steps.
    let mut c = clients[0].clone();
    let peers = vec![a, b];
    tokio::time::timeout(Duration::from_secs(10), c.configure(anew(0, peers.clone())))
        .await
        .expect("configured")
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), chain).await.expect("answered").unwrap().unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Aborted), "{err}");
    assert!(err.to_string().contains("step 2: the worker was configured anew while it waited"), "{err}");
    let mut other = clients[1].clone();
    other.configure(anew(1, peers)).await.unwrap();
    let sums: Vec<u64> = step_all(&clients, &[4, 4], 1).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(sums, [2 * 2, 2 * 4], "0..4 from both: evens to shard 0, odds to shard 1");
}
