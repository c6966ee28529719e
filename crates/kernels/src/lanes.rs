//! Vectorisable sums in a fixed order, for the reductions of the fast kernels.

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
    let n = x.len().min(y.len()).min(dy.len());
    let (xs, ys, ds) = (
        x[..n].chunks_exact(LANES),
        y[..n].chunks_exact(LANES),
        dy[..n].chunks_exact(LANES),
    );
    let tail: f64 = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .zip(ds.remainder())
        .map(|((&a, &b), &c)| f64::from(term(a, b, c)))
        .sum();
    let mut acc = [0f32; LANES];
    for ((a, b), c) in xs.zip(ys).zip(ds) {
        for j in 0..LANES {
            acc[j] += term(a[j], b[j], c[j]);
        }
    }
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
}
