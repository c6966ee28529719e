//! Counting a forward pass's multiply-adds: the convolutions and linear layers add theirs
//! while [`count_macs`] runs (on this thread; other ops are a few percent and ignored).

use std::cell::Cell;

thread_local! {
    static MACS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `f` and returns what it returned with the multiply-adds counted meanwhile.
pub fn count_macs<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let outer = MACS.with(|m| m.replace(Some(0)));
    let result = f();
    let counted = MACS.with(|m| m.replace(outer)).unwrap_or(0);
    (result, counted)
}

/// Adds what `macs` computes when counting; otherwise `macs` is not called, so a
/// training step pays one thread-local read per layer.
pub(crate) fn add_macs(macs: impl FnOnce() -> u64) {
    MACS.with(|m| {
        if let Some(n) = m.get() {
            m.set(Some(n + macs()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_work_inside_the_count_is_counted() {
        add_macs(|| panic!("not counting: never evaluated"));
        let ((), n) = count_macs(|| {
            add_macs(|| 3);
            add_macs(|| 4);
        });
        assert_eq!(n, 7);
        let ((), none) = count_macs(|| {});
        assert_eq!(none, 0);
    }
}
