//! Producer ids for InitProducerId. Every core hands out its own ids, unique across cores,
//! nodes and restarts without asking anyone: id = counter * CORES_MAX + core, where each
//! node's counters start at `node << NODE_SHIFT` (node 0 at 0, as before clusters) and
//! advance through blocks whose end is persisted (fdatasync) before the first id of a
//! block is used. A crash skips the rest of a block, never reuses an id.
//!
//! Lives on its core (`Cell`s); the file is `data/.producer-ids/core-N`.

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Ids taken per persisted block.
pub const PRODUCER_ID_BLOCK: u64 = 1000;
/// The most cores ids are spread over (the broker refuses more cores).
pub const CORES_MAX: u64 = 1024;
/// Each node's counters start at `node << NODE_SHIFT`: 2^40 ids per core before two
/// nodes could meet.
const NODE_SHIFT: u32 = 40;
/// The largest node id whose ids still fit an i64 (`--node-id` refuses more).
pub const NODE_ID_MAX: u32 = 8191;

pub struct ProducerIdAllocator {
    core: u64,
    path: PathBuf,
    next: Cell<u64>,
    block_end: Cell<u64>,
}

impl ProducerIdAllocator {
    pub fn open(data_dir: &Path, node: u32, core: u32) -> std::io::Result<ProducerIdAllocator> {
        assert!(u64::from(core) < CORES_MAX && node <= NODE_ID_MAX);
        let dir = data_dir.join(".producer-ids");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("core-{core}"));
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => u64::from(node) << NODE_SHIFT,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdAllocator {
            core: u64::from(core),
            path,
            next: Cell::new(start),
            block_end: Cell::new(start),
        })
    }

    /// A fresh producer id. Blocking file I/O once per block of ids.
    pub fn allocate(&self) -> std::io::Result<i64> {
        if self.next.get() == self.block_end.get() {
            let end = self.block_end.get() + PRODUCER_ID_BLOCK;
            let temporary = self.path.with_extension("tmp");
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(end.to_string().as_bytes())?;
            file.sync_data()?;
            std::fs::rename(&temporary, &self.path)?;
            std::fs::File::open(self.path.parent().expect("dir"))?.sync_all()?;
            self.block_end.set(end);
        }
        let counter = self.next.get();
        self.next.set(counter + 1);
        Ok((counter * CORES_MAX + self.core) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_cores_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _restart in 0..3 {
            for node in [0, 1, NODE_ID_MAX] {
                // Each node has its own data directory.
                let dir = dir.path().join(format!("node-{node}"));
                for core in 0..3 {
                    let ids = ProducerIdAllocator::open(&dir, node, core).unwrap();
                    for _ in 0..10 {
                        let id = ids.allocate().unwrap();
                        assert!(id >= 0);
                        assert!(seen.insert(id), "id {id} handed out twice");
                    }
                }
            }
        }
    }
}
