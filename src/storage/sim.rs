//! An in-memory device with fault injection, for running the real partition log
//! deterministically from a seed: short writes, failed writes and fsyncs, and a crash at a
//! chosen write after which [`SimStorage::crash_image`] yields the disk a reboot would see.
//!
//! Model: each file keeps the bytes readers see now and the bytes that were durable at its
//! last `fdatasync`, plus the operations since. A crash keeps the durable image and replays
//! each later operation fully, partly (a random subset of 512-byte sectors of a write) or not
//! at all: devices reorder and tear unsynced writes, but never tear inside a sector. A file
//! created since its directory's last `sync_dir` may vanish. Writes must respect the
//! alignment the log is told, exactly as O_DIRECT demands; a misaligned one panics, because
//! that is a bug in the log, not a device fault.
//!
//! Single-threaded (one executor), like the log it serves.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use super::io::{IoBuffer, SegmentFile, Storage};

/// Bytes a device writes atomically.
pub const SECTOR_BYTES: usize = 512;

/// A deterministic generator (splitmix64) so a failing seed replays exactly.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }
}

/// Which operations fail. Counts are 1-based over the whole storage.
#[derive(Debug, Clone, Default)]
pub struct SimFaults {
    /// This write (and every later operation) fails: the machine crashed mid-write.
    pub crash_at_write: Option<u64>,
    /// This write returns EIO.
    pub fail_write: Option<u64>,
    /// This fdatasync returns EIO.
    pub fail_fsync: Option<u64>,
    /// Each write is short (stops at a random sector inside it) with this probability in
    /// percent.
    pub short_write_percent: u64,
    /// This fdatasync (1-based, like the others) takes this long: a timer, so other tasks
    /// run meanwhile, as they do while a real device syncs.
    pub slow_fsync: Option<(u64, std::time::Duration)>,
    /// The machine crashes just before this directory operation (a remove, a rename or a
    /// directory sync; 1-based): it and everything after fail.
    pub crash_at_dir_op: Option<u64>,
}

/// Counters a test can assert on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Removes, renames and directory syncs begun.
    pub dir_ops: u64,
    pub writes: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    pub reads: u64,
}

