//! Files in a partition's directory that hold one offset: DeleteRecords' log start, the
//! cleaner's position. Written to `NAME.tmp`, synced, renamed over `NAME`, the directory
//! synced, so a crash leaves the old value or the new one. Read back with a leftover
//! temporary file removed (its rename never happened) and an unreadable value ignored.
//! Owner core.

use std::path::Path;

use tracing::warn;

use super::flusher::{read_whole_file, remove_if_present, write_whole_file};
use crate::storage::error::Result;
use crate::storage::{Storage, StorageError};

fn temp_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// Writes `offset` to `dir/name`, crash-safely.
pub(super) async fn write_offset_file<S: Storage>(
    storage: &S,
    dir: &Path,
    name: &str,
    offset: i64,
) -> Result<()> {
    let temp = dir.join(temp_name(name));
    write_whole_file(storage, &temp, format!("{offset}\n").as_bytes()).await?;
    storage
        .rename(&temp, &dir.join(name))
        .await
        .map_err(|e| StorageError::io("rename an offset file", e))?;
    storage
        .sync_dir(dir)
        .await
        .map_err(|e| StorageError::io("sync log dir", e))
}

/// The offset in `dir/name`, if it holds a readable one.
pub(super) async fn read_offset_file<S: Storage>(
    storage: &S,
    dir: &Path,
    name: &str,
) -> Result<Option<i64>> {
    remove_if_present(storage, &dir.join(temp_name(name))).await?;
    let Some(bytes) = read_whole_file(storage, &dir.join(name)).await else {
        return Ok(None);
    };
    let parsed = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok());
    if parsed.is_none() {
        warn!(dir = %dir.display(), "ignoring an unreadable {name}");
    }
    Ok(parsed)
}
