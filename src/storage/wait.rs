//! Single-threaded waiting primitives for one executor: a monotonic offset others wait to
//! reach ([`Watermark`]) and a broadcast wake-up ([`Event`]). No locks: everything lives on
//! the owning core.
//!
//! Each waiting future owns one entry (by key) in its primitive's list: re-polling replaces
//! that entry's waker, dropping the future removes it, waking removes it. So a list holds
//! exactly the futures pending now. Deduplicating by `Waker::will_wake` is not enough:
//! glommio 0.9's wakers of one task do not always compare equal, and a long-lived
//! connection that long-polls thousands of times then piles up clones of its own waker
//! until the task's 16-bit reference count overflows and glommio panics (seen under load).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Pending waiters: (key, target, waker).
#[derive(Debug, Default)]
struct Waiters {
    next_key: Cell<u64>,
    entries: RefCell<Vec<(u64, i64, Waker)>>,
}

impl Waiters {
    /// Registers (or refreshes) the entry `key` names, creating it on first use.
    fn register(&self, key: &mut Option<u64>, target: i64, waker: &Waker) {
        let mut entries = self.entries.borrow_mut();
        if let Some(existing) = *key
            && let Some(entry) = entries.iter_mut().find(|e| e.0 == existing)
        {
            if !entry.2.will_wake(waker) {
                entry.2 = waker.clone();
            }
            return;
        }
        let new_key = self.next_key.get();
        self.next_key.set(new_key + 1);
        entries.push((new_key, target, waker.clone()));
        *key = Some(new_key);
    }

    fn remove(&self, key: Option<u64>) {
        if let Some(key) = key {
            let mut entries = self.entries.borrow_mut();
            if let Some(at) = entries.iter().position(|e| e.0 == key) {
                entries.swap_remove(at);
            }
        }
    }

    /// Removes and wakes every entry `ready` picks (outside the borrow: a woken task may
    /// register again at once on another executor tick, never inside this call).
    fn wake_where(&self, ready: impl Fn(i64) -> bool) {
        let woken: Vec<Waker> = {
            let mut entries = self.entries.borrow_mut();
            let mut woken = Vec::new();
            entries.retain(|(_, target, waker)| {
                if ready(*target) {
                    woken.push(waker.clone());
                    false
                } else {
                    true
                }
            });
            woken
        };
        woken.into_iter().for_each(Waker::wake);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

/// An offset that only grows (except by an explicit [`Watermark::reset`] on truncation) and
/// that tasks can wait on. Once failed, every waiter gets `false`.
#[derive(Debug, Default)]
pub(crate) struct Watermark {
    value: Cell<i64>,
    failed: Cell<bool>,
    waiters: Waiters,
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
        self.waiters.wake_where(|target| target <= value);
    }

    /// Moves the mark down after truncation. Waiters above it keep waiting.
    pub(crate) fn reset(&self, value: i64) {
        self.value.set(value);
    }

    pub(crate) fn fail(&self) {
        self.failed.set(true);
        self.waiters.wake_where(|_| true);
    }

    /// Resolves `true` once the mark reaches `target`, `false` if it failed first.
    pub(crate) fn wait_for(&self, target: i64) -> WaitFor<'_> {
        WaitFor {
            mark: self,
            target,
            key: None,
        }
    }
}

/// The future of [`Watermark::wait_for`].
pub(crate) struct WaitFor<'a> {
    mark: &'a Watermark,
    target: i64,
    key: Option<u64>,
}

impl Future for WaitFor<'_> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        if this.mark.value.get() >= this.target {
            return Poll::Ready(true);
        }
        if this.mark.failed.get() {
            return Poll::Ready(false);
        }
        this.mark
            .waiters
            .register(&mut this.key, this.target, cx.waker());
        Poll::Pending
    }
}

impl Drop for WaitFor<'_> {
    fn drop(&mut self) {
        self.mark.waiters.remove(self.key);
    }
}

/// A broadcast wake-up. Take a listener *before* checking the condition you wait for, then
/// await it if the condition does not hold: a notify in between is not lost.
#[derive(Debug, Default)]
pub(crate) struct Event {
    generation: Cell<u64>,
    waiters: Waiters,
}

impl Event {
    pub(crate) fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        self.waiters.wake_where(|_| true);
    }

    pub(crate) fn listen(&self) -> Listen<'_> {
        Listen {
            event: self,
            seen: self.generation.get(),
            key: None,
        }
    }
}

/// The future of [`Event::listen`].
pub(crate) struct Listen<'a> {
    event: &'a Event,
    seen: u64,
    key: Option<u64>,
}

impl Future for Listen<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.event.generation.get() != this.seen {
            return Poll::Ready(());
        }
        this.event.waiters.register(&mut this.key, 0, cx.waker());
        Poll::Pending
    }
}

impl Drop for Listen<'_> {
    fn drop(&mut self) {
        self.event.waiters.remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wakes.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A new waker each call: `will_wake` is false between any two of these.
    fn fresh_waker() -> Waker {
        Waker::from(Arc::new(Counter(AtomicUsize::new(0))))
    }

    fn poll<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
        Pin::new(future).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn repolled_and_dropped_waiters_leave_no_entries() {
        let mark = Watermark::new(0);
        let event = Event::default();
        for _ in 0..10_000 {
            let mut wait = mark.wait_for(5);
            let mut listen = event.listen();
            for _ in 0..3 {
                assert!(poll(&mut wait, &fresh_waker()).is_pending());
                assert!(poll(&mut listen, &fresh_waker()).is_pending());
            }
            assert_eq!(mark.waiters.len(), 1, "one entry per pending future");
            assert_eq!(event.waiters.len(), 1);
        }
        assert_eq!(
            mark.waiters.len(),
            0,
            "dropped futures leave nothing behind"
        );
        assert_eq!(event.waiters.len(), 0);
    }

    #[test]
    fn waiters_wake_when_the_mark_reaches_them_or_fails() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mark = Watermark::new(0);
        let mut low = mark.wait_for(3);
        let mut high = mark.wait_for(10);
        assert!(poll(&mut low, &waker).is_pending());
        assert!(poll(&mut high, &waker).is_pending());
        mark.advance(3);
        assert_eq!(
            counter.0.load(Ordering::Relaxed),
            1,
            "only the reached one woke"
        );
        assert_eq!(poll(&mut low, &waker), Poll::Ready(true));
        assert!(poll(&mut high, &waker).is_pending());
        mark.fail();
        assert_eq!(counter.0.load(Ordering::Relaxed), 2);
        assert_eq!(poll(&mut high, &waker), Poll::Ready(false));

        let event = Event::default();
        let mut listen = event.listen();
        assert!(poll(&mut listen, &waker).is_pending());
        event.notify();
        assert_eq!(counter.0.load(Ordering::Relaxed), 3);
        assert_eq!(poll(&mut listen, &waker), Poll::Ready(()));
        // A listener taken before a notify sees it even if first polled after.
        let mut early = event.listen();
        event.notify();
        assert_eq!(poll(&mut early, &waker), Poll::Ready(()));
    }
}
