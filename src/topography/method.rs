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
}

/// The loss of every tapped layer and their combination.
#[derive(Debug, Clone)]
pub struct TopoLossOutput {
    /// Scalar: layers combined by the reduction.
    pub total: Tensor,
    /// Scalars, one per layer.
    pub per_layer: Vec<Tensor>,
}

/// A method with the rule that combines its layers.
pub struct LayerLosses {
    method: Box<dyn TopographicMethod>,
    reduction: LayerReduction,
}

impl LayerLosses {
    pub fn new(method: Box<dyn TopographicMethod>, reduction: LayerReduction) -> LayerLosses {
        LayerLosses { method, reduction }
    }

    /// Tapped layers the method expects.
    pub fn layers(&self) -> usize {
        self.method.layers()
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
        combine(self.method.layer_losses(inputs)?, self.reduction)
    }
}

/// The layers' losses with their sum or mean.
pub fn combine(
    per_layer: Vec<Tensor>,
    reduction: LayerReduction,
) -> candle_core::Result<TopoLossOutput> {
    let stacked = Tensor::stack(&per_layer, 0)?;
    let total = match reduction {
        LayerReduction::Sum => stacked.sum_all()?,
        LayerReduction::Mean => stacked.mean_all()?,
    };
    Ok(TopoLossOutput { total, per_layer })
}
