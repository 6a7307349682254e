//! At most `[slack_response] max_concurrent_searches` triage searches at once per listener
//! (PRODUCT §16 "Bounded and fair"): a counting gate whose permits are handed out in arrival
//! order; a request that finds no free permit is told it is queued, and waits. The waiting line
//! is bounded too, so a flood of clicks cannot grow it without end.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

/// Requests that may wait for a permit at once; beyond it a request is refused as busy.
pub const MAX_WAITING: usize = 64;

#[derive(Debug)]
struct State {
    free: usize,
    /// Tickets waiting, first come first served.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

/// The gate (cheap to clone: shared).
#[derive(Clone, Debug)]
pub struct Slots {
    state: Arc<(Mutex<State>, Condvar)>,
}

/// A held permit; dropping it lets the next request run.
#[derive(Debug)]
pub struct Permit {
    slots: Slots,
}

/// What `Slots::enter` found.
#[derive(Debug)]
pub enum Entry {
    /// A permit was free.
    Now(Permit),
    /// Queued behind `ahead` requests; `Waiter::wait` gives the permit in turn.
    Queued(Waiter, usize),
    /// The waiting line is full.
    Busy,
}

#[derive(Debug)]
pub struct Waiter {
    slots: Slots,
    ticket: u64,
}

fn lock(mutex: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Slots {
    pub fn new(permits: usize) -> Slots {
        let state = State { free: permits.max(1), waiting: VecDeque::new(), next_ticket: 0 };
        Slots { state: Arc::new((Mutex::new(state), Condvar::new())) }
    }

    /// Takes a permit if one is free and nobody waits; else joins the line (if not full).
    pub fn enter(&self) -> Entry {
        let mut state = lock(&self.state.0);
        if state.free > 0 && state.waiting.is_empty() {
            state.free -= 1;
            return Entry::Now(Permit { slots: self.clone() });
        }
        if state.waiting.len() >= MAX_WAITING {
            return Entry::Busy;
        }
        let ticket = state.next_ticket;
        state.next_ticket = state.next_ticket.wrapping_add(1);
        state.waiting.push_back(ticket);
        let ahead = state.waiting.len() - 1;
        Entry::Queued(Waiter { slots: self.clone(), ticket }, ahead)
    }

    /// Permits free now (for tests and logs).
    pub fn free(&self) -> usize {
        lock(&self.state.0).free
    }
}

impl Waiter {
    /// Blocks until this request's turn and a free permit.
    pub fn wait(self) -> Permit {
        let (mutex, condvar) = &*self.slots.state;
        let mut state = lock(mutex);
        while !(state.free > 0 && state.waiting.front() == Some(&self.ticket)) {
            state = condvar.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.free -= 1;
        state.waiting.pop_front();
        drop(state);
        // The next in line may be able to go too (several permits).
        condvar.notify_all();
        Permit { slots: self.slots.clone() }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (mutex, condvar) = &*self.slots.state;
        lock(mutex).free += 1;
        condvar.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn at_most_n_hold_a_permit_and_the_rest_queue_in_order() {
        let slots = Slots::new(2);
        let a = match slots.enter() {
            Entry::Now(permit) => permit,
            other => panic!("{other:?}"),
        };
        let _b = match slots.enter() {
            Entry::Now(permit) => permit,
            other => panic!("{other:?}"),
        };
        let (waiter, ahead) = match slots.enter() {
            Entry::Queued(waiter, ahead) => (waiter, ahead),
            other => panic!("{other:?}"),
        };
        assert_eq!((ahead, slots.free()), (0, 0));
        let running = Arc::new(AtomicUsize::new(0));
        let seen = running.clone();
        let handle = std::thread::spawn(move || {
            let _permit = waiter.wait();
            seen.fetch_add(1, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(running.load(Ordering::SeqCst), 0, "the third waits while two run");
        drop(a);
        handle.join().unwrap();
        assert_eq!(running.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_waiting_line_is_bounded() {
        let slots = Slots::new(1);
        let _held = slots.enter();
        let waiters: Vec<Entry> = (0..MAX_WAITING).map(|_| slots.enter()).collect();
        assert!(waiters.iter().all(|entry| matches!(entry, Entry::Queued(..))));
        assert!(matches!(slots.enter(), Entry::Busy));
    }
}
