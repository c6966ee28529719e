//! The learning-rate schedule of the reference's training scripts.
//!
//! They build `LinearWarmupCosineAnnealingLR(optimizer, warmup_epochs=epochs * 0.3,
//! max_epochs=epochs)` (the lightning-bolts scheduler, `topography/utils/scheduler.py`) with
//! its defaults `warmup_start_lr = 0` and `eta_min = 0`, and call `step()` once after each
//! epoch. `warmup_epochs` is therefore fractional (3.6 for 12 epochs), and the scheduler's
//! recursive ("chainable") form is what runs:
//! - epoch 0 trains at `warmup_start_lr` (0);
//! - while `e < w`: `lr += (base - start) / (w - 1)` (it may overshoot `base` when `w` is
//!   fractional: 12 epochs train epoch 3 at `3/2.6 * base`);
//! - at `e == w` exactly: `lr = base`;
//! - after: `lr = (1 + cos(pi (e - w) / (E - w))) / (1 + cos(pi (e - w - 1) / (E - w))) * lr`
//!   (with `eta_min = 0`), a ratio that follows the cosine from whatever value warm-up
//!   ended on; the scheduler's special case for `(e - 1 - E) % (2 (E - w)) == 0` never
//!   falls inside training.
//!
//! This function replays that recursion, so its values are the reference's to rounding.
//! With `w < 1` (fewer than 4 epochs at warm-up 0.3) the reference never leaves 0.
//! `topography/models/scheduler.py` (`WarmupCosineLR`) has the same formulas with
//! `1e-8` defaults, but the training scripts do not use it.

use crate::config::{ScheduleKind, ScheduleSpec};

/// The learning rate used during epoch `epoch` (0-based) of `epochs`.
pub fn learning_rate(schedule: &ScheduleSpec, base_lr: f64, epoch: u32, epochs: u32) -> f64 {
    match schedule.kind {
        ScheduleKind::Constant => base_lr,
        ScheduleKind::WarmupCosine => warmup_cosine(
            base_lr,
            schedule.warmup * f64::from(epochs),
            f64::from(epochs),
            epoch,
        ),
    }
}

/// The reference scheduler's `lr` after `steps` calls to `step()`, with
/// `warmup_start_lr = eta_min = 0`.
fn warmup_cosine(base: f64, warmup: f64, max_epochs: f64, steps: u32) -> f64 {
    let start = 0.0;
    let eta_min = 0.0;
    let mut lr = start;
    for e in 1..=steps {
        let e = f64::from(e);
        let next = if e < warmup {
            lr + (base - start) / (warmup - 1.0)
        } else if e == warmup {
            base
        } else {
            let span = max_epochs - warmup;
            let period = 2.0 * span;
            if (e - 1.0 - max_epochs).rem_euclid(period) == 0.0 {
                lr + (base - eta_min) * (1.0 - (std::f64::consts::PI / span).cos()) / 2.0
            } else {
                let num = 1.0 + (std::f64::consts::PI * (e - warmup) / span).cos();
                let den = 1.0 + (std::f64::consts::PI * (e - warmup - 1.0) / span).cos();
                num / den * (lr - eta_min) + eta_min
            }
        };
        // Where the reference would divide by zero (only past the last epoch, or with a
        // warm-up covering every epoch), keep the previous value instead of a NaN.
        if next.is_finite() {
            lr = next;
        }
    }
    lr
}

#[cfg(test)]
mod last_epoch {
    use super::*;

    #[test]
    fn the_rate_nears_zero_without_reaching_it() {
        let spec = ScheduleSpec::default();
        let last = |epochs| learning_rate(&spec, 1.0, epochs - 1, epochs);
        // As the schedule's docs say: 0.05%, 0.4% and 4% of the base rate.
        for (epochs, share) in [(100, 0.0005), (36, 0.004), (12, 0.04)] {
            let got = last(epochs);
            // 0.000503, 0.00397 and 0.0404 of it.
            assert!(
                got > 0.0 && (got / share - 1.0).abs() < 0.02,
                "{epochs}: {got}"
            );
        }
    }
}
