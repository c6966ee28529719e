//! The one interface every topographic loss implements, so methods are chosen in YAML
//! and compared on the same runs: what a step gives a method (the tapped activations
//! and the step's index), and per-layer values out, each differentiable with respect to
//! what the method reads (activations, or the weights it holds).

use candle_core::Tensor;

use super::LayerReduction;

/// What one step hands a method.
pub struct StepInputs<'a> {
    /// The tapped convs' outputs, `(B, C, H, W)`, in tap order.
    pub taps: &'a [Tensor],
    /// The optimisation step's index over the whole run (epoch-major), for methods that
    /// draw at random per step; evaluation passes a fixed index.
    pub step: u64,
}

/// A topographic loss: one scalar per tapped layer.
pub trait TopographicMethod: Send + Sync {
    /// Tapped layers the method expects.
    fn layers(&self) -> usize;
    /// Each layer's loss for this step, scalars in tap order.
    fn layer_losses(&self, inputs: &StepInputs<'_>) -> candle_core::Result<Vec<Tensor>>;
    /// The channels of each neighbourhood `layer` draws at `step`, for a method that
    /// draws some (`topo trace` writes them down); `None` for one that reads the whole
    /// layer every step.
    fn draws(&self, _layer: usize, _step: u64) -> Option<Vec<Vec<usize>>> {
        None
    }
}

/// The loss of every tapped layer and their combination.
#[derive(Debug, Clone)]
pub struct TopoLossOutput {
    /// Scalar: layers combined by the reduction.
    pub total: Tensor,
    /// Scalars, one per layer.
    pub per_layer: Vec<Tensor>,
}

/// A method with the rule that combines its layers: their sum or mean, each layer's
/// loss weighted (a layer of weight 0 is measured and recorded, not trained).
pub struct LayerLosses {
    method: Box<dyn TopographicMethod>,
    reduction: LayerReduction,
    /// One per layer; `None` for every layer at 1.
    weights: Option<Vec<f64>>,
}

impl LayerLosses {
    /// `weights`, one per tapped layer, or `None` for every layer at 1.
    pub fn new(
        method: Box<dyn TopographicMethod>,
        reduction: LayerReduction,
        weights: Option<Vec<f64>>,
    ) -> candle_core::Result<LayerLosses> {
        if let Some(w) = &weights
            && w.len() != method.layers()
        {
            candle_core::bail!(
                "topographic loss: {} layer weights for {} layers",
                w.len(),
                method.layers()
            );
        }
        Ok(LayerLosses {
            method,
            reduction,
            weights,
        })
    }

    /// Tapped layers the method expects.
    pub fn layers(&self) -> usize {
        self.method.layers()
    }

    /// What the method draws for `layer` at `step` ([`TopographicMethod::draws`]).
    pub fn draws(&self, layer: usize, step: u64) -> Option<Vec<Vec<usize>>> {
        self.method.draws(layer, step)
    }

    /// Every layer's loss and their sum or mean.
    pub fn forward(&self, inputs: &StepInputs<'_>) -> candle_core::Result<TopoLossOutput> {
        if inputs.taps.len() != self.method.layers() || inputs.taps.is_empty() {
            candle_core::bail!(
                "topographic loss: {} taps for {} layers",
                inputs.taps.len(),
                self.method.layers()
            );
        }
        combine(
            self.method.layer_losses(inputs)?,
            self.weights.as_deref(),
            self.reduction,
        )
    }
}

/// The layers' losses with their (weighted) sum or mean.
pub fn combine(
    per_layer: Vec<Tensor>,
    weights: Option<&[f64]>,
    reduction: LayerReduction,
) -> candle_core::Result<TopoLossOutput> {
    let mut stacked = Tensor::stack(&per_layer, 0)?;
    if let Some(w) = weights {
        let w = Tensor::new(w, stacked.device())?.to_dtype(stacked.dtype())?;
        stacked = (stacked * w)?;
    }
    let total = match reduction {
        LayerReduction::Sum => stacked.sum_all()?,
        LayerReduction::Mean => stacked.mean_all()?,
    };
    Ok(TopoLossOutput { total, per_layer })
}
