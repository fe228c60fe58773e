//! The Fetch response frame (versions 4 to 18; 17 and 18 changed only the request), encoded by hand so that record batches are
//! never copied: the frame is a list of chunks where each large record slice is the very
//! `Bytes` the log holds, and only the small fields around them are written out. Byte for
//! byte what the `kafka-protocol` codec writes (a test checks every version).
//!
//! Pure: no I/O. Fields Spindle never sets (aborted transactions, current leader, snapshot
//! id, node endpoints) are written at their defaults, i.e. null or absent.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Record slices shorter than this are copied into the surrounding chunk: one more small
/// write costs more than copying a few KiB.
pub const RECORDS_COPY_BYTES_MAX: usize = 16 << 10;

/// One partition of a Fetch answer.
#[derive(Debug, Clone, Default)]
pub struct FetchedPartition {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// The stored batches, in order; `None` for a null records field.
    pub records: Option<Vec<Bytes>>,
    /// To a follower whose log stopped agreeing with the leader's (v12+, tagged): the
    /// newest leader epoch at or below the one it last fetched, and where that epoch ends
    /// here. The follower cuts its log back before it fetches again.
    pub diverging_epoch: Option<(i32, i64)>,
}

impl FetchedPartition {
    /// A partition's answer before anything is known: no marks, no error, and empty
    /// records, never null, even beside an error (librdkafka rejects the whole response on
    /// a null records field and never sees the error).
    pub fn empty(partition_index: i32) -> FetchedPartition {
        FetchedPartition {
            partition_index,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: Some(Vec::new()),
            diverging_epoch: None,
        }
    }
}

/// One topic of a Fetch answer: named up to v12, identified by id from v13.
#[derive(Debug, Clone, Default)]
pub struct FetchedTopic {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<FetchedPartition>,
}

/// A response frame as chunks to write in order (the first starts with the size prefix).
#[derive(Debug, Default)]
pub struct ChunkedFrame {
    pub chunks: Vec<Bytes>,
}

impl ChunkedFrame {
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The whole frame in one buffer (tests, and callers that must copy anyway).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out.freeze()
    }
}

impl From<BytesMut> for ChunkedFrame {
    fn from(frame: BytesMut) -> ChunkedFrame {
        ChunkedFrame {
            chunks: vec![frame.freeze()],
        }
    }
}

struct Writer {
    /// The first run of small fields; holds the size prefix, patched at the end.
    head: BytesMut,
    /// Everything after the first large slice.
    tail: Vec<Bytes>,
    current: BytesMut,
    total_bytes: usize,
}

impl Writer {
    fn buffer(&mut self) -> &mut BytesMut {
        if self.tail.is_empty() {
            &mut self.head
        } else {
            &mut self.current
        }
    }

    fn put_slice(&mut self, bytes: &[u8]) {
        self.total_bytes += bytes.len();
        self.buffer().put_slice(bytes);
    }

    fn put_i16(&mut self, value: i16) {
        self.put_slice(&value.to_be_bytes());
    }

    fn put_i32(&mut self, value: i32) {
        self.put_slice(&value.to_be_bytes());
    }

    fn put_i64(&mut self, value: i64) {
        self.put_slice(&value.to_be_bytes());
    }

