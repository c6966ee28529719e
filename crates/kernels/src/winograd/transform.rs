//! The tile transforms of F(2x2, 3x3), on a chunk of images at once.
//!
//! Each transform is a sandwich `F t F^T` of a tile `t` by one small matrix `F`. The
//! maps of these models are small (2x2 to 16x16), so vectors along a row would be a few
//! values long; instead a channel's planes for the chunk's `nb` images are staged
//! pixel-major with the images innermost (`[y][x][i]`), and each transform runs on
//! [`X8`], eight images side by side, as straight-line vector code. Transformed tiles
//! are laid out `[xi][tile][i]` (`xi = 4a + b` the position in the 4x4 tile), which is
//! just a column order the products do not care about.
//!
//! Tile `(ty, tx)` reads input rows and columns `2t - 1 .. 2t + 3` (padding 1) and
//! writes outputs `2t, 2t + 1`; staged inputs carry that padding, so every tile is an
//! interior one.

use std::ops::{Add, Mul, Neg, Sub};

use crate::simd::vectorized;

/// Values side by side that the transforms treat alike: one image (`f32`) or eight
/// ([`X8`]).
pub(super) trait Lane:
    Copy + Add<Output = Self> + Sub<Output = Self> + Neg<Output = Self> + Mul<f32, Output = Self>
{
    /// Images per value.
    const WIDTH: usize;
    const ZERO: Self;
    fn load(s: &[f32], at: usize) -> Self;
    fn store(self, s: &mut [f32], at: usize);
    fn add_to(self, s: &mut [f32], at: usize);
}

impl Lane for f32 {
    const WIDTH: usize = 1;
    const ZERO: f32 = 0.0;
    #[inline(always)]
    fn load(s: &[f32], at: usize) -> f32 {
        s[at]
    }
    #[inline(always)]
    fn store(self, s: &mut [f32], at: usize) {
        s[at] = self;
    }
    #[inline(always)]
    fn add_to(self, s: &mut [f32], at: usize) {
        s[at] += self;
    }
}

/// Eight f32 lanes; elementwise arithmetic the compiler keeps in vector registers.
#[derive(Debug, Clone, Copy)]
pub(super) struct X8([f32; 8]);

impl Add for X8 {
    type Output = X8;
    #[inline(always)]
    fn add(self, o: X8) -> X8 {
        let mut r = self.0;
        for (r, o) in r.iter_mut().zip(o.0) {
            *r += o;
        }
        X8(r)
    }
}

impl Sub for X8 {
    type Output = X8;
    #[inline(always)]
    fn sub(self, o: X8) -> X8 {
        let mut r = self.0;
        for (r, o) in r.iter_mut().zip(o.0) {
            *r -= o;
        }
        X8(r)
    }
}

impl Neg for X8 {
    type Output = X8;
    #[inline(always)]
    fn neg(self) -> X8 {
        let mut r = self.0;
        for r in &mut r {
            *r = -*r;
        }
        X8(r)
    }
}

impl Mul<f32> for X8 {
    type Output = X8;
    #[inline(always)]
    fn mul(self, k: f32) -> X8 {
        let mut r = self.0;
        for r in &mut r {
            *r *= k;
        }
        X8(r)
    }
}

impl Lane for X8 {
    const WIDTH: usize = 8;
    const ZERO: X8 = X8([0.0; 8]);
    #[inline(always)]
    fn load(s: &[f32], at: usize) -> X8 {
        let mut v = [0f32; 8];
        v.copy_from_slice(&s[at..at + 8]);
        X8(v)
    }
    #[inline(always)]
    fn store(self, s: &mut [f32], at: usize) {
        s[at..at + 8].copy_from_slice(&self.0);
    }
    #[inline(always)]
    fn add_to(self, s: &mut [f32], at: usize) {
        for (d, v) in s[at..at + 8].iter_mut().zip(self.0) {
            *d += v;
        }
    }
}

