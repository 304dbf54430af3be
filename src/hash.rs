//! Stable hashing: partition assignment and value fingerprints.
//!
//! Everything hashed here is persisted (partition of a user, fingerprints in
//! snapshots), so the function must give the same answer across versions,
//! platforms and restarts. `std`'s `DefaultHasher` promises none of that, so
//! riskd uses 64-bit FNV-1a, whose definition is fixed. FNV-1a is not
//! collision resistant: it is never used where an attacker who can choose the
//! input gains by a collision without knowing the victim's value (device ids
//! are compared as exact strings, not by hash).

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a over `bytes`.
#[inline]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_continue(FNV_OFFSET_BASIS, bytes)
}

/// 64-bit FNV-1a of `tag` followed by `bytes`: fingerprints that must not
/// collide across kinds of value (a country "NO" and a browser "NO").
#[inline]
pub fn fnv1a64_tagged(tag: u8, bytes: &[u8]) -> u64 {
    fnv1a64_continue(fnv1a64_continue(FNV_OFFSET_BASIS, &[tag]), bytes)
}

#[inline]
fn fnv1a64_continue(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The partition that owns `user_id`, for `partitions` partitions.
///
/// Stable: changing this function moves users between partitions and breaks
/// every existing data directory (the partition count is recorded there for
/// the same reason).
#[inline]
pub fn partition_of(user_id: &str, partitions: u32) -> u32 {
    debug_assert!(partitions > 0);
    // FNV-1a's high bits mix poorly for ids that differ only at the end
    // ("user-1", "user-2"), so finish with murmur3's fmix64 avalanche, then
    // reduce with a multiply-shift (no modulo bias, any partition count).
    ((u128::from(fmix64(fnv1a64(user_id.as_bytes()))) * u128::from(partitions)) >> 64) as u32
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_published_test_vectors() {
        // From the FNV reference test suite (isthe.com/chongo/tech/comp/fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn partition_assignment_is_stable_across_versions() {
        // Pinned values: if this test fails, existing data directories would
        // route users to the wrong partition. Do not update the numbers.
        // Computed independently (Python, same definition).
        assert_eq!(partition_of("alice", 8), 1);
        assert_eq!(partition_of("bob", 8), 7);
        assert_eq!(partition_of("user_eaf224", 8), 4);
        assert_eq!(partition_of("-9081990751822107716", 16), 8);
    }

    #[test]
    fn partitions_are_used_evenly() {
        let partitions = 8;
        let mut counts = [0u32; 8];
        for i in 0..80_000 {
            counts[partition_of(&format!("user-{i}"), partitions) as usize] += 1;
        }
        for count in counts {
            assert!((9_500..10_500).contains(&count), "uneven: {counts:?}");
        }
    }

    #[test]
    fn tags_separate_equal_bytes() {
        assert_ne!(fnv1a64_tagged(1, b"NO"), fnv1a64_tagged(2, b"NO"));
    }
}
