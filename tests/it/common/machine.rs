//! The machine, shared between the tests of this binary.
//!
//! All integration tests run as threads of one process, two at a time on two cores. A few of
//! them measure the machine — the time and memory of a server process under a flood, the end
//! to end control plane with its five-second webhook timeout — and must not share it with a
//! test that signs, scans or pushes meanwhile. They take [`alone`]; everything that loads the
//! machine holds a [`Shared`] while it lives: each [`Registry`](super::registry::Registry),
//! each `trustgate` process ([`super::cli::trustgate`], [`super::webhook::ServeProcess`]), and
//! the hostile-registry reviews. While a test waits to be alone, no new share is handed out
//! (except to a thread that already holds one, which would otherwise wait on itself), so it
//! gets the machine as soon as the running tests are done with it.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;

struct State {
    /// The thread that has the machine to itself.
    alone: Option<ThreadId>,
    /// Threads waiting to be alone.
    waiting: usize,
    /// One entry per share held: the thread that took it.
    shared: Vec<ThreadId>,
}

static STATE: Mutex<State> = Mutex::new(State { alone: None, waiting: 0, shared: Vec::new() });
static CHANGED: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait(guard: MutexGuard<'static, State>) -> MutexGuard<'static, State> {
    CHANGED.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// A share of the machine (see [`shared`]); released on drop, on whatever thread.
#[must_use = "the share is released when dropped"]
pub struct Shared {
    /// The thread it was counted under; `None` for a share taken by the thread that is alone.
    thread: Option<ThreadId>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Some(thread) = self.thread else { return };
        let mut state = lock();
        if let Some(i) = state.shared.iter().position(|t| *t == thread) {
            state.shared.swap_remove(i);
        }
        drop(state);
        CHANGED.notify_all();
    }
}

/// Takes a share of the machine: waits while a test has it alone, or waits to.
pub fn shared() -> Shared {
    let me = std::thread::current().id();
    let mut state = lock();
    loop {
        if state.alone == Some(me) {
            return Shared { thread: None };
        }
        if state.alone.is_none() && (state.waiting == 0 || state.shared.contains(&me)) {
            state.shared.push(me);
            return Shared { thread: Some(me) };
        }
        state = wait(state);
    }
}

/// The machine to one test alone (see [`alone`]); released on drop.
#[must_use = "the machine is released when dropped"]
pub struct Alone(());

impl Drop for Alone {
    fn drop(&mut self) {
        lock().alone = None;
        CHANGED.notify_all();
    }
}

/// Waits until no other test holds the machine, shared or alone, and has it alone until the
/// guard drops. Take it first thing in the test: a thread holding a share cannot be alone.
pub fn alone() -> Alone {
    let me = std::thread::current().id();
    let mut state = lock();
    assert!(!state.shared.contains(&me), "machine::alone() must come before this test's own shares");
    state.waiting += 1;
    while state.alone.is_some() || !state.shared.is_empty() {
        state = wait(state);
    }
    state.waiting -= 1;
    state.alone = Some(me);
    Alone(())
}
