//! The records of a coordinator's group log (Kafka keeps the same facts in
//! `__consumer_offsets`): committed offsets and group metadata as key/value pairs, where a
//! later record for the same key replaces an earlier one and an empty value deletes it.
//! Pure encode/decode; the log itself is a `PartitionLog` (see `coordinator.rs`).
//!
//! Layout (big-endian): key = kind u8, group str, then for offsets topic str and partition
//! i32. Strings are u16 length + UTF-8, byte strings u32 length + bytes, optional strings
//! i16 length (-1 = none).

use bytes::{Buf, BufMut, Bytes, BytesMut};

const KIND_OFFSET: u8 = 1;
const KIND_GROUP: u8 = 2;
const VALUE_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<StoredMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    Offset(CommittedOffset),
    Group(StoredGroup),
    /// The key is deleted.
    Tombstone,
}

fn put_str(out: &mut BytesMut, value: &str) {
    let bytes = value.as_bytes();
    assert!(
        bytes.len() <= u16::MAX as usize,
        "string of {} bytes",
        bytes.len()
    );
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

fn put_opt_str(out: &mut BytesMut, value: Option<&str>) {
    match value {
        None => out.put_i16(-1),
        Some(value) => {
            assert!(value.len() <= i16::MAX as usize);
            out.put_i16(value.len() as i16);
            out.put_slice(value.as_bytes());
        }
    }
}

fn put_bytes(out: &mut BytesMut, value: &[u8]) {
    out.put_u32(value.len() as u32);
    out.put_slice(value);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn need(&self, bytes: usize) -> Option<()> {
        (self.0.remaining() >= bytes).then_some(())
    }

    fn u8(&mut self) -> Option<u8> {
        self.need(1)?;
        Some(self.0.get_u8())
    }

    fn i32(&mut self) -> Option<i32> {
        self.need(4)?;
        Some(self.0.get_i32())
    }

    fn u32(&mut self) -> Option<u32> {
        self.need(4)?;
        Some(self.0.get_u32())
    }

    fn i64(&mut self) -> Option<i64> {
        self.need(8)?;
        Some(self.0.get_i64())
    }

    fn take(&mut self, length: usize) -> Option<&[u8]> {
        self.need(length)?;
        let (head, rest) = self.0.split_at(length);
        self.0 = rest;
        Some(head)
    }

    fn str(&mut self) -> Option<String> {
        self.need(2)?;
        let length = self.0.get_u16() as usize;
        String::from_utf8(self.take(length)?.to_vec()).ok()
    }

    fn opt_str(&mut self) -> Option<Option<String>> {
        self.need(2)?;
        let length = self.0.get_i16();
        if length < 0 {
            return Some(None);
        }
        String::from_utf8(self.take(length as usize)?.to_vec())
            .ok()
            .map(Some)
    }

    fn bytes(&mut self) -> Option<Bytes> {
        let length = self.u32()? as usize;
        Some(Bytes::copy_from_slice(self.take(length)?))
    }
}

pub fn encode_key(key: &RecordKey) -> Vec<u8> {
    let mut out = BytesMut::new();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            out.put_u8(KIND_OFFSET);
            put_str(&mut out, group);
            put_str(&mut out, topic);
            out.put_i32(*partition);
        }
        RecordKey::Group { group } => {
            out.put_u8(KIND_GROUP);
            put_str(&mut out, group);
        }
    }
    out.to_vec()
}

pub fn decode_key(bytes: &[u8]) -> Option<RecordKey> {
    let mut reader = Reader(bytes);
    let key = match reader.u8()? {
        KIND_OFFSET => RecordKey::Offset {
            group: reader.str()?,
            topic: reader.str()?,
            partition: reader.i32()?,
        },
        KIND_GROUP => RecordKey::Group {
            group: reader.str()?,
        },
        _ => return None,
    };
    reader.0.is_empty().then_some(key)
}

