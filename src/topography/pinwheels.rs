//! Pinwheels of an orientation map on a 2D lattice layout: cells of the lattice around
//! which the preferred orientation winds by ±180 degrees (the orientation turns once
//! through all angles), counted and compared with the count when the same preferences
//! are shuffled over the positions. Smooth maps have few pinwheels; a random map has a
//! pinwheel in about a third of its cells.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Positions;
use super::circular::{ORIENTATION_PERIOD, wrapped_difference};

/// Channels on a rectilinear lattice: every position on one of `xs` and one of `ys`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lattice {
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// `ys.len() x xs.len()`, row-major: the channel at each lattice point, if any.
    at: Vec<Option<usize>>,
}

/// Coordinates equal within this much are one lattice line.
const SAME: f64 = 1e-9;

impl Lattice {
    /// The lattice of 2D `positions`; `None` when they are not on one (a circle, nested
    /// boxes, points from a file), or it has fewer than 2 lines either way, or it is
    /// mostly empty (more than twice as many lattice points as channels).
    pub fn of(positions: &Positions) -> Option<Lattice> {
        if positions.dim() != 2 {
            return None;
        }
        let lines = |axis: usize| {
            let mut v: Vec<f64> = positions.iter().map(|p| p[axis]).collect();
            v.sort_by(f64::total_cmp);
            v.dedup_by(|a, b| (*a - *b).abs() < SAME);
            v
        };
        let (xs, ys) = (lines(0), lines(1));
        let n = positions.n();
        if xs.len() < 2 || ys.len() < 2 || xs.len() * ys.len() > 2 * n {
            return None;
        }
        let find = |v: &[f64], x: f64| v.iter().position(|&l| (l - x).abs() < SAME);
        let mut at = vec![None; xs.len() * ys.len()];
        for (c, p) in positions.iter().enumerate() {
            let slot = &mut at[find(&ys, p[1])? * xs.len() + find(&xs, p[0])?];
            if slot.is_some() {
                return None;
            }
            *slot = Some(c);
        }
        Some(Lattice { xs, ys, at })
    }

    /// Cells with a channel at each of their four corners.
    pub fn cells(&self) -> usize {
        self.corners().count()
    }

    /// Each full cell's centre and its corners' channels, in order around the cell.
    fn corners(&self) -> impl Iterator<Item = ([f64; 2], [usize; 4])> + '_ {
        let w = self.xs.len();
        (0..self.ys.len() - 1)
            .flat_map(move |r| (0..w - 1).map(move |c| (r, c)))
            .filter_map(move |(r, c)| {
                let ids = [
                    self.at[r * w + c]?,
                    self.at[r * w + c + 1]?,
                    self.at[(r + 1) * w + c + 1]?,
                    self.at[(r + 1) * w + c]?,
                ];
                let centre = [
                    (self.xs[c] + self.xs[c + 1]) / 2.0,
                    (self.ys[r] + self.ys[r + 1]) / 2.0,
                ];
                Some((centre, ids))
            })
    }

    /// The pinwheels of `orientations` (degrees, one per channel; a cell with a corner
    /// lacking one is skipped).
    pub fn pinwheels(&self, orientations: &[Option<f64>]) -> Vec<Pinwheel> {
        self.corners()
            .filter_map(|(centre, ids)| {
                let mut turn = 0.0;
                for k in 0..4 {
                    let (a, b) = (orientations[ids[k]]?, orientations[ids[(k + 1) % 4]]?);
                    turn += wrapped_difference(b, a, ORIENTATION_PERIOD);
                }
                let winding = (turn / ORIENTATION_PERIOD).round() as i8;
                (winding != 0).then_some(Pinwheel {
                    x: centre[0],
                    y: centre[1],
                    charge: winding,
                })
            })
            .collect()
    }
}

/// A cell around which the orientation winds once: `charge` +1 counterclockwise, -1
/// clockwise (as the layout's axes run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pinwheel {
    pub x: f64,
    pub y: f64,
    pub charge: i8,
}

/// A map's pinwheels against shuffled preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinwheelCount {
    pub pinwheels: Vec<Pinwheel>,
    /// Cells with all four corners tuned: where a pinwheel could be.
    pub cells: usize,
    /// The shuffles' mean count, 2.5th and 97.5th percentiles.
    pub null_mean: f64,
    pub null_low: f64,
    pub null_high: f64,
    /// One-sided: `(1 + #{shuffled count <= count}) / (1 + P)`, small when the map has
    /// fewer pinwheels than chance.
    pub p: f64,
    pub permutations: usize,
}

