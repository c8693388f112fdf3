//! A bound on the memory that message bodies being received may take, across all
//! sessions: a session that would pass it gets `452 4.3.1` (try again later)
//! instead of growing the edge's heap without limit.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

/// The edge-wide budget.
#[derive(Debug)]
pub struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
}

/// What one message holds of the budget; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    held: usize,
}

impl BodyBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { limit, used: AtomicUsize::new(0) })
    }

    /// An empty reservation against this budget.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation { budget: self.clone(), held: 0 }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

impl Reservation {
    /// Takes `bytes` more; false (and nothing taken) when the budget would be passed.
    pub fn grow(&mut self, bytes: usize) -> bool {
        let budget = &self.budget;
        let taken = budget.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(bytes).filter(|total| *total <= budget.limit)
        });
        if taken.is_ok() {
            self.held += bytes;
        }
        taken.is_ok()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = BodyBudget::new(100);
        let mut first = budget.reservation();
        let mut second = budget.reservation();
        assert!(first.grow(60));
        assert!(!second.grow(50), "60 + 50 would pass 100");
        assert!(second.grow(40));
        assert_eq!(budget.used(), 100);
        drop(first);
        assert_eq!(budget.used(), 40);
        assert!(second.grow(60));
    }
}