/// An empty value is a tombstone.
pub fn encode_value(value: &RecordValue) -> Vec<u8> {
    let mut out = BytesMut::new();
    match value {
        RecordValue::Tombstone => {}
        RecordValue::Offset(committed) => {
            out.put_u8(VALUE_VERSION);
            out.put_i64(committed.offset);
            out.put_i32(committed.leader_epoch);
            put_opt_str(&mut out, committed.metadata.as_deref());
            out.put_i64(committed.commit_timestamp_ms);
        }
        RecordValue::Group(group) => {
            out.put_u8(VALUE_VERSION);
            out.put_i32(group.generation_id);
            put_opt_str(&mut out, group.protocol_type.as_deref());
            put_opt_str(&mut out, group.protocol_name.as_deref());
            put_opt_str(&mut out, group.leader.as_deref());
            out.put_u32(group.members.len() as u32);
            for member in &group.members {
                put_str(&mut out, &member.member_id);
                put_opt_str(&mut out, member.group_instance_id.as_deref());
                put_str(&mut out, &member.client_id);
                put_str(&mut out, &member.client_host);
                out.put_u32(member.session_timeout_ms);
                out.put_u32(member.rebalance_timeout_ms);
                out.put_u32(member.protocols.len() as u32);
                for (name, metadata) in &member.protocols {
                    put_str(&mut out, name);
                    put_bytes(&mut out, metadata);
                }
                put_bytes(&mut out, &member.assignment);
            }
        }
    }
    out.to_vec()
}

pub fn decode_value(key: &RecordKey, bytes: &[u8]) -> Option<RecordValue> {
    if bytes.is_empty() {
        return Some(RecordValue::Tombstone);
    }
    let mut reader = Reader(bytes);
    if reader.u8()? != VALUE_VERSION {
        return None;
    }
    let value = match key {
        RecordKey::Offset { .. } => RecordValue::Offset(CommittedOffset {
            offset: reader.i64()?,
            leader_epoch: reader.i32()?,
            metadata: reader.opt_str()?,
            commit_timestamp_ms: reader.i64()?,
        }),
        RecordKey::Group { .. } => {
            let generation_id = reader.i32()?;
            let protocol_type = reader.opt_str()?;
            let protocol_name = reader.opt_str()?;
            let leader = reader.opt_str()?;
            let count = reader.u32()? as usize;
            let mut members = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                let member_id = reader.str()?;
                let group_instance_id = reader.opt_str()?;
                let client_id = reader.str()?;
                let client_host = reader.str()?;
                let session_timeout_ms = reader.u32()?;
                let rebalance_timeout_ms = reader.u32()?;
                let protocol_count = reader.u32()? as usize;
                let mut protocols = Vec::with_capacity(protocol_count.min(64));
                for _ in 0..protocol_count {
                    protocols.push((reader.str()?, reader.bytes()?));
                }
                let assignment = reader.bytes()?;
                members.push(StoredMember {
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    session_timeout_ms,
                    rebalance_timeout_ms,
                    protocols,
                    assignment,
                });
            }
            RecordValue::Group(StoredGroup {
                generation_id,
                protocol_type,
                protocol_name,
                leader,
                members,
            })
        }
    };
    reader.0.is_empty().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let offset_key = RecordKey::Offset {
            group: "g".into(),
            topic: "orders".into(),
            partition: 7,
        };
        let offset = RecordValue::Offset(CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: Some("meta".into()),
            commit_timestamp_ms: 1_700_000_000_000,
        });
        assert_eq!(
            decode_key(&encode_key(&offset_key)),
            Some(offset_key.clone())
        );
        assert_eq!(
            decode_value(&offset_key, &encode_value(&offset)),
            Some(offset)
        );
        let group_key = RecordKey::Group { group: "g".into() };
        let group = RecordValue::Group(StoredGroup {
            generation_id: 3,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: Some("m1".into()),
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 45_000,
                rebalance_timeout_ms: 300_000,
                protocols: vec![("range".into(), Bytes::from_static(b"\x00\x01"))],
                assignment: Bytes::from_static(b"assigned"),
            }],
        });
        assert_eq!(decode_key(&encode_key(&group_key)), Some(group_key.clone()));
        assert_eq!(decode_value(&group_key, &encode_value(&group)), Some(group));
        assert_eq!(decode_value(&group_key, &[]), Some(RecordValue::Tombstone));
    }

    #[test]
    fn garbage_is_rejected_not_misread() {
        let key = RecordKey::Group { group: "g".into() };
        let mut bytes = encode_key(&key);
        bytes.push(0);
        assert_eq!(decode_key(&bytes), None);
        assert_eq!(decode_key(&[9, 0, 0]), None);
        assert_eq!(decode_value(&key, &[1, 0, 0]), None);
        assert_eq!(decode_value(&key, &[2]), None);
    }
}
