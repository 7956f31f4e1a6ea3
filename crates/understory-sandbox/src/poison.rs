//! Locks taken whatever a panicking holder left: the one way the sandbox takes a `Mutex` or
//! `RwLock`.
//!
//! A thread that panics while holding a lock poisons it. What the sandbox's locks guard (the
//! world, tokens, cursors, counters, logs) is whole between any two statements, so the next
//! request takes the data as it is rather than failing every request after one panic.
//!
//! The job has the same helper (`understory_sync::poison`); this is a copy on purpose, not a
//! share. The sandbox cannot use the job's crate (the job's binary uses the sandbox, and Cargo
//! refuses the cycle), the job's library must not use the sandbox's (it would bring the
//! sandbox's server into every build of the job), and a third crate for twenty lines would cost
//! more to keep than the copy.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `Mutex::lock` that never fails.
pub trait Unpoisoned<T: ?Sized> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Unpoisoned<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `RwLock`'s two ways in.
pub trait UnpoisonedRw<T: ?Sized> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

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
