//! The bound on input that continuous ingest holds in memory, in bytes: a piece of input holds
//! its size from when it is read until its rows are committed, and while the budget is spent
//! the sources wait (standard input, Pub/Sub) or refuse (HTTP answers 503).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Shared by the sources and the committer; clones share one budget.
#[derive(Clone)]
pub struct ByteBudget {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    capacity: usize,
    held: usize,
    closed: bool,
}

impl State {
    /// Whether `bytes` more fit. Input larger than the whole budget fits when nothing else is
    /// held, so it waits its turn instead of never going through.
    fn fits(&self, bytes: usize) -> bool {
        self.held == 0 || self.held + bytes <= self.capacity
    }
}

impl ByteBudget {
    pub fn new(capacity: usize) -> Self {
        ByteBudget {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    capacity,
                    held: 0,
                    closed: false,
                }),
                freed: Condvar::new(),
            }),
        }
    }

    /// `bytes` of the budget if they fit now.
    pub fn try_hold(&self, bytes: usize) -> Option<Held> {
        let mut state = self.shared.lock();
        (!state.closed && state.fits(bytes)).then(|| self.take(&mut state, bytes))
    }

    /// Waits until `bytes` fit; `None` once the budget is closed.
    pub fn hold(&self, bytes: usize) -> Option<Held> {
        let mut state = self.shared.lock();
        while !state.closed && !state.fits(bytes) {
            state = self
                .shared
                .freed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        (!state.closed).then(|| self.take(&mut state, bytes))
    }

    /// Wakes every source waiting for room and refuses them: the ingest is stopping.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.freed.notify_all();
    }

    fn take(&self, state: &mut State, bytes: usize) -> Held {
        state.held += bytes;
        Held {
            shared: self.shared.clone(),
            bytes,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Bytes of the budget, given back when dropped.
pub struct Held {
    shared: Arc<Shared>,
    bytes: usize,
}

impl Held {
    /// Gives back what was held beyond `bytes` (a body shorter than its reservation).
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.shared.lock().held -= self.bytes - bytes;
            self.bytes = bytes;
            self.shared.freed.notify_all();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shared.lock().held -= self.bytes;
        self.shared.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn what_does_not_fit_is_refused_until_bytes_are_given_back() {
        let budget = ByteBudget::new(100);
        let mut first = budget.try_hold(60).expect("fits");
        assert!(budget.try_hold(50).is_none());
        first.shrink_to(50);
        let second = budget.try_hold(50).expect("fits after the shrink");
        drop(first);
        drop(second);
        assert!(budget.try_hold(100).is_some());
    }

    #[test]
    fn input_larger_than_the_budget_goes_through_alone() {
        let budget = ByteBudget::new(100);
        let small = budget.try_hold(1).expect("fits");
        assert!(budget.try_hold(500).is_none());
        drop(small);
        assert!(budget.try_hold(500).is_some());
    }

    /// `hold(bytes)` on another thread; its answer, which must come within a bound.
    fn hold_elsewhere(budget: &ByteBudget, bytes: usize) -> impl FnOnce() -> bool {
        let (answer, answered) = std::sync::mpsc::channel();
        let budget = budget.clone();
        std::thread::spawn(move || answer.send(budget.hold(bytes).is_some()));
        move || {
            answered
                .recv_timeout(Duration::from_secs(10))
                .expect("the waiting source was never woken")
        }
    }

    #[test]
    fn a_waiting_source_proceeds_when_bytes_are_freed_and_is_refused_once_closed() {
        let budget = ByteBudget::new(10);
        let held = budget.try_hold(10).expect("fits");
        let answer = hold_elsewhere(&budget, 5);
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert!(answer(), "held once the bytes were freed");

        let held = budget.try_hold(10).expect("fits");
        let answer = hold_elsewhere(&budget, 5);
        budget.close();
        assert!(!answer(), "refused once closed");
        drop(held);
        assert!(
            budget.try_hold(1).is_none(),
            "a closed budget holds nothing"
        );
    }
}
