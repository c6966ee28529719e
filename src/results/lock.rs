//! A lock per run folder, so two workers never train the same run, on one machine or on
//! a shared file system. The lock file holds the owner's `host:pid`. It is stale, and
//! taken over with a message, when its process is gone (same host) or, for another
//! host, whose processes cannot be seen, when it has not been refreshed for longer than
//! a timeout: a held lock is touched by a heartbeat thread every quarter of the timeout.
//!
//! Taking a lock is one atomic step: the content is written to a private file first,
//! then hard-linked to the lock's name, which fails if the lock exists (also on NFS),
//! so no one ever reads a lock without its owner. Taking over a stale lock happens
//! under a second, short-lived lock (`lock.recover`), so two workers that both find it
//! stale cannot both take it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::results::atomic::folder_of;
use crate::results::{ResultsError, host};

/// How long a lock of another host may go without a heartbeat before it is stale.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(600);

/// A `lock.recover` older than this was left by a worker killed while recovering.
const RECOVER_STALE_AFTER: Duration = Duration::from_secs(30);

/// When a lock counts as abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    /// A lock of another host not refreshed for this long is stale.
    pub stale_after: Duration,
}

impl Default for LockPolicy {
    fn default() -> Self {
        LockPolicy {
            stale_after: DEFAULT_STALE_AFTER,
        }
    }
}

/// A held lock, refreshed while held; released explicitly (a crash leaves it, and the
/// next worker recovers it).
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    owner: String,
    recovered: Option<String>,
    heartbeat: Option<(Sender<()>, JoinHandle<()>)>,
    released: bool,
}

/// Whether the lock was taken.
#[derive(Debug)]
pub enum LockOutcome {
    Acquired(Lock),
    /// Someone else holds it: `host:pid`.
    Held(String),
}

/// Whether process `pid` of this host runs: signal 0 is delivered (or refused for want
/// of permission, which also means it exists). Works wherever `kill` does, unlike
/// `/proc`, which macOS has not.
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    use rustix::process::{Pid, test_kill_process};
    // No process has a pid outside 1..=i32::MAX.
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let Some(pid) = Pid::from_raw(raw) else {
        return false;
    };
    match test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Elsewhere liveness cannot be told: a lock of this host counts as held (remove its
/// `lock` file by hand once its process is gone).
#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

/// This process, as written in its locks.
pub fn owner_id() -> String {
    format!("{}:{}", host(), std::process::id())
}

/// Why a lock with `owner` written in it, last refreshed `age` ago (`None`: its time
/// cannot be read), is stale, or `None` if it is held. Pure: `here` is this host, `alive`
/// says whether a pid of this host runs.
pub fn staleness(
    owner: &str,
    age: Option<Duration>,
    here: &str,
    alive: impl Fn(u32) -> bool,
    policy: LockPolicy,
) -> Option<String> {
    match owner.trim().rsplit_once(':') {
        Some((h, pid)) if h == here => match pid.parse::<u32>() {
            Ok(p) if alive(p) => None,
            Ok(_) => Some("process gone".into()),
            Err(_) => Some("unreadable owner".into()),
        },
        Some(_) => match age {
            // Another host's lock without a readable time can never be seen refreshed.
            None => Some("its heartbeat's time cannot be read".into()),
            Some(age) if age > policy.stale_after => Some(format!(
                "no heartbeat for {} s, more than the {} s timeout",
                age.as_secs(),
                policy.stale_after.as_secs()
            )),
            Some(_) => None,
        },
        None => Some("unreadable owner".into()),
    }
}

/// How long ago the file was last written; `None` when that cannot be read. A time in
/// the future (another host's clock ahead of ours) counts as just now.
fn age(path: &Path) -> Option<Duration> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(
        SystemTime::now()
            .duration_since(modified)
            .unwrap_or(Duration::ZERO),
    )
}

impl Lock {
    /// Takes the lock at `path` with the default policy.
    pub fn acquire(path: &Path) -> Result<LockOutcome, ResultsError> {
        Lock::acquire_with(path, LockPolicy::default())
    }

