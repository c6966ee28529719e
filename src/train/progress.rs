//! The progress bar of an epoch: loss, accuracy, throughput, ETA. Hidden when stderr is
//! not a terminal (logs, CI, Slurm), where one line per epoch is printed instead.

use std::fmt;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Told when an epoch is committed: the plan's progress line counts them.
#[derive(Clone)]
pub struct EpochHook(Arc<dyn Fn() + Send + Sync>);

impl EpochHook {
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> EpochHook {
        EpochHook(Arc::new(f))
    }

    pub fn call(&self) {
        (self.0)();
    }
}

impl fmt::Debug for EpochHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EpochHook")
    }
}

/// A bar over the batches of one epoch.
pub struct EpochBar {
    bar: ProgressBar,
}

impl EpochBar {
    pub fn new(prefix: String, batches: usize, examples_per_batch: usize) -> EpochBar {
        let len = (batches * examples_per_batch) as u64;
        let bar = if crate::log::bars_visible() && !crate::log::in_parallel_worker() {
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:25}] {pos}/{len} img {msg} {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            // Below the plan's line, which joined the set first.
            crate::log::bars().add(ProgressBar::new(len).with_style(style))
        } else {
            ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
        };
        bar.set_prefix(prefix);
        EpochBar { bar }
    }

    pub fn advance(&mut self, examples: usize, loss: f64, accuracy: f64) {
        self.bar
            .set_message(format!("loss {loss:.3} acc {:.1}%", accuracy * 100.0));
        self.bar.inc(examples as u64);
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
        crate::log::bars().remove(&self.bar);
    }
}