    fn put_unsigned_varint(&mut self, mut value: u32) {
        let mut bytes = [0u8; 5];
        let mut length = 0;
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                bytes[length] = byte;
                length += 1;
                break;
            }
            bytes[length] = byte | 0x80;
            length += 1;
        }
        self.put_slice(&bytes[..length]);
    }

    /// Array or string length: compact (n + 1 as varint) in flexible versions.
    fn put_length(&mut self, flexible: bool, length: usize, wide: bool) {
        if flexible {
            self.put_unsigned_varint(length as u32 + 1);
        } else if wide {
            self.put_i32(length as i32);
        } else {
            self.put_i16(length as i16);
        }
    }

    fn put_records(&mut self, slice: &Bytes) {
        if slice.len() < RECORDS_COPY_BYTES_MAX {
            self.put_slice(slice);
            return;
        }
        self.total_bytes += slice.len();
        if !self.current.is_empty() {
            let run = self.current.split().freeze();
            self.tail.push(run);
        }
        self.tail.push(slice.clone());
    }

    fn finish(mut self) -> ChunkedFrame {
        let size = (self.total_bytes - 4) as i32;
        self.head[..4].copy_from_slice(&size.to_be_bytes());
        let mut chunks = Vec::with_capacity(self.tail.len() + 2);
        chunks.push(self.head.freeze());
        chunks.extend(self.tail);
        if !self.current.is_empty() {
            chunks.push(self.current.freeze());
        }
        ChunkedFrame { chunks }
    }
}

