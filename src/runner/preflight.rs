//! Before the first run starts: what every run of a plan needs, checked once. A missing
//! data set, a corrupt clip or a bad layout file would fail every run that uses it, one
//! after the other; here each problem is reported once and nothing is recorded as failed.
//! What only training can reveal (a loss that turns NaN) is still a failure of its run.
//!
//! Data sets are checked by the loaders the runs use, so the check cannot drift from what
//! training reads. Audio is decoded in full (every clip must decode); its features land in
//! the shared cache, which keys on file contents, so the next check reads them back
//! instead of decoding again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::config::{DatasetSpec, LayerWeights, LossMethod, ModelSpec, Placement, TapPoint};
use crate::data::{self, DataError, Dataset};
use crate::kernels::Kernels;
use crate::log::chain;
use crate::nn::build_with;
use crate::plan::RunConfig;
use crate::results::{ExperimentDir, write_atomic};
use crate::train::check_term;
use crate::train::checkpoint::recorded_kernels;

/// Where the checks read and write.
#[derive(Debug, Clone)]
pub struct PreflightEnv {
    /// Folder of the experiment file: custom layouts are relative to it.
    pub config_dir: PathBuf,
    /// The shared feature cache.
    pub cache_dir: PathBuf,
    /// What `topo run` checks beyond the inputs; `None` (`topo validate --data`) checks
    /// the inputs only.
    pub results: Option<ResultsCheck>,
}

/// The results folder the runs will write, and the kernels they will train on.
#[derive(Debug, Clone)]
pub struct ResultsCheck {
    /// Proven writable.
    pub dir: ExperimentDir,
    /// The kernels the runs will train on (as `Kernels::on` the device gives them):
    /// a run under way must have begun on them...
    pub kernels: Kernels,
    /// ...unless it may resume on others anyway (its results then differ from an
    /// uninterrupted run's by float rounding).
    pub allow_kernel_change: bool,
}

/// One thing that would stop the runs, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks what `runs` need; every problem found, each once. Empty means go.
pub fn preflight(runs: &[&RunConfig], env: &PreflightEnv) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(check) = &env.results
        && let Err(p) = check_writable(check.dir.path())
    {
        problems.push(p);
    }
    let specs = distinct(runs.iter().map(|r| &r.dataset));
    // Files first, for every data set: a missing folder is found in seconds, before
    // any audio is decoded.
    let mut loaded: Vec<(&DatasetSpec, Dataset)> = Vec::new();
    let mut audio = Vec::new();
    for spec in &specs {
        if spec.kind.is_decoded() {
            if let Err(e) = data::scan(spec) {
                problems.extend(each(e));
            } else {
                audio.push(*spec);
            }
        } else {
            match data::load(spec, &env.cache_dir) {
                Ok(d) => loaded.push((spec, d)),
                Err(e) => problems.extend(each(e)),
            }
        }
    }
    if problems.is_empty() {
        for spec in audio {
            let started = Instant::now();
            let what = if spec.kind.is_audio() {
                "every clip decodes (features cached in"
            } else {
                "every image decodes (pixels cached in"
            };
            crate::log::log(&format!(
                "checking {} ({}): {what} {})",
                spec.kind.name(),
                spec.root_or_default().display(),
                env.cache_dir.display()
            ));
            match data::load(spec, &env.cache_dir) {
                Ok(d) => {
                    crate::log::log(&format!("  ok in {:.1} s", started.elapsed().as_secs_f64()));
                    loaded.push((spec, d));
                }
                Err(e) => problems.extend(each(e)),
            }
        }
    }
    for (spec, d) in &loaded {
        for (split, len) in [
            ("train", d.train.len()),
            ("validation", d.validation.len()),
            ("test", d.test.len()),
        ] {
            if len == 0 {
                problems.push(Problem(format!(
                    "{} ({}): the {split} split is empty; check `limit` and the data set's files",
                    spec.kind.name(),
                    spec.root_or_default().display()
                )));
            }
        }
    }
    problems.extend(check_shapes(runs));
    problems.extend(check_inits(runs));
    problems.extend(check_layouts(runs, &env.config_dir));
    if let Some(check) = &env.results
        && !check.allow_kernel_change
    {
        problems.extend(check_kernels(runs, &check.dir, check.kernels));
    }
    problems
}

/// Runs under way that began on other kernels: resuming them would not give the
/// bit-identical results a resume promises.
fn check_kernels(runs: &[&RunConfig], dir: &ExperimentDir, kernels: Kernels) -> Vec<Problem> {
    runs.iter()
        .filter_map(|run| {
            let run_dir = dir.run(&run.id);
            match recorded_kernels(&run_dir) {
                Ok(Some(recorded)) if recorded != kernels => Some(Problem(format!(
                    "{}: began on the {} kernels, now asked to resume on the {} ones; \
                     resume with `--kernels {}` (bit-identical), or pass \
                     --allow-kernel-change to go on anyway",
                    run_dir.path().display(),
                    recorded.name(),
                    kernels.name(),
                    recorded.name()
                ))),
                Ok(_) => None,
                Err(e) => Some(Problem(chain(&e))),
            }
        })
        .collect()
}

