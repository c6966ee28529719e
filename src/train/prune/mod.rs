//! The pruning stage (paper section 3.4, figure 3): in every topographic conv, zero a
//! proportion of the output channels (weights and bias), without retraining, and test.
//!
//! Matches the reference's `torch.nn.utils.prune.LnStructured(dim=0)`: a channel's
//! score is the Ln norm of all its weights, `round(p * C)` channels (Python's rounding,
//! half to even) with the lowest scores are zeroed, and the bias of a zeroed channel
//! is zeroed too. The model loading and the test evaluation are the caller's.

mod error;
mod select;
mod stage;
mod varmap;

pub use error::{PruneError, Result};
pub use select::{channel_scores, channels_to_prune, select_channels};
pub use stage::run_pruning;
pub use varmap::{PruneCount, prune_varmap};
