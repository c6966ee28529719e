//! Running a plan: every pending run, finished ones skipped, a failure recorded and the
//! others carried on; one run at a time or several at once (`--jobs`), each under its
//! run folder's lock. A failure to write results (disk full, read-only folder) is not
//! the run's fault: it stops the plan with the path named, and the run stays resumable.

pub mod analyse;
pub mod estimate;
pub mod preflight;
pub mod progress;
pub mod slurm;
pub mod workers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use candle_core::Device;

use crate::kernels::Kernels;
use crate::log::{chain, log, set_log_prefix};
use crate::plan::RunConfig;
use crate::results::lock::{Lock, LockOutcome, LockPolicy};
use crate::results::{
    EpochRecord, ExperimentDir, Failure, Provenance, RunDir, RunState, RunStatus, Summary,
    read_json, write_atomic, write_json,
};
use crate::train::analyses::{analyse_finished, stale_analyses};
use crate::train::checkpoint::read_loop_state;
use crate::train::stages::{measure_topography, prune, prune_finished, pruning_incomplete};
use crate::train::{EngineError, Fault};
use crate::train::{EpochHook, TrainEnv, test_best, train};
use progress::{PlanProgress, RunEnd};
use workers::run_parallel;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub device: Device,
    /// The layers' kernels (the fast CPU ones by default).
    pub kernels: Kernels,
    pub experiment_dir: ExperimentDir,
    /// Folder of the experiment file (custom layouts are relative to it).
    pub config_dir: PathBuf,
    /// Shared feature cache.
    pub cache_dir: PathBuf,
    /// Try runs that failed before again.
    pub retry_failed: bool,
    /// Start no other run once one fails (runs already training finish).
    pub fail_fast: bool,
}

/// How many runs at once, and when another worker's lock counts as abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workers {
    /// Runs trained at once in this process.
    pub jobs: usize,
    /// Threads of each worker's pool (see [`workers`]).
    pub threads: usize,
    pub lock: LockPolicy,
}

impl Default for Workers {
    /// One run at a time on every core.
    fn default() -> Self {
        Workers {
            jobs: 1,
            threads: workers::available_cores(),
            lock: LockPolicy::default(),
        }
    }
}

impl Workers {
    /// `jobs` runs at once, the cores shared between them.
    pub fn new(jobs: usize, lock: LockPolicy) -> Workers {
        let jobs = jobs.max(1);
        Workers {
            jobs,
            threads: workers::threads_per_worker(workers::available_cores(), jobs),
            lock,
        }
    }
}

/// What happened to the runs of a plan.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub trained: usize,
    pub skipped_done: usize,
    pub skipped_locked: usize,
    /// Run id and reason.
    pub failed: Vec<(String, String)>,
    /// Runs left unstarted after a failure (`fail_fast`).
    pub not_started: usize,
}

/// Runs every run of `runs` not yet done, one at a time.
pub fn run_plan(runs: &[&RunConfig], options: &RunOptions) -> Result<RunReport, EngineError> {
    run_plan_with(runs, options, &Workers::default())
}

