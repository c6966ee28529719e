//! Vectorisable sums in a fixed order, for the reductions of the fast kernels.

use rayon::prelude::*;

/// Independent f32 accumulators: the sums vectorise (a single running sum is one
/// dependent add per element), and the order is still fixed.
const LANES: usize = 16;

/// `sum(term(x[i], y[i], dy[i]))` in `LANES` f32 partial sums, added up in f64.
#[inline(always)]
pub(crate) fn lane_sum(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    term: impl Fn(f32, f32, f32) -> f32,
) -> f64 {
    let [sum] = lane_sums(x, y, dy, |x, y, dy| [term(x, y, dy)]);
    sum
}

/// [`lane_sum`] of `K` terms in one pass; each sum's order is [`lane_sum`]'s.
#[inline(always)]
fn lane_sums<const K: usize>(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    term: impl Fn(f32, f32, f32) -> [f32; K],
) -> [f64; K] {
    let n = x.len().min(y.len()).min(dy.len());
    let (xs, ys, ds) = (
        x[..n].chunks_exact(LANES),
        y[..n].chunks_exact(LANES),
        dy[..n].chunks_exact(LANES),
    );
    let mut tail = [0f64; K];
    for ((&a, &b), &c) in xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .zip(ds.remainder())
    {
        for (s, t) in tail.iter_mut().zip(term(a, b, c)) {
            *s += f64::from(t);
        }
    }
    let mut acc = [[0f32; LANES]; K];
    for ((a, b), c) in xs.zip(ys).zip(ds) {
        for j in 0..LANES {
            let t = term(a[j], b[j], c[j]);
            for k in 0..K {
                acc[k][j] += t[k];
            }
        }
    }
    std::array::from_fn(|k| acc[k].iter().map(|&a| f64::from(a)).sum::<f64>() + tail[k])
}

/// Smallest plane (values) summed in lanes of its own: below it a plane fills at most
/// one vector, and reducing each plane's lanes costs more than its adds (a 2 x 2 plane
/// has no full vector at all).
const LANE_PLANE: usize = 32;

/// Most accumulators (values) one unit of channels keeps while the batch streams past:
/// 32 KiB a term, within the core's cache.
const UNIT_VALUES: usize = 8192;

/// Shape of an NCHW tensor for [`channel_sums`]: images, channels, values per plane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planes {
    pub(crate) batch: usize,
    pub(crate) channels: usize,
    pub(crate) plane: usize,
}

/// For each channel `c`, the `K` sums over its elements (every image's plane) of
/// `term(param[c], x, y, dy)`, the three tensors' values at one index, each in a fixed
/// order that does not depend on the thread count.
#[inline(always)]
pub(crate) fn channel_sums<const K: usize>(
    d: Planes,
    inputs: [&[f32]; 3],
    param: &[f32],
    term: impl Fn(f32, f32, f32, f32) -> [f32; K] + Sync,
) -> Vec<[f64; K]> {
    if d.plane == 0 || d.batch == 0 {
        return vec![[0.0; K]; d.channels];
    }
    if d.plane >= LANE_PLANE {
        plane_lane_sums(d, inputs, param, term)
    } else {
        batch_sums(d, inputs, param, term)
    }
}

/// [`channel_sums`] of planes that fill vectors: each plane in [`lane_sums`], the planes
/// added in f64, in parallel over channels.
#[inline(always)]
fn plane_lane_sums<const K: usize>(
    d: Planes,
    [x, y, dy]: [&[f32]; 3],
    param: &[f32],
    term: impl Fn(f32, f32, f32, f32) -> [f32; K] + Sync,
) -> Vec<[f64; K]> {
    (0..d.channels)
        .into_par_iter()
        .map(|c| {
            let p = param[c];
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    let mut total = [0f64; K];
                    for n in 0..d.batch {
                        let at = (n * d.channels + c) * d.plane..(n * d.channels + c + 1) * d.plane;
                        let sums =
                            lane_sums(&x[at.clone()], &y[at.clone()], &dy[at], |x, y, dy| {
                                term(p, x, y, dy)
                            });
                        for (t, s) in total.iter_mut().zip(sums) {
                            *t += s;
                        }
                    }
                    total
                },
            )
        })
        .collect()
}

