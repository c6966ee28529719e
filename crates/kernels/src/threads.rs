//! One pool of threads for a step's CPU work. candle 0.11 runs its large elementwise ops
//! (over 64K elements: additions of gradients, scalings) on a barrier pool of its own
//! (`candle-bp-*`, `CANDLE_NUM_THREADS` - 1 threads) beside rayon's, on which gemm and this
//! crate's kernels run. Both pools' idle threads spin before they sleep, so on a few cores
//! they take the cores from each other: the narrow ResNet-18's step (width 1/8, 28 x 28,
//! batch 64) spent a fifth of its time in candle's barrier, waiting for a descheduled
//! worker. With `CANDLE_NUM_THREADS=1` candle's pool has no thread and those ops run on the
//! calling thread; being memory-bound, they lose little, and results are unchanged (each
//! element is computed alike, whichever thread computes it).

/// Sets `CANDLE_NUM_THREADS=1` unless the user set it, when this process still has one
/// thread (then nothing can read the environment meanwhile); call it first in `main`.
/// Elsewhere (a user's value, several threads, not Linux) it changes nothing.
pub fn candle_elementwise_on_caller() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_some() || thread_count() != Some(1) {
        return;
    }
    // SAFETY: `set_var` is unsound only while another thread reads or writes the
    // environment; the process has a single thread (just checked, and only this thread
    // could start another), so none can.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// The process's threads, from `/proc/self/status`; `None` where that cannot be read
/// (not Linux), and then nothing is changed.
fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn the_thread_count_is_read_on_linux() {
        let n = super::thread_count();
        assert!(n.is_some_and(|n| n >= 1), "{n:?}");
        // A test runs beside the harness's threads: nothing is set then.
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(super::thread_count().is_some_and(|n| n >= 2));
            });
        });
    }
}
