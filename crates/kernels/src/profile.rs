//! Wall time per operation, for the bench's op-by-op profile (`train_step --profile`).
//!
//! Off unless [`enable`]d: a scope then costs one relaxed atomic load. On, every scope
//! adds its wall time and a call to the total of its name and operand shapes. Each op's
//! CPU forward is one scope (a backward is ops of its own, timed as such); only the
//! unfold conv runs another op inside, whose time then counts under both.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static TOTALS: Mutex<BTreeMap<(&'static str, String), Total>> = Mutex::new(BTreeMap::new());

/// One name's time and calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Total {
    pub time: Duration,
    pub calls: u64,
}

/// Starts recording scopes.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Times from here to the end of the enclosing block under `name` (bind it to a named
/// variable: `let _timer = scope(..)`).
#[must_use = "the scope ends when this is dropped"]
pub fn scope(name: &'static str) -> Scope {
    scope_of(name, &[])
}

/// [`scope`] under `name` and the shapes of its operands (formatted only when enabled),
/// so that a report tells a model's layers apart.
#[must_use = "the scope ends when this is dropped"]
pub fn scope_of(name: &'static str, shapes: &[&[usize]]) -> Scope {
    let on = ENABLED.load(Ordering::Relaxed);
    Scope {
        name,
        shapes: if on {
            shapes
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            String::new()
        },
        start: on.then(Instant::now),
    }
}

/// A running timer; see [`scope`].
pub struct Scope {
    name: &'static str,
    shapes: String,
    start: Option<Instant>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            let elapsed = start.elapsed();
            // A poisoned lock only means another thread panicked mid-update of a sum:
            // the totals are still usable for a profile.
            let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
            let key = (self.name, std::mem::take(&mut self.shapes));
            let total = totals.entry(key).or_default();
            total.time += elapsed;
            total.calls += 1;
        }
    }
}

/// The totals so far per name and operand shapes, and clears them (to drop the warm-up
/// steps).
pub fn take() -> BTreeMap<(&'static str, String), Total> {
    std::mem::take(&mut *TOTALS.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_add_up_per_name_only_when_enabled() {
        {
            let _off = scope("test-profile-off");
        }
        enable();
        for _ in 0..3 {
            let _on = scope("test-profile-on");
            std::thread::sleep(Duration::from_millis(1));
        }
        let totals = take();
        assert!(!totals.keys().any(|(name, _)| *name == "test-profile-off"));
        let on = totals[&("test-profile-on", String::new())];
        assert_eq!(on.calls, 3);
        assert!(on.time >= Duration::from_millis(3));
        {
            let _shaped = scope_of("test-profile-shaped", &[&[2, 3], &[4]]);
        }
        let totals = take();
        assert_eq!(
            totals[&("test-profile-shaped", "[2, 3] [4]".to_string())].calls,
            1
        );
    }
}
