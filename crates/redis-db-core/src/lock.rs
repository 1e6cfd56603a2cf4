//! Locking a std mutex whose holder may have panicked.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, carrying on after a panic of another holder: every value this crate keeps
/// behind a std mutex (a timestamp, a connection, a histogram, a list of tasks) is whole
/// between any two statements, so a panic mid-update leaves nothing to repair, and refusing
/// the lock would turn one failed call into every later call failing.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