/// Runs every run of `runs` not yet done with `workers`. Runs are started in plan
/// order; with several jobs they finish in any order, and their lines carry their id.
pub fn run_plan_with(
    runs: &[&RunConfig],
    options: &RunOptions,
    workers: &Workers,
) -> Result<RunReport, EngineError> {
    let report = Mutex::new(RunReport::default());
    let total = runs.len();
    let indexed: Vec<(usize, &RunConfig)> = runs.iter().copied().enumerate().collect();
    let parallel = workers.jobs > 1;
    let left: Vec<Option<u64>> = runs
        .iter()
        .map(|r| estimate::epochs_left(r, &options.experiment_dir, options.retry_failed))
        .collect();
    let pending: Vec<u64> = left.iter().flatten().copied().collect();
    // Not pending: done, or failed and not retried (a failed run is pending when retried).
    let failed_before = runs
        .iter()
        .zip(&left)
        .filter(|(r, l)| {
            l.is_none() && options.experiment_dir.run(&r.id).state_on_disk() == RunState::Failed
        })
        .count();
    let progress = Arc::new(PlanProgress::new(
        total - pending.len() - failed_before,
        failed_before,
        &pending,
    ));
    let stop = AtomicBool::new(false);
    if parallel {
        crate::log::log(&format!(
            "{} runs, {} at once, {} thread(s) each",
            total, workers.jobs, workers.threads
        ));
    }
    let result = run_parallel(
        &indexed,
        workers.jobs,
        workers.threads,
        |(i, run)| -> Result<(), EngineError> {
            if stop.load(Ordering::SeqCst) {
                let mut r = crate::sync::lock(&report);
                r.not_started += 1;
                return Ok(());
            }
            if parallel {
                set_log_prefix(Some(run.id.clone()));
            }
            let trained = Arc::new(AtomicU64::new(0));
            let hook = {
                let (progress, trained) = (Arc::clone(&progress), Arc::clone(&trained));
                EpochHook::new(move || {
                    trained.fetch_add(1, Ordering::SeqCst);
                    progress.epoch_done();
                })
            };
            let outcome = attempt(run, *i, total, options, workers, parallel, hook);
            if let (Ok(outcome), Some(left)) = (&outcome, left[*i]) {
                let end = match outcome {
                    Outcome::Trained | Outcome::Done => RunEnd::Done,
                    Outcome::Locked => RunEnd::Elsewhere,
                    Outcome::Failed(_) => RunEnd::Failed,
                };
                progress.run_ended(end, left.saturating_sub(trained.load(Ordering::SeqCst)));
            }
            if options.fail_fast
                && let Ok(Outcome::Failed(_)) = &outcome
                && left[*i].is_some()
                && !stop.swap(true, Ordering::SeqCst)
            {
                log("  --fail-fast: no other run will start (runs in training finish)");
            }
            set_log_prefix(None);
            let outcome = outcome?;
            let mut r = crate::sync::lock(&report);
            match outcome {
                Outcome::Trained => r.trained += 1,
                Outcome::Done => r.skipped_done += 1,
                Outcome::Locked => r.skipped_locked += 1,
                Outcome::Failed(reason) => r.failed.push((run.id.clone(), reason)),
            }
            Ok(())
        },
    );
    progress.finish();
    result?;
    let mut report = report
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Plan order, whatever order the workers finished in.
    let order = |id: &str| runs.iter().position(|r| r.id == id);
    report.failed.sort_by_key(|(id, _)| order(id));
    Ok(report)
}

impl From<workers::WorkerError> for EngineError {
    fn from(e: workers::WorkerError) -> Self {
        EngineError::Workers(crate::log::chain(&e))
    }
}

/// What became of one run.
enum Outcome {
    Trained,
    Done,
    Locked,
    Failed(String),
}

