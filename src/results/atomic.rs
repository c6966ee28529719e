//! Atomic writes: a reader (the report, a second worker) sees the old file or the new
//! one, never half of one, whatever kills the writer.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ResultsError;

/// Writes `bytes` to `path` through a temporary file in the same folder, synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    write_atomic_with(path, |tmp| {
        let mut file = File::create(tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })
}

/// Like [`write_atomic`] for writers that want a path (safetensors): `write` fills the
/// temporary file, which is then synced and renamed over `path`.
pub fn write_atomic_with(
    path: &Path,
    write_tmp: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), ResultsError> {
    let err = |source| ResultsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(err)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and per call, so concurrent writers never share a temporary.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let write = || -> std::io::Result<()> {
        write_tmp(&tmp)?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable only once the folder's entry is on disk.
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        // Leave no temporary behind; the original file, if any, is untouched.
        if tmp.exists() {
            let _removed = fs::remove_file(&tmp);
        }
        err(e)
    })
}
