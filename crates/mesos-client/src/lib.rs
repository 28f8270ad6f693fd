//! `mesos-client`: the Apache Mesos v1 HTTP APIs, spoken directly (protobuf over HTTP,
//! RecordIO event streams); no libmesos, no v0 driver.
//!
//! It owns the v1 messages ([`v1`], compiled from `proto/mesos/v1` without `protoc`), their
//! two wire encodings ([`codec`]: protobuf, and JSON with Mesos' own mapping), a strict
//! RecordIO decoder ([`recordio`]), the scheduler side ([`scheduler`]: a client, and a
//! [`Session`](scheduler::Session) that re-subscribes and reconciles by itself) and the
//! executor side ([`executor`]). Scheduler and executor logic should use the traits
//! ([`scheduler::Calls`], [`scheduler::Events`], [`executor::ExecutorApi`]) so that it can be
//! tested without a network against in-memory implementations.
//!
//! **Boundary:** knows Mesos and HTTP only; never depends on `ga-core`, `uow` or the
//! worker service.

pub mod codec;
pub mod executor;
pub mod operator;
pub mod recordio;
pub mod scheduler;

/// How long a call (or SUBSCRIBE, until its first event) may take before the master or
/// agent is considered unreachable (shared/docs/MESOS-HTTP-API.md §6.9 suggests ~75 s).
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(75);

/// The first 500 characters of an error response's body: Mesos explains refusals there.
async fn explanation(response: http::Response<hyper::body::Incoming>) -> String {
    use http_body_util::BodyExt;
    match response.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).chars().take(500).collect(),
        Err(e) => format!("(body unreadable: {e})"),
    }
}

/// The Mesos v1 messages (`mesos.v1`, `mesos.v1.scheduler`, `mesos.v1.executor`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

    /// `mesos.v1.scheduler`.
    pub mod scheduler {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
    }

    /// `mesos.v1.executor`.
    pub mod executor {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
    }
}