fn attempt(
    run: &RunConfig,
    i: usize,
    total: usize,
    options: &RunOptions,
    workers: &Workers,
    parallel: bool,
    on_epoch: EpochHook,
) -> Result<Outcome, EngineError> {
    let dir = options.experiment_dir.run(&run.id);
    match dir.state_on_disk() {
        RunState::Done => {
            Lock::clear_if_stale(&dir.lock(), workers.lock)?;
            return prune_added_points(run, &dir, i, total, options, workers);
        }
        RunState::Failed if !options.retry_failed => {
            let reason = match read_json::<Summary>(&dir.summary()) {
                Ok(s) => s.failure.map(|f| f.reason).unwrap_or_default(),
                Err(e) => format!("(its summary does not read: {})", chain(&e)),
            };
            let reason = format!("failed earlier (--retry-failed to try again): {reason}");
            log(&format!("[{}/{total}] {}: {reason}", i + 1, run.id));
            return Ok(Outcome::Failed(reason));
        }
        _ => {}
    }
    let lock = match Lock::acquire_with(&dir.lock(), workers.lock)? {
        LockOutcome::Acquired(lock) => lock,
        LockOutcome::Held(owner) => {
            log(&format!(
                "[{}/{total}] {}: running elsewhere ({owner}), skipped",
                i + 1,
                run.id
            ));
            return Ok(Outcome::Locked);
        }
    };
    // Checked again under the lock: another worker may have finished it meanwhile.
    if dir.state_on_disk() == RunState::Done {
        lock.release()?;
        return Ok(Outcome::Done);
    }
    log(&format!(
        "[{}/{total}] {} ({} epochs)",
        i + 1,
        run.id,
        run.training.epochs
    ));
    // The engine says it itself when it prints its epochs (one job). A checkpoint that
    // cannot be read fails the run below, with the engine's message.
    if parallel && let Ok(Some(state)) = read_loop_state(&dir) {
        log(&format!(
            "  resuming after epoch {} (best so far: epoch {})",
            state.epoch, state.best_epoch
        ));
    }
    let outcome = run_one(run, &dir, options, !parallel, on_epoch);
    match outcome {
        Ok(summary) => {
            lock.release()?;
            log(&format!(
                "  done: best epoch {}, validation {:.2}%, test {:.2}%",
                summary.best_epoch.unwrap_or(0),
                summary.validation_accuracy.unwrap_or(0.0) * 100.0,
                summary.test_accuracy.unwrap_or(0.0) * 100.0
            ));
            Ok(Outcome::Trained)
        }
        Err(e) if e.fault() == Fault::Machine => {
            // Releasing may fail the same way; the first error is the one to report.
            if let Err(r) = lock.release() {
                log(&format!("  warning: {}", chain(&r)));
            }
            Err(e)
        }
        Err(e) => {
            lock.release()?;
            log(&format!("  failed: {}", chain(&e)));
            Ok(Outcome::Failed(chain(&e)))
        }
    }
}

/// A done run whose later stages no longer stand: `pruning:` grew since it trained, or
/// its analyses are missing or were computed under other settings. Computes what is
/// missing only, from its best checkpoint (neither is part of the run's identity).
fn prune_added_points(
    run: &RunConfig,
    dir: &RunDir,
    i: usize,
    total: usize,
    options: &RunOptions,
    workers: &Workers,
) -> Result<Outcome, EngineError> {
    let env = env_for(dir, options, false, None);
    let prune = pruning_incomplete(run, &env)?;
    let stale = stale_analyses(run, &env)?;
    let analyse = stale.is_some();
    if !prune && !analyse {
        return Ok(Outcome::Done);
    }
    let lock = match Lock::acquire_with(&dir.lock(), workers.lock)? {
        LockOutcome::Acquired(lock) => lock,
        LockOutcome::Held(_) => return Ok(Outcome::Locked),
    };
    let what = match (prune, analyse) {
        (true, true) => "the pruning points added since, and its analyses",
        (true, false) => "the pruning points added since",
        _ => "its analyses",
    };
    log(&format!(
        "[{}/{total}] {}: done; computing {what}",
        i + 1,
        run.id
    ));
    let outcome = (|| -> Result<(), EngineError> {
        if let Some(key) = stale {
            analyse_finished(run, &env, key)?;
        }
        if prune {
            prune_finished(run, &env)?;
        }
        Ok(())
    })();
    lock.release()?;
    match outcome {
        Ok(()) => Ok(Outcome::Done),
        Err(e) if e.fault() == Fault::Machine => Err(e),
        Err(e) => {
            log(&format!("  {what} failed: {}", chain(&e)));
            Ok(Outcome::Failed(chain(&e)))
        }
    }
}

