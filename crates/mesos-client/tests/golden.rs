//! Golden streams: SUBSCRIBE responses recorded byte for byte from a real Mesos 1.11 master
//! (`examples/record_subscribe.rs`), decoded under every chunking.

use mesos_client::codec::ContentType;
use mesos_client::recordio::Decoder;
use mesos_client::v1::scheduler::{Event, event};

fn records(stream: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for c in stream.chunks(chunk) {
        d.push(c);
        while let Some(r) = d.next_record().unwrap() {
            out.push(r.to_vec());
        }
    }
    d.finish().unwrap();
    out
}

#[test]
fn a_recorded_protobuf_subscribe_stream_decodes_to_subscribed_heartbeat_offers() {
    let stream = include_bytes!("data/subscribe.protobuf.recordio");
    let whole = records(stream, stream.len());
    for chunk in [1, 2, 3, 7, 64, 1000] {
        assert_eq!(records(stream, chunk), whole, "chunk size {chunk}");
    }
    let events: Vec<Event> = whole.iter().map(|r| ContentType::Protobuf.decode(r).unwrap()).collect();
    check(&events);
}

/// What both recordings say: SUBSCRIBED (15 s heartbeats, master on 5050, a framework id
/// under the master's), HEARTBEAT, then
/// offers from 127.0.0.1 with the four default resources.
fn check(events: &[Event]) {
    let types: Vec<Option<i32>> = events.iter().map(|e| e.r#type).collect();
    assert_eq!(types[..2], [Some(event::Type::Subscribed as i32), Some(event::Type::Heartbeat as i32)]);
    let subscribed = events[0].subscribed.as_ref().unwrap();
    let master = subscribed.master_info.as_ref().unwrap();
    assert_eq!(master.port, 5050);
    // Framework ids are the master's id and a 4-digit sequence number.
    let sequence = subscribed.framework_id.value.strip_prefix(&format!("{}-", master.id)).unwrap();
    assert!(sequence.len() == 4 && sequence.bytes().all(|b| b.is_ascii_digit()), "{sequence}");
    assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
    let offers: Vec<_> = events.iter().filter_map(|e| e.offers.as_ref()).flat_map(|o| &o.offers).collect();
    assert!(!offers.is_empty());
    for o in offers {
        assert_eq!(o.hostname, "127.0.0.1");
        let names: Vec<&str> = o.resources.iter().map(|r| r.name.as_str()).collect();
        for n in ["cpus", "mem", "disk", "ports"] {
            assert!(names.contains(&n), "{names:?}");
        }
    }
}

#[test]
fn a_recorded_json_subscribe_stream_decodes_to_the_same_events() {
    let stream = include_bytes!("data/subscribe.json.recordio");
    let whole = records(stream, stream.len());
    for chunk in [1, 2, 3, 7, 64, 1000] {
        assert_eq!(records(stream, chunk), whole, "chunk size {chunk}");
    }
    // Mesos' own JSON: snake_case keys, enum names, numbers as numbers.
    let first: serde_json::Value = serde_json::from_slice(&whole[0]).unwrap();
    assert_eq!(first["type"], "SUBSCRIBED");
    assert_eq!(first["subscribed"]["heartbeat_interval_seconds"], 15.0);
    let events: Vec<Event> = whole.iter().map(|r| ContentType::Json.decode(r).unwrap()).collect();
    check(&events);
}
