//! Where things live under `results/<experiment>/`.

use std::path::{Path, PathBuf};

/// `<results>/.cache/`: what experiments share under one results root (decoded audio
/// features, measured throughput), kept out of every experiment's own folder.
pub fn cache_dir(results_root: &Path) -> PathBuf {
    results_root.join(".cache")
}

/// `results/<experiment>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentDir {
    path: PathBuf,
}

impl ExperimentDir {
    /// The folder of experiment `name` under the results root (usually `results`).
    pub fn new(results_root: &Path, name: &str) -> ExperimentDir {
        ExperimentDir {
            path: results_root.join(name),
        }
    }

    /// An existing experiment folder, as `topo report DIR` receives it.
    pub fn at(path: &Path) -> ExperimentDir {
        ExperimentDir {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn resolved_yaml(&self) -> PathBuf {
        self.path.join("experiment.resolved.yaml")
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.path.join("runs")
    }

    pub fn run(&self, run_id: &str) -> RunDir {
        RunDir {
            path: self.runs_dir().join(run_id),
        }
    }

    pub fn report_dir(&self) -> PathBuf {
        self.path.join("report")
    }

    /// Every run folder present, sorted by name.
    pub fn existing_runs(&self) -> std::io::Result<Vec<RunDir>> {
        let dir = self.runs_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut runs = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                runs.push(RunDir { path: entry.path() });
            }
        }
        runs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(runs)
    }
}

/// What a run folder says about its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Nothing on disk.
    New,
    /// Started: a checkpoint or records, no summary.
    Partial,
    /// `summary.json` says done.
    Done,
    /// `summary.json` says failed.
    Failed,
}

impl RunState {
    /// Whether a run in this state is still to train: new or partial, and failed ones
    /// when they are to be retried.
    pub fn is_pending(self, retry_failed: bool) -> bool {
        match self {
            RunState::New | RunState::Partial => true,
            RunState::Failed => retry_failed,
            RunState::Done => false,
        }
    }
}

/// `results/<experiment>/runs/<run-id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn at(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run id: the folder's name.
    pub fn id(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn run_yaml(&self) -> PathBuf {
        self.path.join("run.yaml")
    }
    pub fn metrics(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    pub fn summary(&self) -> PathBuf {
        self.path.join("summary.json")
    }
    pub fn pruning(&self) -> PathBuf {
        self.path.join("pruning.csv")
    }
    pub fn topography(&self) -> PathBuf {
        self.path.join("topography.json")
    }
    pub fn analyses(&self) -> PathBuf {
        self.path.join("analyses.json")
    }
    pub fn responses(&self) -> PathBuf {
        self.path.join("responses.safetensors")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.path.join("checkpoints")
    }
    pub fn best_checkpoint(&self) -> PathBuf {
        self.checkpoints().join("best.safetensors")
    }
    pub fn last_checkpoint(&self) -> PathBuf {
        self.checkpoints().join("last.safetensors")
    }
    pub fn state(&self) -> PathBuf {
        self.checkpoints().join("state.json")
    }
    /// The run's TensorBoard event file.
    pub fn events(&self) -> PathBuf {
        self.path.join(super::tensorboard::FILE_NAME)
    }
    pub fn lock(&self) -> PathBuf {
        self.path.join("lock")
    }

    /// Reads the run's state from disk. A summary that cannot be parsed counts as
    /// partial: the run will be redone rather than trusted.
    pub fn state_on_disk(&self) -> RunState {
        self.read_state().0
    }

    /// The run's state and, where it reads, its summary: `summary.json` read once.
    pub fn read_state(&self) -> (RunState, Option<super::Summary>) {
        match super::read_json::<super::Summary>(&self.summary()) {
            Ok(s) if s.status == super::RunStatus::Done => (RunState::Done, Some(s)),
            Ok(s) => (RunState::Failed, Some(s)),
            Err(_) if self.path.join("checkpoints").exists() || self.metrics().exists() => {
                (RunState::Partial, None)
            }
            Err(_) if self.summary().exists() => (RunState::Partial, None),
            Err(_) => (RunState::New, None),
        }
    }
}
