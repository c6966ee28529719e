// The column matrix of a convolution (im2col) and its adjoint (col2im), on CUDA, as
// src/unfold.rs computes them on the CPU: the conv's input gradient then needs one matrix
// product and `fold`, where candle 0.11 runs a direct transposed convolution.
//
// Columns: (C * k * k, B * OH * OW), row (c * k + ky) * k + kx, column (b * OH + oy) * OW + ox,
// holding x[b, c, oy * stride - padding + ky, ox * stride - padding + kx] (0 in the padding).
// `fold` gathers: each input cell sums, in (ky, kx) order, the column entries that read it,
// the CPU's order of additions, with no atomics.

#include "portable.cuh"

template <typename T>
TOPO_DEVICE void unfold(const T *x, T *cols, unsigned int n, unsigned int batch,
                        unsigned int h, unsigned int w, unsigned int oh, unsigned int ow,
                        unsigned int k, unsigned int stride, unsigned int padding) {
    const unsigned int width = batch * oh * ow;
    for (unsigned int i = first_index(); i < n; i += index_stride()) {
        const unsigned int row = i / width, col = i % width;
        const unsigned int c = row / (k * k), ky = row / k % k, kx = row % k;
        const unsigned int b = col / (oh * ow), oy = col / ow % oh, ox = col % ow;
        const int y = (int)(oy * stride + ky) - (int)padding;
        const int xx = (int)(ox * stride + kx) - (int)padding;
        const unsigned int channels = n / width / (k * k);
        T v = 0;
        if (y >= 0 && y < (int)h && xx >= 0 && xx < (int)w) {
            v = x[(((size_t)b * channels + c) * h + y) * w + xx];
        }
        cols[i] = v;
    }
}

template <typename T>
TOPO_DEVICE void fold(const T *cols, T *x, unsigned int n, unsigned int batch,
                      unsigned int h, unsigned int w, unsigned int oh, unsigned int ow,
                      unsigned int k, unsigned int stride, unsigned int padding) {
    const size_t width = (size_t)batch * oh * ow;
    const unsigned int channels = n / batch / (h * w);
    for (unsigned int i = first_index(); i < n; i += index_stride()) {
        const unsigned int xx = i % w, y = i / w % h;
        const unsigned int c = i / (h * w) % channels, b = i / (h * w) / channels;
        T sum = 0;
        for (unsigned int ky = 0; ky < k; ++ky) {
            const unsigned int ty = y + padding - ky;  // wraps when negative: then >= oh * stride
            if (y + padding < ky || ty % stride != 0 || ty / stride >= oh) continue;
            for (unsigned int kx = 0; kx < k; ++kx) {
                const unsigned int tx = xx + padding - kx;
                if (xx + padding < kx || tx % stride != 0 || tx / stride >= ow) continue;
                const size_t row = ((size_t)c * k + ky) * k + kx;
                const size_t col = ((size_t)b * oh + ty / stride) * ow + tx / stride;
                sum += cols[row * width + col];
            }
        }
        x[i] = sum;
    }
}

#define UNFOLD_KERNELS(T, SUFFIX)                                                           \
    TOPO_KERNEL void unfold_##SUFFIX(const T *x, T *cols, unsigned int n,                   \
                                     unsigned int batch, unsigned int h, unsigned int w,    \
                                     unsigned int oh, unsigned int ow, unsigned int k,      \
                                     unsigned int stride, unsigned int padding) {           \
        unfold<T>(x, cols, n, batch, h, w, oh, ow, k, stride, padding);                     \
    }                                                                                       \
    TOPO_KERNEL void fold_##SUFFIX(const T *cols, T *x, unsigned int n, unsigned int batch, \
                                   unsigned int h, unsigned int w, unsigned int oh,         \
                                   unsigned int ow, unsigned int k, unsigned int stride,    \
                                   unsigned int padding) {                                  \
        fold<T>(cols, x, n, batch, h, w, oh, ow, k, stride, padding);                       \
    }

UNFOLD_KERNELS(float, f32)
UNFOLD_KERNELS(double, f64)
