//! The sbatch script of a Slurm job array: one array task per pending run, each calling
//! `topo run FILE --only ID`. Pure: values in, text out (`topo slurm` does the I/O).
//!
//! `--requeue` is safe because a task resumes its run from the last checkpoint; a task
//! whose run is already done (or held by a live worker) finds nothing to do and exits.
//! A task exits with `topo run`'s status, non-zero when its run fails, so Slurm records
//! the task as FAILED.
//!
//! A cluster caps array indices below `MaxArraySize`: a larger plan is split into several
//! arrays ([`ArrayJob::split`]), submitted one after the other.

use std::fmt::Write;
use std::path::PathBuf;

use crate::config::SlurmSpec;

/// Everything the script says.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayJob {
    /// Job name (`--job-name`): the experiment's name.
    pub name: String,
    /// The run ids, one per array task, in task order.
    pub run_ids: Vec<String>,
    /// Resources; unset ones are left to the cluster's defaults.
    pub resources: SlurmSpec,
    /// The `topo` executable the tasks call.
    pub topo: PathBuf,
    /// The experiment file (absolute, so tasks find it from any folder).
    pub file: PathBuf,
    /// Arguments the tasks pass on to `topo run` (`--set`, `--results`).
    pub run_args: Vec<String>,
    /// Folder the tasks start in and where `slurm-%A_%a.out` logs go.
    pub workdir: PathBuf,
    /// Which of several arrays this is, when the plan was split.
    pub part: Option<Part>,
}

/// Array `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub index: usize,
    pub count: usize,
}

/// Slurm's default `MaxArraySize`, used when the cluster's cannot be read.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// `MaxArraySize` from `scontrol show config`'s output (`MaxArraySize = 1001`).
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse().ok())
            .flatten()
            .filter(|n| *n > 0)
    })
}

impl ArrayJob {
    /// The job as arrays of at most `max_array_size` tasks (indices `0..max_array_size`),
    /// runs in plan order; one array, unchanged, when it fits.
    pub fn split(self, max_array_size: usize) -> Vec<ArrayJob> {
        let size = max_array_size.max(1);
        if self.run_ids.len() <= size {
            return vec![self];
        }
        let chunks: Vec<Vec<String>> = self.run_ids.chunks(size).map(<[_]>::to_vec).collect();
        let count = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, run_ids)| ArrayJob {
                run_ids,
                part: Some(Part {
                    index: i + 1,
                    count,
                }),
                ..self.clone()
            })
            .collect()
    }
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `--array` value: `0-(n-1)`, with `%max` when tasks running at once are capped.
pub fn array_range(tasks: usize, max_parallel: Option<u32>) -> String {
    let last = tasks.saturating_sub(1);
    match max_parallel {
        Some(m) => format!("0-{last}%{m}"),
        None => format!("0-{last}"),
    }
}

/// The script text. `tasks` must be at least one (there is no empty job array).
pub fn script(job: &ArrayJob) -> String {
    let r = &job.resources;
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line("#!/bin/bash".into());
    line(format!(
        "# topo: {} run(s) of experiment `{}`, one array task each.",
        job.run_ids.len(),
        job.name
    ));
    if let Some(Part { index, count }) = job.part {
        line(format!(
            "# Array {index} of {count}: the plan is larger than the cluster's MaxArraySize."
        ));
    }
    line(format!("#SBATCH --job-name={}", shell_quote(&job.name)));
    line(format!(
        "#SBATCH --array={}",
        array_range(job.run_ids.len(), r.max_parallel)
    ));
    line("#SBATCH --requeue".into());
    line("#SBATCH --ntasks=1".into());
    line(format!(
        "#SBATCH --chdir={}",
        shell_quote(&job.workdir.display().to_string())
    ));
    line("#SBATCH --output=slurm-%A_%a.out".into());
    if let Some(p) = &r.partition {
        line(format!("#SBATCH --partition={}", shell_quote(p)));
    }
    if let Some(a) = &r.account {
        line(format!("#SBATCH --account={}", shell_quote(a)));
    }
    if let Some(t) = &r.time {
        line(format!("#SBATCH --time={}", shell_quote(t)));
    }
    if let Some(c) = r.cpus {
        line(format!("#SBATCH --cpus-per-task={c}"));
    }
    if let Some(g) = r.gpus {
        line(format!("#SBATCH --gpus={g}"));
    }
    if let Some(m) = &r.memory {
        line(format!("#SBATCH --mem={}", shell_quote(m)));
    }
    line("set -euo pipefail".into());
    // Without cgroups nothing stops candle from using every core of the node.
    line("export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}".into());
    line("runs=(".into());
    for id in &job.run_ids {
        line(format!("  {}", shell_quote(id)));
    }
    line(")".into());
    line("id=${runs[$SLURM_ARRAY_TASK_ID]}".into());
    let mut call = format!(
        "exec {} run {}",
        shell_quote(&job.topo.display().to_string()),
        shell_quote(&job.file.display().to_string())
    );
    for a in &job.run_args {
        // Infallible: writing into a String.
        let _infallible = write!(call, " {}", shell_quote(a));
    }
    call.push_str(" --only \"$id\" --no-report");
    line(call);
    s
}

