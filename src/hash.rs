//! Stable hashing: partition assignment and value fingerprints.
//!
//! Everything hashed here is persisted (partition of a user in the data
//! directory, fingerprints in snapshots), so the functions must give the
//! same answer across versions, platforms and restarts. `std`'s
//! `DefaultHasher` promises none of that. Partitions and UA families use
//! 64-bit FNV-1a, whose definition is fixed (a family is hashed in parts,
//! browser, NUL, OS, which FNV's byte-by-byte state takes without joining
//! them); the other value fingerprints use [`fingerprint`], a
//! word-at-a-time hash defined here and pinned by test vectors (FNV-1a
//! takes a multiply per byte: hashing a login's ~170 bytes of network and
//! client values that way was a fifth of scoring it). Neither is collision
//! resistant: they are never used where an attacker who can choose the
//! input gains by a collision without knowing the victim's value (device
//! ids are compared as exact strings, not by hash). Changing
//! [`fingerprint`] needs a new snapshot format version.

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

/// [`fnv1a64_tagged`] of the concatenation of `parts`, without building it.
#[inline]
pub fn fnv1a64_tagged_parts(tag: u8, parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .fold(fnv1a64_continue(FNV_OFFSET_BASIS, &[tag]), |hash, part| {
            fnv1a64_continue(hash, part)
        })
}

#[inline]
fn fnv1a64_continue(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

const FINGERPRINT_SEED: u64 = 0x243f_6a88_85a3_08d3;
const FINGERPRINT_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// A 64-bit fingerprint of `bytes`, tagged by the kind of value (a country
/// "NO" and a browser "NO" differ). Eight bytes per multiply (zero-padded
/// tail; the length is mixed in first, so padding never collides), then
/// murmur3's fmix64 so every input bit reaches every output bit.
#[inline]
pub fn fingerprint(tag: u8, bytes: &[u8]) -> u64 {
    let mix = |hash: u64, word: u64| {
        (hash ^ word)
            .wrapping_mul(FINGERPRINT_MULTIPLIER)
            .rotate_left(29)
    };
    let mut hash = (FINGERPRINT_SEED ^ u64::from(tag) ^ ((bytes.len() as u64) << 8))
        .wrapping_mul(FINGERPRINT_MULTIPLIER);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut le = [0; 8];
        le.copy_from_slice(word);
        hash = mix(hash, u64::from_le_bytes(le));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut le = [0; 8];
        le[..tail.len()].copy_from_slice(tail);
        hash = mix(hash, u64::from_le_bytes(le));
    }
    fmix64(hash)
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
    fn fingerprints_are_stable_across_versions() {
        // Pinned values, computed independently (Python, same definition):
        // snapshots hold fingerprints; a change needs a new snapshot format.
        assert_eq!(fingerprint(0, b""), 0x226e_0401_4447_0ef3);
        assert_eq!(
            fingerprint(4, b"Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
            0xef2b_5ddb_220e_ff79
        );
        assert_eq!(fingerprint(1, b"192.0.2.10"), 0x50b5_7e6b_d8dc_883e);
        assert_eq!(fingerprint(3, b"NO"), 0x7641_2d23_a3c3_2c2e);
        assert_eq!(fingerprint(3, b"NO\0"), 0x86f3_65d5_1169_b423);
    }

    #[test]
    fn fingerprints_spread_over_the_bits() {
        // Every output bit flips for about half of a run of similar inputs.
        let mut ones = [0u32; 64];
        let n = 4096;
        for i in 0..n {
            let hash = fingerprint(1, format!("10.0.{}.{}", i / 256, i % 256).as_bytes());
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += ((hash >> bit) & 1) as u32;
            }
        }
        for count in ones {
            assert!((n / 2 - 200..n / 2 + 200).contains(&count), "{ones:?}");
        }
    }

    #[test]
    fn tags_separate_equal_bytes() {
        assert_ne!(fingerprint(1, b"NO"), fingerprint(2, b"NO"));
        assert_ne!(fnv1a64_tagged(1, b"NO"), fnv1a64_tagged(2, b"NO"));
    }
}
