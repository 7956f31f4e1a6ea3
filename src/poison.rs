//! Locks taken whatever a panicking holder left: the one way the job takes a `Mutex` or `RwLock`.
//!
//! A thread that panics while holding a lock poisons it. What these locks guard is whole between
//! any two statements (counters, caches, a connection), and a panic in the job ends the process
//! anyway (the panic hook closes the run's row first), so the next holder takes the data as it
//! is rather than panicking in turn. The sandbox keeps a copy of its own (its `poison` module
//! says why).

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `Mutex::lock` that never fails.
pub trait Unpoisoned<T: ?Sized> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Unpoisoned<T> for Mutex<T> {
    #[allow(clippy::disallowed_methods)] // the one place that takes a lock
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `RwLock`'s two ways in.
pub(crate) trait UnpoisonedRw<T: ?Sized> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

#[allow(clippy::disallowed_methods)] // the one place that takes a lock
impl<T: ?Sized> UnpoisonedRw<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_a_panic_poisoned_is_taken_with_its_data() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let r = std::sync::Arc::new(RwLock::new(2));
        let (m2, r2) = (std::sync::Arc::clone(&m), std::sync::Arc::clone(&r));
        #[allow(clippy::disallowed_methods)]
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            let _w = r2.write().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned() && r.is_poisoned());
        assert_eq!(*m.locked(), 1);
        assert_eq!(*r.read_locked(), 2);
        *r.write_locked() = 3;
        assert_eq!(*r.read_locked(), 3);
    }
}
