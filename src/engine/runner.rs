//! Running a plan: every pending run in turn, finished ones skipped, a failure recorded
//! and the others carried on.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use super::EngineError;
use super::lock::{Lock, LockOutcome};
use super::stages::{measure_topography, prune};
use super::train::{TrainEnv, test_best, train};
use crate::plan::{Plan, RunConfig};
use crate::results::{
    ExperimentDir, Failure, RunDir, RunState, RunStatus, Summary, Versions, write_atomic,
    write_json,
};

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub device: Device,
    pub experiment_dir: ExperimentDir,
    /// Folder of the experiment file (custom layouts are relative to it).
    pub config_dir: PathBuf,
    /// Shared feature cache.
    pub cache_dir: PathBuf,
    /// Try runs that failed before again.
    pub retry_failed: bool,
}

/// What happened to the runs of a plan.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub trained: usize,
    pub skipped_done: usize,
    pub skipped_locked: usize,
    /// Run id and reason.
    pub failed: Vec<(String, String)>,
}

/// Runs every run of `runs` not yet done.
pub fn run_plan(
    plan: &Plan,
    runs: &[&RunConfig],
    options: &RunOptions,
) -> Result<RunReport, EngineError> {
    let mut report = RunReport::default();
    let total = runs.len();
    for (i, run) in runs.iter().enumerate() {
        let dir = options.experiment_dir.run(&run.id);
        match dir.state_on_disk() {
            RunState::Done => {
                report.skipped_done += 1;
                continue;
            }
            RunState::Failed if !options.retry_failed => {
                let reason = crate::results::read_json::<Summary>(&dir.summary())
                    .ok()
                    .and_then(|s| s.failure.map(|f| f.reason))
                    .unwrap_or_default();
                report.failed.push((
                    run.id.clone(),
                    format!("failed earlier (--retry-failed to try again): {reason}"),
                ));
                continue;
            }
            _ => {}
        }
        let lock = match Lock::acquire(&dir.lock())? {
            LockOutcome::Acquired(lock) => lock,
            LockOutcome::Held(owner) => {
                eprintln!(
                    "[{}/{total}] {}: running elsewhere ({owner}), skipped",
                    i + 1,
                    run.id
                );
                report.skipped_locked += 1;
                continue;
            }
        };
        eprintln!(
            "[{}/{total}] {} ({} epochs)",
            i + 1,
            run.id,
            run.training.epochs
        );
        let _ = std::io::stderr().flush();
        let outcome = run_one(plan, run, &dir, options);
        lock.release()?;
        match outcome {
            Ok(summary) => {
                report.trained += 1;
                eprintln!(
                    "  done: best epoch {}, validation {:.2}%, test {:.2}%",
                    summary.best_epoch.unwrap_or(0),
                    summary.validation_accuracy.unwrap_or(0.0) * 100.0,
                    summary.test_accuracy.unwrap_or(0.0) * 100.0
                );
            }
            Err(e) => {
                eprintln!("  failed: {e:#}");
                report.failed.push((run.id.clone(), e.to_string()));
            }
        }
    }
    Ok(report)
}

/// Trains, tests, measures and prunes one run; writes `summary.json` last, also when
/// the run fails (status failed, with the reason).
fn run_one(
    _plan: &Plan,
    run: &RunConfig,
    dir: &RunDir,
    options: &RunOptions,
) -> Result<Summary, EngineError> {
    let started = Instant::now();
    std::fs::create_dir_all(dir.path()).map_err(|source| crate::results::ResultsError::Write {
        path: dir.path().to_path_buf(),
        source,
    })?;
    let yaml = serde_yaml::to_string(run)
        .map_err(|e| EngineError::Other(format!("cannot write run.yaml: {e}")))?;
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
    let env = TrainEnv {
        dir: dir.clone(),
        device: options.device.clone(),
        cache_dir: options.cache_dir.clone(),
        config_dir: options.config_dir.clone(),
        verbose: true,
    };
    let result = (|| -> Result<Summary, EngineError> {
        let mut trained = train(run, &env)?;
        let test_accuracy = test_best(&mut trained, &env, run)?;
        measure_topography(&trained, run, &env)?;
        prune(&trained, run, &env)?;
        Ok(summary(
            run,
            RunStatus::Done,
            trained.state.epoch,
            Some(&trained),
            Some(test_accuracy),
            None,
            started,
        ))
    })();
    let summary = match result {
        Ok(s) => s,
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
                    reason: e.to_string(),
                }),
                started,
            );
            write_json(&dir.summary(), &failed)?;
            return Err(e);
        }
    };
    write_json(&dir.summary(), &summary)?;
    Ok(summary)
}

fn summary(
    run: &RunConfig,
    status: RunStatus,
    epochs_completed: u32,
    trained: Option<&super::train::Trained>,
    test_accuracy: Option<f64>,
    failure: Option<Failure>,
    started: Instant,
) -> Summary {
    Summary {
        run_id: run.id.clone(),
        status,
        axes: run.axes.clone(),
        epochs: run.training.epochs,
        epochs_completed,
        best_epoch: trained.map(|t| t.state.best_epoch),
        validation_accuracy: trained.map(|t| t.state.best_accuracy),
        test_accuracy,
        failure,
        parameters: trained.map(|t| t.parameters).unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
        versions: Versions {
            topo: env!("CARGO_PKG_VERSION").into(),
            candle: "0.11.1".into(),
        },
    }
}
