//! `topo analyse`: the analyses of finished runs, computed from their best checkpoints
//! without training, each under its run folder's lock. Runs whose analyses stand (same
//! settings, same checkpoint) are skipped unless forced.

use crate::log::{chain, log};
use crate::plan::RunConfig;
use crate::results::RunState;
use crate::results::lock::{Lock, LockOutcome};
use crate::train::analyses::{analyse_finished, analyses_key, stale_analyses};
use crate::train::{EngineError, Fault};

use super::{RunOptions, Workers, env_for};

/// What became of the runs asked for.
#[derive(Debug, Clone, Default)]
pub struct AnalyseReport {
    pub analysed: usize,
    pub current: usize,
    pub unfinished: usize,
    pub locked: usize,
    /// Run id and reason.
    pub failed: Vec<(String, String)>,
}

/// Analyses every finished run of `runs` whose analyses do not stand (all of them when
/// `force`), keeping their raw responses when `keep_responses`.
pub fn analyse_plan(
    runs: &[&RunConfig],
    options: &RunOptions,
    workers: &Workers,
    force: bool,
    keep_responses: bool,
) -> Result<AnalyseReport, EngineError> {
    let mut report = AnalyseReport::default();
    let total = runs.len();
    for (i, run) in runs.iter().enumerate() {
        let dir = options.experiment_dir.run(&run.id);
        if dir.state_on_disk() != RunState::Done {
            report.unfinished += 1;
            continue;
        }
        let env = crate::train::TrainEnv {
            keep_responses,
            ..env_for(&dir, options, false, None)
        };
        let key = if force {
            analyses_key(run, &env)?
        } else {
            match stale_analyses(run, &env)? {
                Some(key) => key,
                None => {
                    report.current += 1;
                    continue;
                }
            }
        };
        let lock = match Lock::acquire_with(&dir.lock(), workers.lock)? {
            LockOutcome::Acquired(lock) => lock,
            LockOutcome::Held(owner) => {
                log(&format!(
                    "[{}/{total}] {}: in use elsewhere ({owner}), skipped",
                    i + 1,
                    run.id
                ));
                report.locked += 1;
                continue;
            }
        };
        log(&format!("[{}/{total}] {}: analysing", i + 1, run.id));
        let outcome = analyse_finished(run, &env, key);
        lock.release()?;
        match outcome {
            Ok(()) => report.analysed += 1,
            Err(e) if e.fault() == Fault::Machine => return Err(e),
            Err(e) => {
                log(&format!("  failed: {}", chain(&e)));
                report.failed.push((run.id.clone(), chain(&e)));
            }
        }
    }
    Ok(report)
}
