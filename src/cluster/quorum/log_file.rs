//! The quorum's durable state: one append-only file of Raft entries and hard states under
//! `<data>/quorum/`. Read whole at start into raft-rs's `MemStorage`; written (and
//! fdatasynced) by the quorum thread before anything that depends on it is sent.
//!
//! Record: `u32 length, u32 CRC-32C of the payload, payload`, all little-endian; the
//! payload's first byte is its kind (entries or hard state), the rest protobuf. A later
//! entry at an index already present replaces that index and everything after it, as Raft
//! truncates a follower's divergent tail. A torn or corrupt tail (a crash mid-write) is cut
//! off at start; nothing before it was acknowledged as durable past it.
//!
//! The metadata log is small (topic changes and node registrations), so it is not
//! compacted yet. Runs on the node's quorum thread (blocking I/O).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use protobuf::Message as _;
use raft::Storage as _;
use raft::eraftpb::{Entry, HardState};
use raft::storage::MemStorage;

use spindle_protocol::record_batch::crc32c;

const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
/// Largest record accepted when reading back (a metadata command is far smaller).
const RECORD_BYTES_MAX: usize = 64 << 20;
pub const LOG_FILE_NAME: &str = "raft.log";

pub struct QuorumLogFile {
    file: File,
}

impl QuorumLogFile {
    /// Opens (or creates) the log in `dir` and loads it into `storage`, cutting a torn tail.
    pub fn open(dir: &Path, storage: &MemStorage) -> Result<QuorumLogFile, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(LOG_FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let good = load(&bytes, storage).map_err(|e| format!("{}: {e}", path.display()))?;
        if good < bytes.len() {
            tracing::warn!(
                "{}: cutting {} bytes of torn tail at byte {good}",
                path.display(),
                bytes.len() - good
            );
            file.set_len(good as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(QuorumLogFile { file })
    }

    /// Appends `entries` and `hard_state` (either may be empty) and makes them durable.
    pub fn append(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> std::io::Result<()> {
        let mut out = Vec::new();
        for entry in entries {
            push_record(
                &mut out,
                KIND_ENTRY,
                &entry.write_to_bytes().map_err(to_io)?,
            );
        }
        if let Some(hard_state) = hard_state {
            push_record(
                &mut out,
                KIND_HARD_STATE,
                &hard_state.write_to_bytes().map_err(to_io)?,
            );
        }
        if out.is_empty() {
            return Ok(());
        }
        self.file.write_all(&out)?;
        self.file.sync_data()
    }
}

fn to_io(e: protobuf::ProtobufError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

fn push_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let mut payload = Vec::with_capacity(body.len() + 1);
    payload.push(kind);
    payload.extend_from_slice(body);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Replays `bytes` into `storage`; returns how many bytes were whole, valid records. A
/// valid record that Raft's storage refuses (a gap in the entries) is an error: the file
/// was not written by this code.
fn load(bytes: &[u8], storage: &MemStorage) -> Result<usize, String> {
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if length == 0 || length > RECORD_BYTES_MAX || bytes.len() - at - 8 < length {
            break;
        }
        let payload = &bytes[at + 8..at + 8 + length];
        if crc32c(payload) != crc {
            break;
        }
        let body = &payload[1..];
        match payload[0] {
            KIND_ENTRY => {
                let entry = Entry::parse_from_bytes(body).map_err(|e| e.to_string())?;
                let first = storage.first_index().map_err(|e| e.to_string())?;
                let last = storage.last_index().map_err(|e| e.to_string())?;
                if entry.index > last + 1 || entry.index < first {
                    return Err(format!(
                        "entry {} does not follow the log's last index {last}",
                        entry.index
                    ));
                }
                storage.wl().append(&[entry]).map_err(|e| e.to_string())?;
            }
            KIND_HARD_STATE => {
                let hard_state = HardState::parse_from_bytes(body).map_err(|e| e.to_string())?;
                storage.wl().set_hardstate(hard_state);
            }
            other => return Err(format!("unknown record kind {other}")),
        }
        at += 8 + length;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec().into(),
            ..Default::default()
        }
    }

    fn fresh() -> MemStorage {
        MemStorage::new_with_conf_state((vec![1, 2, 3], vec![]))
    }

    #[test]
    fn entries_and_hard_state_survive_a_reopen_and_overwrites_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QuorumLogFile::open(dir.path(), &fresh()).unwrap();
        let hard_state = HardState {
            term: 2,
            vote: 3,
            commit: 2,
            ..Default::default()
        };
        log.append(
            &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
            None,
        )
        .unwrap();
        // A new leader's entry 3 replaces the old 3 (and would replace anything after it).
        log.append(&[entry(3, 2, b"C")], Some(&hard_state)).unwrap();
        drop(log);

        let storage = fresh();
        QuorumLogFile::open(dir.path(), &storage).unwrap();
        assert_eq!(storage.last_index().unwrap(), 3);
        let entries = storage
            .entries(1, 4, u64::MAX, raft::GetEntriesContext::empty(false))
            .unwrap();
        let data: Vec<&[u8]> = entries.iter().map(|e| &e.data[..]).collect();
        assert_eq!(data, vec![&b"a"[..], b"b", b"C"]);
        assert_eq!(storage.initial_state().unwrap().hard_state, hard_state);
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = QuorumLogFile::open(dir.path(), &fresh()).unwrap();
        log.append(&[entry(1, 1, b"kept")], None).unwrap();
        log.append(&[entry(2, 1, b"torn")], None).unwrap();
        drop(log);
        let path = dir.path().join(LOG_FILE_NAME);
        let whole = std::fs::read(&path).unwrap();
        // Flip a byte of the last record's payload: its CRC no longer matches.
        let mut corrupt = whole.clone();
        *corrupt.last_mut().unwrap() ^= 0xff;
        std::fs::write(&path, &corrupt).unwrap();
        let storage = fresh();
        QuorumLogFile::open(dir.path(), &storage).unwrap();
        assert_eq!(storage.last_index().unwrap(), 1);
        let first_record = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(first_record < whole.len());
        // And a record cut short.
        std::fs::write(&path, &whole[..whole.len() - 3]).unwrap();
        let storage = fresh();
        QuorumLogFile::open(dir.path(), &storage).unwrap();
        assert_eq!(storage.last_index().unwrap(), 1);
        // An absurd length is a torn tail too, never an allocation.
        let mut huge = whole[..first_record].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        std::fs::write(&path, &huge).unwrap();
        let storage = fresh();
        QuorumLogFile::open(dir.path(), &storage).unwrap();
        assert_eq!(storage.last_index().unwrap(), 1);
    }
}
