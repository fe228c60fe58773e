//! Single-threaded waiting primitives for one executor: a monotonic offset others wait to
//! reach ([`Watermark`]) and a broadcast wake-up ([`Event`]). No locks: everything lives on
//! the partition's core. Wakers are registered only while a waiter is pending and are
//! removed when woken, so the lists stay bounded by the number of waiting tasks.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

/// An offset that only grows (except by an explicit [`Watermark::reset`] on truncation) and
/// that tasks can wait on. Once failed, every waiter gets `false`.
#[derive(Debug, Default)]
pub(crate) struct Watermark {
    value: Cell<i64>,
    failed: Cell<bool>,
    waiters: RefCell<Vec<(i64, Waker)>>,
}

impl Watermark {
    pub(crate) fn new(value: i64) -> Watermark {
        Watermark {
            value: Cell::new(value),
            ..Watermark::default()
        }
    }

    pub(crate) fn get(&self) -> i64 {
        self.value.get()
    }

    pub(crate) fn advance(&self, value: i64) {
        if value <= self.value.get() {
            return;
        }
        self.value.set(value);
        let ready: Vec<Waker> = {
            let mut waiters = self.waiters.borrow_mut();
            let mut ready = Vec::new();
            waiters.retain(|(target, waker)| {
                if *target <= value {
                    ready.push(waker.clone());
                    false
                } else {
                    true
                }
            });
            ready
        };
        ready.into_iter().for_each(Waker::wake);
    }

    /// Moves the mark down after truncation. Waiters above it keep waiting.
    pub(crate) fn reset(&self, value: i64) {
        self.value.set(value);
    }

    pub(crate) fn fail(&self) {
        self.failed.set(true);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().for_each(|(_, waker)| waker.wake());
    }

    /// Resolves `true` once the mark reaches `target`, `false` if it failed first.
    pub(crate) fn wait_for(&self, target: i64) -> impl Future<Output = bool> + '_ {
        let mut registered = false;
        std::future::poll_fn(move |cx| {
            if self.value.get() >= target {
                return Poll::Ready(true);
            }
            if self.failed.get() {
                return Poll::Ready(false);
            }
            if !registered {
                // A task that waits again for the same target (a long-poll fetch that timed
                // out and retries) reuses its entry, so an idle mark's list stays bounded
                // by the number of waiting tasks.
                let mut waiters = self.waiters.borrow_mut();
                if !waiters
                    .iter()
                    .any(|(t, w)| *t == target && w.will_wake(cx.waker()))
                {
                    waiters.push((target, cx.waker().clone()));
                }
                registered = true;
            } else {
                // Re-polled without being woken by us (e.g. inside a select): refresh.
                let mut waiters = self.waiters.borrow_mut();
                match waiters
                    .iter_mut()
                    .find(|(t, w)| *t == target && w.will_wake(cx.waker()))
                {
                    Some(_) => {}
                    None => waiters.push((target, cx.waker().clone())),
                }
            }
            Poll::Pending
        })
    }
}

/// A broadcast wake-up. Take a listener *before* checking the condition you wait for, then
/// await it if the condition does not hold: a notify in between is not lost.
#[derive(Debug, Default)]
pub(crate) struct Event {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Event {
    pub(crate) fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn listen(&self) -> impl Future<Output = ()> + '_ {
        let seen = self.generation.get();
        std::future::poll_fn(move |cx| {
            if self.generation.get() != seen {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}