#[derive(Debug, Clone)]
enum UnsyncedOp {
    Write { pos: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct SimFileState {
    data: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<UnsyncedOp>,
    /// The directory entry survives a crash.
    linked_durable: bool,
}

#[derive(Debug)]
struct SimState {
    files: BTreeMap<PathBuf, Rc<RefCell<SimFileState>>>,
    dirs: BTreeSet<PathBuf>,
    faults: SimFaults,
    stats: SimStats,
    /// fdatasyncs begun (the stats count those finished).
    fsyncs_started: u64,
    crashed: bool,
    rng: SimRng,
    alignment: u64,
}

/// The simulated device. Cloning shares it.
#[derive(Clone)]
pub struct SimStorage {
    state: Rc<RefCell<SimState>>,
}

impl SimStorage {
    /// A fresh, empty device. `alignment` is what writes must respect (use 4096 to mirror
    /// direct I/O here).
    pub fn new(seed: u64, alignment: u64) -> SimStorage {
        SimStorage {
            state: Rc::new(RefCell::new(SimState {
                files: BTreeMap::new(),
                dirs: BTreeSet::new(),
                faults: SimFaults::default(),
                stats: SimStats::default(),
                fsyncs_started: 0,
                crashed: false,
                rng: SimRng::new(seed),
                alignment,
            })),
        }
    }

    pub fn set_faults(&self, faults: SimFaults) {
        self.state.borrow_mut().faults = faults;
    }

    pub fn stats(&self) -> SimStats {
        self.state.borrow().stats
    }

    pub fn crashed(&self) -> bool {
        self.state.borrow().crashed
    }

    /// The bytes a reader sees now in `path`, if it exists.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.borrow();
        state.files.get(path).map(|file| file.borrow().data.clone())
    }

    /// Replaces the contents of `path` (creating it), durable at once. For tests that
    /// corrupt or cut files between runs.
    pub fn put_file(&self, path: &Path, bytes: Vec<u8>) {
        let mut state = self.state.borrow_mut();
        let file = state.files.entry(path.to_path_buf()).or_default().clone();
        let mut file = file.borrow_mut();
        file.durable = bytes.clone();
        file.data = bytes;
        file.unsynced.clear();
        file.linked_durable = true;
    }

    /// The disk as a reboot after a power loss now would find it, on a fresh device with no
    /// faults. Unsynced operations survive, tear or vanish at random (from `seed`).
    pub fn crash_image(&self, seed: u64) -> SimStorage {
        self.image(seed, false)
    }

    /// The disk as a restart after the process was killed (SIGKILL) would find it: every
    /// completed write is there (the kernel has it), synced or not.
    pub fn process_crash_image(&self) -> SimStorage {
        self.image(0, true)
    }

    fn image(&self, seed: u64, keep_unsynced: bool) -> SimStorage {
        let state = self.state.borrow();
        let mut rng = SimRng::new(seed);
        let mut files = BTreeMap::new();
        for (path, file) in &state.files {
            let file = file.borrow();
            if !keep_unsynced && !file.linked_durable && rng.chance(1, 2) {
                continue;
            }
            let mut data = file.durable.clone();
            for op in &file.unsynced {
                match op {
                    UnsyncedOp::SetLen(len) => {
                        if keep_unsynced || rng.chance(1, 2) {
                            data.resize(*len as usize, 0);
                        }
                    }
                    UnsyncedOp::Write { pos, bytes } => {
                        let mode = if keep_unsynced { 0 } else { rng.below(3) };
                        for (index, sector) in bytes.chunks(SECTOR_BYTES).enumerate() {
                            let keep = match mode {
                                0 => true,
                                1 => false,
                                _ => rng.chance(1, 2),
                            };
                            if keep {
                                let at = *pos as usize + index * SECTOR_BYTES;
                                if data.len() < at + sector.len() {
                                    data.resize(at + sector.len(), 0);
                                }
                                data[at..at + sector.len()].copy_from_slice(sector);
                            }
                        }
                    }
                }
            }
            files.insert(
                path.clone(),
                Rc::new(RefCell::new(SimFileState {
                    durable: data.clone(),
                    data,
                    unsynced: Vec::new(),
                    linked_durable: true,
                })),
            );
        }
        SimStorage {
            state: Rc::new(RefCell::new(SimState {
                files,
                dirs: state.dirs.clone(),
                faults: SimFaults::default(),
                stats: SimStats::default(),
                fsyncs_started: 0,
                crashed: false,
                rng: SimRng::new(seed ^ 0x5151),
                alignment: state.alignment,
            })),
        }
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.state.borrow().crashed {
            return Err(io::Error::other("simulated machine crashed"));
        }
        Ok(())
    }

    /// Counts a directory operation, crashing the machine before it if the faults say so.
    fn dir_op(&self) -> io::Result<()> {
        self.check_alive()?;
        let mut state = self.state.borrow_mut();
        state.stats.dir_ops += 1;
        if state.faults.crash_at_dir_op == Some(state.stats.dir_ops) {
            state.crashed = true;
            return Err(io::Error::other(
                "simulated crash before a directory operation",
            ));
        }
        Ok(())
    }
}

/// A write buffer of the simulated device.
#[derive(Debug)]
pub struct SimBuffer(Vec<u8>);

impl AsRef<[u8]> for SimBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for SimBuffer {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl IoBuffer for SimBuffer {
    fn trim_to(&mut self, len: usize) {
        assert!(len <= self.0.len());
        self.0.truncate(len);
    }
}

pub struct SimFile {
    storage: SimStorage,
    file: Rc<RefCell<SimFileState>>,
}

impl SegmentFile for SimFile {
    type Buffer = SimBuffer;

    fn alignment(&self) -> u64 {
        self.storage.state.borrow().alignment
    }

    fn alloc_buffer(&self, len: usize) -> SimBuffer {
        // Garbage, like a fresh DMA buffer: the log must zero what it pads with.
        SimBuffer(vec![0xEE; len])
    }

