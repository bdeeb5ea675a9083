//! Retry budget: a token bucket in the AWS SDK manner, shared by every caller of one key.
//!
//! Retries spend tokens and successes earn them back, so during an outage the retries of all
//! callers together are bounded by the bucket, not multiplied by the number of callers.

use std::sync::atomic::{AtomicU32, Ordering};

use fabrik_core::ErrorClass;

use crate::config::BudgetConfig;

/// A token bucket of retry permissions. Lock-free; the count can never go below zero.
#[derive(Debug)]
pub struct RetryBudget {
    cfg: BudgetConfig,
    tokens: AtomicU32,
}

impl RetryBudget {
    /// A full bucket. The config is assumed valid (see `ResilienceConfig::validate`).
    pub fn new(cfg: BudgetConfig) -> Self {
        Self {
            tokens: AtomicU32::new(cfg.capacity),
            cfg,
        }
    }

    /// What a retry after a failure of `class` costs.
    pub fn cost(&self, class: ErrorClass) -> u32 {
        match class {
            ErrorClass::Timeout => self.cfg.timeout_retry_cost,
            _ => self.cfg.retry_cost,
        }
    }

    /// Takes the tokens for one retry after a failure of `class`; `None` when too few remain.
    pub fn try_acquire(&self, class: ErrorClass) -> Option<u32> {
        let cost = self.cost(class);
        self.tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(cost))
            .ok()
            .map(|_| cost)
    }

    /// Records a successful call: a first-try success earns the reward; a success on a retry
    /// refunds that retry's cost (`refund`). Never exceeds capacity.
    pub fn on_success(&self, refund: Option<u32>) {
        let add = refund.unwrap_or(self.cfg.success_reward);
        // Skip the write when full: the common case stays a read, shared cheaply across threads.
        if add == 0 || self.tokens.load(Ordering::Relaxed) >= self.cfg.capacity {
            return;
        }
        let cap = self.cfg.capacity;
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                (t < cap).then(|| t.saturating_add(add).min(cap))
            });
    }

    /// Tokens available now.
    pub fn available(&self) -> u32 {
        self.tokens.load(Ordering::Acquire)
    }

    /// Tokens when full.
    pub fn capacity(&self) -> u32 {
        self.cfg.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_costs_rewards_and_refunds() {
        let b = RetryBudget::new(BudgetConfig {
            capacity: 20,
            ..BudgetConfig::default()
        });
        assert_eq!(b.try_acquire(ErrorClass::Transient), Some(5));
        assert_eq!(b.try_acquire(ErrorClass::Timeout), Some(10));
        assert_eq!(b.available(), 5);
        assert_eq!(b.try_acquire(ErrorClass::Timeout), None, "10 > 5 left");
        assert_eq!(b.available(), 5, "a refused acquire takes nothing");
        b.on_success(Some(10));
        assert_eq!(b.available(), 15);
        b.on_success(None);
        assert_eq!(b.available(), 16);
        b.on_success(Some(10));
        assert_eq!(b.available(), 20, "capped at capacity");
    }
}
