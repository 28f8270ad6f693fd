//! Records the start of a real master's SUBSCRIBE stream, byte for byte, for the golden tests:
//!
//! `cargo run -p mesos-client --example record_subscribe -- 127.0.0.1:5050 protobuf tests/data/subscribe.protobuf.recordio`
//! `cargo run -p mesos-client --example record_subscribe -- 127.0.0.1:5050 json tests/data/subscribe.json.recordio`
//!
//! It subscribes a framework, keeps every byte of the response body until offers from
//! three agents arrived (or 10 s passed), writes them out, and tears the framework down.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mesos_client::recordio::Decoder;
use mesos_client::v1::FrameworkInfo;
use mesos_client::v1::scheduler::{Call, call};
use prost::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, master, format, out] = args.as_slice() else {
        return Err("usage: record_subscribe HOST:PORT protobuf|json FILE".into());
    };
    let (content_type, body) = match format.as_str() {
        "protobuf" => {
            let info = FrameworkInfo { user: "root".into(), name: "exelixi-golden".into(), ..Default::default() };
            let call = Call {
                r#type: Some(call::Type::Subscribe as i32),
                subscribe: Some(call::Subscribe { framework_info: info, suppressed_roles: Vec::new() }),
                ..Default::default()
            };
            ("application/x-protobuf", call.encode_to_vec())
        }
        "json" => (
            "application/json",
            br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"exelixi-golden"}}}"#.to_vec(),
        ),
        other => return Err(format!("unknown format {other}").into()),
    };
    let request = Request::post(format!("http://{master}/api/v1/scheduler"))
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, content_type)
        .body(Full::new(Bytes::from(body)))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await?;
    if !response.status().is_success() {
        return Err(format!("SUBSCRIBE answered {}", response.status()).into());
    }
    let mut body = response.into_body();
    let mut recorded = Vec::new();
    let mut records = Decoder::default();
    let (mut count, started) = (0, Instant::now());
    // SUBSCRIBED, HEARTBEAT, then offers: stop after a few records or 10 s.
    while count < 3 && started.elapsed() < Duration::from_secs(10) {
        let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(10), body.frame()).await else { break };
        if let Some(data) = frame?.data_ref() {
            recorded.extend_from_slice(data);
            records.push(data);
            while records.next_record()?.is_some() {
                count += 1;
            }
        }
    }
    std::fs::write(out, &recorded)?;
    eprintln!("wrote {} bytes, {count} records, to {out}", recorded.len());
    Ok(())
}
