//! The two content types Mesos speaks: binary protobuf (our default) and JSON
//! (shared/docs/MESOS-HTTP-API.md §1.2–1.3).
//!
//! Mesos' JSON is not the proto3 JSON mapping: keys are the proto field names (snake_case;
//! camelCase keys are silently ignored by the master), enums are their names, `bytes` are
//! standard base64, and 64-bit integers are written as numbers. Unknown keys and unknown
//! enum names are ignored on the way in, as Mesos does. The conversion goes through
//! `prost-reflect` and the descriptor set that `build.rs` compiles from `proto/mesos/v1`.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};

/// How calls and events are encoded on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application/x-protobuf` (the default: smaller and exact).
    #[default]
    Protobuf,
    /// `application/json`, with Mesos' mapping.
    Json,
}

impl ContentType {
    /// The media type, exactly as Mesos compares it (no parameters: `; charset=utf-8` is 415).
    pub fn mime(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }

    /// The content type a `Content-Type` header names, if it is one of the two.
    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime {
            "application/x-protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    /// Encodes a message.
    pub fn encode<M: WireMessage>(self, message: &M) -> Result<Vec<u8>, CodecError> {
        match self {
            Self::Protobuf => Ok(message.encode_to_vec()),
            Self::Json => {
                let dynamic = DynamicMessage::decode(descriptor::<M>()?, message.encode_to_vec().as_slice())
                    .map_err(|e| CodecError::Json(M::FULL_NAME, e.to_string()))?;
                let options = SerializeOptions::new()
                    .use_proto_field_name(true)
                    .stringify_64_bit_integers(false)
                    .skip_default_fields(true);
                let mut out = Vec::new();
                dynamic
                    .serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options)
                    .map_err(|e| CodecError::Json(M::FULL_NAME, e.to_string()))?;
                Ok(out)
            }
        }
    }

    /// Decodes a message. Never panics, whatever the bytes.
    pub fn decode<M: WireMessage>(self, bytes: &[u8]) -> Result<M, CodecError> {
        match self {
            Self::Protobuf => M::decode(bytes).map_err(|e| CodecError::Protobuf(M::FULL_NAME, e)),
            Self::Json => {
                let json = |e: &dyn std::fmt::Display| CodecError::Json(M::FULL_NAME, e.to_string());
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let options = DeserializeOptions::new().deny_unknown_fields(false);
                let dynamic = DynamicMessage::deserialize_with_options(descriptor::<M>()?, &mut de, &options)
                    .map_err(|e| json(&e))?;
                de.end().map_err(|e| json(&e))?;
                dynamic.transcode_to::<M>().map_err(|e| json(&e))
            }
        }
    }
}

impl std::fmt::Display for ContentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mime())
    }
}

/// A message of the v1 APIs that travels as a call or an event.
pub trait WireMessage: prost::Message + Default {
    /// Its full protobuf name, e.g. `mesos.v1.scheduler.Call`.
    const FULL_NAME: &'static str;
}

