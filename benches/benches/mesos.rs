//! The Mesos client's decoding and encoding. `cargo bench -p exelixi-benches --bench mesos`
//!
//! - `subscribe_stream/{protobuf,json}`: a SUBSCRIBE response recorded from the real master
//!   (`crates/mesos-client/tests/data`: SUBSCRIBED, HEARTBEAT, OFFERS from 3 agents), cut
//!   into records and decoded into events; throughput in events.
//! - `accept_call/{protobuf,json}`: encoding an ACCEPT with one LAUNCH, per call.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mesos_client::codec::ContentType;
use mesos_client::recordio::Decoder;
use mesos_client::v1::scheduler::{Call, Event, call};
use mesos_client::v1::{AgentId, CommandInfo, FrameworkId, OfferId, Resource, TaskId, TaskInfo, offer, value};

const PROTOBUF: &[u8] = include_bytes!("../../crates/mesos-client/tests/data/subscribe.protobuf.recordio");
const JSON: &[u8] = include_bytes!("../../crates/mesos-client/tests/data/subscribe.json.recordio");

fn decode_stream(stream: &[u8], content_type: ContentType) -> usize {
    let mut records = Decoder::default();
    records.push(stream);
    let mut events = 0;
    while let Some(record) = records.next_record().unwrap() {
        let event: Event = content_type.decode(&record).unwrap();
        events += usize::from(event.r#type.is_some());
    }
    events
}

fn accept_call() -> Call {
    let cpus = Resource {
        name: "cpus".into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: 0.5 }),
        ..Default::default()
    };
    let task = TaskInfo {
        name: "worker".into(),
        task_id: TaskId { value: "exelixi-worker-3".into() },
        agent_id: AgentId { value: "9951b336-310d-4049-81fe-c24d44e27c77-S2".into() },
        resources: vec![cpus],
        command: Some(CommandInfo { value: Some("exelixi worker --port 0".into()), ..Default::default() }),
        ..Default::default()
    };
    Call {
        framework_id: Some(FrameworkId { value: "9951b336-310d-4049-81fe-c24d44e27c77-0001".into() }),
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![OfferId { value: "9951b336-310d-4049-81fe-c24d44e27c77-O7".into() }],
            operations: vec![offer::Operation {
                r#type: Some(offer::operation::Type::Launch as i32),
                launch: Some(offer::operation::Launch { task_infos: vec![task] }),
            }],
            filters: None,
        }),
        ..Default::default()
    }
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("subscribe_stream");
    for (name, stream, content_type) in
        [("protobuf", PROTOBUF, ContentType::Protobuf), ("json", JSON, ContentType::Json)]
    {
        g.throughput(Throughput::Elements(decode_stream(stream, content_type) as u64));
        g.bench_function(name, |b| b.iter(|| decode_stream(black_box(stream), content_type)));
    }
    g.finish();

    let call = accept_call();
    let mut g = c.benchmark_group("accept_call");
    g.throughput(Throughput::Elements(1));
    for (name, content_type) in [("protobuf", ContentType::Protobuf), ("json", ContentType::Json)] {
        g.bench_function(name, |b| b.iter(|| content_type.encode(black_box(&call)).unwrap().len()));
    }
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
