//! RecordIO, the framing of Mesos event streams: `<decimal length>\n<bytes>`, repeated
//! (Mesos `docs/recordio.md`; shared/docs/MESOS-HTTP-API.md §1.4). Records are cut strictly by
//! length: protobuf records may contain newlines, and HTTP chunks need not line up with
//! records.

use bytes::{Buf, Bytes, BytesMut};

/// The largest record accepted unless told otherwise (mesos-go uses 4 MiB; an OFFERS event
/// with many agents can be large, so this is 16 MiB).
pub const DEFAULT_MAX_RECORD: usize = 16 << 20;

/// The longest length prefix: 20 digits hold any u64.
const MAX_DIGITS: usize = 20;

/// Why a stream is not valid RecordIO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// The length prefix holds something other than decimal digits.
    #[error("invalid RecordIO length prefix {0:?}")]
    BadLength(String),
    /// A record announces more bytes than the cap.
    #[error("RecordIO record of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// The stream ended inside a record.
    #[error("RecordIO stream ended inside a record ({0} bytes pending)")]
    Truncated(usize),
}

/// Decodes records from chunks of any size.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    /// Length of the record being read, once its prefix is complete.
    pending: Option<usize>,
    max: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD)
    }
}

impl Decoder {
    /// A decoder refusing records over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { buf: BytesMut::new(), pending: None, max }
    }

    /// Appends a chunk.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete record, `Ok(None)` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        if self.pending.is_none() {
            let Some(newline) = self.buf.iter().take(MAX_DIGITS + 1).position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_DIGITS || !self.buf.iter().all(u8::is_ascii_digit) {
                    return Err(RecordIoError::BadLength(prefix_text(&self.buf)));
                }
                return Ok(None);
            };
            let digits = &self.buf[..newline];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(RecordIoError::BadLength(prefix_text(digits)));
            }
            // At most 20 digits: parsing can only overflow u64, never panic.
            let text = std::str::from_utf8(digits).map_err(|_| RecordIoError::BadLength(prefix_text(digits)))?;
            // All digits, so a parse failure can only be a number beyond u64: too large.
            let len: u64 = text.parse().unwrap_or(u64::MAX);
            if len > self.max as u64 {
                return Err(RecordIoError::TooLarge { len, max: self.max });
            }
            self.buf.advance(newline + 1);
            self.pending = Some(len as usize);
        }
        match self.pending {
            Some(len) if self.buf.len() >= len => {
                self.pending = None;
                Ok(Some(self.buf.split_to(len).freeze()))
            }
            _ => Ok(None),
        }
    }

    /// Checks that the stream ended between records.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        let pending = self.buf.len() + self.pending.map_or(0, |_| 1);
        if pending == 0 { Ok(()) } else { Err(RecordIoError::Truncated(self.buf.len())) }
    }
}

fn prefix_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).into_owned()
}

/// Records read from a streaming HTTP body, decoded as they arrive: the common part of the
/// scheduler's and the executor's event streams.
pub(crate) struct RecordStream {
    body: hyper::body::Incoming,
    decoder: Decoder,
}

/// Why a record stream stopped short.
pub(crate) enum StreamFailure {
    /// The bytes are not RecordIO.
    RecordIo(RecordIoError),
    /// The connection failed.
    Transport(String),
}

impl RecordStream {
    pub(crate) fn new(body: hyper::body::Incoming) -> Self {
        Self { body, decoder: Decoder::default() }
    }

    /// The next record; `None` when the peer closed the stream between records.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, StreamFailure>> {
        use http_body_util::BodyExt;
        loop {
            match self.decoder.next_record() {
                Ok(Some(record)) => return Some(Ok(record)),
                Ok(None) => {}
                Err(e) => return Some(Err(StreamFailure::RecordIo(e))),
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.decoder.push(data);
                    }
                }
                Some(Err(e)) => return Some(Err(StreamFailure::Transport(e.to_string()))),
                None => return self.decoder.finish().err().map(|e| Err(StreamFailure::RecordIo(e))),
            }
        }
    }
}

/// Frames one record.
pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", record.len()).into_bytes();
    out.extend_from_slice(record);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(d: &mut Decoder) -> Result<Vec<Vec<u8>>, RecordIoError> {
        let mut out = Vec::new();
        while let Some(r) = d.next_record()? {
            out.push(r.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn records_split_anywhere_and_holding_newlines_decode_by_length() {
        let records: Vec<Vec<u8>> =
            vec![b"a\nb".to_vec(), Vec::new(), vec![b'\n'; 12], b"{\"type\":\"HEARTBEAT\"}".to_vec()];
        let stream: Vec<u8> = records.iter().flat_map(|r| encode(r)).collect();
        for chunk in 1..stream.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                d.push(c);
                got.extend(decode_all(&mut d).unwrap());
            }
            assert_eq!(got, records, "chunk size {chunk}");
            d.finish().unwrap();
        }
    }

    #[test]
    fn bad_prefixes_oversized_records_and_truncation_are_errors() {
        let mut d = Decoder::default();
        d.push(b"12x\nabc");
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength(_))));
        let mut d = Decoder::default();
        d.push(b"\nabc");
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength(_))));
        let mut d = Decoder::default();
        d.push(b"123456789012345678901234");
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength(_))));
        let mut d = Decoder::new(10);
        d.push(b"11\n");
        assert_eq!(d.next_record(), Err(RecordIoError::TooLarge { len: 11, max: 10 }));
        let mut d = Decoder::default();
        d.push(b"99999999999999999999\n");
        assert!(matches!(d.next_record(), Err(RecordIoError::TooLarge { .. })));
        let mut d = Decoder::default();
        d.push(b"5\nab");
        assert_eq!(d.next_record(), Ok(None));
        assert_eq!(d.finish(), Err(RecordIoError::Truncated(2)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut d = Decoder::new(1024);
            for c in chunks {
                d.push(&c);
                if decode_all(&mut d).is_err() {
                    break;
                }
            }
            let _ = d.finish();
        }

        #[test]
        fn any_records_round_trip_under_any_chunking(records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..10), chunk in 1usize..50) {
            let stream: Vec<u8> = records.iter().flat_map(|r| encode(r)).collect();
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                d.push(c);
                got.extend(decode_all(&mut d).unwrap());
            }
            prop_assert_eq!(got, records);
            prop_assert!(d.finish().is_ok());
        }
    }
}