/// Each model on each data set it meets: a forward pass of one example of the data
/// set's shape, once per pair; a pair that fails names both and every run it would fail.
fn check_shapes(runs: &[&RunConfig]) -> Vec<Problem> {
    let pairs: Vec<(&DatasetSpec, &ModelSpec)> =
        runs.iter().map(|r| (&r.dataset, &r.model)).collect();
    let mut problems = Vec::new();
    for &(dataset, model) in distinct(pairs.iter()) {
        let (input, classes) = crate::data::nominal::Nominal::model_input(dataset);
        let Err(e) = crate::nn::check_input(model, input, classes) else {
            continue;
        };
        let affected: Vec<&&RunConfig> = runs
            .iter()
            .filter(|r| &r.dataset == dataset && &r.model == model)
            .collect();
        // The pair came from these runs; the first one's names stand for it.
        let Some(first) = affected.first() else {
            continue;
        };
        let names = &first.names;
        problems.push(Problem(format!(
            "model `{}` on data set `{}` ({}): {}; the {} run(s) of this pair would \
             fail at their first step: choose another model or data set for them",
            names.model,
            names.dataset,
            dataset.kind.name(),
            chain(&e),
            affected.len()
        )));
    }
    problems
}

/// Each distinct pretrained-weights file against the model it starts: every tensor that is
/// missing, unexpected or mis-shaped, said once for all the runs it would fail.
fn check_inits(runs: &[&RunConfig]) -> Vec<Problem> {
    let pairs: Vec<(&DatasetSpec, &ModelSpec)> = runs
        .iter()
        .filter(|r| r.model.init.is_some())
        .map(|r| (&r.dataset, &r.model))
        .collect();
    let mut problems = Vec::new();
    for &(dataset, model) in distinct(pairs.iter()) {
        let Some(init) = &model.init else {
            continue;
        };
        let (input, classes) = crate::data::nominal::Nominal::model_input(dataset);
        let varmap = candle_nn::VarMap::new();
        let device = candle_core::Device::Cpu;
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &device);
        let built = crate::nn::build(model, input[0], classes, vb);
        // A model that does not build is check_shapes' to report.
        if built.is_err() {
            continue;
        }
        let Err(e) = crate::train::init_weights::load_init(init, &varmap, &device) else {
            continue;
        };
        let affected = runs
            .iter()
            .filter(|r| &r.dataset == dataset && &r.model == model)
            .count();
        problems.push(Problem(format!(
            "{}; the {affected} run(s) starting from it would fail before their first step",
            chain(&e)
        )));
    }
    problems
}

fn each(e: DataError) -> impl Iterator<Item = Problem> {
    e.into_each().into_iter().map(|e| Problem(chain(&e)))
}

/// The distinct values of `items`, in first-seen order.
fn distinct<'a, T: PartialEq + 'a>(items: impl Iterator<Item = &'a T>) -> Vec<&'a T> {
    let mut out: Vec<&T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Creates the experiment folder and writes and removes a file in it.
fn check_writable(dir: &Path) -> Result<(), Problem> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Problem(format!(
            "{}: the results folder cannot be {what} ({e}); choose another with --results",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("created", &e))?;
    // One name per process: workers sharing the folder must not remove each other's.
    let probe = dir.join(format!(".preflight-{}", std::process::id()));
    write_atomic(&probe, b"topo can write here\n").map_err(|e| fail("written", &chain(&e)))?;
    std::fs::remove_file(&probe).map_err(|e| fail("written", &e))
}

/// Every custom layout file, and every loss other than the paper's, matched against the
/// tapped layers of each model it is used with: the code path training takes, on a
/// model of zeros.
fn check_layouts(runs: &[&RunConfig], config_dir: &Path) -> Vec<Problem> {
    // Names travel with each spec for the message; specs, not names, are compared.
    type Key<'a> = (&'a ModelSpec, &'a Placement, LossMethod, &'a LayerWeights);
    let checked: Vec<(Key, String)> = runs
        .iter()
        .filter_map(|r| {
            let o = &r.objective;
            let (p, loss, weights) = (o.placement()?, o.loss()?, o.layer_weights()?);
            let plain = matches!(p, Placement::Builtin { .. }) && loss.is_paper();
            if plain && weights.is_uniform() {
                return None;
            }
            let names = format!(
                "topography `{}` on model `{}`",
                r.names.topography, r.names.model
            );
            Some(((&r.model, p, loss, weights), names))
        })
        .collect();
    let mut problems = Vec::new();
    let keys: Vec<Key> = checked.iter().map(|(k, _)| *k).collect();
    for key in distinct(keys.iter()) {
        let &(model, placement, loss, weights) = key;
        let names = checked
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |c| c.1.as_str());
        let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
        // The tapped layers' widths depend on neither the input channels nor the classes.
        let checked = build_with(model, 1, 2, vb, TapPoint::Conv, Kernels::Candle)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                check_term(
                    placement,
                    loss,
                    weights,
                    &m.tap_names(),
                    &m.tap_channels(),
                    config_dir,
                )
                .map_err(|e| format!("{names}: {e}"))
            });
        if let Err(message) = checked {
            let problem = Problem(message);
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
    }
    problems
}
