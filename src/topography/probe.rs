//! The probe set the measures read: a seeded, class-balanced sample of the test split,
//! the same examples for every run of an experiment (the first examples of a split
//! built class by class would hold only its first classes).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The draw's seed: fixed, so every run of an experiment (and of any experiment on the
/// same test split) reads the same examples.
pub const PROBE_SEED: u64 = 0x0050_524F_4245; // "PROBE"

/// Which test examples were probed, kept with the run's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSet {
    /// Examples asked for per class (a class with fewer gives all it has).
    pub per_class: usize,
    pub seed: u64,
    /// Positions in the test split, increasing.
    pub indices: Vec<usize>,
}

/// A class of the data set that has no test example to probe.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the test split has no example of class{} {}: the probe set needs every class; raise the data set's test `limit` or check its files",
    if missing.len() == 1 { "" } else { "es" },
    missing.join(", ")
)]
pub struct MissingClasses {
    pub missing: Vec<String>,
}

impl ProbeSet {
    /// `per_class` examples of each class of `names`, drawn with `seed` from the test
    /// split's `labels`.
    pub fn draw(
        labels: &[u32],
        names: &[String],
        per_class: usize,
        seed: u64,
    ) -> Result<ProbeSet, MissingClasses> {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
        for (i, &label) in labels.iter().enumerate() {
            if let Some(class) = by_class.get_mut(label as usize) {
                class.push(i);
            }
        }
        let missing: Vec<String> = by_class
            .iter()
            .zip(names)
            .filter(|(examples, _)| examples.is_empty())
            .map(|(_, name)| format!("`{name}`"))
            .collect();
        if !missing.is_empty() {
            return Err(MissingClasses { missing });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut indices = Vec::with_capacity(per_class * names.len());
        for mut examples in by_class {
            examples.shuffle(&mut rng);
            examples.truncate(per_class);
            indices.extend(examples);
        }
        indices.sort_unstable();
        Ok(ProbeSet {
            per_class,
            seed,
            indices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|c| format!("c{c}")).collect()
    }

    #[test]
    fn every_class_gets_its_share_from_a_split_built_class_by_class() {
        // 35 classes of 30 examples each, in class order, as SpeechCommands' test split.
        let labels: Vec<u32> = (0..35).flat_map(|c| std::iter::repeat_n(c, 30)).collect();
        let probe = ProbeSet::draw(&labels, &names(35), 10, 7).unwrap();
        assert_eq!(probe.indices.len(), 350);
        for c in 0..35u32 {
            let n = probe.indices.iter().filter(|&&i| labels[i] == c).count();
            assert_eq!(n, 10, "class {c}");
        }
        assert!(probe.indices.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(probe, ProbeSet::draw(&labels, &names(35), 10, 7).unwrap());
        assert_ne!(probe, ProbeSet::draw(&labels, &names(35), 10, 8).unwrap());
        // A class with fewer examples than asked gives all of them.
        let all = ProbeSet::draw(&labels, &names(35), 50, 7).unwrap();
        assert_eq!(all.indices.len(), labels.len());
    }

    #[test]
    fn a_missing_class_is_named() {
        let labels = vec![0, 0, 2, 2];
        let e = ProbeSet::draw(&labels, &names(3), 5, 0).unwrap_err();
        assert_eq!(e.missing, vec!["`c1`"]);
        assert!(e.to_string().contains("class `c1`"), "{e}");
    }
}
