//! A bounds-checked f32 matrix multiply over slices, on the `gemm` crate candle's own
//! CPU matmul uses. One of the two unsafe modules (with the allocator, `alloc.rs`): `gemm::gemm` takes raw
//! pointers and strides, so every matrix is checked to fit its slice first.

use candle_core::{Result, bail};

use crate::scratch::Scratch;

/// A row-major view of a matrix inside a slice: element `(i, j)` is at
/// `i * row_stride + j * col_stride`. Transposing is swapping the strides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Mat {
    /// A dense row-major `rows x cols` matrix.
    pub(crate) fn dense(rows: usize, cols: usize) -> Mat {
        Mat {
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The same elements seen as the transposed matrix.
    pub(crate) fn t(self) -> Mat {
        Mat {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// One past the largest index the view touches (0 when empty).
    fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return 0;
        }
        (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
    }

    fn stride(value: usize) -> Result<isize> {
        isize::try_from(value).map_err(|_| candle_core::Error::Msg("gemm: stride overflow".into()))
    }
}

/// How a multiply treats its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// `dst = lhs * rhs`
    Overwrite,
    /// `dst += lhs * rhs`
    Accumulate,
}

/// `dst (m x n) = or += lhs (m x k) * rhs (k x n)`. `threads > 1` lets gemm split the
/// product over that many rayon threads (used when the caller is not already parallel).
///
/// gemm's kernels run at full speed only on some layouts: into a row-major destination
/// they want a row-major right operand (a transposed one ran at a third of the speed:
/// 33 against 108 GFLOP/s for the Winograd weight gradient's 64 x 64 x 1024 products,
/// 44 against 181 for VGG's classifier; AVX-512, gemm 0.19 called directly). So such a
/// right operand is first copied row-major into scratch, or, where that copy would be the
/// larger (VGG's 25088 x 4096 weight seen transposed), the transposed product
/// `dst^T = rhs^T lhs^T` is formed and copied back.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    dst: &mut [f32],
    dst_mat: Mat,
    lhs: &[f32],
    lhs_mat: Mat,
    rhs: &[f32],
    rhs_mat: Mat,
    store: Store,
    threads: usize,
) -> Result<()> {
    let (m, n, k) = (dst_mat.rows, dst_mat.cols, lhs_mat.cols);
    if lhs_mat.rows != m || rhs_mat.rows != k || rhs_mat.cols != n {
        bail!(
            "gemm: shapes do not chain: {m}x{n} = {}x{} * {}x{}",
            lhs_mat.rows,
            lhs_mat.cols,
            rhs_mat.rows,
            rhs_mat.cols
        )
    }
    for (name, mat, len) in [
        ("dst", dst_mat, dst.len()),
        ("lhs", lhs_mat, lhs.len()),
        ("rhs", rhs_mat, rhs.len()),
    ] {
        if mat.span() > len {
            bail!(
                "gemm: {name} view needs {} elements, slice has {len}",
                mat.span()
            )
        }
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if store == Store::Overwrite {
            dst.iter_mut().take(dst_mat.span()).for_each(|v| *v = 0.0);
        }
        return Ok(());
    }
    let operands = Operands {
        lhs,
        lhs_mat,
        rhs,
        rhs_mat,
    };
    match Layout::of(dst_mat, lhs_mat, rhs_mat) {
        Layout::AsIs => operands.multiply(dst, dst_mat, store, threads),
        Layout::DenseRhs => {
            let mut packed = Scratch::take(k * n);
            densify(rhs, rhs_mat, &mut packed);
            Operands {
                rhs: &packed,
                rhs_mat: Mat::dense(k, n),
                ..operands
            }
            .multiply(dst, dst_mat, store, threads)
        }
        Layout::Transposed => {
            // dst^T (n x m) = rhs^T (n x k, row-major) * lhs^T (k x m, made row-major).
            let mut lhs_t = Scratch::take(k * m);
            densify(lhs, lhs_mat.t(), &mut lhs_t);
            let mut dst_t = Scratch::take(n * m);
            if store == Store::Accumulate {
                densify(dst, dst_mat.t(), &mut dst_t);
            }
            Operands {
                lhs: rhs,
                lhs_mat: rhs_mat.t(),
                rhs: &lhs_t,
                rhs_mat: Mat::dense(k, m),
            }
            .multiply(&mut dst_t, Mat::dense(n, m), store, threads)?;
            for (i, row) in dst
                .chunks_mut(dst_mat.row_stride.max(1))
                .take(m)
                .enumerate()
            {
                for (j, v) in row
                    .iter_mut()
                    .step_by(dst_mat.col_stride)
                    .take(n)
                    .enumerate()
                {
                    *v = dst_t[j * m + i];
                }
            }
            Ok(())
        }
    }
}

