//! A bounds-checked f32 matrix multiply over slices, on the `gemm` crate candle's own
//! CPU matmul uses. One of the two unsafe modules (with the allocator, `alloc.rs`): `gemm::gemm` takes raw
//! pointers and strides, so every matrix is checked to fit its slice first.

use candle_core::{Result, bail};

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
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let accumulate = store == Store::Accumulate;
    #[allow(unsafe_code)]
    // SAFETY: each view was checked above to lie inside its slice, and `dst` is borrowed
    // mutably, so it cannot alias `lhs` or `rhs`.
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
}