/// Counts the pinwheels of `orientations` on `lattice` and against `permutations`
/// seeded shuffles of them over the channels that have one.
pub fn count_pinwheels(
    lattice: &Lattice,
    orientations: &[Option<f64>],
    permutations: usize,
    seed: u64,
) -> PinwheelCount {
    let pinwheels = lattice.pinwheels(orientations);
    let cells = lattice
        .corners()
        .filter(|(_, ids)| ids.iter().all(|&c| orientations[c].is_some()))
        .count();
    let tuned: Vec<usize> = (0..orientations.len())
        .filter(|&c| orientations[c].is_some())
        .collect();
    let mut values: Vec<Option<f64>> = tuned.iter().map(|&c| orientations[c]).collect();
    let mut shuffled = orientations.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut null: Vec<f64> = (0..permutations)
        .map(|_| {
            values.shuffle(&mut rng);
            for (&c, &v) in tuned.iter().zip(&values) {
                shuffled[c] = v;
            }
            lattice.pinwheels(&shuffled).len() as f64
        })
        .collect();
    null.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let at = (q * null.len().saturating_sub(1) as f64).round() as usize;
        null.get(at).copied().unwrap_or(0.0)
    };
    let count = pinwheels.len() as f64;
    PinwheelCount {
        cells,
        null_mean: null.iter().sum::<f64>() / null.len().max(1) as f64,
        null_low: pick(0.025),
        null_high: pick(0.975),
        p: (1 + null.iter().filter(|&&n| n <= count).count()) as f64 / (1 + permutations) as f64,
        permutations,
        pinwheels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topography::{Layout, positions};

    /// The orientation field with pinwheels at `centres` of charges `signs`: half the sum
    /// of the angles seen from each centre, in degrees.
    fn planted(p: &Positions, centres: &[([f64; 2], f64)]) -> Vec<Option<f64>> {
        p.iter()
            .map(|x| {
                let angle: f64 = centres
                    .iter()
                    .map(|(c, s)| s * (x[1] - c[1]).atan2(x[0] - c[0]).to_degrees() / 2.0)
                    .sum();
                Some(angle.rem_euclid(180.0))
            })
            .collect()
    }

    #[test]
    fn planted_pinwheels_are_found_exactly_with_their_charges() {
        let p = positions(Layout::Grid, 2, 256).expect("grid");
        let lattice = Lattice::of(&p).expect("a grid is a lattice");
        assert_eq!(lattice.cells(), 225);
        let centres = [
            ([0.31, 0.42], 1.0),
            ([0.72, 0.55], -1.0),
            ([0.5, 0.83], 1.0),
        ];
        let map = planted(&p, &centres);
        let mut found = lattice.pinwheels(&map);
        found.sort_by(|a, b| a.x.total_cmp(&b.x));
        assert_eq!(found.len(), 3, "{found:?}");
        let mut want = centres.to_vec();
        want.sort_by(|a, b| a.0[0].total_cmp(&b.0[0]));
        let step = 1.0 / 15.0;
        for (f, (c, s)) in found.iter().zip(&want) {
            assert!((f.x - c[0]).abs() < step && (f.y - c[1]).abs() < step);
            assert_eq!(f.charge as f64, *s);
        }
        let count = count_pinwheels(&lattice, &map, 99, 0);
        assert!(count.null_mean > 30.0, "{count:?}");
        assert!((count.p - 0.01).abs() < 1e-12, "{count:?}");
    }

    #[test]
    fn random_preferences_have_a_pinwheel_in_about_a_third_of_cells_and_no_small_p() {
        use rand::Rng;
        let p = positions(Layout::Grid, 2, 64).expect("grid");
        let lattice = Lattice::of(&p).expect("lattice");
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut ps, mut shares) = (Vec::new(), Vec::new());
        for seed in 0..200 {
            let map: Vec<Option<f64>> =
                (0..64).map(|_| Some(rng.random::<f64>() * 180.0)).collect();
            let count = count_pinwheels(&lattice, &map, 99, seed);
            shares.push(count.pinwheels.len() as f64 / count.cells as f64);
            ps.push(count.p);
        }
        let share = shares.iter().sum::<f64>() / shares.len() as f64;
        assert!(
            (share - 1.0 / 3.0).abs() < 0.05,
            "pinwheels in {share} of cells"
        );
        // Counts are whole numbers, so p is conservative: never much below uniform.
        for q in [0.05, 0.1, 0.25] {
            let below = ps.iter().filter(|&&p| p <= q).count() as f64 / ps.len() as f64;
            assert!(below <= q + 0.05, "P(p <= {q}) = {below}");
        }
    }

    #[test]
    fn a_circle_is_no_lattice_and_a_partial_grid_skips_its_holes() {
        assert!(Lattice::of(&positions(Layout::Sphere, 2, 16).expect("circle")).is_none());
        // 8 channels on a 3 x 3 grid: the corner cell with the hole is not a cell.
        let partial = Lattice::of(&positions(Layout::Grid, 2, 8).expect("grid")).expect("lattice");
        assert_eq!(partial.cells(), 3);
        let mut map = vec![Some(0.0); 8];
        map[0] = None;
        assert!(partial.pinwheels(&map).is_empty());
    }
}
