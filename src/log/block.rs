//! A block: consecutive records of one partition stored as one sled value.
//!
//! Why: sled 0.34 pays per key. An insert goes through its page cache, a
//! leaf splits every 16 entries and its page is rewritten, and iteration
//! costs a page walk per key. With one key per record, on a log of ~10 M
//! records, the insert was a third of the server's CPU at 10,000
//! requests/s (and ran on the request thread), and reading the log back
//! cost ~2.8 µs a record. So a partition's appends wait in memory (see
//! `pending.rs`) and reach sled as blocks, keyed by the block's first
//! offset as a big-endian u64 (sled's key order is log order).
//!
//! Layout of a block value:
//! `BLOCK_MARKER`, then postcard varints: the record count, then for each
//! record its offset minus the block's key and its length, followed by the
//! record's bytes (a [`crate::event::codec`] envelope, decoded one by one,
//! so one bad record never hides its neighbours).
//!
//! A value that does not start with [`BLOCK_MARKER`] is one record on its
//! own at its key's offset: how logs written before blocks store records.
//! Record envelopes start with their format version as a postcard varint,
//! whose first byte is below 0x80 for any version below 128; the marker
//! has the high bit set, so the two never meet.

use crate::event::codec::CodecError;

/// First byte of a block value (format 1 of the block layout).
pub const BLOCK_MARKER: u8 = 0xB1;

/// A block is closed once its records pass this many bytes. Small enough
/// that sled's leaves (16 entries before a split) stay far below its blob
/// threshold (a quarter of its 512 KiB segment): 16 × 4 KiB = 64 KiB;
/// large enough to hold ~10 typical records. A larger record gets a
/// block of its own.
pub const BLOCK_BYTES_MAX: usize = 4096;

/// One decoded block: `(offset, record bytes)` in offset order.
pub type Records<'a> = Vec<(u64, &'a [u8])>;

/// Encodes records (ascending offsets, all at or above `key`) as a block.
pub fn encode<'a>(
    key: u64,
    records: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> Result<Vec<u8>, CodecError> {
    let deltas: Vec<(u64, &[u8])> = records
        .into_iter()
        .map(|(offset, bytes)| {
            debug_assert!(offset >= key);
            (offset - key, bytes)
        })
        .collect();
    debug_assert!(deltas.windows(2).all(|pair| pair[0].0 < pair[1].0));
    let payload: usize = deltas.iter().map(|(_, bytes)| bytes.len() + 8).sum();
    let mut out = Vec::with_capacity(1 + 10 + payload);
    out.push(BLOCK_MARKER);
    // postcard writes a sequence as its varint length then its elements,
    // a byte slice as its varint length then its bytes: the layout above.
    postcard::to_extend(&deltas, out).map_err(CodecError::Malformed)
}

/// The records of the value stored at `key`: a block, or a record on its own.
pub fn decode(key: u64, value: &[u8]) -> Result<Records<'_>, CodecError> {
    let Some((&BLOCK_MARKER, rest)) = value.split_first() else {
        return Ok(vec![(key, value)]);
    };
    // postcard sizes the vector cautiously: a corrupt count cannot make
    // it allocate more than the bytes it reads can fill.
    let (mut records, tail) =
        postcard::take_from_bytes::<Records<'_>>(rest).map_err(CodecError::Malformed)?;
    if !tail.is_empty() {
        return Err(malformed());
    }
    let mut previous: Option<u64> = None;
    for (offset, _) in &mut records {
        *offset = key.checked_add(*offset).ok_or_else(malformed)?;
        if previous.is_some_and(|p| p >= *offset) {
            return Err(malformed());
        }
        previous = Some(*offset);
    }
    Ok(records)
}

/// One past the highest offset stored in the value at `key` (`key + 1`
/// when the value does not decode: the offsets it held are then unknown,
/// and the partition's high-water mark covers the rest).
pub fn end_offset(key: u64, value: &[u8]) -> u64 {
    decode(key, value)
        .ok()
        .and_then(|records| records.last().map(|(offset, _)| offset + 1))
        .unwrap_or(key + 1)
}

fn malformed() -> CodecError {
    CodecError::Malformed(postcard::Error::DeserializeBadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_block_round_trips_with_gaps_in_its_offsets() {
        let records: Vec<(u64, &[u8])> = vec![(100, b"a"), (101, b""), (105, &[7u8; 300])];
        let block = encode(100, records.clone()).unwrap();
        assert_eq!(decode(100, &block).unwrap(), records);
        assert_eq!(end_offset(100, &block), 106);
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        // Marker, count 2, then (offset - key, length, bytes) per record.
        let block = encode(7, vec![(7, &b"ab"[..]), (300, &b"c"[..])]).unwrap();
        assert_eq!(
            block,
            [BLOCK_MARKER, 2, 0, 2, b'a', b'b', 0xa5, 0x02, 1, b'c']
        );
    }

    #[test]
    fn a_value_without_the_marker_is_one_record_at_its_key() {
        let legacy = [1u8, 2, 3];
        assert_eq!(decode(7, &legacy).unwrap(), vec![(7, &legacy[..])]);
        assert_eq!(end_offset(7, &legacy), 8);
    }

    #[test]
    fn truncated_blocks_are_errors_not_panics() {
        let block = encode(0, vec![(0, &b"hello"[..]), (1, &b"world"[..])]).unwrap();
        for len in 1..block.len() {
            assert!(decode(0, &block[..len]).is_err(), "prefix of {len} decoded");
        }
        let mut trailing = block.clone();
        trailing.push(0);
        assert!(decode(0, &trailing).is_err());
        assert_eq!(end_offset(0, &block[..3]), 1);
    }

    #[test]
    fn offsets_out_of_order_or_overflowing_are_refused() {
        // count 2, offsets +1 then +0: not ascending.
        let unordered = [BLOCK_MARKER, 2, 1, 0, 0, 0];
        assert!(decode(0, &unordered).is_err());
        let mut overflow = vec![BLOCK_MARKER, 1];
        overflow.extend([0xff; 9]);
        overflow.extend([0x01, 0]);
        assert!(decode(u64::MAX, &overflow).is_err());
    }

    proptest! {
        #[test]
        fn any_records_round_trip(
            key in 0u64..u64::MAX / 2,
            gaps in proptest::collection::vec((0u64..5, proptest::collection::vec(any::<u8>(), 0..40)), 0..20),
        ) {
            let mut offset = key;
            let mut records = Vec::new();
            for (gap, bytes) in &gaps {
                offset += gap;
                records.push((offset, bytes.as_slice()));
                offset += 1;
            }
            let block = encode(key, records.clone()).unwrap();
            prop_assert_eq!(decode(key, &block).unwrap(), records);
        }

        #[test]
        fn arbitrary_values_never_panic(key in any::<u64>(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut value = vec![BLOCK_MARKER];
            value.extend(bytes);
            let _ = decode(key, &value);
            let _ = end_offset(key, &value);
        }
    }
}
