//! The one way `topo` writes a file: a reader (the report, a second worker) sees the old
//! file or the new one, never half of one, whatever kills the writer. Every file goes
//! through a temporary beside it, synced, then renamed (or linked, for a file that must
//! not exist yet), and the folder is synced so the new name survives a crash.

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
    let dir = folder_of(path);
    fs::create_dir_all(dir).map_err(err)?;
    let tmp = temporary(dir, path);
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

/// A temporary path beside `path`, unique per process and per call, so concurrent
/// writers (threads or processes) never share one. It starts with a dot and ends with
/// `path`'s extension (writers such as plotters' choose the format by it).
fn temporary(dir: &Path, path: &Path) -> std::path::PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp.{}.{n}{ext}", std::process::id()))
}

/// Creates `path` holding `bytes` in one step, only if it does not exist: `false` when it
/// does. The temporary is hard-linked to `path`, which fails if `path` exists, so of two
/// writers racing for the same path exactly one wins (the run lock relies on it).
pub fn create_new_atomic(path: &Path, bytes: &[u8]) -> Result<bool, ResultsError> {
    let err = |source| ResultsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = folder_of(path);
    let tmp = temporary(dir, path);
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let removed = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            removed.map_err(|source| ResultsError::Write { path: tmp, source })?;
            File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// The folder `path` is in (`.` for a bare file name).
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}