/// `B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]` on a 4-vector.
#[inline(always)]
fn bt<T: Lane>(d: [T; 4]) -> [T; 4] {
    [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
}

/// `B = [[1,0,0,0],[0,1,-1,1],[-1,1,1,0],[0,0,0,-1]]`.
#[inline(always)]
fn b<T: Lane>(v: [T; 4]) -> [T; 4] {
    [v[0], v[1] - v[2] + v[3], v[1] + v[2] - v[0], -v[3]]
}

/// `A^T = [[1,1,1,0],[0,1,-1,-1]]`.
#[inline(always)]
fn at<T: Lane>(m: [T; 4]) -> [T; 2] {
    [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]
}

/// `A = [[1,0],[1,1],[1,-1],[0,-1]]`.
#[inline(always)]
fn a<T: Lane>(y: [T; 2]) -> [T; 4] {
    [y[0], y[0] + y[1], y[0] - y[1], -y[1]]
}

/// `G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]]`.
#[inline(always)]
fn g<T: Lane>(v: [T; 3]) -> [T; 4] {
    let half = (v[0] + v[2]) * 0.5;
    [v[0], half + v[1] * 0.5, half - v[1] * 0.5, v[2]]
}

/// `G^T`.
#[inline(always)]
fn gt<T: Lane>(u: [T; 4]) -> [T; 3] {
    let mid = (u[1] + u[2]) * 0.5;
    [u[0] + mid, (u[1] - u[2]) * 0.5, mid + u[3]]
}

/// `F t F^T` for a `C x C` tile `t` (row-major) and `F` given as its action on a vector:
/// `F` down the columns, then along the rows.
#[inline(always)]
fn sandwich<T: Lane, const C: usize, const R: usize>(
    t: [[T; C]; C],
    f: impl Fn([T; C]) -> [T; R],
) -> [[T; R]; R] {
    let cols: [[T; R]; C] = std::array::from_fn(|x| f(std::array::from_fn(|y| t[y][x])));
    std::array::from_fn(|r| f(std::array::from_fn(|x| cols[x][r])))
}

/// `U = G k G^T` of one 3x3 kernel (row-major), as its 16 values.
pub(super) fn kernel(k: &[f32]) -> [f32; 16] {
    let t: [[f32; 3]; 3] = std::array::from_fn(|y| std::array::from_fn(|x| k[3 * y + x]));
    let u = sandwich(t, g);
    std::array::from_fn(|xi| u[xi / 4][xi % 4])
}

/// `dk = G^T dU G`, the adjoint of [`kernel`]: a 3x3 kernel's gradient (row-major).
pub(super) fn kernel_adjoint(du: [f32; 16]) -> [f32; 9] {
    let t: [[f32; 4]; 4] = std::array::from_fn(|a| std::array::from_fn(|b| du[4 * a + b]));
    let k = sandwich(t, gt);
    std::array::from_fn(|j| k[j / 3][j % 3])
}

/// A chunk's tiling of `h x w` planes: `th x tw` tiles, `nb` images.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planes {
    pub h: usize,
    pub w: usize,
    pub nb: usize,
}

impl Planes {
    #[inline(always)]
    fn th(&self) -> usize {
        self.h.div_ceil(2)
    }

    #[inline(always)]
    fn tw(&self) -> usize {
        self.w.div_ceil(2)
    }

    pub(super) fn tiles(&self) -> usize {
        self.th() * self.tw()
    }

    /// Width of a staged input (with its padding): `2 tw + 2`.
    #[inline(always)]
    fn padded_w(&self) -> usize {
        2 * self.tw() + 2
    }

    /// Values of a staged input plane set: `(2 th + 2) (2 tw + 2) nb`.
    pub(super) fn padded_len(&self) -> usize {
        (2 * self.th() + 2) * self.padded_w() * self.nb
    }

    /// Values of a staged output plane set, whole tiles: `2 th 2 tw nb`.
    pub(super) fn tiled_len(&self) -> usize {
        4 * self.tiles() * self.nb
    }

    /// The chunk's images in blocks: `(0..full, full..nb)`, `full` a multiple of eight,
    /// for [`X8`] lanes and then single ones.
    #[inline(always)]
    fn blocks(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let full = self.nb - self.nb % X8::WIDTH;
        (0..full, full..self.nb)
    }

