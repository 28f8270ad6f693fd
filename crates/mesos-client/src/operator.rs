//! A little of the master's read-only HTTP endpoints: what `exelixi nodes` shows.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::CALL_TIMEOUT;
use crate::scheduler::{Credential, SchedulerError};

/// One agent as the master lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    /// Its id.
    pub id: String,
    /// Its hostname.
    pub hostname: String,
    /// Whether the master considers it active.
    pub active: bool,
    /// Its total resources, e.g. `cpus:2; mem:1024; ports:[31000-31999]`.
    pub resources: String,
    /// CPUs in use.
    pub used_cpus: f64,
    /// Memory in use, MB.
    pub used_mem: f64,
}

/// The agents of the master at `master` (`GET /master/slaves`).
pub async fn agents(master: &str, credential: Option<&Credential>) -> Result<Vec<Agent>, SchedulerError> {
    let transport = |reason: String| SchedulerError::Transport { master: master.to_string(), reason };
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = Request::get(format!("http://{master}/master/slaves"));
    if let Some(c) = credential {
        request = request.header(header::AUTHORIZATION, c.header());
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| SchedulerError::Request { call: "GET /master/slaves", reason: e.to_string() })?;
    let response = tokio::time::timeout(CALL_TIMEOUT, client.request(request))
        .await
        .map_err(|_| transport(format!("no answer within {CALL_TIMEOUT:?}")))?
        .map_err(|e| transport(e.to_string()))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| transport(e.to_string()))?.to_bytes();
    if status != StatusCode::OK {
        let body = String::from_utf8_lossy(&body).chars().take(500).collect();
        return Err(SchedulerError::Status { call: "GET /master/slaves", status, body });
    }
    let bad = |why: &str| SchedulerError::MasterError(format!("unexpected /master/slaves answer: {why}"));
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| bad(&e.to_string()))?;
    let list = json["slaves"].as_array().ok_or_else(|| bad("no \"slaves\" list"))?;
    Ok(list
        .iter()
        .map(|a| Agent {
            id: a["id"].as_str().unwrap_or_default().to_string(),
            hostname: a["hostname"].as_str().unwrap_or_default().to_string(),
            active: a["active"].as_bool().unwrap_or(false),
            resources: describe_resources(&a["resources"]),
            used_cpus: a["used_resources"]["cpus"].as_f64().unwrap_or(0.0),
            used_mem: a["used_resources"]["mem"].as_f64().unwrap_or(0.0),
        })
        .collect())
}

/// `{"cpus":2.0,"mem":1024.0,"ports":"[31000-31999]"}` → `cpus:2; mem:1024; ports:[31000-31999]`.
fn describe_resources(r: &serde_json::Value) -> String {
    let Some(map) = r.as_object() else { return String::new() };
    map.iter()
        .filter(|(_, v)| !v.is_null() && v.as_f64() != Some(0.0) || v.is_string())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}:{s}"),
            other => format!("{k}:{other}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