pub(crate) fn env_for(
    dir: &RunDir,
    options: &RunOptions,
    verbose: bool,
    on_epoch: Option<EpochHook>,
) -> TrainEnv {
    TrainEnv {
        on_epoch,
        dir: dir.clone(),
        device: options.device.clone(),
        kernels: options.kernels,
        cache_dir: options.cache_dir.clone(),
        config_dir: options.config_dir.clone(),
        verbose,
        keep_responses: false,
    }
}

/// Trains, tests, measures and prunes one run; writes `summary.json` last, also when
/// the run fails (status failed, with the reason).
fn run_one(
    run: &RunConfig,
    dir: &RunDir,
    options: &RunOptions,
    verbose: bool,
    on_epoch: EpochHook,
) -> Result<Summary, EngineError> {
    let started = Started::now();
    std::fs::create_dir_all(dir.path()).map_err(|source| crate::results::ResultsError::Write {
        path: dir.path().to_path_buf(),
        source,
    })?;
    let yaml = crate::config::to_yaml(run).map_err(|e| EngineError::Serialise {
        what: "run.yaml",
        message: e.to_string(),
    })?;
    write_atomic(&dir.run_yaml(), yaml.as_bytes())?;
    if dir.summary().exists() {
        // A failed run being retried: its summary no longer holds.
        std::fs::remove_file(dir.summary()).map_err(|source| {
            crate::results::ResultsError::Write {
                path: dir.summary(),
                source,
            }
        })?;
    }
    let env = env_for(dir, options, verbose, Some(on_epoch));
    let result = (|| -> Result<Summary, EngineError> {
        let mut trained = train(run, &env)?;
        let test = test_best(&mut trained, &env, run)?;
        measure_topography(&trained, run, &env)?;
        prune(&trained, run, &env)?;
        Ok(summary(
            run,
            RunStatus::Done,
            trained.state.epoch,
            Some(&trained),
            Some(&test),
            None,
            &started,
            options,
        ))
    })();
    let summary = match result {
        Ok(s) => s,
        // Results that cannot be written: no summary either, the run stays resumable.
        Err(e) if e.fault() == Fault::Machine => return Err(e),
        Err(e) => {
            let epoch = match &e {
                EngineError::NonFinite { epoch, .. } => Some(*epoch),
                _ => None,
            };
            let failed = summary(
                run,
                RunStatus::Failed,
                epoch.map(|e| e - 1).unwrap_or(0),
                None,
                None,
                Some(Failure {
                    epoch,
                    reason: chain(&e),
                }),
                &started,
                options,
            );
            write_json(&dir.summary(), &failed)?;
            return Err(e);
        }
    };
    write_json(&dir.summary(), &summary)?;
    Ok(summary)
}

/// When a run's session began, by the wall clock (for its record) and the monotonic one
/// (for its duration).
struct Started {
    wall: SystemTime,
    at: Instant,
}

impl Started {
    fn now() -> Started {
        Started {
            wall: SystemTime::now(),
            at: Instant::now(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn summary(
    run: &RunConfig,
    status: RunStatus,
    epochs_completed: u32,
    trained: Option<&crate::train::Trained>,
    test: Option<&EpochRecord>,
    failure: Option<Failure>,
    started: &Started,
    options: &RunOptions,
) -> Summary {
    let kernels = options.kernels.on(&options.device);
    Summary {
        run_id: run.id.clone(),
        status,
        axes: run.axes(),
        epochs: run.training.epochs,
        epochs_completed,
        best_epoch: trained.map(|t| t.state.best_epoch),
        validation_accuracy: trained.map(|t| t.state.best_accuracy),
        test_accuracy: test.map(|t| t.accuracy),
        test_roc_auc: test.and_then(|t| t.roc_auc),
        failure,
        parameters: trained.map(|t| t.parameters),
        seconds: started.at.elapsed().as_secs_f64(),
        identity: Some(run.identity()),
        provenance: Some(Provenance::here(
            kernels,
            device_name(&options.device),
            started.wall,
        )),
        versions: None,
    }
}

/// `cpu`, or `cuda:N`.
fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
