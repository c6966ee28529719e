//! Run identity: a readable slug plus a short hash of what determines the training.
//! The hash covers the resolved specs, not names or key order, so reformatting a file or
//! adding a topography leaves every existing id unchanged.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{DatasetSpec, Lambda, ModelSpec, Topography, TrainingSpec};

/// The parts of a run's identity shared by many runs, serialised once: planning a grid
/// of thousands of runs then only formats lambda and seed per run.
pub struct IdentityParts {
    dataset: String,
    model: String,
    topography: String,
    training: String,
}

/// Canonical JSON: `serde_json::Value` keeps object keys sorted.
fn canonical<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_value(value).map(|v| v.to_string())
}

impl IdentityParts {
    pub fn new(
        dataset: &DatasetSpec,
        model: &ModelSpec,
        topography: &Topography,
        training: &TrainingSpec,
    ) -> Result<Self, serde_json::Error> {
        Ok(IdentityParts {
            dataset: canonical(dataset)?,
            model: canonical(model)?,
            topography: canonical(topography)?,
            training: canonical(training)?,
        })
    }

    /// First 8 hex digits of the SHA-256 of the identity's canonical JSON, an object of
    /// what determines the run's result (keys sorted); pruning and report settings are
    /// not part of it.
    pub fn hash(&self, lambda: Option<Lambda>, seed: u64) -> String {
        let text = format!(
            "{{\"dataset\":{},\"lambda\":{},\"model\":{},\"seed\":{seed},\"topography\":{},\"training\":{}}}",
            self.dataset,
            // As serde_json writes an `Option<f64>`: a number, or null.
            lambda.map_or(serde_json::Value::Null, |l| l.get().into()),
            self.model,
            self.topography,
            self.training
        );
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
    }
}
