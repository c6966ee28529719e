//! Hot loops compiled for the widest vector instructions the CPU has.
//!
//! The crate is built for the baseline x86-64 (SSE2), which is what a stock build gives
//! its users; loops that vectorise gain 2-4x from AVX2 or AVX-512, so they run under
//! pulp's safe runtime dispatch instead.

/// Runs `f` compiled for the widest vector instructions this CPU has (AVX-512, or AVX2
/// with FMA, else the portable baseline), by pulp's safe runtime dispatch. Only what is
/// inlined into `f` is compiled so: hence `#[inline(always)]` on everything it calls
/// (closures passed in included). The results are the same bits whichever is chosen:
/// no fused multiply-add or reassociation is introduced.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    struct Op<F>(F);
    impl<R, F: FnOnce() -> R> pulp::WithSimd for Op<F> {
        type Output = R;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> R {
            (self.0)()
        }
    }
    pulp::Arch::new().dispatch(Op(f))
}
