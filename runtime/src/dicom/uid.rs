//! New unique identifiers: `2.25.` followed by a 128-bit number as decimal
//! digits (PS3.5 B.2, UUID-derived UIDs), here the first 16 bytes of a
//! SHA-256 over the clock, the process, a counter and a caller's seed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A UID no other call (here or on another machine) returns; `seed` (e.g.
/// the source series' UID) adds to its uniqueness.
pub fn new_uid(seed: &str) -> String {
    let mut h = Sha256::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(now.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(seed.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // UUID version 4 and variant bits, as a random UUID would carry.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_and_distinct() {
        let a = new_uid("x");
        let b = new_uid("x");
        assert_ne!(a, b);
        for u in [&a, &b] {
            assert!(u.len() <= 64, "{u}");
            assert!(
                u.starts_with("2.25.") && u[5..].chars().all(|c| c.is_ascii_digit()),
                "{u}"
            );
            assert!(!u[5..].starts_with('0'), "{u}");
        }
    }
}