/// `sbatch`'s answer (`Submitted batch job 42`, or `42` with `--parsable`) to a job id.
pub fn parse_job_id(stdout: &str) -> Option<String> {
    let last = stdout.split_whitespace().last()?;
    // `--parsable` may append `;cluster`.
    let id = last.split(';').next()?;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ArrayJob {
        ArrayJob {
            name: "tiny".into(),
            run_ids: vec!["a-1".into(), "b-2".into(), "c-3".into()],
            resources: SlurmSpec::default(),
            topo: "/opt/topo".into(),
            file: "/x/tiny.yaml".into(),
            run_args: vec![],
            workdir: "/x".into(),
            part: None,
        }
    }

    #[test]
    fn a_plan_larger_than_max_array_size_is_split_in_plan_order() {
        let parts = job().split(2);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].run_ids, ["a-1", "b-2"]);
        assert_eq!(parts[1].run_ids, ["c-3"]);
        assert_eq!(parts[1].part, Some(Part { index: 2, count: 2 }));
        let text = script(&parts[1]);
        assert!(text.contains("#SBATCH --array=0-0\n"), "{text}");
        assert!(text.contains("# Array 2 of 2"), "{text}");
        // One that fits stays whole.
        assert_eq!(job().split(3), vec![job()]);
        assert_eq!(job().split(0).len(), 3);
    }

    #[test]
    fn max_array_size_is_read_from_scontrol() {
        let config = "Configuration data as of 2026-12-05T10:00:00\n\
                      MailProg                = /bin/true\n\
                      MaxArraySize            = 4\n\
                      MaxJobCount             = 10000\n";
        assert_eq!(parse_max_array_size(config), Some(4));
        assert_eq!(parse_max_array_size("MaxJobCount = 3\n"), None);
        assert_eq!(parse_max_array_size("MaxArraySize = none\n"), None);
    }

    #[test]
    fn the_script_of_a_small_plan_without_resources() {
        assert_eq!(
            script(&job()),
            "#!/bin/bash
# topo: 3 run(s) of experiment `tiny`, one array task each.
#SBATCH --job-name=tiny
#SBATCH --array=0-2
#SBATCH --requeue
#SBATCH --ntasks=1
#SBATCH --chdir=/x
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
runs=(
  a-1
  b-2
  c-3
)
id=${runs[$SLURM_ARRAY_TASK_ID]}
exec /opt/topo run /x/tiny.yaml --only \"$id\" --no-report
"
        );
    }

    #[test]
    fn every_resource_and_argument_is_written_and_quoted() {
        let mut j = job();
        j.run_ids.truncate(1);
        j.resources = SlurmSpec {
            partition: Some("gpu".into()),
            time: Some("12:00:00".into()),
            cpus: Some(4),
            gpus: Some(1),
            memory: Some("16G".into()),
            account: Some("lab".into()),
            max_parallel: Some(8),
        };
        j.run_args = vec![
            "--set".into(),
            "training.epochs=2".into(),
            "--results".into(),
            "my results".into(),
        ];
        j.file = "/x/it's.yaml".into();
        let text = script(&j);
        let sbatch: Vec<&str> = text.lines().filter(|l| l.starts_with("#SBATCH")).collect();
        assert_eq!(
            sbatch,
            [
                "#SBATCH --job-name=tiny",
                "#SBATCH --array=0-0%8",
                "#SBATCH --requeue",
                "#SBATCH --ntasks=1",
                "#SBATCH --chdir=/x",
                "#SBATCH --output=slurm-%A_%a.out",
                "#SBATCH --partition=gpu",
                "#SBATCH --account=lab",
                "#SBATCH --time=12:00:00",
                "#SBATCH --cpus-per-task=4",
                "#SBATCH --gpus=1",
                "#SBATCH --mem=16G",
            ]
        );
        assert_eq!(
            text.lines().last().unwrap(),
            "exec /opt/topo run '/x/it'\\''s.yaml' --set training.epochs=2 --results 'my results' --only \"$id\" --no-report"
        );
    }

    #[test]
    fn job_ids_are_read_from_either_form_of_sbatch_output() {
        assert_eq!(
            parse_job_id("Submitted batch job 42\n").as_deref(),
            Some("42")
        );
        assert_eq!(parse_job_id("17;cluster\n").as_deref(), Some("17"));
        assert_eq!(parse_job_id("sbatch: error: no partition\n"), None);
        assert_eq!(parse_job_id(""), None);
    }
}
