//! What the journal's integration tests share: a temporary directory.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A unique directory under the system temporary directory, removed on drop.
pub struct TempDirectory(pub PathBuf);

impl TempDirectory {
    pub fn new(name: &str) -> TempDirectory {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tradebridge-journal-{name}-{}-{unique}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TempDirectory(path)
    }
}

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