macro_rules! wire {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(impl WireMessage for $ty { const FULL_NAME: &'static str = $name; })*
    };
}

wire! {
    crate::v1::scheduler::Call => "mesos.v1.scheduler.Call",
    crate::v1::scheduler::Event => "mesos.v1.scheduler.Event",
    crate::v1::executor::Call => "mesos.v1.executor.Call",
    crate::v1::executor::Event => "mesos.v1.executor.Event",
}

/// Why a message did not encode or decode.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CodecError {
    /// Bad protobuf bytes.
    #[error("undecodable protobuf {0}: {1}")]
    Protobuf(&'static str, prost::DecodeError),
    /// Bad JSON, or JSON that does not fit the message.
    #[error("undecodable JSON {0}: {1}")]
    Json(&'static str, String),
}

fn descriptor<M: WireMessage>() -> Result<prost_reflect::MessageDescriptor, CodecError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    let pool = POOL
        .get_or_init(|| {
            DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/mesos_v1.fds"))[..])
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| CodecError::Json(M::FULL_NAME, format!("the compiled descriptors do not load: {e}")))?;
    pool.get_message_by_name(M::FULL_NAME)
        .ok_or_else(|| CodecError::Json(M::FULL_NAME, "no such message in proto/mesos/v1".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::scheduler::{Call, Event, call, event};
    use crate::v1::{AgentId, FrameworkId, FrameworkInfo, TaskId};

    #[test]
    fn json_uses_mesos_names_enum_names_base64_and_numbers() {
        let call = Call {
            framework_id: Some(FrameworkId { value: "f-1".into() }),
            r#type: Some(call::Type::Acknowledge as i32),
            acknowledge: Some(call::Acknowledge {
                agent_id: AgentId { value: "a-S0".into() },
                task_id: TaskId { value: "t".into() },
                uuid: vec![0xff, 0, 0x10],
            }),
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::from_slice(&ContentType::Json.encode(&call).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "framework_id": {"value": "f-1"},
                "type": "ACKNOWLEDGE",
                "acknowledge": {"agent_id": {"value": "a-S0"}, "task_id": {"value": "t"}, "uuid": "/wAQ"}
            })
        );
        let back: Call = ContentType::Json.decode(serde_json::to_vec(&json).unwrap().as_slice()).unwrap();
        assert_eq!(back, call);

        let subscribe = Call {
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: FrameworkInfo {
                    user: "u".into(),
                    name: "n".into(),
                    failover_timeout: Some(7.5),
                    ..Default::default()
                },
                suppressed_roles: Vec::new(),
            }),
            ..Default::default()
        };
        let text = String::from_utf8(ContentType::Json.encode(&subscribe).unwrap()).unwrap();
        assert!(text.contains(r#""failover_timeout":7.5"#), "{text}");
        assert!(!text.contains("failoverTimeout"), "{text}");
    }

    #[test]
    fn json_events_as_mesos_writes_them_decode_ignoring_what_we_do_not_know() {
        let text = br#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"x-0000"},
            "heartbeat_interval_seconds":15.0,"master_info":{"id":"m","ip":16777343,"port":5050,
            "hostname":"127.0.0.1","version":"1.11.0","domain_unknown":{"x":1}}},
            "some_future_field":[1,2,3]}"#;
        let e: Event = ContentType::Json.decode(text).unwrap();
        assert_eq!(e.r#type, Some(event::Type::Subscribed as i32));
        let s = e.subscribed.unwrap();
        assert_eq!(s.framework_id.value, "x-0000");
        assert_eq!(s.heartbeat_interval_seconds, Some(15.0));
        assert_eq!(s.master_info.unwrap().port, 5050);
        // An enum name from a later Mesos leaves the field unset rather than failing.
        let e: Event = ContentType::Json.decode(br#"{"type":"SOMETHING_NEW"}"#).unwrap();
        assert_eq!(e.r#type, None);
        // Numbers may arrive as strings.
        let e: Event = ContentType::Json.decode(br#"{"type":"HEARTBEAT","subscribed":{"framework_id":{"value":"f"},"heartbeat_interval_seconds":"2.5"}}"#).unwrap();
        assert_eq!(e.subscribed.unwrap().heartbeat_interval_seconds, Some(2.5));
    }

    #[test]
    fn bad_json_and_bad_protobuf_are_errors_naming_the_message() {
        for bad in [&b"{"[..], b"[]", b"{\"type\":7.5}", b"{} trailing", b"\xff\xfe"] {
            let err = ContentType::Json.decode::<Event>(bad).unwrap_err();
            assert!(err.to_string().contains("mesos.v1.scheduler.Event"), "{err}");
        }
        let err = ContentType::Protobuf.decode::<Event>(&[0x0a, 0xff]).unwrap_err();
        assert!(err.to_string().contains("protobuf mesos.v1.scheduler.Event"), "{err}");
        assert_eq!(ContentType::from_mime("application/json; charset=utf-8"), None);
        assert_eq!(ContentType::from_mime(ContentType::Json.mime()), Some(ContentType::Json));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_either_decoder(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = ContentType::Protobuf.decode::<Event>(&bytes);
            let _ = ContentType::Json.decode::<Event>(&bytes);
            let _ = ContentType::Protobuf.decode::<crate::v1::executor::Event>(&bytes);
            let _ = ContentType::Json.decode::<crate::v1::executor::Event>(&bytes);
        }

        #[test]
        fn arbitrary_json_values_never_panic(text in "\\{(\"(type|subscribed|offers|update|error|message)\":(\"[A-Z_]{0,12}\"|[0-9.e-]{1,6}|\\{\\}|\\[\\]|null|true),?){0,4}\\}") {
            let _ = ContentType::Json.decode::<Event>(text.as_bytes());
        }
    }
}
