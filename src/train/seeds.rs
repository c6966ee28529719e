//! Random streams derived from the run's seed. Each epoch draws its shuffling,
//! augmentation and dropout from streams keyed by (seed, epoch, purpose), so a run
//! resumed at epoch k draws exactly what an uninterrupted run draws there: no generator
//! state needs saving.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Shuffle = 1,
    Augment = 2,
    Dropout = 3,
    Init = 4,
    /// The neighbourhoods a topographic loss draws per step (TDANN's).
    Neighbourhood = 5,
    /// The shuffles of a map over its layout that test it (the analyses).
    Permutation = 6,
}

/// SplitMix64 finaliser: spreads nearby inputs far apart.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The seed of the stream for `purpose` at `epoch` of a run seeded by `seed`.
pub fn stream_seed(seed: u64, epoch: u32, purpose: Purpose) -> u64 {
    mix(mix(mix(seed) ^ u64::from(epoch)) ^ purpose as u64)
}

/// The generator for `purpose` at `epoch`.
pub fn stream(seed: u64, epoch: u32, purpose: Purpose) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(stream_seed(seed, epoch, purpose))
}
