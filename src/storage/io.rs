//! The small interface between the partition log and the device, so that the real log can
//! run over glommio direct I/O ([`DmaStorage`]) or over an in-memory, fault-injecting device
//! (`storage::sim`). Both are used from one executor only; nothing here is `Send`.
//!
//! Contract the log relies on (and the simulator enforces): write positions and lengths are
//! multiples of [`SegmentFile::alignment`]; a write that returns `Ok(n)` with `n < len` wrote
//! only the first `n` bytes; bytes are durable only after `fdatasync` returns `Ok`; a new
//! file's directory entry is durable only after `sync_dir`.

// The traits are used with static dispatch inside one thread-per-core executor; their
// futures are never sent across threads, so the `Send` bounds the lint asks about are moot.
#![allow(async_fn_in_trait)]

use std::io;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

/// Memory a file can write with direct I/O.
pub trait IoBuffer: AsRef<[u8]> + AsMut<[u8]> + 'static {
    /// Shortens the buffer to `len` bytes; it cannot grow back.
    fn trim_to(&mut self, len: usize);
}

impl IoBuffer for DmaBuffer {
    fn trim_to(&mut self, len: usize) {
        self.trim_to_size(len);
    }
}

/// One open segment or index file.
pub trait SegmentFile: 'static {
    type Buffer: IoBuffer;

    /// Alignment of write positions and lengths (4096 for direct I/O here).
    fn alignment(&self) -> u64;

    /// A zero-length-prefix buffer of `len` bytes suitable for [`SegmentFile::write_at`].
    /// Its contents are unspecified.
    fn alloc_buffer(&self, len: usize) -> Self::Buffer;

    /// Writes the whole buffer at `pos`; may write fewer bytes (returned).
    async fn write_at(&self, buffer: Rc<Self::Buffer>, pos: u64) -> io::Result<usize>;

    /// Reads up to `len` bytes at `pos` (any alignment); fewer at end of file.
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes>;

    async fn fdatasync(&self) -> io::Result<()>;

    async fn file_size(&self) -> io::Result<u64>;

    /// Sets the file's size; bytes past it are gone and read back as zeros if it grows.
    async fn truncate(&self, len: u64) -> io::Result<()>;

    /// Reserves blocks up to `len` (the file's size becomes at least `len`, reading zeros),
    /// so later direct writes do not allocate on the hot path.
    async fn pre_allocate(&self, len: u64) -> io::Result<()>;

    /// Writes all of `buffer` at `pos`, retrying short writes. A short write that stops
    /// between alignment units is resumed from the unit it stopped in.
    async fn write_all_at(&self, buffer: Rc<Self::Buffer>, pos: u64) -> io::Result<()> {
        let len = buffer.as_ref().as_ref().len();
        let mut done = self.write_at(buffer.clone(), pos).await?;
        while done < len {
            if done == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "device wrote no bytes",
                ));
            }
            let resume = done - done % self.alignment() as usize;
            let mut rest = self.alloc_buffer(len - resume);
            rest.as_mut()
                .copy_from_slice(&buffer.as_ref().as_ref()[resume..]);
            let written = self.write_at(Rc::new(rest), pos + resume as u64).await?;
            if written == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "device wrote no bytes",
                ));
            }
            done = resume + written;
        }
        Ok(())
    }
}

/// A directory tree of segment files.
pub trait Storage: 'static {
    type File: SegmentFile;

    /// Opens `path` for reading and writing; creates it (empty) when `create` is set and it
    /// does not exist. Never truncates.
    async fn open(&self, path: &Path, create: bool) -> io::Result<Self::File>;

    /// A write buffer of `len` bytes, before any file exists. Contents unspecified.
    fn alloc_buffer(&self, len: usize) -> <Self::File as SegmentFile>::Buffer;

    async fn remove(&self, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to` in one step, replacing `to` if it exists (a reader sees the
    /// old file or the new one under `to`, never neither). Durable after `sync_dir`.
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes creations, renames and removals in `dir` durable.
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    fn remove_dir(&self, dir: &Path) -> io::Result<()>;

    /// File names (not paths) in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
}

/// The production device: glommio `DmaFile` (O_DIRECT through io_uring).
#[derive(Debug, Clone, Copy, Default)]
pub struct DmaStorage;

pub struct DmaSegmentFile {
    file: DmaFile,
}

impl SegmentFile for DmaSegmentFile {
    type Buffer = DmaBuffer;

    fn alignment(&self) -> u64 {
        self.file.alignment()
    }

    fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        self.file.alloc_dma_buffer(len)
    }

    async fn write_at(&self, buffer: Rc<DmaBuffer>, pos: u64) -> io::Result<usize> {
        Ok(self.file.write_rc_at(buffer, pos).await?)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        // The cold path: one copy out of the executor's read buffer into shareable memory.
        let read = self.file.read_at(pos, len).await?;
        Ok(Bytes::copy_from_slice(&read))
    }

    async fn fdatasync(&self) -> io::Result<()> {
        Ok(self.file.fdatasync().await?)
    }

    async fn file_size(&self) -> io::Result<u64> {
        Ok(self.file.file_size().await?)
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        Ok(self.file.truncate(len).await?)
    }

    async fn pre_allocate(&self, len: u64) -> io::Result<()> {
        Ok(self.file.pre_allocate(len, false).await?)
    }
}

impl Storage for DmaStorage {
    type File = DmaSegmentFile;

    async fn open(&self, path: &Path, create: bool) -> io::Result<DmaSegmentFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await?;
        Ok(DmaSegmentFile { file })
    }

    fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        glommio::allocate_dma_buffer(len)
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        // Rare (retention, truncation, topic deletion): a plain syscall is fine here.
        std::fs::remove_file(path)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // Rare (a cleaned segment swapped in): a plain syscall is fine here.
        std::fs::rename(from, to)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }
}
