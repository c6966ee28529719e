//! How much each tapped layer's topographic loss counts: every layer fully (the paper,
//! and the default), or only the layers named, each with its weight, so a run can make
//! only its late layers topographic. The grid's lambda scales the whole term.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Lambda;

/// Per-layer weights of the topographic loss; empty means every tapped layer at 1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LayerWeights(BTreeMap<String, Lambda>);

/// Why a layer weight is not one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayerWeightProblem {
    #[error(
        "`{layer}`: a layer weight must be a positive finite number, found {value} (leave a layer out to give it no weight)"
    )]
    NotPositive { layer: String, value: f64 },
    #[error("`layer_weights` names no layer: leave it out to weigh every tapped layer by 1")]
    Empty,
}

impl LayerWeights {
    /// From the YAML mapping, each weight checked.
    pub fn new(weights: &BTreeMap<String, f64>) -> Result<LayerWeights, LayerWeightProblem> {
        if weights.is_empty() {
            return Err(LayerWeightProblem::Empty);
        }
        weights
            .iter()
            .map(|(layer, &value)| {
                Lambda::new(value).map(|l| (layer.clone(), l)).map_err(|_| {
                    LayerWeightProblem::NotPositive {
                        layer: layer.clone(),
                        value,
                    }
                })
            })
            .collect::<Result<_, _>>()
            .map(LayerWeights)
    }

    /// Every tapped layer at 1.
    pub fn is_uniform(&self) -> bool {
        self.0.is_empty()
    }

    /// The layers named, in name order.
    pub fn layers(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The weight of each of `taps`, in their order: 1 each when uniform, else the named
    /// weight or 0.
    pub fn of(&self, taps: &[String]) -> Vec<f64> {
        taps.iter()
            .map(|t| {
                if self.is_uniform() {
                    1.0
                } else {
                    self.0.get(t).map_or(0.0, |l| l.get())
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_layers_weigh_nothing_and_bad_weights_are_refused() {
        let taps = ["conv1".to_string(), "layer4.1.conv2".to_string()];
        assert_eq!(LayerWeights::default().of(&taps), [1.0, 1.0]);
        let late =
            LayerWeights::new(&BTreeMap::from([("layer4.1.conv2".to_string(), 0.5)])).unwrap();
        assert_eq!(late.of(&taps), [0.0, 0.5]);
        let bad = LayerWeights::new(&BTreeMap::from([("conv1".to_string(), 0.0)]));
        assert!(matches!(bad, Err(LayerWeightProblem::NotPositive { .. })));
        assert_eq!(
            LayerWeights::new(&BTreeMap::new()),
            Err(LayerWeightProblem::Empty)
        );
    }
}
