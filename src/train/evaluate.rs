//! Evaluation of a model on a split: cross-entropy, accuracy and (for topographic runs)
//! the topographic loss, with logits averaged over an example's windows (BirdDCASE).

use candle_core::{DType, Device, Tensor};

use crate::data::{Batch, Split};
use crate::nn::TopoModel;
use crate::topography::{LayerLosses, StepInputs, TopoLossOutput};
use crate::train::EngineError;

/// Sums over a split, turned into means by [`Totals::finish`].
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub examples: usize,
    pub correct: usize,
    pub ce: f64,
    pub topo: f64,
    pub topo_layers: Vec<f64>,
    /// Per-class hits of a two-class split (evaluation only), for ROC-AUC.
    pub binary: Option<Binary>,
}

/// Examples and hits per class of a two-class split; class 1 is the positive one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Binary {
    pub positives: usize,
    pub true_positives: usize,
    pub negatives: usize,
    pub true_negatives: usize,
}

impl Binary {
    /// Counts a batch's predictions against its labels.
    fn add(&mut self, predicted: &[u32], labels: &[u32]) {
        for (&p, &y) in predicted.iter().zip(labels) {
            if y == 1 {
                self.positives += 1;
                self.true_positives += usize::from(p == 1);
            } else {
                self.negatives += 1;
                self.true_negatives += usize::from(p != 1);
            }
        }
    }

    /// ROC-AUC of the hard predictions, as the reference computes it
    /// (`roc_auc_score(targets, argmax)`): one threshold, so (TPR + TNR) / 2. `None`
    /// when a class is absent.
    pub fn roc_auc(&self) -> Option<f64> {
        (self.positives > 0 && self.negatives > 0).then(|| {
            let tpr = self.true_positives as f64 / self.positives as f64;
            let tnr = self.true_negatives as f64 / self.negatives as f64;
            (tpr + tnr) / 2.0
        })
    }
}

impl Totals {
    /// Adds a batch of `n` examples whose mean losses are given.
    pub fn add(&mut self, n: usize, correct: usize, ce: f64, topo: Option<(f64, Vec<f64>)>) {
        self.examples += n;
        self.correct += correct;
        self.ce += ce * n as f64;
        if let Some((t, layers)) = topo {
            self.topo += t * n as f64;
            self.topo_layers.resize(layers.len(), 0.0);
            for (acc, l) in self.topo_layers.iter_mut().zip(layers) {
                *acc += l * n as f64;
            }
        }
    }

    /// Whether a topographic loss was measured.
    pub fn has_topo(&self) -> bool {
        !self.topo_layers.is_empty()
    }

    pub fn accuracy(&self) -> f64 {
        if self.examples == 0 {
            0.0
        } else {
            self.correct as f64 / self.examples as f64
        }
    }

    pub fn mean(&self, sum: f64) -> f64 {
        if self.examples == 0 {
            0.0
        } else {
            sum / self.examples as f64
        }
    }
}

/// Logits per example: the inputs' logits averaged over each example's windows.
pub fn example_logits(logits: &Tensor, batch: &Batch) -> Result<Tensor, EngineError> {
    let Some(windows) = &batch.windows else {
        return Ok(logits.clone());
    };
    let total: usize = windows.iter().sum();
    let mut weights = vec![0f32; windows.len() * total];
    let mut start = 0;
    for (i, &w) in windows.iter().enumerate() {
        for j in start..start + w {
            weights[i * total + j] = 1.0 / w as f32;
        }
        start += w;
    }
    let averaging = Tensor::from_vec(weights, (windows.len(), total), logits.device())?;
    Ok(averaging.matmul(logits)?)
}

/// Correct predictions among `logits` for `labels`.
pub fn correct(logits: &Tensor, labels: &Tensor) -> Result<usize, EngineError> {
    correct_predictions(&logits.argmax(1)?, labels)
}

/// Predicted classes that equal `labels`.
fn correct_predictions(predicted: &Tensor, labels: &Tensor) -> Result<usize, EngineError> {
    let hits = predicted
        .eq(&labels.to_dtype(predicted.dtype())?)?
        .to_dtype(DType::F32)?
        .sum_all()?;
    Ok(hits.to_scalar::<f32>()? as usize)
}

/// The step index evaluation hands a topographic loss: one fixed draw, the same for
/// every evaluation, unlike any training step's.
const EVALUATION_STEP: u64 = u64::MAX;

/// The scalars a step reports, read back from the device in one copy.
pub(crate) struct StepScalars {
    /// The tensors given first, in order.
    pub leading: Vec<f64>,
    /// The topographic loss, layers combined and each layer's.
    pub topo: Option<(f64, Vec<f64>)>,
}

/// Reads `leading`, then the topographic loss and each layer's, in one copy: on a GPU each
/// read waits for the device to finish what it was given, so one read per scalar stalls
/// a step as often.
pub(crate) fn read_scalars(
    leading: &[&Tensor],
    topo: Option<&TopoLossOutput>,
) -> candle_core::Result<StepScalars> {
    let mut scalars: Vec<Tensor> = leading.iter().map(|t| t.detach()).collect();
    if let Some(t) = topo {
        scalars.push(t.total.detach());
        scalars.extend(t.per_layer.iter().map(Tensor::detach));
    }
    let values = Tensor::stack(&scalars, 0)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?;
    let (leading, rest) = values.split_at(leading.len());
    Ok(StepScalars {
        leading: leading.to_vec(),
        topo: topo.map(|_| (rest[0], rest[1..].to_vec())),
    })
}

/// Evaluates `model` on all of `split` in batches of `batch_size`, in order.
pub fn evaluate(
    model: &dyn TopoModel,
    split: &dyn Split,
    batch_size: usize,
    loss: Option<&LayerLosses>,
    device: &Device,
) -> Result<Totals, EngineError> {
    let mut totals = Totals::default();
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let batch = split.batch(chunk, None, device)?;
        let out = model.forward_t(&batch.inputs, false)?;
        let logits = example_logits(&out.logits, &batch)?;
        let ce = candle_nn::loss::cross_entropy(&logits, &batch.labels)?;
        let topo = match loss {
            Some(l) => Some(l.forward(&StepInputs {
                taps: &out.taps,
                step: EVALUATION_STEP,
            })?),
            None => None,
        };
        let read = read_scalars(&[&ce], topo.as_ref())?;
        let (ce, topo) = (read.leading[0], read.topo);
        let predicted = logits.argmax(1)?;
        totals.add(
            chunk.len(),
            correct_predictions(&predicted, &batch.labels)?,
            ce,
            topo,
        );
        if logits.dim(1)? == 2 {
            let labels = batch.labels.to_dtype(DType::U32)?.to_vec1::<u32>()?;
            totals
                .binary
                .get_or_insert_default()
                .add(&predicted.to_vec1::<u32>()?, &labels);
        }
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_auc_of_hard_predictions_is_the_mean_of_both_recalls() {
        let mut b = Binary::default();
        // Positives: 3 of 4 found; negatives: 1 of 2 rejected. sklearn's
        // roc_auc_score([1,1,1,1,0,0], [1,1,1,0,1,0]) = (0.75 + 0.5) / 2.
        b.add(&[1, 1, 1, 0, 1, 0], &[1, 1, 1, 1, 0, 0]);
        assert_eq!(b.roc_auc(), Some(0.625));
        let mut one_class = Binary::default();
        one_class.add(&[1, 0], &[1, 1]);
        assert_eq!(one_class.roc_auc(), None);
    }
}
