//! Reused scratch buffers for the transformed tiles, one small pool per thread.
//!
//! A conv's transformed input and output chunks are 4x its input and output and are
//! overwritten in full before they are read, yet a fresh `vec![0.0; n]` zero-fills them
//! on every call (the recycling allocator returns the memory, not zeros). Buffers come
//! back here instead, so the zero-fill happens once per thread, when a pool first grows.

use std::cell::RefCell;

/// Buffers kept per thread at most.
const KEPT: usize = 4;
/// Larger buffers (a single huge image) are freed rather than kept.
const MAX_KEPT_LEN: usize = 4 << 20;

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of at least `len` values whose contents are left from earlier use: the
/// caller writes every value it later reads.
pub(super) fn take(len: usize) -> Vec<f32> {
    let mut buffer = POOL
        .with(|pool| pool.borrow_mut().pop())
        .unwrap_or_default();
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    buffer
}

/// Returns a buffer from [`take`] to this thread's pool.
pub(super) fn give(buffer: Vec<f32>) {
    if buffer.len() > MAX_KEPT_LEN {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < KEPT {
            pool.push(buffer);
        }
    });
}
