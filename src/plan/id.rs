//! Run identity: a readable slug plus a short hash of what determines the training.
//! The hash covers the resolved specs, not names or key order, so reformatting a file or
//! adding a topography leaves every existing id unchanged.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{DatasetSpec, ModelSpec, Topography, TrainingSpec};

/// The parts of a run's identity shared by many runs, serialised once: planning a grid
/// of thousands of runs then only formats lambda and seed per run.
pub struct IdentityParts {
    dataset: String,
    model: String,
    topography: String,
    training: String,
}

/// Canonical JSON: `serde_json::Value` keeps object keys sorted.
fn canonical<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

impl IdentityParts {
    pub fn new(
        dataset: &DatasetSpec,
        model: &ModelSpec,
        topography: &Topography,
        training: &TrainingSpec,
    ) -> Self {
        IdentityParts {
            dataset: canonical(dataset),
            model: canonical(model),
            topography: canonical(topography),
            training: canonical(training),
        }
    }

    /// First 8 hex digits of the SHA-256 of the identity's canonical JSON, an object of
    /// what determines the run's result (keys sorted); pruning and report settings are
    /// not part of it.
    pub fn hash(&self, lambda: Option<f64>, seed: u64) -> String {
        let text = format!(
            "{{\"dataset\":{},\"lambda\":{},\"model\":{},\"seed\":{seed},\"topography\":{},\"training\":{}}}",
            self.dataset,
            canonical(&lambda),
            self.model,
            self.topography,
            self.training
        );
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
    }
}

/// The hash of one run (see [`IdentityParts::hash`]).
pub fn run_hash(
    dataset: &DatasetSpec,
    model: &ModelSpec,
    topography: &Topography,
    lambda: Option<f64>,
    seed: u64,
    training: &TrainingSpec,
) -> String {
    IdentityParts::new(dataset, model, topography, training).hash(lambda, seed)
}

/// Lambda as it reads in a run id: `1e-5`, `5e-2`, `1`, `0.5`.
pub fn format_lambda(lambda: f64) -> String {
    if (0.01..100.0).contains(&lambda) {
        let s = format!("{lambda}");
        s.trim_end_matches(".0").to_string()
    } else {
        format!("{lambda:e}")
    }
}