    async fn write_at(&self, buffer: Rc<SimBuffer>, pos: u64) -> io::Result<usize> {
        self.storage.check_alive()?;
        let bytes = buffer.as_ref().as_ref();
        let mut state = self.storage.state.borrow_mut();
        assert!(
            pos.is_multiple_of(state.alignment)
                && (bytes.len() as u64).is_multiple_of(state.alignment),
            "misaligned direct write: pos {pos} len {}",
            bytes.len()
        );
        state.stats.writes += 1;
        let write_number = state.stats.writes;
        if state.faults.fail_write == Some(write_number) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let mut len = bytes.len();
        let crashing = state.faults.crash_at_write == Some(write_number);
        if crashing {
            // The write may have partly reached the device before power went.
            len = state
                .rng
                .below(bytes.len() as u64 / SECTOR_BYTES as u64 + 1) as usize
                * SECTOR_BYTES;
        } else if state.faults.short_write_percent > 0 && bytes.len() > SECTOR_BYTES && {
            let percent = state.faults.short_write_percent;
            state.rng.chance(percent, 100)
        } {
            let sectors = bytes.len() / SECTOR_BYTES;
            len = (1 + state.rng.below(sectors as u64 - 1) as usize) * SECTOR_BYTES;
        }
        state.stats.bytes_written += len as u64;
        let mut file = self.file.borrow_mut();
        let end = pos as usize + len;
        if file.data.len() < end {
            file.data.resize(end, 0);
        }
        file.data[pos as usize..end].copy_from_slice(&bytes[..len]);
        file.unsynced.push(UnsyncedOp::Write {
            pos,
            bytes: bytes[..len].to_vec(),
        });
        if crashing {
            state.crashed = true;
            return Err(io::Error::other("simulated crash during write"));
        }
        Ok(len)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        self.storage.check_alive()?;
        self.storage.state.borrow_mut().stats.reads += 1;
        let file = self.file.borrow();
        let start = (pos as usize).min(file.data.len());
        let end = (pos as usize).saturating_add(len).min(file.data.len());
        Ok(Bytes::copy_from_slice(&file.data[start..end]))
    }

    async fn fdatasync(&self) -> io::Result<()> {
        let delay = {
            let mut state = self.storage.state.borrow_mut();
            state.fsyncs_started += 1;
            match state.faults.slow_fsync {
                Some((nth, delay)) if nth == state.fsyncs_started => Some(delay),
                _ => None,
            }
        };
        if let Some(delay) = delay {
            glommio::timer::sleep(delay).await;
        }
        self.storage.check_alive()?;
        let mut state = self.storage.state.borrow_mut();
        state.stats.fsyncs += 1;
        if state.faults.fail_fsync == Some(state.stats.fsyncs) {
            // Like Linux after a failed writeback: the error is reported once and what was
            // pending is in an unknown state. The log must not trust it.
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let mut file = self.file.borrow_mut();
        file.durable = file.data.clone();
        file.unsynced.clear();
        Ok(())
    }

    async fn file_size(&self) -> io::Result<u64> {
        self.storage.check_alive()?;
        Ok(self.file.borrow().data.len() as u64)
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.storage.check_alive()?;
        let mut file = self.file.borrow_mut();
        file.data.resize(len as usize, 0);
        file.unsynced.push(UnsyncedOp::SetLen(len));
        Ok(())
    }

    async fn pre_allocate(&self, len: u64) -> io::Result<()> {
        self.storage.check_alive()?;
        let mut file = self.file.borrow_mut();
        if (file.data.len() as u64) < len {
            file.data.resize(len as usize, 0);
            file.unsynced.push(UnsyncedOp::SetLen(len));
        }
        Ok(())
    }
}

impl Storage for SimStorage {
    type File = SimFile;

    async fn open(&self, path: &Path, create: bool) -> io::Result<SimFile> {
        self.check_alive()?;
        let mut state = self.state.borrow_mut();
        let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
        if !state.dirs.contains(&parent) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        let file = match state.files.get(path) {
            Some(file) => file.clone(),
            None if create => {
                let file = Rc::new(RefCell::new(SimFileState::default()));
                state.files.insert(path.to_path_buf(), file.clone());
                file
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        };
        Ok(SimFile {
            storage: self.clone(),
            file,
        })
    }

    fn alloc_buffer(&self, len: usize) -> SimBuffer {
        SimBuffer(vec![0xEE; len])
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.dir_op()?;
        match self.state.borrow_mut().files.remove(path) {
            Some(_) => Ok(()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        }
    }

    /// Like a remove, the model makes a rename durable at once (a crash image never shows
    /// it undone); a test crashes before or after it with `crash_at_dir_op`.
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.dir_op()?;
        let mut state = self.state.borrow_mut();
        let parent = to.parent().unwrap_or(Path::new("")).to_path_buf();
        if !state.dirs.contains(&parent) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        let file = state
            .files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        state.files.insert(to.to_path_buf(), file);
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.dir_op()?;
        let state = self.state.borrow();
        for (path, file) in &state.files {
            if path.parent() == Some(dir) {
                file.borrow_mut().linked_durable = true;
            }
        }
        Ok(())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check_alive()?;
        let mut state = self.state.borrow_mut();
        for ancestor in dir.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        self.check_alive()?;
        let mut state = self.state.borrow_mut();
        if state.files.keys().any(|path| path.parent() == Some(dir)) {
            return Err(io::Error::other("directory not empty"));
        }
        state.dirs.remove(dir);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.check_alive()?;
        let state = self.state.borrow();
        if !state.dirs.contains(dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(state
            .files
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
            .collect())
    }
}
