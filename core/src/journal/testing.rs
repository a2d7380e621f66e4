//! Helpers shared by the journal's unit tests.
//!
//! # Invariants
//! - Every directory made here is unique to its test and removed on drop.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A unique path under the system temporary directory, removed on drop.
pub(crate) struct TempDirectory(pub(crate) PathBuf);

impl TempDirectory {
    /// A unique path that does not exist yet.
    pub(crate) fn path_only(name: &str) -> TempDirectory {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tradebridge-journal-unit-{name}-{}-{unique}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TempDirectory(path)
    }

    /// A unique, empty directory.
    pub(crate) fn new(name: &str) -> TempDirectory {
        let directory = TempDirectory::path_only(name);
        fs::create_dir_all(&directory.0).expect("create temporary directory");
        directory
    }
}

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