/// [`channel_sums`] of small planes: each (channel, position) has an f32 accumulator,
/// and the images are added into them one after the other, so no plane's lanes are
/// reduced on their own and each accumulator sums only `batch` terms; a channel's
/// accumulators are then added in f64. Units of channels run in parallel; a channel's sum is the same whatever unit it
/// falls in.
#[inline(always)]
fn batch_sums<const K: usize>(
    d: Planes,
    [x, y, dy]: [&[f32]; 3],
    param: &[f32],
    term: impl Fn(f32, f32, f32, f32) -> [f32; K] + Sync,
) -> Vec<[f64; K]> {
    let plane = d.plane;
    let threads = rayon::current_num_threads().max(1);
    // Small enough to stay in cache, and enough units for every thread.
    let per_unit = (UNIT_VALUES / plane)
        .min(d.channels.div_ceil(4 * threads))
        .max(1);
    let firsts: Vec<usize> = (0..d.channels).step_by(per_unit).collect();
    let units: Vec<Vec<[f64; K]>> = firsts
        .par_iter()
        .map(|&c0| {
            let c1 = (c0 + per_unit).min(d.channels);
            let width = (c1 - c0) * plane;
            let mut acc: [Vec<f32>; K] = std::array::from_fn(|_| vec![0f32; width]);
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for n in 0..d.batch {
                        let base = (n * d.channels + c0) * plane;
                        for (ci, &p) in param[c0..c1].iter().enumerate() {
                            let at = base + ci * plane;
                            let (xs, ys, ds) =
                                (&x[at..at + plane], &y[at..at + plane], &dy[at..at + plane]);
                            // One pass per term, each a plain zip that vectorises;
                            // the plane is in L1 after the first.
                            for (k, a) in acc.iter_mut().enumerate() {
                                let sums = &mut a[ci * plane..(ci + 1) * plane];
                                for (s, ((&x, &y), &dy)) in
                                    sums.iter_mut().zip(xs.iter().zip(ys).zip(ds))
                                {
                                    *s += term(p, x, y, dy)[k];
                                }
                            }
                        }
                    }
                },
            );
            (0..c1 - c0)
                .map(|ci| {
                    acc.each_ref()
                        .map(|a| f64_sum(&a[ci * plane..(ci + 1) * plane]))
                })
                .collect()
        })
        .collect();
    units.into_iter().flatten().collect()
}

/// `sum(v)` in f64, in 8 partial sums (so independent adds), in a fixed order.
#[inline(always)]
pub(crate) fn f64_sum(v: &[f32]) -> f64 {
    let chunks = v.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&a| f64::from(a)).sum();
    let mut acc = [0f64; 8];
    for c in chunks {
        for (a, &b) in acc.iter_mut().zip(c) {
            *a += f64::from(b);
        }
    }
    acc.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_sums_are_the_sums_of_each_channels_terms() {
        // One value per plane, 2 x 2 planes over many channels (several units), 7 x 7,
        // and planes larger than one unit's accumulators.
        for (i, &(batch, channels, plane)) in [(1, 1, 1), (3, 37, 4), (2, 5, 49), (2, 3, 9000)]
            .iter()
            .enumerate()
        {
            let n = batch * channels * plane;
            let value =
                |k: usize, seed: usize| ((k * 7919 + seed * 104729) % 1000) as f32 / 250.0 - 2.0;
            let (x, y, dy): (Vec<f32>, Vec<f32>, Vec<f32>) = (
                (0..n).map(|k| value(k, i)).collect(),
                (0..n).map(|k| value(k, i + 10)).collect(),
                (0..n).map(|k| value(k, i + 20)).collect(),
            );
            let param: Vec<f32> = (0..channels).map(|c| c as f32 * 0.25 - 1.0).collect();
            let d = Planes {
                batch,
                channels,
                plane,
            };
            let term = |p: f32, x: f32, y: f32, dy: f32| [x * y, (x - p) * dy];
            let ours = channel_sums(d, [&x, &y, &dy], &param, term);
            for (c, got) in ours.iter().enumerate() {
                let mut want = [0f64; 2];
                for b in 0..batch {
                    for k in (b * channels + c) * plane..(b * channels + c + 1) * plane {
                        let t = term(param[c], x[k], y[k], dy[k]);
                        want[0] += f64::from(t[0]);
                        want[1] += f64::from(t[1]);
                    }
                }
                for (g, w) in got.iter().zip(want) {
                    // f32 sums of `batch` terms each: a few roundings of the terms' size.
                    assert!(
                        (g - w).abs() <= 1e-5 * (plane as f64).sqrt() * 4.0 + 1e-6,
                        "shape {batch}x{channels}x{plane} channel {c}: {g} against {w}"
                    );
                }
            }
        }
    }
}