/// How [`sgemm`] lays out its operands before calling gemm (see there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    AsIs,
    /// Copy the right operand row-major.
    DenseRhs,
    /// Form `dst^T = rhs^T lhs^T` (the transposed right operand is row-major).
    Transposed,
}

impl Layout {
    fn of(dst: Mat, lhs: Mat, rhs: Mat) -> Layout {
        let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
        // Only row-major destinations are planned for (the only kind topo forms); gemm's
        // dot-product kernel takes small products with both operands along `k` as they
        // are (8 x 8 x 2048: 89 GFLOP/s as is, 23 copied).
        let dot_form = m * n <= 256 && lhs.col_stride == 1 && rhs.row_stride == 1;
        if dst.col_stride != 1 || dot_form {
            return Layout::AsIs;
        }
        if rhs.col_stride == 1 {
            // A column-major left operand costs gemm less than copying it would (ResNet-18
            // at batch 32: 198 ms a step as is, 223 with it copied).
            return Layout::AsIs;
        }
        if k * n <= m * k + m * n {
            Layout::DenseRhs
        } else if rhs.row_stride == 1 {
            Layout::Transposed
        } else {
            // Neither transposed operand is row-major: copying the right one is the least.
            Layout::DenseRhs
        }
    }
}

/// The two operands of a product, as gemm receives them.
#[derive(Clone, Copy)]
struct Operands<'a> {
    lhs: &'a [f32],
    lhs_mat: Mat,
    rhs: &'a [f32],
    rhs_mat: Mat,
}

impl Operands<'_> {
    /// The product as laid out, by gemm (the views were checked by [`sgemm`], or are
    /// dense copies of checked views).
    fn multiply(self, dst: &mut [f32], dst_mat: Mat, store: Store, threads: usize) -> Result<()> {
        let Operands {
            lhs,
            lhs_mat,
            rhs,
            rhs_mat,
        } = self;
        let (m, n, k) = (dst_mat.rows, dst_mat.cols, lhs_mat.cols);
        for (name, mat, len) in [
            ("dst", dst_mat, dst.len()),
            ("lhs", lhs_mat, lhs.len()),
            ("rhs", rhs_mat, rhs.len()),
        ] {
            if mat.span() > len {
                bail!(
                    "gemm: {name} view needs {} elements, slice has {len}",
                    mat.span()
                )
            }
        }
        let parallelism = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        let accumulate = store == Store::Accumulate;
        #[allow(unsafe_code)]
        // SAFETY: each view was checked above to lie inside its slice, and `dst` is
        // borrowed mutably, so it cannot alias `lhs` or `rhs`.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                Mat::stride(dst_mat.col_stride)?,
                Mat::stride(dst_mat.row_stride)?,
                accumulate,
                lhs.as_ptr(),
                Mat::stride(lhs_mat.col_stride)?,
                Mat::stride(lhs_mat.row_stride)?,
                rhs.as_ptr(),
                Mat::stride(rhs_mat.col_stride)?,
                Mat::stride(rhs_mat.row_stride)?,
                // dst = alpha * dst + beta * lhs * rhs; alpha is read only when accumulating.
                if accumulate { 1.0 } else { 0.0 },
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        Ok(())
    }
}

