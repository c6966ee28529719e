//! A lock per run folder, so two workers never train the same run. The lock file holds
//! the owner's host and pid; a lock whose process is gone (same host) is taken over.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::results::ResultsError;

/// A held lock; released explicitly (a crash leaves it, and the next worker recovers it).
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

/// Whether the lock was taken.
#[derive(Debug)]
pub enum LockOutcome {
    Acquired(Lock),
    /// Someone else holds it: `host:pid`.
    Held(String),
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Lock {
    /// Takes the lock at `path`, recovering it from a dead process on this host.
    pub fn acquire(path: &Path) -> Result<LockOutcome, ResultsError> {
        let err = |source| ResultsError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let me = format!("{}:{}", host(), std::process::id());
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    f.write_all(me.as_bytes()).map_err(err)?;
                    f.sync_all().map_err(err)?;
                    return Ok(LockOutcome::Acquired(Lock {
                        path: path.to_path_buf(),
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(path).unwrap_or_default();
                    let stale = match owner.trim().rsplit_once(':') {
                        Some((h, pid)) if h == host() => {
                            pid.parse::<u32>().map(|p| !alive(p)).unwrap_or(true)
                        }
                        Some(_) => false,
                        None => true,
                    };
                    if !stale {
                        return Ok(LockOutcome::Held(owner.trim().to_string()));
                    }
                    eprintln!(
                        "  recovering the lock {} left by {} (process gone)",
                        path.display(),
                        owner.trim()
                    );
                    std::fs::remove_file(path).map_err(err)?;
                }
                Err(e) => return Err(err(e)),
            }
        }
        Ok(LockOutcome::Held("another worker".into()))
    }

    pub fn release(self) -> Result<(), ResultsError> {
        std::fs::remove_file(&self.path).map_err(|source| ResultsError::Write {
            path: self.path.clone(),
            source,
        })
    }
}
