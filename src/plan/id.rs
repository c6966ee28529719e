//! Run identity: a readable slug plus a short hash of what determines the training.
//! The hash covers the resolved specs, not names or key order, so reformatting a file or
//! adding a topography leaves every existing id unchanged.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{DatasetSpec, ModelSpec, Topography, TrainingSpec};

/// What a run's result depends on; pruning and report settings are not part of it.
#[derive(Serialize)]
struct Identity<'a> {
    dataset: &'a DatasetSpec,
    model: &'a ModelSpec,
    topography: &'a Topography,
    lambda: Option<f64>,
    seed: u64,
    training: &'a TrainingSpec,
}

/// First 8 hex digits of the SHA-256 of the identity's canonical JSON (keys sorted:
/// `serde_json::Value` keeps objects in a sorted map).
pub fn run_hash(
    dataset: &DatasetSpec,
    model: &ModelSpec,
    topography: &Topography,
    lambda: Option<f64>,
    seed: u64,
    training: &TrainingSpec,
) -> String {
    let identity = Identity {
        dataset,
        model,
        topography,
        lambda,
        seed,
        training,
    };
    let canonical = serde_json::to_value(&identity)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
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
