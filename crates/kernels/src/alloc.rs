//! A global allocator that keeps freed large blocks for the next request of the same
//! size.
//!
//! A training step allocates the same large buffers every step (activations, their
//! gradients, the convolutions' unfolded inputs). glibc serves blocks above its mmap
//! threshold (at most 32 MiB) straight from the kernel and unmaps them on free, so every
//! step faults in, zeroes and unmaps its memory again: a quarter of a ResNet-18 step at
//! batch 128 went to page faults and TLB shootdowns. Keeping freed blocks of 256 KiB and
//! more, and handing one back for a request of exactly its size and alignment, removes
//! that. Blocks above 64 MiB (VGG's classifier weight and its gradients, ~400 MiB each:
//! their page faults were a fifth of a VGG step) are kept only once their size has been
//! asked for twice, so that one-off buffers (the weights' initialisation) do not stay
//! resident. The cache is bounded (slots and bytes); the oldest block goes first when
//! full.
//!
//! Install it in a binary with
//! `#[global_allocator] static ALLOC: topo::kernels::Recycler = topo::kernels::Recycler::new();`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::{Mutex, MutexGuard};

/// Blocks smaller than this go straight to the system allocator, which already recycles
/// them well.
const MIN_BLOCK: usize = 256 << 10;
/// Blocks above this are kept only when their size recurs (see the module).
const LARGE_BLOCK: usize = 64 << 20;
/// Blocks larger than this go straight back to the system.
const MAX_BLOCK: usize = 1 << 30;
/// Large block sizes whose requests are counted.
const COUNTED: usize = 32;
/// Cached blocks at most: more than a step frees (VGG-16 at batch 32 frees some 340
/// blocks of 256 KiB and more a step; with 128 slots its classifier's gradients were
/// evicted before their next use and faulted in again, 240k page faults a step).
const SLOTS: usize = 512;
/// Cached bytes at most.
const MAX_CACHED: usize = 4 << 30;

#[derive(Clone, Copy)]
struct Slot {
    /// Address of the block; 0 when the slot is empty.
    addr: usize,
    size: usize,
    align: usize,
    /// Insertion order, to evict the oldest.
    stamp: u64,
}

const EMPTY: Slot = Slot {
    addr: 0,
    size: 0,
    align: 0,
    stamp: 0,
};

struct Cache {
    slots: [Slot; SLOTS],
    bytes: usize,
    clock: u64,
    /// Requests per large block size, `(size, count)`; size 0 when unused.
    requests: [(usize, u32); COUNTED],
}

impl Cache {
    /// Counts a request for a large block of `size` bytes (the least asked-for size
    /// makes room when the table is full).
    fn count_request(&mut self, size: usize) {
        if let Some(entry) = self.requests.iter_mut().find(|(s, _)| *s == size) {
            entry.1 = entry.1.saturating_add(1);
        } else if let Some(entry) = self.requests.iter_mut().min_by_key(|(_, count)| *count) {
            *entry = (size, 1);
        }
    }

    /// Whether a freed block of `size` bytes is worth keeping.
    fn keeps(&self, size: usize) -> bool {
        size <= LARGE_BLOCK
            || self
                .requests
                .iter()
                .any(|&(s, count)| s == size && count >= 2)
    }

    /// A request for `layout`: a cached block if there is one.
    fn request(&mut self, layout: Layout) -> Option<*mut u8> {
        if layout.size() > LARGE_BLOCK {
            self.count_request(layout.size());
        }
        self.take(layout)
    }

    /// Takes a cached block of exactly this layout, if there is one.
    fn take(&mut self, layout: Layout) -> Option<*mut u8> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.addr != 0 && s.size == layout.size() && s.align == layout.align())?;
        let addr = slot.addr;
        *slot = EMPTY;
        self.bytes -= layout.size();
        Some(addr as *mut u8)
    }

    /// Keeps a freed block, evicting the oldest ones into `evicted` (for the caller to
    /// free outside the lock) until it fits; returns whether it was kept.
    fn put(&mut self, ptr: *mut u8, layout: Layout, evicted: &mut Vec<Slot>) -> bool {
        if !self.keeps(layout.size()) {
            return false;
        }
        while self.bytes + layout.size() > MAX_CACHED || self.free_slot().is_none() {
            let Some(oldest) = self
                .slots
                .iter_mut()
                .filter(|s| s.addr != 0)
                .min_by_key(|s| s.stamp)
            else {
                break;
            };
            evicted.push(*oldest);
            self.bytes -= oldest.size;
            *oldest = EMPTY;
        }
        let Some(index) = self.free_slot() else {
            return false;
        };
        self.clock += 1;
        self.slots[index] = Slot {
            addr: ptr as usize,
            size: layout.size(),
            align: layout.align(),
            stamp: self.clock,
        };
        self.bytes += layout.size();
        true
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(|s| s.addr == 0)
    }
}

