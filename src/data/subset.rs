//! Deterministic choices of examples: the fixed validation permutation and `limit`.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The seed of every data permutation: the same split for every run (docs/reference.md).
pub const DATA_SEED: u64 = 0;

/// `0..n` shuffled by a ChaCha8 stream seeded with `seed`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    idx
}

/// Splits `0..n` into (train, held out), `held_out` examples taken from the front of
/// the fixed permutation; both lists sorted so files are read in order.
pub fn hold_out(n: usize, held_out: usize) -> (Vec<usize>, Vec<usize>) {
    let perm = permutation(n, DATA_SEED);
    let k = held_out.min(n);
    let mut held: Vec<usize> = perm[..k].to_vec();
    let mut rest: Vec<usize> = perm[k..].to_vec();
    held.sort_unstable();
    rest.sort_unstable();
    (rest, held)
}

/// At most `limit` of `items`, balanced over classes: a fixed shuffle, then classes taken
/// in turn, so a small limit still sees every class. Returns `items` unchanged without a limit.
pub fn limit_balanced<T: Clone>(
    items: &[T],
    label: impl Fn(&T) -> u32,
    limit: Option<usize>,
) -> Vec<T> {
    let Some(limit) = limit else {
        return items.to_vec();
    };
    if limit >= items.len() {
        return items.to_vec();
    }
    let mut by_class: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for i in permutation(items.len(), DATA_SEED) {
        by_class.entry(label(&items[i])).or_default().push(i);
    }
    let queues: Vec<Vec<usize>> = by_class.into_values().collect();
    let mut chosen = Vec::with_capacity(limit);
    let mut round = 0;
    while chosen.len() < limit {
        for q in &queues {
            if let Some(&i) = q.get(round)
                && chosen.len() < limit
            {
                chosen.push(i);
            }
        }
        round += 1;
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_out_partitions_and_is_fixed() {
        let (a, b) = hold_out(100, 10);
        assert_eq!((a.len(), b.len()), (90, 10));
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(hold_out(100, 10), (a, b));
        // Not simply the first ten.
        assert_ne!(hold_out(100, 10).1, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn limit_is_balanced() {
        let items: Vec<u32> = (0..100).map(|i| if i < 90 { 0 } else { 1 }).collect();
        let got = limit_balanced(&items, |&l| l, Some(10));
        assert_eq!(got.len(), 10);
        assert_eq!(got.iter().filter(|&&l| l == 1).count(), 5);
        assert_eq!(limit_balanced(&items, |&l| l, None).len(), 100);
        assert_eq!(limit_balanced(&items, |&l| l, Some(1000)).len(), 100);
    }
}
