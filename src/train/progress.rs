//! The progress bar of an epoch: loss, accuracy, throughput, ETA. Hidden when stderr is
//! not a terminal (logs, CI, Slurm), where one line per epoch is printed instead.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over the batches of one epoch.
pub struct EpochBar {
    bar: ProgressBar,
}

impl EpochBar {
    pub fn new(prefix: String, batches: usize, examples_per_batch: usize) -> EpochBar {
        let bar = ProgressBar::new((batches * examples_per_batch) as u64);
        if std::io::stderr().is_terminal() && !crate::log::in_parallel_worker() {
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:25}] {pos}/{len} img {msg} {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
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
    }
}
