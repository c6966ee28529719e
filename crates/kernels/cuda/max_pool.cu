// Max pooling with padding (PyTorch's nn.MaxPool2d: no dilation, floor mode) and its
// backward, on CUDA. The rules are those of src/max_pool.rs, so both devices agree bit
// for bit: padding never wins, the first maximum of a window in row-major order wins a
// tie, a NaN wins; a window's argmax is its plane-local flat index.
//
// The backward gathers instead of scattering: each input cell sums, in row-major window
// order, the gradients of the windows whose argmax it is. That is the CPU kernel's order
// of additions, and it needs no atomics, so the result is deterministic.
//
// One thread per output (forward) or input (backward) cell, in grid-stride loops, so any
// grid covers any size. tests/it/cuda_source.rs runs this file on the host against the
// CPU kernel.

#include "portable.cuh"

template <typename T>
TOPO_DEVICE void max_pool2d_fwd(const T *x, T *y, unsigned int *argmax, unsigned int n,
                                unsigned int h, unsigned int w, unsigned int oh,
                                unsigned int ow, unsigned int kernel, unsigned int stride,
                                unsigned int padding) {
    for (unsigned int i = first_index(); i < n; i += index_stride()) {
        const unsigned int plane = i / (oh * ow);
        const unsigned int oy = i % (oh * ow) / ow;
        const unsigned int ox = i % ow;
        // The window clipped to the input: padding cells never win.
        const int ty = (int)(oy * stride) - (int)padding;
        const int tx = (int)(ox * stride) - (int)padding;
        const unsigned int y0 = ty < 0 ? 0 : (unsigned int)ty;
        const unsigned int x0 = tx < 0 ? 0 : (unsigned int)tx;
        const unsigned int y1 = min_u((unsigned int)(ty + (int)kernel), h);
        const unsigned int x1 = min_u((unsigned int)(tx + (int)kernel), w);
        const T *p = x + (size_t)plane * h * w;
        unsigned int best = y0 * w + x0;
        T top = p[best];
        for (unsigned int yy = y0; yy < y1; ++yy) {
            for (unsigned int xx = x0; xx < x1; ++xx) {
                const T v = p[yy * w + xx];
                if (v > top || isnan(v)) {
                    best = yy * w + xx;
                    top = v;
                }
            }
        }
        y[i] = top;
        argmax[i] = best;
    }
}

template <typename T>
TOPO_DEVICE void max_pool2d_bwd(const T *grad, const unsigned int *argmax, T *out,
                                unsigned int n, unsigned int h, unsigned int w,
                                unsigned int oh, unsigned int ow, unsigned int kernel,
                                unsigned int stride, unsigned int padding) {
    for (unsigned int i = first_index(); i < n; i += index_stride()) {
        const unsigned int plane = i / (h * w);
        const unsigned int cell = i % (h * w);
        const unsigned int yy = cell / w;
        const unsigned int xx = cell % w;
        // The windows that can hold (yy, xx): oy * stride - padding <= yy <
        // oy * stride - padding + kernel, and the same across.
        const int ly = (int)(yy + padding) - (int)kernel + 1;
        const int lx = (int)(xx + padding) - (int)kernel + 1;
        const unsigned int oy0 = ly <= 0 ? 0 : ((unsigned int)ly + stride - 1) / stride;
        const unsigned int ox0 = lx <= 0 ? 0 : ((unsigned int)lx + stride - 1) / stride;
        const unsigned int oy1 = min_u((yy + padding) / stride + 1, oh);
        const unsigned int ox1 = min_u((xx + padding) / stride + 1, ow);
        const size_t base = (size_t)plane * oh * ow;
        T sum = 0;
        for (unsigned int oy = oy0; oy < oy1; ++oy) {
            for (unsigned int ox = ox0; ox < ox1; ++ox) {
                const size_t o = base + oy * ow + ox;
                if (argmax[o] == cell) {
                    sum += grad[o];
                }
            }
        }
        out[i] = sum;
    }
}

#define MAX_POOL_KERNELS(T, SUFFIX)                                                         \
    TOPO_KERNEL void max_pool2d_fwd_##SUFFIX(                                               \
        const T *x, T *y, unsigned int *argmax, unsigned int n, unsigned int h,             \
        unsigned int w, unsigned int oh, unsigned int ow, unsigned int kernel,              \
        unsigned int stride, unsigned int padding) {                                        \
        max_pool2d_fwd<T>(x, y, argmax, n, h, w, oh, ow, kernel, stride, padding);          \
    }                                                                                       \
    TOPO_KERNEL void max_pool2d_bwd_##SUFFIX(                                               \
        const T *grad, const unsigned int *argmax, T *out, unsigned int n, unsigned int h,  \
        unsigned int w, unsigned int oh, unsigned int ow, unsigned int kernel,              \
        unsigned int stride, unsigned int padding) {                                        \
        max_pool2d_bwd<T>(grad, argmax, out, n, h, w, oh, ow, kernel, stride, padding);     \
    }

MAX_POOL_KERNELS(float, f32)
MAX_POOL_KERNELS(double, f64)
