//! The one policy for a poisoned lock: take the value anyway.
//!
//! A lock is poisoned when a thread panicked while holding it. Every lock of `topo`
//! guards a value that each critical section leaves whole (a variable map whose entries
//! are replaced, never half-written; a random stream; counters), and the panic itself
//! reaches the user through its own thread's join. Failing again here would only hide it
//! behind a second, vaguer error.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering the guard of a poisoned lock.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_value() {
        let m = std::sync::Arc::new(Mutex::new(7));
        let held = std::sync::Arc::clone(&m);
        let panicked = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("while holding the lock");
        })
        .join();
        assert!(panicked.is_err() && m.is_poisoned());
        assert_eq!(*lock(&m), 7);
    }
}