/// Encodes a whole Fetch response frame (size prefix, header, body) at `version` (4..=18;
/// 17 and 18 changed only the request).
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    throttle_time_ms: i32,
    error_code: i16,
    topics: &[FetchedTopic],
) -> ChunkedFrame {
    assert!(
        (4..=18).contains(&version),
        "Fetch v{version} is not encoded here"
    );
    let flexible = version >= 12;
    let mut writer = Writer {
        head: BytesMut::with_capacity(256),
        tail: Vec::new(),
        current: BytesMut::new(),
        total_bytes: 0,
    };
    writer.put_i32(0); // size, patched by finish
    writer.put_i32(correlation_id);
    if flexible {
        writer.put_unsigned_varint(0); // response header tagged fields
    }
    writer.put_i32(throttle_time_ms);
    if version >= 7 {
        writer.put_i16(error_code);
        writer.put_i32(0); // session_id: no fetch sessions
    }
    writer.put_length(flexible, topics.len(), true);
    for topic in topics {
        if version >= 13 {
            writer.put_slice(topic.topic_id.as_bytes());
        } else {
            writer.put_length(flexible, topic.name.len(), false);
            writer.put_slice(topic.name.as_bytes());
        }
        writer.put_length(flexible, topic.partitions.len(), true);
        for partition in &topic.partitions {
            writer.put_i32(partition.partition_index);
            writer.put_i16(partition.error_code);
            writer.put_i64(partition.high_watermark);
            writer.put_i64(partition.last_stable_offset);
            if version >= 5 {
                writer.put_i64(partition.log_start_offset);
            }
            // aborted_transactions: null
            if flexible {
                writer.put_unsigned_varint(0);
            } else {
                writer.put_i32(-1);
            }
            if version >= 11 {
                writer.put_i32(-1); // preferred_read_replica
            }
            match &partition.records {
                None if flexible => writer.put_unsigned_varint(0),
                None => writer.put_i32(-1),
                Some(batches) => {
                    let length: usize = batches.iter().map(Bytes::len).sum();
                    writer.put_length(flexible, length, true);
                    for batch in batches {
                        writer.put_records(batch);
                    }
                }
            }
            match partition.diverging_epoch {
                Some((epoch, end_offset)) if flexible => {
                    writer.put_unsigned_varint(1); // one partition tagged field
                    writer.put_unsigned_varint(0); // tag 0: diverging_epoch
                    writer.put_unsigned_varint(4 + 8 + 1); // its size
                    writer.put_i32(epoch);
                    writer.put_i64(end_offset);
                    writer.put_unsigned_varint(0); // its own tagged fields
                }
                _ if flexible => writer.put_unsigned_varint(0), // partition tagged fields
                _ => {}
            }
        }
        if flexible {
            writer.put_unsigned_varint(0); // topic tagged fields
        }
    }
    if flexible {
        writer.put_unsigned_varint(0); // top-level tagged fields (no node endpoints)
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::encode_response;
    use kafka_protocol::messages::fetch_response::{
        EpochEndOffset, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, ResponseKind, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn sample() -> Vec<FetchedTopic> {
        let big = Bytes::from(vec![7u8; RECORDS_COPY_BYTES_MAX + 5]);
        let small = Bytes::from_static(b"small-batch");
        vec![
            FetchedTopic {
                name: "orders".into(),
                topic_id: Uuid::from_u128(0x1234),
                partitions: vec![
                    FetchedPartition {
                        partition_index: 0,
                        high_watermark: 10,
                        last_stable_offset: 10,
                        log_start_offset: 2,
                        records: Some(vec![small.clone(), big.clone(), small.clone()]),
                        ..FetchedPartition::default()
                    },
                    FetchedPartition {
                        partition_index: 3,
                        error_code: 6,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                        records: None,
                        diverging_epoch: Some((4, 123)),
                    },
                ],
            },
            FetchedTopic {
                name: "logs".into(),
                topic_id: Uuid::from_u128(0x5678),
                partitions: vec![FetchedPartition {
                    partition_index: 1,
                    high_watermark: 4,
                    last_stable_offset: 4,
                    log_start_offset: 0,
                    records: Some(vec![big, Bytes::new()]),
                    ..FetchedPartition::default()
                }],
            },
        ]
    }

    /// The same answer through the generated codec.
    fn reference(version: i16, topics: &[FetchedTopic]) -> Bytes {
        let responses = topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(p.error_code)
                            .with_high_watermark(p.high_watermark)
                            .with_last_stable_offset(p.last_stable_offset)
                            .with_log_start_offset(if version >= 5 {
                                p.log_start_offset
                            } else {
                                -1
                            })
                            .with_preferred_read_replica(BrokerId(-1))
                            .with_aborted_transactions(None)
                            .with_diverging_epoch(match p.diverging_epoch {
                                Some((epoch, end_offset)) if version >= 12 => {
                                    EpochEndOffset::default()
                                        .with_epoch(epoch)
                                        .with_end_offset(end_offset)
                                }
                                _ => EpochEndOffset::default(),
                            })
                            .with_records(p.records.as_ref().map(|batches| {
                                let mut all = BytesMut::new();
                                batches.iter().for_each(|b| all.extend_from_slice(b));
                                all.freeze()
                            }))
                    })
                    .collect();
                let response = FetchableTopicResponse::default().with_partitions(partitions);
                if version >= 13 {
                    response.with_topic_id(topic.topic_id)
                } else {
                    response.with_topic(TopicName(StrBytes::from_string(topic.name.clone())))
                }
            })
            .collect();
        encode_response(
            ApiKey::Fetch,
            version,
            99,
            &ResponseKind::Fetch(FetchResponse::default().with_responses(responses)),
        )
        .unwrap()
        .freeze()
    }

    #[test]
    fn matches_the_codec_byte_for_byte_at_every_version() {
        let topics = sample();
        for version in 4..=18 {
            let frame = encode_fetch_response(version, 99, 0, 0, &topics);
            assert_eq!(frame.to_bytes(), reference(version, &topics), "v{version}");
        }
    }

    #[test]
    fn large_record_slices_are_not_copied() {
        let topics = sample();
        let frame = encode_fetch_response(12, 1, 0, 0, &topics);
        let big = topics[0].partitions[0].records.as_ref().unwrap()[1].clone();
        assert!(
            frame
                .chunks
                .iter()
                .any(|chunk| chunk.as_ptr() == big.as_ptr() && chunk.len() == big.len()),
            "the large batch is written from the log's own buffer"
        );
        // Small pieces around the two large slices were coalesced: head, big, run, big, run.
        assert_eq!(frame.chunks.len(), 5);
    }

    #[test]
    fn empty_answer() {
        let frame = encode_fetch_response(7, 5, 0, 70, &[]);
        assert_eq!(frame.to_bytes(), {
            let mut expected = BytesMut::new();
            expected.put_i32(18);
            expected.put_i32(5);
            expected.put_i32(0);
            expected.put_i16(70);
            expected.put_i32(0);
            expected.put_i32(0);
            expected.freeze()
        });
    }
}
