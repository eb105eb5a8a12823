//! SRV ordering (RFC 2782): lowest priority first; within one priority, a weighted random
//! order (records of weight 0 have a small chance, placed first in the running sum).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random number in `0..=max` (from the std hasher's random keys; not for cryptography).
pub(crate) fn random_u32(max: u32) -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let v = h.finish();
    if max == u32::MAX {
        return v as u32;
    }
    (v % (u64::from(max) + 1)) as u32
}

/// Order `(priority, weight, port, host)` records per RFC 2782. `rnd(max)` returns a number in
/// `0..=max`; pass a fixed sequence to test.
pub fn order_srv<T>(mut recs: Vec<(u16, u16, u16, T)>, rnd: &mut dyn FnMut(u32) -> u32) -> Vec<(u16, u16, u16, T)> {
    recs.sort_by_key(|r| (r.0, r.1 != 0));
    let mut out = Vec::with_capacity(recs.len());
    while !recs.is_empty() {
        let prio = recs.first().map(|r| r.0).unwrap_or(0);
        let mut group: Vec<_> = Vec::new();
        while recs.first().is_some_and(|r| r.0 == prio) {
            group.push(recs.remove(0));
        }
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.1)).sum();
            let pick = rnd(total);
            let mut running = 0u32;
            let mut idx = group.len() - 1;
            for (i, r) in group.iter().enumerate() {
                running += u32::from(r.1);
                if running >= pick {
                    idx = i;
                    break;
                }
            }
            out.push(group.remove(idx));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn priority_first_then_weight() {
        let recs = vec![(20, 0, 1, "c"), (10, 10, 2, "a"), (10, 90, 3, "b")];
        // pick 50 of 100: a (running 10) < 50, b (running 100) >= 50 → b first.
        let mut seq = vec![50u32, 0, 0].into_iter();
        let o = order_srv(recs.clone(), &mut |_| seq.next().unwrap());
        let hosts: Vec<&str> = o.iter().map(|r| r.3).collect();
        assert_eq!(hosts, vec!["b", "a", "c"]);
        // pick 5: a first.
        let mut seq = vec![5u32, 0, 0].into_iter();
        let o = order_srv(recs, &mut |_| seq.next().unwrap());
        assert_eq!(o.iter().map(|r| r.3).collect::<Vec<_>>(), vec!["a", "b", "c"]);
    }

    #[test]
    fn random_in_range() {
        for _ in 0..100 {
            assert!(random_u32(3) <= 3);
        }
        assert_eq!(random_u32(0), 0);
    }
}
