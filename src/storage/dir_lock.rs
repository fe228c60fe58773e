//! The exclusive lock on a data directory, as Kafka takes on `<log.dir>/.lock`: two broker
//! processes writing the same segments lose acknowledged records, so the second one must
//! refuse to start. Taken once, by the main thread, before any core opens a log; held until
//! the process exits (the kernel drops it even after SIGKILL).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Name of the lock file in the data directory.
pub const LOCK_FILE_NAME: &str = ".lock";

/// Holds the lock while alive.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Locks `dir` for this process, or says (in one line) why not.
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock, String> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let error = std::io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => format!(
                "data directory {} is in use by another process (it holds {})",
                dir.display(),
                path.display()
            ),
            _ => format!("locking {}: {error}", path.display()),
        });
    }
    Ok(DataDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_data_dir(dir.path()).unwrap();
        let refused = lock_data_dir(dir.path()).unwrap_err();
        assert!(refused.contains("in use by another process"), "{refused}");
        drop(first);
        lock_data_dir(dir.path()).expect("free again");
    }
}