    /// Takes the lock at `path`, recovering it if stale (see the module's docs).
    pub fn acquire_with(path: &Path, policy: LockPolicy) -> Result<LockOutcome, ResultsError> {
        let err = |source| ResultsError::Write {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(folder_of(path)).map_err(err)?;
        let me = owner_id();
        let mut recovered = None;
        for _ in 0..3 {
            if link_new(path, &me)? {
                return Ok(LockOutcome::Acquired(Lock::held(
                    path, me, recovered, policy,
                )));
            }
            let owner = match std::fs::read_to_string(path) {
                Ok(o) => o.trim().to_string(),
                // Released between our attempt and this read: try again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ResultsError::Read {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            };
            match remove_stale(path, &owner, policy)? {
                Some(message) => recovered = Some(message),
                // Held, or someone else is recovering it, or it changed hands: theirs.
                None => return Ok(LockOutcome::Held(owner)),
            }
        }
        Ok(LockOutcome::Held("another worker".into()))
    }

    /// Removes the lock at `path` if it is stale, saying so; the message, or `None` when
    /// there is no lock or it is held. For a run found finished: its worker may have
    /// been killed between writing its record and releasing its lock, and no one takes
    /// the lock of a finished run again.
    pub fn clear_if_stale(path: &Path, policy: LockPolicy) -> Result<Option<String>, ResultsError> {
        match std::fs::read_to_string(path) {
            Ok(owner) => remove_stale(path, owner.trim(), policy),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ResultsError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn held(path: &Path, owner: String, recovered: Option<String>, policy: LockPolicy) -> Lock {
        let (stop, wait) = mpsc::channel::<()>();
        let beat = (policy.stale_after / 4).max(Duration::from_millis(50));
        let target = path.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("topo-lock-heartbeat".into())
            .spawn(move || {
                // Ends when the lock is released (the sender is dropped).
                while let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(beat) {
                    if let Err(e) = touch(&target) {
                        crate::log::log(&format!(
                            "  warning: cannot refresh the lock {}: {e}",
                            target.display()
                        ));
                    }
                }
            });
        let heartbeat = match handle {
            Ok(h) => Some((stop, h)),
            Err(e) => {
                crate::log::log(&format!(
                    "  warning: no heartbeat for the lock {} ({e}); other hosts may take it after {} s",
                    path.display(),
                    policy.stale_after.as_secs()
                ));
                None
            }
        };
        Lock {
            path: path.to_path_buf(),
            owner,
            recovered,
            heartbeat,
            released: false,
        }
    }

    /// The message printed when this lock was taken over from a stale owner.
    pub fn recovered(&self) -> Option<&str> {
        self.recovered.as_deref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the heartbeat and removes the lock.
    pub fn release(mut self) -> Result<(), ResultsError> {
        self.stop_heartbeat();
        self.released = true;
        std::fs::remove_file(&self.path).map_err(|source| ResultsError::Write {
            path: self.path.clone(),
            source,
        })
    }

    fn stop_heartbeat(&mut self) {
        if let Some((stop, handle)) = self.heartbeat.take() {
            drop(stop);
            if handle.join().is_err() {
                crate::log::log("  warning: the lock heartbeat panicked");
            }
        }
    }
}

impl Drop for Lock {
    /// A lock dropped unreleased (a panic unwinding) is removed: its worker is gone.
    fn drop(&mut self) {
        self.stop_heartbeat();
        if !self.released
            && std::fs::read_to_string(&self.path).is_ok_and(|o| o.trim() == self.owner)
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            crate::log::log(&format!(
                "  warning: cannot remove the lock {}: {e}",
                self.path.display()
            ));
        }
    }
}

/// Removes the lock at `path`, holding `owner`, if it is stale, and logs why; the
/// message, or `None` when it is held or another worker is recovering it.
fn remove_stale(
    path: &Path,
    owner: &str,
    policy: LockPolicy,
) -> Result<Option<String>, ResultsError> {
    let Some(why) = staleness(owner, age(path), &host(), alive, policy) else {
        return Ok(None);
    };
    if !remove_if_still(path, owner, policy)? {
        return Ok(None);
    }
    let message = format!(
        "recovering the lock {} left by {owner} ({why})",
        path.display()
    );
    crate::log::log(&format!("  {message}"));
    Ok(Some(message))
}

/// Creates `path` holding `content` in one step; `false` if it exists.
fn link_new(path: &Path, content: &str) -> Result<bool, ResultsError> {
    crate::results::create_new_atomic(path, content.as_bytes())
}

/// Removes the lock at `path` if it still holds `owner`, under `lock.recover`; `false`
/// when another worker is recovering it or it changed hands.
fn remove_if_still(path: &Path, owner: &str, policy: LockPolicy) -> Result<bool, ResultsError> {
    let guard = path.with_extension("recover");
    let me = owner_id();
    if !link_new(&guard, &me)? {
        let left = std::fs::read_to_string(&guard).unwrap_or_default();
        let guard_age = age(&guard);
        let gone = staleness(&left, guard_age, &host(), alive, policy).is_some();
        let old = guard_age.is_none_or(|a| a > RECOVER_STALE_AFTER);
        if !(gone || old) || !link_after_removing(&guard, &me)? {
            return Ok(false);
        }
    }
    let still = std::fs::read_to_string(path).is_ok_and(|o| o.trim() == owner);
    let removed = if still {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(source) => Err(ResultsError::Write {
                path: path.to_path_buf(),
                source,
            }),
        }
    } else {
        Ok(false)
    };
    std::fs::remove_file(&guard).map_err(|source| ResultsError::Write {
        path: guard.clone(),
        source,
    })?;
    removed
}

/// Replaces an abandoned `lock.recover` by ours.
fn link_after_removing(guard: &Path, me: &str) -> Result<bool, ResultsError> {
    match std::fs::remove_file(guard) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ResultsError::Write {
                path: guard.to_path_buf(),
                source,
            });
        }
    }
    link_new(guard, me)
}

