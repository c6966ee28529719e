//! Distances between channel positions and the target similarity `1 / (d + 1)`.

use super::{Norm, Positions};

/// Distance between two points under `norm`.
pub fn distance(a: &[f64], b: &[f64], norm: Norm) -> f64 {
    let diffs = a.iter().zip(b).map(|(x, y)| x - y);
    match norm {
        Norm::Euclidean => diffs.map(|d| d * d).sum::<f64>().sqrt(),
        Norm::L1 => diffs.map(f64::abs).sum(),
    }
}

/// The `n x n` matrix of distances between all channels, row-major.
pub fn distance_matrix(p: &Positions, norm: Norm) -> Vec<f64> {
    let n = p.n();
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in (i + 1)..n {
            let d = distance(p.point(i), p.point(j), norm);
            out[i * n + j] = d;
            out[j * n + i] = d;
        }
    }
    out
}

/// The `n x n` target similarity `1 / (d_ij + 1)`, row-major (1 on the diagonal; the
/// loss only reads pairs `i < j`).
pub fn target_similarity(p: &Positions, norm: Norm) -> Vec<f64> {
    distance_matrix(p, norm)
        .into_iter()
        .map(|d| 1.0 / (d + 1.0))
        .collect()
}