/// The system allocator with a bounded cache of freed large blocks (see the module).
pub struct Recycler {
    cache: Mutex<Cache>,
}

impl Recycler {
    pub const fn new() -> Recycler {
        Recycler {
            cache: Mutex::new(Cache {
                slots: [EMPTY; SLOTS],
                bytes: 0,
                clock: 0,
                requests: [(0, 0); COUNTED],
            }),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // The cache's state is consistent between statements, so a poisoned lock (a
        // panic elsewhere while it was held cannot happen here) is still usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Recycler {
    fn default() -> Recycler {
        Recycler::new()
    }
}

#[allow(unsafe_code)]
// SAFETY: every block handed out comes from `System` with the same layout it is later
// returned with (the cache matches size and alignment exactly), and a cached block is
// owned by the cache alone until handed out again.
unsafe impl GlobalAlloc for Recycler {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if (MIN_BLOCK..=MAX_BLOCK).contains(&layout.size())
            && let Some(ptr) = self.cache().request(layout)
        {
            return ptr;
        }
        // SAFETY: forwarded with the caller's (non-zero-size) layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if (MIN_BLOCK..=MAX_BLOCK).contains(&layout.size())
            && let Some(ptr) = self.cache().request(layout)
        {
            // SAFETY: the block is `layout.size()` bytes, owned by the caller now.
            unsafe { ptr.write_bytes(0, layout.size()) };
            return ptr;
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if (MIN_BLOCK..=MAX_BLOCK).contains(&layout.size()) {
            // Evicted blocks are freed after the lock is released; the vector is only
            // allocated when something is evicted, and is small (below MIN_BLOCK).
            let mut evicted = Vec::new();
            let kept = self.cache().put(ptr, layout, &mut evicted);
            for slot in evicted {
                if let Ok(old) = Layout::from_size_align(slot.size, slot.align) {
                    // SAFETY: the slot held a System block of exactly this layout.
                    unsafe { System.dealloc(slot.addr as *mut u8, old) };
                }
            }
            if kept {
                return;
            }
        }
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Every block, cached or not, is a System block of its layout.
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_freed_large_block_is_handed_back_for_the_same_layout_only() {
        let recycler = Recycler::new();
        let big = Layout::from_size_align(MIN_BLOCK * 2, 64).unwrap();
        let other = Layout::from_size_align(MIN_BLOCK * 3, 64).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: every block is used within its layout and freed once with it.
        unsafe {
            let a = recycler.alloc(big);
            a.write_bytes(7, big.size());
            recycler.dealloc(a, big);
            let b = recycler.alloc_zeroed(big);
            assert_eq!(a, b, "same layout: the cached block");
            assert!((0..big.size()).all(|i| *b.add(i) == 0), "zeroed on reuse");
            recycler.dealloc(b, big);
            let c = recycler.alloc(other);
            assert_ne!(c, a, "another size never gets the cached block");
            recycler.dealloc(c, other);
            assert_eq!(recycler.cache().bytes, big.size() + other.size());
        }
    }

    #[test]
    fn a_block_above_64_mib_is_kept_only_once_its_size_recurs() {
        let recycler = Recycler::new();
        let huge = Layout::from_size_align(LARGE_BLOCK + 4096, 64).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: every block is freed once with its layout (and never written: the
        // pages of an untouched block are not even mapped).
        unsafe {
            let once = recycler.alloc(huge);
            recycler.dealloc(once, huge);
            assert_eq!(recycler.cache().bytes, 0, "asked for once: not kept");
            let twice = recycler.alloc(huge);
            recycler.dealloc(twice, huge);
            assert_eq!(recycler.cache().bytes, huge.size(), "asked for twice: kept");
            let again = recycler.alloc(huge);
            assert_eq!(again, twice, "and handed back");
            recycler.dealloc(again, huge);
        }
    }

    #[test]
    fn the_cache_stays_within_its_slot_bound_evicting_the_oldest() {
        let recycler = Recycler::new();
        let layouts: Vec<Layout> = (0..SLOTS + 5)
            .map(|i| Layout::from_size_align(MIN_BLOCK + 64 * i, 8).unwrap())
            .collect();
        #[allow(unsafe_code)]
        // SAFETY: as above.
        unsafe {
            let blocks: Vec<*mut u8> = layouts.iter().map(|&l| recycler.alloc(l)).collect();
            for (&p, &l) in blocks.iter().zip(&layouts) {
                recycler.dealloc(p, l);
            }
            let cache = recycler.cache();
            let cached: Vec<usize> = cache
                .slots
                .iter()
                .filter(|s| s.addr != 0)
                .map(|s| s.size)
                .collect();
            assert_eq!(cached.len(), SLOTS);
            assert!(
                !cached.contains(&layouts[0].size()),
                "the oldest was evicted"
            );
            assert!(
                cached.contains(&layouts[SLOTS + 4].size()),
                "the newest is kept"
            );
        }
    }
}
