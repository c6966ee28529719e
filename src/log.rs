//! Log lines on stderr, prefixed by the run they belong to when several runs train at
//! once (`--jobs N`), so that every part of `topo` (loaders, training, locks, the
//! runner) prints through one place and workers' lines stay apart. On a terminal the
//! progress bars (the plan's, then the epoch's) live in one [`bars`] set, and lines are
//! printed above them.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::sync::LazyLock;

use indicatif::{MultiProgress, ProgressDrawTarget};

/// Every progress bar of the process, drawn on stderr when it is a terminal.
static BARS: LazyLock<MultiProgress> = LazyLock::new(|| {
    if std::io::stderr().is_terminal() {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    }
});

/// The set progress bars join, in the order they are shown (top first).
pub fn bars() -> &'static MultiProgress {
    &BARS
}

/// Whether progress bars are drawn (stderr is a terminal).
pub fn bars_visible() -> bool {
    !BARS.is_hidden()
}

thread_local! {
    static PREFIX: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sets (or clears) the prefix of this thread's log lines: the run a worker trains.
pub fn set_log_prefix(prefix: Option<String>) {
    PREFIX.with(|p| *p.borrow_mut() = prefix);
}

/// Whether this thread is one of several workers: their lines carry a prefix, and
/// progress bars, which would overwrite each other, stay hidden.
pub fn in_parallel_worker() -> bool {
    PREFIX.with(|p| p.borrow().is_some())
}

/// The line as it is printed on this thread: `[prefix] line` in a parallel worker.
pub fn prefixed(line: &str) -> String {
    PREFIX.with(|p| match p.borrow().as_deref() {
        Some(prefix) => line
            .lines()
            .map(|l| format!("[{prefix}] {}", l.trim_start()))
            .collect::<Vec<_>>()
            .join("\n"),
        None => line.to_string(),
    })
}

/// Prints one log line on stderr, prefixed in a parallel worker. One `eprintln!` per
/// line keeps lines of different workers whole.
pub fn log(line: &str) {
    let line = prefixed(line);
    // The bars are cleared for the line and drawn again below it.
    BARS.suspend(|| eprintln!("{line}"));
}

/// An error with its causes, `outer: inner: innermost`: how every error is shown where
/// it is kept or printed as text, since each message leaves its cause to the chain.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let said = cause.to_string();
        // A transparent wrapper says what its source says: once is enough.
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        next = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write results/x.json")]
    struct Write(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    struct Wrapper(#[from] Write);

    #[test]
    fn a_chain_says_each_cause_once() {
        let io = std::io::Error::from_raw_os_error(28);
        let said = io.to_string();
        let e = Wrapper(Write(io));
        assert_eq!(chain(&e), format!("cannot write results/x.json: {said}"));
        assert_eq!(chain(&e).matches(&said).count(), 1);
    }

    use super::*;

    #[test]
    fn lines_of_a_parallel_worker_carry_its_run() {
        assert_eq!(prefixed("  epoch 1/2"), "  epoch 1/2");
        assert!(!in_parallel_worker());
        set_log_prefix(Some("run-a".into()));
        assert!(in_parallel_worker());
        assert_eq!(
            prefixed("  epoch 1/2\n  done"),
            "[run-a] epoch 1/2\n[run-a] done"
        );
        set_log_prefix(None);
        assert!(!in_parallel_worker());
    }
}