    /// Stages one channel's `nb` input planes (`plane(i)`) with a zero border:
    /// `staged[((y + 1) * pw + x + 1) * nb + i] = plane(i)[y * w + x]`.
    pub(super) fn stage_input<'a>(&self, plane: impl Fn(usize) -> &'a [f32], staged: &mut [f32]) {
        let (pw, nb) = (self.padded_w(), self.nb);
        let staged = &mut staged[..self.padded_len()];
        staged.fill(0.0);
        for i in 0..nb {
            let p = plane(i);
            for y in 0..self.h {
                let row = &p[y * self.w..(y + 1) * self.w];
                let base = (y + 1) * pw + 1;
                for (x, &v) in row.iter().enumerate() {
                    staged[(base + x) * nb + i] = v;
                }
            }
        }
    }

    /// Stages one channel's `nb` output-gradient planes, zeros past their edge up to
    /// whole tiles: `staged[(y * 2 tw + x) * nb + i] = plane(i)[y * w + x]`.
    pub(super) fn stage_output<'a>(&self, plane: impl Fn(usize) -> &'a [f32], staged: &mut [f32]) {
        let (qw, nb) = (2 * self.tw(), self.nb);
        let staged = &mut staged[..self.tiled_len()];
        staged.fill(0.0);
        for i in 0..nb {
            let p = plane(i);
            for y in 0..self.h {
                let row = &p[y * self.w..(y + 1) * self.w];
                for (x, &v) in row.iter().enumerate() {
                    staged[(y * qw + x) * nb + i] = v;
                }
            }
        }
    }

    /// Image `i`'s plane out of a staged output (`tiled`, whole tiles).
    pub(super) fn unstage_output(&self, tiled: &[f32], i: usize, plane: &mut [f32]) {
        let (qw, nb) = (2 * self.tw(), self.nb);
        for (y, row) in plane.chunks_exact_mut(self.w).enumerate() {
            for (x, v) in row.iter_mut().enumerate() {
                *v = tiled[(y * qw + x) * nb + i];
            }
        }
    }

    /// Image `i`'s plane out of a staged input (`padded`, with its border).
    pub(super) fn unstage_input(&self, padded: &[f32], i: usize, plane: &mut [f32]) {
        let (pw, nb) = (self.padded_w(), self.nb);
        for (y, row) in plane.chunks_exact_mut(self.w).enumerate() {
            let base = (y + 1) * pw + 1;
            for (x, v) in row.iter_mut().enumerate() {
                *v = padded[(base + x) * nb + i];
            }
        }
    }

    /// `V = B^T d B` of every tile of a staged input, into `out`: `xi` at `xi * stride`,
    /// tile `t`'s images at `t * nb`.
    pub(super) fn input(&self, staged: &[f32], out: &mut [f32], stride: usize) {
        let (wide, narrow) = self.blocks();
        vectorized(
            #[inline(always)]
            || {
                self.input_lanes::<X8>(staged, out, stride, wide);
                self.input_lanes::<f32>(staged, out, stride, narrow);
            },
        );
    }

    #[inline(always)]
    // The row index picks one value from each column's array, which iterators would hide.
    #[allow(clippy::needless_range_loop)]
    fn input_lanes<T: Lane>(
        &self,
        staged: &[f32],
        out: &mut [f32],
        stride: usize,
        images: std::ops::Range<usize>,
    ) {
        let (pw, nb) = (self.padded_w(), self.nb);
        for ty in 0..self.th() {
            for tx in 0..self.tw() {
                let t = ty * self.tw() + tx;
                for i in images.clone().step_by(T::WIDTH) {
                    let at = |r: usize, s: usize| ((2 * ty + r) * pw + 2 * tx + s) * nb + i;
                    let mut cols = [[T::ZERO; 4]; 4];
                    for (s, col) in cols.iter_mut().enumerate() {
                        let ld = |r| T::load(staged, at(r, s));
                        *col = bt([ld(0), ld(1), ld(2), ld(3)]);
                    }
                    for a in 0..4 {
                        let row = bt([cols[0][a], cols[1][a], cols[2][a], cols[3][a]]);
                        for (b, value) in row.into_iter().enumerate() {
                            value.store(out, (4 * a + b) * stride + t * nb + i);
                        }
                    }
                }
            }
        }
    }

    /// `Y = A^T M A` of every tile, from `m` (`xi` at `xi * stride`, tile `t`'s images at
    /// `t * nb`) into a staged output (whole tiles).
    pub(super) fn output(&self, m: &[f32], stride: usize, tiled: &mut [f32]) {
        let (wide, narrow) = self.blocks();
        vectorized(
            #[inline(always)]
            || {
                self.output_lanes::<X8>(m, stride, tiled, wide);
                self.output_lanes::<f32>(m, stride, tiled, narrow);
            },
        );
    }

    #[inline(always)]
    // The row index picks one value from each column's array, which iterators would hide.
    #[allow(clippy::needless_range_loop)]
    fn output_lanes<T: Lane>(
        &self,
        m: &[f32],
        stride: usize,
        tiled: &mut [f32],
        images: std::ops::Range<usize>,
    ) {
        let (qw, nb) = (2 * self.tw(), self.nb);
        for ty in 0..self.th() {
            for tx in 0..self.tw() {
                let t = ty * self.tw() + tx;
                for i in images.clone().step_by(T::WIDTH) {
                    let mut cols = [[T::ZERO; 2]; 4];
                    for (b, col) in cols.iter_mut().enumerate() {
                        let ld = |a: usize| T::load(m, (4 * a + b) * stride + t * nb + i);
                        *col = at([ld(0), ld(1), ld(2), ld(3)]);
                    }
                    for r in 0..2 {
                        let row = at([cols[0][r], cols[1][r], cols[2][r], cols[3][r]]);
                        for (s, value) in row.into_iter().enumerate() {
                            value.store(tiled, ((2 * ty + r) * qw + 2 * tx + s) * nb + i);
                        }
                    }
                }
            }
        }
    }

    /// `dM = A dY A^T`, the adjoint of [`Planes::output`]: from a staged output gradient
    /// (whole tiles) into `out` (`xi` at `xi * stride`, tile `t`'s images at `t * nb`).
    pub(super) fn output_adjoint(&self, tiled: &[f32], out: &mut [f32], stride: usize) {
        let (wide, narrow) = self.blocks();
        vectorized(
            #[inline(always)]
            || {
                self.output_adjoint_lanes::<X8>(tiled, out, stride, wide);
                self.output_adjoint_lanes::<f32>(tiled, out, stride, narrow);
            },
        );
    }

    #[inline(always)]
    // The row index picks one value from each column's array, which iterators would hide.
    #[allow(clippy::needless_range_loop)]
    fn output_adjoint_lanes<T: Lane>(
        &self,
        tiled: &[f32],
        out: &mut [f32],
        stride: usize,
        images: std::ops::Range<usize>,
    ) {
        let (qw, nb) = (2 * self.tw(), self.nb);
        for ty in 0..self.th() {
            for tx in 0..self.tw() {
                let t = ty * self.tw() + tx;
                for i in images.clone().step_by(T::WIDTH) {
                    let ld = |r: usize, s: usize| {
                        T::load(tiled, ((2 * ty + r) * qw + 2 * tx + s) * nb + i)
                    };
                    let cols = [a([ld(0, 0), ld(1, 0)]), a([ld(0, 1), ld(1, 1)])];
                    for r in 0..4 {
                        let row = a([cols[0][r], cols[1][r]]);
                        for (s, value) in row.into_iter().enumerate() {
                            value.store(out, (4 * r + s) * stride + t * nb + i);
                        }
                    }
                }
            }
        }
    }

    /// `dd = B dV B^T`, the adjoint of [`Planes::input`]: every tile's input gradient from
    /// `dv` (`xi` at `xi * stride`, tile `t`'s images at `t * nb`) added onto its window of
    /// a staged input gradient (`padded`, zeroed by the caller; windows overlap by two
    /// rows and columns, and the border is dropped when unstaged).
    pub(super) fn input_adjoint(&self, dv: &[f32], stride: usize, padded: &mut [f32]) {
        let (wide, narrow) = self.blocks();
        vectorized(
            #[inline(always)]
            || {
                self.input_adjoint_lanes::<X8>(dv, stride, padded, wide);
                self.input_adjoint_lanes::<f32>(dv, stride, padded, narrow);
            },
        );
    }

    #[inline(always)]
    // The row index picks one value from each column's array, which iterators would hide.
    #[allow(clippy::needless_range_loop)]
    fn input_adjoint_lanes<T: Lane>(
        &self,
        dv: &[f32],
        stride: usize,
        padded: &mut [f32],
        images: std::ops::Range<usize>,
    ) {
        let (pw, nb) = (self.padded_w(), self.nb);
        for ty in 0..self.th() {
            for tx in 0..self.tw() {
                let t = ty * self.tw() + tx;
                for i in images.clone().step_by(T::WIDTH) {
                    let mut cols = [[T::ZERO; 4]; 4];
                    for (c, col) in cols.iter_mut().enumerate() {
                        let ld = |a: usize| T::load(dv, (4 * a + c) * stride + t * nb + i);
                        *col = b([ld(0), ld(1), ld(2), ld(3)]);
                    }
                    for r in 0..4 {
                        let row = b([cols[0][r], cols[1][r], cols[2][r], cols[3][r]]);
                        for (s, value) in row.into_iter().enumerate() {
                            value.add_to(padded, ((2 * ty + r) * pw + 2 * tx + s) * nb + i);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104729) % 997) as f32 / 498.5 - 1.0)
            .collect()
    }

    /// `<a, b>` in f64.
    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    fn close(l: f64, r: f64, what: &str) {
        assert!(
            (l - r).abs() < 1e-4 * l.abs().max(1.0),
            "{what}: {l} vs {r}"
        );
    }

    /// Each adjoint satisfies `<T x, y> = <x, T* y>`, on planes with partial tiles and on
    /// image counts that use both lane widths.
    #[test]
    fn each_adjoint_is_the_transpose_of_its_transform() {
        for (h, w, nb) in [(1, 1, 1), (2, 2, 9), (3, 5, 3), (4, 7, 8), (6, 3, 17)] {
            let p = Planes { h, w, nb };
            let (plane, tiles) = (h * w, p.tiles() * nb);
            let x = values(plane * nb, 1);
            let t = values(16 * tiles, 2);
            // Staged input -> V and back.
            let mut staged = vec![0f32; p.padded_len()];
            p.stage_input(|i| &x[i * plane..(i + 1) * plane], &mut staged);
            let mut v = vec![0f32; 16 * tiles];
            p.input(&staged, &mut v, tiles);
            let mut back = vec![0f32; p.padded_len()];
            p.input_adjoint(&t, tiles, &mut back);
            let mut dx = vec![0f32; plane * nb];
            for i in 0..nb {
                p.unstage_input(&back, i, &mut dx[i * plane..(i + 1) * plane]);
            }
            close(dot(&v, &t), dot(&x, &dx), &format!("input {h}x{w}x{nb}"));
            // M -> staged output -> planes, and back.
            let mut tiled = vec![0f32; p.tiled_len()];
            p.output(&t, tiles, &mut tiled);
            let mut y = vec![0f32; plane * nb];
            for i in 0..nb {
                p.unstage_output(&tiled, i, &mut y[i * plane..(i + 1) * plane]);
            }
            let mut staged_dy = vec![0f32; p.tiled_len()];
            p.stage_output(|i| &x[i * plane..(i + 1) * plane], &mut staged_dy);
            let mut dm = vec![0f32; 16 * tiles];
            p.output_adjoint(&staged_dy, &mut dm, tiles);
            close(dot(&y, &x), dot(&t, &dm), &format!("output {h}x{w}x{nb}"));
        }
        let k = values(9, 3);
        let du: [f32; 16] = values(16, 4).try_into().unwrap();
        close(
            dot(&kernel(&k), &du),
            dot(&k, &kernel_adjoint(du)),
            "kernel",
        );
    }

    /// One tile through the three forward transforms is the 3x3 correlation of its window:
    /// the identity Winograd's method rests on.
    #[test]
    fn a_tile_through_the_transforms_is_its_correlation() {
        let p = Planes { h: 2, w: 2, nb: 1 };
        let x = values(4, 5);
        let k = values(9, 6);
        let mut staged = vec![0f32; p.padded_len()];
        p.stage_input(|_| &x[..], &mut staged);
        let mut v = vec![0f32; 16];
        p.input(&staged, &mut v, 1);
        let u = kernel(&k);
        let m: Vec<f32> = v.iter().zip(&u).map(|(a, b)| a * b).collect();
        let mut tiled = vec![0f32; p.tiled_len()];
        p.output(&m, 1, &mut tiled);
        let mut y = vec![0f32; 4];
        p.unstage_output(&tiled, 0, &mut y);
        for oy in 0..2 {
            for ox in 0..2 {
                let mut expected = 0f32;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (iy, ix) = ((oy + ky) as isize - 1, (ox + kx) as isize - 1);
                        if (0..2).contains(&iy) && (0..2).contains(&ix) {
                            expected += k[ky * 3 + kx] * x[(iy * 2 + ix) as usize];
                        }
                    }
                }
                let got = y[oy * 2 + ox];
                assert!(
                    (got - expected).abs() < 1e-5,
                    "({oy},{ox}): {got} vs {expected}"
                );
            }
        }
    }
}
