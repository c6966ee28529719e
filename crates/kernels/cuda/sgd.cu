// The SGD update in place (src/sgd.rs), f32. Every product and sum is rounded on its own
// (__fmul_rn, __fadd_rn: no fused multiply-add), so each element goes through the CPU
// kernel's f32 operations in its order and both devices agree bit for bit.

#include "portable.cuh"

// buf = buf * momentum + (grad + p * weight_decay)
TOPO_KERNEL void sgd_momentum_f32(float *buf, const float *grad, const float *p,
                                  unsigned int n, float momentum, float weight_decay) {
    for (unsigned int i = first_index(); i < n; i += index_stride()) {
        buf[i] = __fadd_rn(__fmul_rn(buf[i], momentum),
                           __fadd_rn(grad[i], __fmul_rn(p[i], weight_decay)));
    }
}

// p = p - buf * lr
TOPO_KERNEL void sgd_descend_f32(float *p, const float *buf, unsigned int n, float lr) {
    for (unsigned int i = first_index(); i < n; i += index_stride()) {
        p[i] = __fsub_rn(p[i], __fmul_rn(buf[i], lr));
    }
}
