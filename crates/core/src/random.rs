//! An injectable random source, so jitter and the emulator's fault injection are reproducible.
//!
//! Consumed by resilience (backoff jitter) and the emulator (faults, ids). [`SplitMix64`] is
//! written here rather than pulled from `rand` because core stays dependency-light and jitter
//! needs statistical spread, not cryptographic strength; crates that want `rand` adapt it.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of uniformly distributed random numbers. Shared across tasks, so `&self`.
pub trait RandomSource: Send + Sync + Debug {
    /// The next 64 random bits.
    fn next_u64(&self) -> u64;

    /// A uniform float in `[0, 1)`.
    fn next_f64(&self) -> f64 {
        // 53 high bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator with a lock-free shared state.
#[derive(Debug)]
pub struct SplitMix64 {
    state: AtomicU64,
}

impl SplitMix64 {
    /// A generator that yields the same sequence for the same seed.
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the wall clock and the address of a stack value: different per
    /// run, which is what production jitter wants.
    pub fn from_entropy() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let marker = 0u8;
        Self::new(t ^ (&marker as *const u8 as u64).rotate_left(32))
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_floats_in_range() {
        let a = SplitMix64::new(42);
        let b = SplitMix64::new(42);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
        let c = SplitMix64::new(7);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let f = c.next_f64();
            assert!((0.0..1.0).contains(&f));
            sum += f;
        }
        let mean = sum / 10_000.0;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
    }
}
