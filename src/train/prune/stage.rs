//! The cached pruning stage of one trained run: `pruning.csv` holds every point
//! computed so far, and a new call computes only the points it lacks.

use std::cmp::Ordering;
use std::path::Path;

use candle_nn::VarMap;

use crate::config::{PruneMethod, PruningSpec};
use crate::results::{PruningRow, read_pruning_csv, write_pruning_csv};
use crate::train::prune::{PruneError, prune_varmap};

/// Two proportions closer than this are the same point (they survive a CSV round
/// trip exactly; this only absorbs `from + step * i` computed differently).
const SAME_PROPORTION: f64 = 1e-9;

fn same_point(row: &PruningRow, method: PruneMethod, proportion: f64) -> bool {
    row.method == method && (row.proportion - proportion).abs() < SAME_PROPORTION
}

fn order(a: &PruningRow, b: &PruningRow) -> Ordering {
    a.method
        .cmp(&b.method)
        .then(a.proportion.total_cmp(&b.proportion))
}

/// Computes the pruning points of `spec` missing from `run_pruning_csv`: each from a
/// fresh copy of the trained weights (`fresh_varmap`), pruned by [`prune_varmap`] and
/// scored by `evaluate` (test accuracy in [0, 1]). After each point the merged rows,
/// sorted by method then proportion, are written atomically, so an interrupted stage
/// resumes where it stopped. Returns every row of the file.
pub fn run_pruning<E: From<PruneError>>(
    run_pruning_csv: &Path,
    spec: &PruningSpec,
    mut fresh_varmap: impl FnMut() -> Result<VarMap, E>,
    conv_prefixes: &[String],
    mut evaluate: impl FnMut(&VarMap) -> Result<f64, E>,
) -> Result<Vec<PruningRow>, E> {
    let mut rows = if run_pruning_csv.exists() {
        read_pruning_csv(run_pruning_csv).map_err(|e| E::from(PruneError::from(e)))?
    } else {
        Vec::new()
    };
    rows.sort_by(order);
    let proportions = spec.proportions.values();
    for &method in &spec.methods {
        for &proportion in &proportions {
            if rows.iter().any(|r| same_point(r, method, proportion)) {
                continue;
            }
            let varmap = fresh_varmap()?;
            let count = prune_varmap(&varmap, conv_prefixes, proportion, method, spec.seed)?;
            let accuracy = evaluate(&varmap)?;
            rows.push(PruningRow {
                method,
                proportion,
                channels_pruned: count.pruned,
                channels_total: count.total,
                accuracy,
            });
            rows.sort_by(order);
            write_pruning_csv(run_pruning_csv, &rows).map_err(|e| E::from(PruneError::from(e)))?;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::*;
    use crate::config::{ProportionRange, Proportions};

    fn trained() -> Result<VarMap, PruneError> {
        let mut vm = VarMap::new();
        let init = candle_nn::Init::Const(0.);
        vm.get((4, 1, 1, 1), "c.weight", init, DType::F32, &Device::Cpu)
            .unwrap();
        let w = Tensor::from_vec(vec![4f32, 1., 3., 2.], (4, 1, 1, 1), &Device::Cpu).unwrap();
        vm.set_one("c.weight", w).unwrap();
        Ok(vm)
    }

    /// Accuracy = the sum of the weights left, so a reused (already pruned) copy shows.
    fn weight_left(vm: &VarMap) -> Result<f64, PruneError> {
        let vars = vm.data().lock().unwrap();
        Ok(vars["c.weight"]
            .as_tensor()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64)
    }

    fn spec(methods: Vec<PruneMethod>, steps: usize) -> PruningSpec {
        PruningSpec {
            methods,
            proportions: Proportions::Range(ProportionRange {
                from: 0.0,
                to: 1.0,
                steps,
            }),
            seed: 0,
            clips: None,
        }
    }

    #[test]
    fn second_call_computes_only_new_points() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("pruning.csv");
        let prefixes = vec!["c".to_string()];
        let mut evals = 0;
        let rows = run_pruning(
            &csv,
            &spec(vec![PruneMethod::L2], 3),
            trained,
            &prefixes,
            |vm| {
                evals += 1;
                weight_left(vm)
            },
        )
        .unwrap();
        assert_eq!(evals, 3);
        let acc: Vec<f64> = rows.iter().map(|r| r.accuracy).collect();
        // p = 0: 10; p = 0.5: channels 1 and 2 (weights 1, 2) gone: 7; p = 1: 0.
        assert_eq!(acc, vec![10.0, 7.0, 0.0]);

        // 0, .25, .5, .75, 1 with L2 (0, .5, 1 cached) plus L1 at all five: 2 + 5 new points.
        let mut evals = 0;
        let rows = run_pruning(
            &csv,
            &spec(vec![PruneMethod::L2, PruneMethod::L1], 5),
            trained,
            &prefixes,
            |vm| {
                evals += 1;
                weight_left(vm)
            },
        )
        .unwrap();
        assert_eq!(evals, 7);
        let points: Vec<(PruneMethod, f64, usize, f64)> = rows
            .iter()
            .map(|r| (r.method, r.proportion, r.channels_pruned, r.accuracy))
            .collect();
        let l2 = [
            (0.0, 0, 10.0),
            (0.25, 1, 9.0),
            (0.5, 2, 7.0),
            (0.75, 3, 4.0),
            (1.0, 4, 0.0),
        ];
        let expected: Vec<_> = [PruneMethod::L2, PruneMethod::L1]
            .into_iter()
            .flat_map(|m| l2.iter().map(move |&(p, n, a)| (m, p, n, a)))
            .collect();
        assert_eq!(points, expected);
        assert_eq!(read_pruning_csv(&csv).unwrap(), rows);

        let mut evals = 0;
        run_pruning(
            &csv,
            &spec(vec![PruneMethod::L1], 5),
            trained,
            &prefixes,
            |vm| {
                evals += 1;
                weight_left(vm)
            },
        )
        .unwrap();
        assert_eq!(evals, 0);
    }

    #[test]
    fn an_evaluation_error_keeps_the_points_already_written() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("pruning.csv");
        let prefixes = vec!["c".to_string()];
        let mut evals = 0;
        let result = run_pruning(
            &csv,
            &spec(vec![PruneMethod::L2], 3),
            trained,
            &prefixes,
            |vm| {
                evals += 1;
                if evals == 2 {
                    Err(PruneError::Tensor {
                        name: "c".into(),
                        source: candle_core::Error::Msg("stop".into()),
                    })
                } else {
                    weight_left(vm)
                }
            },
        );
        assert!(result.is_err());
        let kept = read_pruning_csv(&csv).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].proportion, 0.0);
    }
}
