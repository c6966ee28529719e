//! Reused scratch buffers, one small pool per thread.
//!
//! The convolutions' unfolded inputs, their products and the Winograd tiles are
//! overwritten in full before they are read, yet a fresh `vec![0.0; n]` zero-fills them
//! on every call (the recycling allocator returns the memory, not zeros): a tenth of a
//! narrow model's step went to such memsets. Buffers come back here instead, so the
//! zero-fill happens once per thread, when a pool first grows.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};

/// Buffers kept per thread at most.
const KEPT: usize = 6;
/// Larger buffers (a single huge image) are freed rather than kept.
const MAX_KEPT_LEN: usize = 4 << 20;

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// `len` values whose contents are left from earlier use: the holder writes every value
/// it later reads. Back to this thread's pool when dropped.
pub(crate) struct Scratch {
    buffer: Vec<f32>,
    len: usize,
}

impl Scratch {
    pub(crate) fn take(len: usize) -> Scratch {
        // The largest kept buffer that fits, else the largest to grow: a pool serves
        // one op's few buffers of similar sizes.
        let mut buffer = POOL
            .with(|pool| {
                let mut pool = pool.borrow_mut();
                let pick = pool
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.len() >= len)
                    .min_by_key(|(_, b)| b.len())
                    .or_else(|| pool.iter().enumerate().max_by_key(|(_, b)| b.len()))
                    .map(|(i, _)| i);
                pick.map(|i| pool.swap_remove(i))
            })
            .unwrap_or_default();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        Scratch { buffer, len }
    }
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buffer[..self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[..self.len]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        if buffer.len() > MAX_KEPT_LEN {
            return;
        }
        match POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < KEPT {
                pool.push(buffer);
            }
        }) {
            Ok(()) => {}
            // A thread being torn down has no pool left: the buffer went with the
            // closure, freed, which is all there is to do.
            Err(_torn_down) => {}
        }
    }
}

/// Buffers that outlive the op that fills them (a forward's data for its backward), kept
/// for the next step's op of the same size rather than zero-filled anew: a step makes the
/// same few of them every time (the narrow ResNet-18's Winograd forwards spent 0.5 ms a
/// step zero-filling the inputs they keep).
static SHARED: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// Values [`SHARED`] keeps at most (32M: 128 MiB), the oldest buffers going first: a
/// process that trains model after model (a grid of runs) keeps only recent sizes.
const SHARED_VALUES: usize = 1 << 25;

/// `len` values, contents left from earlier use (the holder overwrites them all before
/// reading), that go back to a pool shared by all threads when dropped.
#[derive(Debug)]
pub(crate) struct Kept(Vec<f32>);

impl Kept {
    pub(crate) fn take(len: usize) -> Kept {
        let reused = {
            let mut pool = shared_pool();
            let found = pool.iter().position(|b| b.len() == len);
            found.map(|i| pool.remove(i))
        };
        Kept(reused.unwrap_or_else(|| vec![0f32; len]))
    }
}

fn shared_pool() -> MutexGuard<'static, Vec<Vec<f32>>> {
    // The pool is a plain list, consistent between statements: a lock poisoned by a
    // panic elsewhere is still usable.
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

impl Deref for Kept {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for Kept {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.0);
        if buffer.is_empty() || buffer.len() > SHARED_VALUES {
            return;
        }
        let mut pool = shared_pool();
        pool.push(buffer);
        while pool.iter().map(Vec::len).sum::<usize>() > SHARED_VALUES {
            pool.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_with_its_contents_and_the_asked_length() {
        {
            let mut a = Scratch::take(10);
            a.fill(3.0);
        }
        let b = Scratch::take(8);
        assert_eq!(b.len(), 8);
        assert_eq!(&b[..], &[3.0; 8]);
        let c = Scratch::take(12);
        assert_eq!(c.len(), 12);
    }

    /// One test, as the pool is shared by every thread of the process.
    #[test]
    fn kept_buffers_come_back_by_length_and_the_oldest_go_past_the_bound() {
        let first = {
            let mut a = Kept::take(12_345);
            a.fill(2.0);
            a.as_ptr()
        };
        let b = Kept::take(12_345);
        assert_eq!(b.as_ptr(), first, "the same buffer");
        assert!(b.iter().all(|&v| v == 2.0), "with its contents");
        let c = Kept::take(12_346);
        assert_ne!(c.as_ptr(), first);
        assert!(c.iter().all(|&v| v == 0.0), "a new length starts zeroed");

        let (a, b) = (SHARED_VALUES / 2 + 1, SHARED_VALUES / 2 + 2);
        let mut old = Kept::take(a);
        old[0] = 5.0;
        let new = Kept::take(b);
        drop(old);
        drop(new);
        // Together over the bound: the one dropped first went.
        let again = Kept::take(a);
        assert_eq!(again[0], 0.0, "a fresh buffer, not the evicted one");
        assert!(
            shared_pool().iter().any(|v| v.len() == b),
            "the newer one is kept"
        );
    }
}
