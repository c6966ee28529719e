//! Scale-out and fault tolerance through the real `topo` binary: `--jobs 2` and
//! `--shard I/N` give the serial run's results, two processes never train the same run,
//! stale locks are recovered with a message, `topo slurm` writes the job array of the
//! pending runs, and a results folder that cannot be written is named in the error with
//! nothing already written damaged.
//!
//! Experiments: ResNet-18 at width 0.0625 on a synthetic Fashion-MNIST (6 images per
//! class, 2 per class to test), one epoch, constant learning rate: about a second a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use super::fixtures::write_fashion_mnist;
use serde_json::Value;
use tempfile::TempDir;
use topo::results::lock::{Lock, LockOutcome, LockPolicy, owner_id};

use super::common::{BIN, metrics_without_timings};

/// Four runs of the tiny experiment: two topographies by two seeds, one epoch.
fn experiment() -> String {
    format!(
        "extends: {}
name: scale
grid: {{ seed: [0, 1] }}
training: {{ epochs: 1 }}
slurm: {{ partition: cpu, time: \"00:10:00\", cpus: 2, max_parallel: 3 }}
",
        super::common::tiny_yaml()
    )
}

struct Experiment {
    dir: TempDir,
    yaml: PathBuf,
}

impl Experiment {
    fn new() -> Experiment {
        let dir = tempfile::tempdir().unwrap();
        write_fashion_mnist(&dir.path().join("data"), 6, 2, false).unwrap();
        let yaml = dir.path().join("scale.yaml");
        std::fs::write(&yaml, experiment()).unwrap();
        Experiment { dir, yaml }
    }

    fn results(&self, which: &str) -> PathBuf {
        self.dir.path().join(which)
    }

    fn command(&self, command: &str, which: &str, extra: &[&str]) -> Command {
        super::common::topo_command(
            self.dir.path(),
            &self.yaml,
            command,
            &self.results(which),
            extra,
        )
    }

    fn topo(&self, command: &str, which: &str, extra: &[&str]) -> Output {
        self.command(command, which, extra).output().unwrap()
    }

    /// Run ids in plan order.
    fn ids(&self) -> Vec<String> {
        let out = self.topo("plan", "results", &["--format", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        plan["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn run_dir(&self, which: &str, id: &str) -> PathBuf {
        self.results(which).join("scale").join("runs").join(id)
    }

    fn status(&self, which: &str, id: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.run_dir(which, id).join("summary.json")).ok()?;
        let v: Value = serde_json::from_str(&text).unwrap();
        Some(v["status"].as_str().unwrap().to_string())
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn file_bytes(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn shards_and_parallel_jobs_train_each_run_once_with_the_serial_results() {
    let e = Experiment::new();
    let ids = e.ids();
    assert_eq!(ids.len(), 4);
    let serial = e.topo("run", "serial", &["--no-report"]);
    assert!(serial.status.success(), "{}", stderr(&serial));

    let first = e.topo(
        "run",
        "sharded",
        &["--shard", "1/2", "--jobs", "2", "--no-report"],
    );
    let text = stderr(&first);
    assert!(first.status.success(), "{text}");
    assert!(text.contains("shard 1/2: 2 of the 4 runs"), "{text}");
    assert!(text.contains("2 runs, 2 at once, "), "{text}");
    assert!(text.contains(": 2 trained, 0 already done"), "{text}");
    // Positions 0 and 2 in plan order, and no other.
    let done: Vec<bool> = ids
        .iter()
        .map(|id| e.status("sharded", id).as_deref() == Some("done"))
        .collect();
    assert_eq!(done, [true, false, true, false]);
    // Every line of a parallel run names its run.
    for id in [&ids[0], &ids[2]] {
        assert!(text.contains(&format!("[{id}] [")), "{text}");
        assert!(
            text.contains(&format!("[{id}] done: best epoch 1")),
            "{text}"
        );
    }

    let second = e.topo(
        "run",
        "sharded",
        &["--shard", "2/2", "--jobs", "2", "--no-report"],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stderr(&second).contains(": 2 trained, 0 already done"));
    for id in &ids {
        assert_eq!(
            metrics_without_timings(&e.run_dir("sharded", id)),
            metrics_without_timings(&e.run_dir("serial", id)),
            "{id}"
        );
    }

    let bad = e.topo("run", "sharded", &["--shard", "3/2"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("shard 3/2: I must be between 1 and N"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn two_processes_on_one_results_folder_never_train_the_same_run() {
    let e = Experiment::new();
    let spawn = || {
        e.command("run", "results", &["--no-report"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    // The second may find the first's lock on a run and skip it: never a failure.
    assert!(b.status.success(), "{}", stderr(&b));
    let both = format!("{}{}", stderr(&a), stderr(&b));
    for id in e.ids() {
        let started = both.matches(&format!("] {id} (1 epochs)")).count();
        assert_eq!(started, 1, "{id} started {started} times:\n{both}");
        assert_eq!(e.status("results", &id).as_deref(), Some("done"));
        assert!(!e.run_dir("results", &id).join("lock").exists());
    }
}

#[test]
fn threads_racing_for_one_lock_take_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock");
    let barrier = std::sync::Barrier::new(8);
    let won: Vec<Option<Lock>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    match Lock::acquire(&path).unwrap() {
                        LockOutcome::Acquired(l) => Some(l),
                        LockOutcome::Held(owner) => {
                            assert_eq!(owner, owner_id());
                            None
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut won: Vec<Lock> = won.into_iter().flatten().collect();
    assert_eq!(won.len(), 1);
    won.pop().unwrap().release().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn host() -> String {
    owner_id().rsplit_once(':').unwrap().0.to_string()
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_lock_of_a_dead_process_is_recovered_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock");
    let owner = format!("{}:{}", host(), dead_pid());
    std::fs::write(&path, &owner).unwrap();
    let LockOutcome::Acquired(lock) = Lock::acquire(&path).unwrap() else {
        panic!("a dead process's lock was not recovered");
    };
    assert_eq!(
        lock.recovered(),
        Some(
            format!(
                "recovering the lock {} left by {owner} (process gone)",
                path.display()
            )
            .as_str()
        )
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), owner_id());
    lock.release().unwrap();
}

#[test]
fn a_lock_of_another_host_is_held_until_it_misses_its_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock");
    std::fs::write(&path, "elsewhere:1").unwrap();
    let policy = LockPolicy {
        stale_after: Duration::from_secs(600),
    };
    match Lock::acquire_with(&path, policy).unwrap() {
        LockOutcome::Held(owner) => assert_eq!(owner, "elsewhere:1"),
        LockOutcome::Acquired(_) => panic!("a fresh lock of another host was taken"),
    }
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .append(true)
        .open(&path)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let LockOutcome::Acquired(lock) = Lock::acquire_with(&path, policy).unwrap() else {
        panic!("a stale lock of another host was not recovered");
    };
    assert_eq!(
        lock.recovered(),
        Some(
            format!(
                "recovering the lock {} left by elsewhere:1 (no heartbeat for 3600 s, more than the 600 s timeout)",
                path.display()
            )
            .as_str()
        )
    );
    lock.release().unwrap();
}

#[test]
fn topo_run_recovers_a_dead_workers_lock_and_trains_the_run() {
    let e = Experiment::new();
    let id = e.ids()[1].clone();
    let run = e.run_dir("results", &id);
    std::fs::create_dir_all(&run).unwrap();
    let owner = format!("{}:{}", host(), dead_pid());
    std::fs::write(run.join("lock"), &owner).unwrap();
    let out = e.topo("run", "results", &["--only", &id, "--no-report"]);
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "recovering the lock {} left by {owner} (process gone)",
            run.join("lock").display()
        )),
        "{text}"
    );
    assert_eq!(e.status("results", &id).as_deref(), Some("done"));
}

#[test]
fn topo_run_clears_the_lock_a_worker_killed_after_finishing_its_run_left() {
    let e = Experiment::new();
    let id = e.ids()[0].clone();
    let out = e.topo("run", "results", &["--only", &id, "--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = e.run_dir("results", &id);
    let summary = std::fs::read(run.join("summary.json")).unwrap();
    // Killed between writing its record and removing its lock.
    let owner = format!("{}:{}", host(), dead_pid());
    std::fs::write(run.join("lock"), &owner).unwrap();
    let out = e.topo("run", "results", &["--only", &id, "--no-report"]);
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "recovering the lock {} left by {owner} (process gone)",
            run.join("lock").display()
        )),
        "{text}"
    );
    assert!(!run.join("lock").exists(), "{text}");
    // Not trained again.
    assert_eq!(std::fs::read(run.join("summary.json")).unwrap(), summary);
    // A live worker's lock on a finished run is its own business: left alone.
    std::fs::write(run.join("lock"), owner_id()).unwrap();
    let out = e.topo("run", "results", &["--only", &id, "--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(run.join("lock")).unwrap(),
        owner_id()
    );
}

#[test]
fn the_slurm_script_has_a_task_per_pending_run_and_flags_override_the_file() {
    let e = Experiment::new();
    let ids = e.ids();
    // Run 0 done: three tasks remain.
    let out = e.topo("run", "results", &["--only", &ids[0], "--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = e.topo(
        "slurm",
        "results",
        &["--time", "01:00:00", "--set", "training.batch_size=32"],
    );
    assert!(script.status.success(), "{}", stderr(&script));
    let dir = e.dir.path().canonicalize().unwrap();
    // The script names the binary as the OS resolves it (links followed).
    let bin = std::fs::canonicalize(BIN).unwrap().display().to_string();
    let expected = format!(
        "#!/bin/bash
# topo: 3 run(s) of experiment `scale`, one array task each.
#SBATCH --job-name=scale
#SBATCH --array=0-2%3
#SBATCH --requeue
#SBATCH --ntasks=1
#SBATCH --chdir={dir}
#SBATCH --output=slurm-%A_%a.out
#SBATCH --partition=cpu
#SBATCH --time=01:00:00
#SBATCH --cpus-per-task=2
set -euo pipefail
export RAYON_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}}
runs=(
  {}
  {}
  {}
)
id=${{runs[$SLURM_ARRAY_TASK_ID]}}
exec {bin} run {yaml} --set training.batch_size=32 --results {dir}/results --only \"$id\" --no-report
",
        ids[1],
        ids[2],
        ids[3],
        dir = dir.display(),
        yaml = e.yaml.display(),
    );
    assert_eq!(String::from_utf8_lossy(&script.stdout), expected);

    let file = e.dir.path().join("array.sh");
    let written = e.topo(
        "slurm",
        "results",
        &["--max-parallel", "1", "--output", file.to_str().unwrap()],
    );
    assert!(written.status.success(), "{}", stderr(&written));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("#SBATCH --array=0-2%1\n"), "{text}");
    assert!(text.contains("#SBATCH --time=00:10:00\n"), "{text}");
}

/// Runs `topo` as the unprivileged user `nobody` when we are root (who may write
/// anywhere), so that a folder's permissions apply; `None` if that is not possible.
fn unprivileged(mut c: Command) -> Option<Command> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"));
    if !root {
        return Some(c);
    }
    Command::new("setpriv").arg("--version").output().ok()?;
    let mut s = Command::new("setpriv");
    s.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(c.get_program())
        .args(c.get_args());
    if let Some(d) = c.get_current_dir() {
        s.current_dir(d);
    }
    c = s;
    Some(c)
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_read_only_results_folder_is_named_and_what_it_holds_is_untouched() {
    let e = Experiment::new();
    let ids = e.ids();
    let out = e.topo("run", "results", &["--only", &ids[0], "--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let experiment = e.results("results").join("scale");
    let before = file_bytes(&experiment);
    // Everyone may read the experiment and the data, no one may write the results.
    for d in [e.dir.path(), &e.results("results")] {
        chmod(d, 0o755);
    }
    let mut dirs = vec![experiment.clone()];
    while let Some(d) = dirs.pop() {
        chmod(&d, 0o555);
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            }
        }
    }
    let mut command = unprivileged(e.command("run", "results", &["--no-report"])).expect(
        "running as root without setpriv (util-linux): permissions cannot apply; install it",
    );
    let out = command.output().unwrap();
    let text = stderr(&out);
    chmod(&experiment, 0o755);
    // Found by the preflight, before any run started.
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "error: {}: the results folder cannot be written",
            experiment.display()
        )) && text.contains("Permission denied"),
        "{text}"
    );
    assert_eq!(file_bytes(&experiment), before);
}

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped; `None` when this process
/// may not mount (not root, or no CAP_SYS_ADMIN in a container).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _unmounted = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "mounts a tmpfs, which needs root: `just test` runs it as root (CI does)"]
fn a_full_disk_stops_the_plan_naming_the_file_and_the_runs_resume_once_there_is_room() {
    let e = Experiment::new();
    let results = e.results("full");
    // Room for the first run's first checkpoints (about 560 KB), not its second epoch's.
    let disk = Tmpfs::mount(&results, "700k")
        .expect("cannot mount a tmpfs: this test needs root (or CAP_SYS_ADMIN)");
    let out = e.topo("run", "full", &["--no-report"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The whole message: the file, then its cause, once.
    let error = text.lines().last().unwrap();
    let prefix = format!("error: cannot write {}/scale/runs/", results.display());
    let file = error
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(": No space left on device (os error 28)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!file.contains(": "), "{error}");
    assert_eq!(error.matches("No space left").count(), 1, "{error}");
    // No run marked failed, and no file torn.
    for id in e.ids() {
        let run = e.run_dir("full", &id);
        assert_ne!(e.status("full", &id).as_deref(), Some("failed"), "{id}");
        if !run.exists() {
            continue;
        }
        for (path, bytes) in file_bytes(&run) {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                !name.starts_with('.'),
                "temporary file left: {}",
                path.display()
            );
            match path.extension().and_then(|x| x.to_str()) {
                Some("json") => drop(serde_json::from_slice::<Value>(&bytes).unwrap()),
                Some("jsonl") => drop(metrics_without_timings(&run)),
                _ => {}
            }
        }
    }
    disk.resize("8m");
    let out = e.topo("run", "full", &["--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for id in e.ids() {
        assert_eq!(e.status("full", &id).as_deref(), Some("done"), "{id}");
    }
}
