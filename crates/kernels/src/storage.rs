//! The slices a custom op reads from a CPU storage, shared by every fast kernel.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, bail};

/// The contiguous f32 values `layout` selects in `storage`; `op` and `what` name them in
/// the error.
pub(crate) fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: {what} must be f32, got {:?}", storage.dtype())
    };
    contiguous(data, layout, op, what)
}

/// The values `layout` selects in `data`, which must be contiguous.
pub(crate) fn contiguous<'a, T>(
    data: &'a [T],
    layout: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: {what} must be contiguous"),
    }
}