/// Copies the view `mat` of `src` into `out` row-major, in square blocks so that both
/// sides stay in cache whichever way the view runs.
fn densify(src: &[f32], mat: Mat, out: &mut [f32]) {
    const BLOCK: usize = 16;
    for r0 in (0..mat.rows).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(mat.rows);
        for c0 in (0..mat.cols).step_by(BLOCK) {
            let c1 = (c0 + BLOCK).min(mat.cols);
            for r in r0..r1 {
                let row = &mut out[r * mat.cols + c0..r * mat.cols + c1];
                for (c, v) in (c0..c1).zip(row) {
                    *v = src[r * mat.row_stride + c * mat.col_stride];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn naive(a: &[f32], am: Mat, b: &[f32], bm: Mat) -> Vec<f32> {
        let mut out = vec![0.0; am.rows * bm.cols];
        for i in 0..am.rows {
            for j in 0..bm.cols {
                for l in 0..am.cols {
                    out[i * bm.cols + j] += a[i * am.row_stride + l * am.col_stride]
                        * b[l * bm.row_stride + j * bm.col_stride];
                }
            }
        }
        out
    }

    #[test]
    fn transposed_views_and_accumulation_match_a_naive_product() {
        let a: Vec<f32> = (0..12).map(|v| v as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..20).map(|v| (v % 7) as f32 - 3.0).collect();
        // a: 4x3, the transpose of a dense 3x4; b: 3x5 with column-major strides.
        let am = Mat::dense(3, 4).t();
        let bm = Mat {
            rows: 3,
            cols: 5,
            row_stride: 1,
            col_stride: 4,
        };
        let expected = naive(&a, am, &b, bm);
        let mut dst = vec![1.0; 4 * 5];
        sgemm(
            &mut dst,
            Mat::dense(4, 5),
            &a,
            am,
            &b,
            bm,
            Store::Overwrite,
            1,
        )
        .unwrap();
        assert_eq!(dst, expected);
        sgemm(
            &mut dst,
            Mat::dense(4, 5),
            &a,
            am,
            &b,
            bm,
            Store::Accumulate,
            2,
        )
        .unwrap();
        let doubled: Vec<f32> = expected.iter().map(|v| 2.0 * v).collect();
        assert_eq!(dst, doubled);
    }

    #[test]
    fn a_view_past_its_slice_is_an_error() {
        let mut dst = vec![0.0; 4];
        let err = sgemm(
            &mut dst,
            Mat::dense(2, 2),
            &[1.0; 3],
            Mat::dense(2, 2),
            &[1.0; 4],
            Mat::dense(2, 2),
            Store::Overwrite,
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("lhs view needs 4"), "{err}");
    }

    #[test]
    fn every_layout_plan_gives_the_naive_product_overwriting_and_accumulating() {
        // (m, n, k, lhs transposed, rhs transposed, the plan expected)
        let cases = [
            (5, 7, 9, false, false, Layout::AsIs),
            (5, 7, 9, true, false, Layout::AsIs),
            (40, 30, 20, false, true, Layout::DenseRhs),
            (40, 30, 20, true, true, Layout::DenseRhs),
            // A wide, deep right operand seen transposed (a linear layer's weight).
            (3, 100, 90, false, true, Layout::Transposed),
            // Small with both operands along k: gemm's dot-product kernel, as is.
            (6, 5, 33, false, true, Layout::AsIs),
        ];
        for (m, n, k, lt, rt, plan) in cases {
            let view = |rows: usize, cols: usize, t: bool| match t {
                true => Mat::dense(cols, rows).t(),
                false => Mat::dense(rows, cols),
            };
            let (am, bm) = (view(m, k, lt), view(k, n, rt));
            assert_eq!(Layout::of(Mat::dense(m, n), am, bm), plan, "{m}x{n}x{k}");
            // Small integers: every sum is exact in any order.
            let a: Vec<f32> = (0..m * k).map(|v| (v % 5) as f32 - 2.0).collect();
            let b: Vec<f32> = (0..k * n).map(|v| (v % 7) as f32 - 3.0).collect();
            let expected = naive(&a, am, &b, bm);
            let mut dst = vec![9.0; m * n];
            for store in [Store::Overwrite, Store::Accumulate] {
                sgemm(&mut dst, Mat::dense(m, n), &a, am, &b, bm, store, 2).unwrap();
            }
            let doubled: Vec<f32> = expected.iter().map(|v| 2.0 * v).collect();
            assert_eq!(dst, doubled, "{plan:?} {m}x{n}x{k}");
        }
    }
}
