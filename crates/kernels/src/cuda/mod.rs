//! The crate's CUDA kernels (the `cuda` feature): PTX that `build.rs` compiles from
//! `cuda/*.cu`, loaded by candle once per device, each launched through a typed function
//! of [`launch`], where the crate's one unsafe GPU call and the invariant it relies on are
//! written down.

pub(crate) mod launch;

/// One compiled source file of `cuda/`.
pub(crate) struct Module {
    /// The name candle caches the loaded module under.
    name: &'static str,
    ptx: &'static str,
}

pub(crate) const MAX_POOL: Module = Module {
    name: "topo-max-pool",
    ptx: include_str!(concat!(env!("OUT_DIR"), "/max_pool.ptx")),
};

pub(crate) const UNFOLD: Module = Module {
    name: "topo-unfold",
    ptx: include_str!(concat!(env!("OUT_DIR"), "/unfold.ptx")),
};

pub(crate) const SGD: Module = Module {
    name: "topo-sgd",
    ptx: include_str!(concat!(env!("OUT_DIR"), "/sgd.ptx")),
};

/// An element type the kernels come in, named by the suffix of its kernels.
pub(crate) trait Float: candle_core::cuda_backend::cudarc::driver::DeviceRepr {
    const SUFFIX: &'static str;
}

impl Float for f32 {
    const SUFFIX: &'static str = "f32";
}

impl Float for f64 {
    const SUFFIX: &'static str = "f64";
}

/// The element range of a contiguous layout; `what` names the tensor in the error.
pub(crate) fn range(
    layout: &candle_core::Layout,
    op: &str,
    what: &str,
) -> candle_core::Result<(usize, usize)> {
    layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: the {what} must be contiguous")))
}

/// A size or element count, as the kernels take it (`unsigned int`).
pub(crate) fn count(n: usize, op: &str) -> candle_core::Result<u32> {
    u32::try_from(n).map_err(|_| {
        candle_core::Error::Msg(format!(
            "{op}: {n} is more than the CUDA kernels index (2^32 - 1)"
        ))
    })
}
