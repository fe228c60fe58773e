//! One core's budget for the recent batches its partition logs keep in memory to serve
//! reads (`--cache-bytes-per-core`). Each log still keeps at most its own
//! `cache_bytes_max`; together they keep at most this budget, so memory no longer grows
//! with the number of partitions. When an append or a finished write leaves the core over
//! budget, the least recently used logs give up their oldest written batches first (an
//! unwritten batch is served from nowhere else, so it stays until its write completes).
//!
//! Lives on one core, shared by that core's logs through `Rc`; no locks.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

/// What a log does when the budget needs memory back.
pub(crate) trait CacheEvict {
    /// Drops up to about `bytes_wanted` of this log's oldest written cached batches;
    /// returns the bytes dropped.
    fn evict_written(&self, bytes_wanted: usize) -> usize;
}

/// A member log's entry in the use order: its id and a way to reach it.
type Member = (u64, Weak<dyn CacheEvict>);

/// The budget shared by one core's logs.
pub struct CacheBudget {
    bytes_max: usize,
    bytes: Cell<usize>,
    next_id: Cell<u64>,
    clock: Cell<u64>,
    /// Member logs by last use, oldest first: use clock -> (member id, its log).
    by_use: RefCell<BTreeMap<u64, Member>>,
}

impl std::fmt::Debug for CacheBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBudget")
            .field("bytes_max", &self.bytes_max)
            .field("bytes", &self.bytes.get())
            .field("members", &self.by_use.borrow().len())
            .finish()
    }
}

impl CacheBudget {
    pub fn new(bytes_max: usize) -> Rc<CacheBudget> {
        Rc::new(CacheBudget {
            bytes_max,
            bytes: Cell::new(0),
            next_id: Cell::new(0),
            clock: Cell::new(0),
            by_use: RefCell::new(BTreeMap::new()),
        })
    }

    /// Bytes cached by every member log now.
    pub fn bytes(&self) -> usize {
        self.bytes.get()
    }

    pub fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    fn tick(&self) -> u64 {
        let now = self.clock.get() + 1;
        self.clock.set(now);
        now
    }

    /// Makes `member` a user of the budget, as its most recently used log.
    pub(crate) fn join(self: &Rc<Self>, member: Weak<dyn CacheEvict>) -> BudgetSeat {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let now = self.tick();
        self.by_use.borrow_mut().insert(now, (id, member));
        BudgetSeat {
            budget: self.clone(),
            id,
            last_use: Cell::new(now),
        }
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.bytes.set(self.bytes.get() + bytes);
    }

    pub(crate) fn release(&self, bytes: usize) {
        debug_assert!(bytes <= self.bytes.get(), "released more than was added");
        self.bytes.set(self.bytes.get().saturating_sub(bytes));
    }

    /// Takes memory back from the least recently used members until the core is within
    /// budget or no member has written batches left to give.
    pub(crate) fn reclaim(&self) {
        let mut from_clock = 0;
        while self.bytes.get() > self.bytes_max {
            let next = self
                .by_use
                .borrow()
                .range(from_clock..)
                .next()
                .map(|(&clock, (_, member))| (clock, member.clone()));
            let Some((clock, member)) = next else {
                return;
            };
            from_clock = clock + 1;
            if let Some(member) = member.upgrade() {
                member.evict_written(self.bytes.get() - self.bytes_max);
            }
        }
    }
}

/// One log's place in the budget; leaving it (drop) removes the log from the LRU order.
pub(crate) struct BudgetSeat {
    pub(crate) budget: Rc<CacheBudget>,
    id: u64,
    last_use: Cell<u64>,
}

impl BudgetSeat {
    /// Marks the log as the most recently used.
    pub(crate) fn touch(&self) {
        let mut by_use = self.budget.by_use.borrow_mut();
        let Some(entry) = by_use.remove(&self.last_use.get()) else {
            return;
        };
        debug_assert_eq!(entry.0, self.id);
        let now = self.budget.tick();
        by_use.insert(now, entry);
        self.last_use.set(now);
    }
}

impl Drop for BudgetSeat {
    fn drop(&mut self) {
        self.budget.by_use.borrow_mut().remove(&self.last_use.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member holding `cached` written bytes, recording the order it was asked in.
    struct TestMember {
        name: &'static str,
        cached: Cell<usize>,
        budget: Rc<CacheBudget>,
        asked: Rc<RefCell<Vec<&'static str>>>,
    }

    impl CacheEvict for TestMember {
        fn evict_written(&self, bytes_wanted: usize) -> usize {
            self.asked.borrow_mut().push(self.name);
            let freed = bytes_wanted.min(self.cached.get());
            self.cached.set(self.cached.get() - freed);
            self.budget.release(freed);
            freed
        }
    }

    #[test]
    fn the_least_recently_used_members_give_memory_back_first() {
        let budget = CacheBudget::new(100);
        let asked = Rc::new(RefCell::new(Vec::new()));
        let members: Vec<Rc<TestMember>> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                Rc::new(TestMember {
                    name,
                    cached: Cell::new(60),
                    budget: budget.clone(),
                    asked: asked.clone(),
                })
            })
            .collect();
        let seats: Vec<BudgetSeat> = members
            .iter()
            .map(|m| {
                budget.add(60);
                let weak: Weak<dyn CacheEvict> = Rc::downgrade(&(m.clone() as Rc<dyn CacheEvict>));
                budget.join(weak)
            })
            .collect();
        // Use order now: b (oldest), a, c.
        seats[0].touch();
        seats[2].touch();
        budget.reclaim();
        assert_eq!(budget.bytes(), 100);
        assert_eq!(*asked.borrow(), vec!["b", "a"]);
        assert_eq!(
            members.iter().map(|m| m.cached.get()).collect::<Vec<_>>(),
            vec![40, 0, 60]
        );
        // A member that left is no longer asked.
        drop(seats);
        budget.add(1000);
        asked.borrow_mut().clear();
        budget.reclaim();
        assert!(asked.borrow().is_empty());
    }
}
