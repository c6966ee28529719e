//! Errors raised while building a model.

use crate::config::ModelKind;

/// Why a model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{model}: unknown tapped conv `{name}`; valid convs: {}", valid.join(", "))]
    UnknownTap {
        model: &'static str,
        name: String,
        valid: Vec<String>,
    },
    /// A tap the model's definition never built (a name in `conv_names` that no layer
    /// of the architecture has): a bug of `topo`, not of the experiment.
    #[error("{model}: the tapped conv `{name}` was never built")]
    UnbuiltTap { model: &'static str, name: String },
    #[error("{model}: conv `{name}` is tapped twice")]
    DuplicateTap { model: &'static str, name: String },
    #[error("{model}: width must be a positive finite number, got {width}")]
    InvalidWidth { model: &'static str, width: f64 },
    #[error("{model} is torchvision's already, with one stem: remove `stem`")]
    Stem { model: &'static str },
    #[error("{model}: {what} must be at least 1")]
    Zero {
        model: &'static str,
        what: &'static str,
    },
    #[error("{model} cannot take inputs of {c} x {h} x {w}: {message}")]
    Input {
        model: &'static str,
        c: usize,
        h: usize,
        w: usize,
        message: String,
    },
    #[error("{model}: creating the parameters failed")]
    Tensor {
        model: &'static str,
        #[source]
        source: candle_core::Error,
    },
}

impl ModelError {
    pub(crate) fn tensor(kind: ModelKind) -> impl Fn(candle_core::Error) -> ModelError {
        move |source| ModelError::Tensor {
            model: kind.name(),
            source,
        }
    }
}
