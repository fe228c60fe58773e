//! A segment file read with plain blocking `pread`s, for tools that inspect a partition
//! directory without an executor or direct I/O (`spindle dump-log`): the same scan code as
//! recovery runs over it, under `futures_lite::future::block_on`. It never writes; every
//! writing call fails with `PermissionDenied`. Runs on whichever thread calls it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;

use super::io::{IoBuffer, SegmentFile};

/// A plain heap buffer; [`ReadOnlyFile`] never writes one.
pub struct HeapBuffer(Vec<u8>);

impl AsRef<[u8]> for HeapBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for HeapBuffer {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl IoBuffer for HeapBuffer {
    fn trim_to(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

pub struct ReadOnlyFile {
    file: File,
}

impl ReadOnlyFile {
    pub fn open(path: &Path) -> io::Result<ReadOnlyFile> {
        Ok(ReadOnlyFile {
            file: File::open(path)?,
        })
    }
}

fn read_only<T>() -> io::Result<T> {
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        "opened read-only",
    ))
}

impl SegmentFile for ReadOnlyFile {
    type Buffer = HeapBuffer;

    fn alignment(&self) -> u64 {
        1
    }

    fn alloc_buffer(&self, len: usize) -> HeapBuffer {
        HeapBuffer(vec![0; len])
    }

    async fn write_at(&self, _buffer: Rc<HeapBuffer>, _pos: u64) -> io::Result<usize> {
        read_only()
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        // Never more than the file holds: `len` may be a caller's upper bound.
        let available = self.file.metadata()?.len().saturating_sub(pos);
        let mut bytes = vec![0; len.min(usize::try_from(available).unwrap_or(usize::MAX))];
        let mut filled = 0;
        while filled < bytes.len() {
            match self
                .file
                .read_at(&mut bytes[filled..], pos + filled as u64)?
            {
                0 => break,
                read => filled += read,
            }
        }
        bytes.truncate(filled);
        Ok(Bytes::from(bytes))
    }

    async fn fdatasync(&self) -> io::Result<()> {
        read_only()
    }

    async fn file_size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    async fn truncate(&self, _len: u64) -> io::Result<()> {
        read_only()
    }

    async fn pre_allocate(&self, _len: u64) -> io::Result<()> {
        read_only()
    }
}