/// Refreshes the lock's modification time (its heartbeat).
fn touch(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .append(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn policy() -> LockPolicy {
        LockPolicy {
            stale_after: 10 * MIN,
        }
    }

    #[test]
    fn a_lock_of_this_host_is_stale_only_when_its_process_is_gone() {
        let alive = |p: u32| p == 7;
        assert_eq!(staleness("h:7", Some(99 * MIN), "h", alive, policy()), None);
        assert_eq!(
            staleness("h:8", Some(Duration::ZERO), "h", alive, policy()).as_deref(),
            Some("process gone")
        );
        assert_eq!(
            staleness("h:x", Some(Duration::ZERO), "h", alive, policy()).as_deref(),
            Some("unreadable owner")
        );
        assert_eq!(
            staleness("garbage", Some(Duration::ZERO), "h", alive, policy()).as_deref(),
            Some("unreadable owner")
        );
    }

    #[test]
    fn a_lock_of_another_host_is_stale_after_the_timeout_without_heartbeat() {
        let never = |_: u32| false;
        assert_eq!(
            staleness("other:7", Some(9 * MIN), "h", never, policy()),
            None
        );
        assert_eq!(
            staleness("other:7", Some(11 * MIN), "h", never, policy()).as_deref(),
            Some("no heartbeat for 660 s, more than the 600 s timeout")
        );
        // A time that cannot be read is never refreshed: such a lock does not last forever.
        assert_eq!(
            staleness("other:7", None, "h", never, policy()).as_deref(),
            Some("its heartbeat's time cannot be read")
        );
    }

    #[test]
    fn a_held_lock_is_refreshed_by_its_heartbeat_and_removed_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("lock");
        let policy = LockPolicy {
            stale_after: Duration::from_millis(200),
        };
        let LockOutcome::Acquired(lock) = Lock::acquire_with(&path, policy).unwrap() else {
            panic!("not acquired");
        };
        assert_eq!(std::fs::read_to_string(&path).unwrap(), owner_id());
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            age(&path).unwrap() < Duration::from_secs(60),
            "{:?}",
            age(&path)
        );
        // Held by a live process of this host: not ours to take.
        match Lock::acquire_with(&path, policy).unwrap() {
            LockOutcome::Held(owner) => assert_eq!(owner, owner_id()),
            LockOutcome::Acquired(_) => panic!("taken twice"),
        }
        lock.release().unwrap();
        assert!(!path.exists());
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
}
