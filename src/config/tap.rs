//! Where a tapped conv's response is read, for the topographic loss and the measures.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The paper's reference hooks the convs themselves; TDANN reads whole blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TapPoint {
    /// The conv's own output, before its batch norm (the paper's reference).
    #[default]
    Conv,
    /// What the conv's unit emits: after its batch norm and ReLU; for a residual block's
    /// last conv (and its shortcut conv), the block's output after the sum and the ReLU,
    /// as TDANN reads ResNet; for a DenseNet layer's second conv, the layer's output; for
    /// a transition's conv, the transition's pooled output.
    Block,
}

impl TapPoint {
    pub fn name(self) -> &'static str {
        match self {
            TapPoint::Conv => "conv",
            TapPoint::Block => "block",
        }
    }
}
