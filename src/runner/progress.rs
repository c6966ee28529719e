//! The plan's progress: runs done, failed and pending, and an ETA from the epochs
//! trained so far. On a terminal it is a line above the epoch's bar; elsewhere (logs,
//! CI, Slurm) a line is printed each time a run ends.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::log::{bars, bars_visible, log};

/// Counts of the plan so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub done: usize,
    pub failed: usize,
    pub pending: usize,
    /// Epochs still to train over the pending runs.
    pub epochs_left: u64,
    /// Epochs trained by this process.
    pub epochs_trained: u64,
}

/// How a pending run left this process's hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Done,
    Failed,
    /// Another worker holds it (its lock): neither done nor failed here.
    Elsewhere,
}

/// Shared by the workers of one `topo run`.
pub struct PlanProgress {
    counts: Mutex<Counts>,
    started: Instant,
    /// Drawn on a terminal only.
    bar: Option<ProgressBar>,
}

impl PlanProgress {
    /// `pending` holds each pending run's epochs still to train.
    pub fn new(done: usize, failed: usize, pending: &[u64]) -> PlanProgress {
        let counts = Counts {
            done,
            failed,
            pending: pending.len(),
            epochs_left: pending.iter().sum(),
            epochs_trained: 0,
        };
        let bar = bars_visible().then(|| {
            let style = ProgressStyle::with_template("plan [{bar:25}] {pos}/{len} runs {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let total = (done + failed + pending.len()) as u64;
            bars().add(ProgressBar::new(total).with_style(style))
        });
        let progress = PlanProgress {
            counts: Mutex::new(counts),
            started: Instant::now(),
            bar,
        };
        progress.draw(counts);
        progress
    }

    /// An epoch of a pending run was committed.
    pub fn epoch_done(&self) {
        let counts = self.update(|c| {
            c.epochs_left = c.epochs_left.saturating_sub(1);
            c.epochs_trained += 1;
        });
        self.draw(counts);
    }

    /// A pending run ended; `epochs_unused` are the epochs it was still counted for (a
    /// failed run's remainder, or all of one another worker holds).
    pub fn run_ended(&self, end: RunEnd, epochs_unused: u64) {
        let counts = self.update(|c| {
            c.pending = c.pending.saturating_sub(1);
            c.epochs_left = c.epochs_left.saturating_sub(epochs_unused);
            match end {
                RunEnd::Done => c.done += 1,
                RunEnd::Failed => c.failed += 1,
                RunEnd::Elsewhere => {}
            }
        });
        self.draw(counts);
        if self.bar.is_none() {
            log(&format!("  plan: {}", line(counts, self.eta(counts))));
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().map(|c| *c).unwrap_or_default()
    }

    /// Clears the line (the summary follows it).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            bars().remove(bar);
        }
    }

    fn update(&self, f: impl FnOnce(&mut Counts)) -> Counts {
        match self.counts.lock() {
            Ok(mut c) => {
                f(&mut c);
                *c
            }
            // A worker panicked holding the counts: the line is all that is lost.
            Err(_) => Counts::default(),
        }
    }

    /// Wall time per epoch so far (loading, testing and pruning included) times the
    /// epochs left; none before the first epoch.
    fn eta(&self, c: Counts) -> Option<Duration> {
        eta(self.started.elapsed(), c)
    }

    fn draw(&self, c: Counts) {
        if let Some(bar) = &self.bar {
            bar.set_position((c.done + c.failed) as u64);
            bar.set_message(line(c, self.eta(c)));
        }
    }
}

/// `elapsed / epochs trained * epochs left`.
pub fn eta(elapsed: Duration, c: Counts) -> Option<Duration> {
    (c.epochs_trained > 0).then(|| elapsed.mul_f64(c.epochs_left as f64 / c.epochs_trained as f64))
}

/// `3 done, 1 failed, 6 pending; ETA 12 min`.
pub fn line(c: Counts, eta: Option<Duration>) -> String {
    let eta = match (c.pending, eta) {
        (0, _) => String::new(),
        (_, Some(eta)) => format!("; ETA {}", human(eta)),
        (_, None) => "; ETA after the first epoch".into(),
    };
    format!(
        "{} done, {} failed, {} pending{eta}",
        c.done, c.failed, c.pending
    )
}

/// `45 s`, `12 min`, `3 h 20 min`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_scales_the_time_per_epoch_by_the_epochs_left() {
        let c = Counts {
            done: 1,
            failed: 0,
            pending: 2,
            epochs_left: 6,
            epochs_trained: 3,
        };
        assert_eq!(
            eta(Duration::from_secs(30), c),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            line(c, Some(Duration::from_secs(60))),
            "1 done, 0 failed, 2 pending; ETA 1 min"
        );
        let fresh = Counts {
            epochs_trained: 0,
            ..c
        };
        assert_eq!(eta(Duration::from_secs(30), fresh), None);
        assert_eq!(
            line(fresh, None),
            "1 done, 0 failed, 2 pending; ETA after the first epoch"
        );
        let over = Counts {
            pending: 0,
            epochs_left: 0,
            ..c
        };
        assert_eq!(
            line(over, Some(Duration::ZERO)),
            "1 done, 0 failed, 0 pending"
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(45)), "45 s");
        assert_eq!(human(Duration::from_secs(61)), "2 min");
        assert_eq!(
            human(Duration::from_secs(3 * 3600 + 20 * 60 + 5)),
            "3 h 20 min"
        );
    }

    #[test]
    fn runs_move_from_pending_to_done_or_failed() {
        let p = PlanProgress::new(2, 0, &[3, 3]);
        p.epoch_done();
        p.run_ended(RunEnd::Failed, 2);
        let c = p.counts();
        assert_eq!(
            (c.done, c.failed, c.pending, c.epochs_left, c.epochs_trained),
            (2, 1, 1, 3, 1)
        );
        p.finish();
    }
}
