//! A partition's recovery point (Kafka's `recovery-point-offset-checkpoint`): an offset
//! below which every batch is known to have been made durable. Recovery may cut only what
//! lies at or after it as a torn tail; a batch below it that fails its checks is damage to
//! report, never a tail to cut, and its offsets are never handed out again.
//!
//! Stored in two slot files written in turn, each with a sequence number and a CRC, so a
//! write torn by a crash leaves the other slot readable (the storage interface has no
//! rename). Pure encoding here; the log writes the slots from the core that owns it.

use spindle_protocol::record_batch::crc32c;

/// The two slot files in a partition directory.
pub const RECOVERY_POINT_FILE_NAMES: [&str; 2] = ["recovery-point.0", "recovery-point.1"];

const SLOT_BYTES: usize = 20;

/// One slot's contents: which write it was, and the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPoint {
    pub sequence: u64,
    pub offset: i64,
}

impl RecoveryPoint {
    /// The slot file this write goes to.
    pub fn file_name(&self) -> &'static str {
        RECOVERY_POINT_FILE_NAMES[(self.sequence % 2) as usize]
    }

    /// `sequence: u64 | offset: i64 | crc32c of both: u32`, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SLOT_BYTES);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// A slot's contents, `None` if torn, empty or foreign.
    pub fn decode(bytes: &[u8]) -> Option<RecoveryPoint> {
        let bytes = bytes.get(..SLOT_BYTES)?;
        let crc = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
        if crc32c(&bytes[..16]) != crc {
            return None;
        }
        let sequence = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let offset = i64::from_be_bytes(bytes[8..16].try_into().ok()?);
        (offset >= 0).then_some(RecoveryPoint { sequence, offset })
    }

    /// The newer of two slots' contents.
    pub fn newest(slots: [Option<RecoveryPoint>; 2]) -> Option<RecoveryPoint> {
        slots
            .into_iter()
            .flatten()
            .max_by_key(|point| point.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_a_torn_slot_falls_back_to_the_other() {
        let older = RecoveryPoint {
            sequence: 7,
            offset: 1_000,
        };
        let newer = RecoveryPoint {
            sequence: 8,
            offset: 2_000,
        };
        assert_ne!(older.file_name(), newer.file_name());
        assert_eq!(RecoveryPoint::decode(&older.encode()), Some(older));
        let slots = [
            RecoveryPoint::decode(&older.encode()),
            RecoveryPoint::decode(&newer.encode()),
        ];
        assert_eq!(RecoveryPoint::newest(slots), Some(newer));
        let mut torn = newer.encode();
        torn[12] ^= 1;
        let slots = [
            RecoveryPoint::decode(&older.encode()),
            RecoveryPoint::decode(&torn),
        ];
        assert_eq!(RecoveryPoint::newest(slots), Some(older));
        assert_eq!(
            RecoveryPoint::decode(&[0; 20]),
            None,
            "zeros are not a slot"
        );
        assert_eq!(RecoveryPoint::decode(&newer.encode()[..10]), None);
    }
}
