//! `topo slurm FILE`: the sbatch script of a job array with one task per pending run;
//! printed, written (`--output`) or submitted (`--submit`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, anyhow};

use crate::config::SlurmSpec;
use crate::plan::plan_status;
use crate::results::write_atomic;
use crate::runner::slurm::{
    ArrayJob, DEFAULT_MAX_ARRAY_SIZE, parse_job_id, parse_max_array_size, script,
};

use super::validate::{Planned, load_plan};
use super::{CliError, ExperimentArgs};

#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Submit the script with `sbatch` and print the job id.
    #[arg(long)]
    pub submit: bool,
    /// Write the script here (with `--submit`: the script submitted; default
    /// `<results>/<experiment>/slurm/array.sh`) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also give runs that failed a task (they resume from their last checkpoint).
    #[arg(long)]
    pub retry_failed: bool,
    /// Partition (overrides `slurm.partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Wall time per task, e.g. 12:00:00 (overrides `slurm.time`).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task (overrides `slurm.cpus`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub cpus: Option<u32>,
    /// GPUs per task (overrides `slurm.gpus`).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Memory per task, e.g. 16G (overrides `slurm.memory`).
    #[arg(long)]
    pub memory: Option<String>,
    /// Account to charge (overrides `slurm.account`).
    #[arg(long)]
    pub account: Option<String>,
    /// Tasks running at once (overrides `slurm.max_parallel`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: Option<u32>,
}

/// The file's `slurm:` section with the flags laid over it.
fn resources(file: &SlurmSpec, args: &SlurmArgs) -> SlurmSpec {
    SlurmSpec {
        partition: args.partition.clone().or_else(|| file.partition.clone()),
        time: args.time.clone().or_else(|| file.time.clone()),
        cpus: args.cpus.or(file.cpus),
        gpus: args.gpus.or(file.gpus),
        memory: args.memory.clone().or_else(|| file.memory.clone()),
        account: args.account.clone().or_else(|| file.account.clone()),
        max_parallel: args.max_parallel.or(file.max_parallel),
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

pub fn run(args: &SlurmArgs) -> Result<(), CliError> {
    let Planned { loaded, plan, dir } = load_plan(&args.experiment)?;
    let status = plan_status(&plan, &dir, None);
    let run_ids: Vec<String> = plan
        .runs
        .iter()
        .zip(&status.states)
        .filter(|(_, s)| s.is_pending(args.retry_failed))
        .map(|(r, _)| r.id.clone())
        .collect();
    if run_ids.is_empty() {
        eprintln!(
            "{}: every run is done or failed (--retry-failed to try failed ones): nothing to submit",
            dir.path().display()
        );
        return Ok(());
    }
    let mut run_args = Vec::new();
    for set in &args.experiment.sets {
        run_args.push("--set".to_string());
        run_args.push(set.clone());
    }
    run_args.push("--results".into());
    run_args.push(absolute(&args.experiment.results)?.display().to_string());
    if args.retry_failed {
        run_args.push("--retry-failed".into());
    }
    let topo = std::env::current_exe().context("cannot find the topo executable")?;
    let workdir = std::env::current_dir().context("cannot read the current folder")?;
    let job = ArrayJob {
        name: plan.experiment.clone(),
        run_ids,
        resources: resources(&loaded.experiment.experiment.slurm, args),
        topo,
        file: absolute(&args.experiment.file)?,
        run_args,
        workdir,
        part: None,
    };
    let max_array_size = max_array_size();
    let jobs = job.split(max_array_size);
    if jobs.len() > 1 {
        eprintln!(
            "{} runs, more than the cluster's MaxArraySize of {max_array_size}: {} arrays",
            jobs.iter().map(|j| j.run_ids.len()).sum::<usize>(),
            jobs.len()
        );
    }
    if !args.submit {
        match &args.output {
            Some(path) => {
                for (job, path) in jobs.iter().zip(script_paths(path, jobs.len())) {
                    write_atomic(&path, script(job).as_bytes())
                        .map_err(|e| CliError::Failed(e.into()))?;
                    eprintln!(
                        "{}: a job array of {} task(s); submit it with `sbatch {}`",
                        path.display(),
                        job.run_ids.len(),
                        path.display()
                    );
                }
            }
            None => {
                let texts: Vec<String> = jobs.iter().map(script).collect();
                print!("{}", texts.join("\n"));
            }
        }
        return Ok(());
    }
    let path = match &args.output {
        Some(p) => p.clone(),
        None => dir.path().join("slurm").join("array.sh"),
    };
    let mut previous: Option<String> = None;
    for (job, path) in jobs.iter().zip(script_paths(&path, jobs.len())) {
        write_atomic(&path, script(job).as_bytes()).map_err(|e| CliError::Failed(e.into()))?;
        // Each array throttles only its own tasks: with a cap, the next array waits
        // for the previous one, so the cap holds over the whole plan.
        let after = previous.filter(|_| job.resources.max_parallel.is_some());
        let id = submit(&path, after.as_deref())?;
        eprintln!(
            "submitted {} ({} task(s)) as job {id}{}",
            path.display(),
            job.run_ids.len(),
            after
                .map(|a| format!(", after job {a}"))
                .unwrap_or_default()
        );
        println!("{id}");
        previous = Some(id);
    }
    Ok(())
}

/// `sbatch --parsable [--dependency=afterany:ID] PATH`; the job id.
fn submit(path: &Path, after: Option<&str>) -> Result<String, CliError> {
    let mut sbatch = Command::new("sbatch");
    sbatch.arg("--parsable");
    if let Some(id) = after {
        sbatch.arg(format!("--dependency=afterany:{id}"));
    }
    let out = sbatch
        .arg(path)
        .output()
        .map_err(|e| anyhow!("cannot run sbatch (is Slurm installed and on PATH?): {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(CliError::Failed(anyhow!(
            "sbatch {} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(parse_job_id(&stdout)
        .ok_or_else(|| anyhow!("sbatch said `{}`: no job id in it", stdout.trim()))?)
}

/// The cluster's `MaxArraySize` (`scontrol show config`), or Slurm's default when
/// `scontrol` is not there to ask.
fn max_array_size() -> usize {
    let out = Command::new("scontrol").args(["show", "config"]).output();
    match out {
        Ok(out) if out.status.success() => {
            parse_max_array_size(&String::from_utf8_lossy(&out.stdout))
                .unwrap_or(DEFAULT_MAX_ARRAY_SIZE)
        }
        _ => {
            eprintln!(
                "note: `scontrol show config` did not answer: assuming MaxArraySize {DEFAULT_MAX_ARRAY_SIZE}"
            );
            DEFAULT_MAX_ARRAY_SIZE
        }
    }
}

/// `path` for one script; `<stem>-1.<ext>`, `<stem>-2.<ext>`... for several.
fn script_paths(path: &Path, count: usize) -> Vec<PathBuf> {
    if count == 1 {
        return vec![path.to_path_buf()];
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "array".into());
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (1..=count)
        .map(|i| path.with_file_name(format!("{stem}-{i}{ext}")))
        .collect()
}
