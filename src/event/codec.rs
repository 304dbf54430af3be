//! The persisted form of an event: a versioned envelope encoded with postcard.
//!
//! Layout: `format_version` (postcard varint u16) followed by the postcard
//! encoding of [`Event`], whose enum discriminant is the event type. A
//! decoder meeting a version it does not know refuses the record with a
//! typed error; it never guesses.

use super::Event;

/// The format this build writes. Bump it, and keep a decoder for the old
/// one, whenever the encoding of [`Event`] changes.
pub const FORMAT_VERSION: u16 = 1;

/// Records above this size are refused at encode time. It keeps every record
/// well under sled's blob threshold (so each lives in sled's main file,
/// which the durability barrier syncs) and bounds what a replay allocates.
pub const RECORD_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record format version {found} is not supported (this build reads {FORMAT_VERSION})")]
    UnknownVersion { found: u16 },
    #[error("record is not a valid version-{FORMAT_VERSION} event: {0}")]
    Malformed(postcard::Error),
    #[error("record of {size} bytes exceeds {RECORD_BYTES_MAX}")]
    TooLarge { size: usize },
}

pub fn encode(event: &Event) -> Result<Vec<u8>, CodecError> {
    let mut bytes = postcard::to_allocvec(&FORMAT_VERSION).map_err(CodecError::Malformed)?;
    bytes = postcard::to_extend(event, bytes).map_err(CodecError::Malformed)?;
    if bytes.len() > RECORD_BYTES_MAX {
        return Err(CodecError::TooLarge { size: bytes.len() });
    }
    debug_assert!(decode(&bytes).is_ok_and(|decoded| &decoded == event));
    Ok(bytes)
}

pub fn decode(bytes: &[u8]) -> Result<Event, CodecError> {
    let (version, rest) = postcard::take_from_bytes::<u16>(bytes).map_err(CodecError::Malformed)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion { found: version });
    }
    let (event, trailing) =
        postcard::take_from_bytes::<Event>(rest).map_err(CodecError::Malformed)?;
    if !trailing.is_empty() {
        return Err(CodecError::Malformed(
            postcard::Error::DeserializeBadEncoding,
        ));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_support::{sample_attempt, sample_events};

    #[test]
    fn every_event_type_round_trips() {
        for event in sample_events() {
            let bytes = encode(&event).unwrap();
            assert_eq!(decode(&bytes).unwrap(), event);
        }
    }

    #[test]
    fn unknown_version_is_refused() {
        let mut bytes = encode(&sample_events()[0]).unwrap();
        bytes[0] = 2; // varint 2: a future format
        assert!(matches!(
            decode(&bytes),
            Err(CodecError::UnknownVersion { found: 2 })
        ));
    }

    #[test]
    fn truncated_and_garbage_records_are_errors_not_panics() {
        let bytes = encode(&sample_events()[0]).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
        assert!(decode(&[1, 200, 200, 200, 200, 200]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
    }

    #[test]
    fn oversized_records_are_refused() {
        let mut attempt = sample_attempt("u1");
        attempt.user_agent = Some("x".repeat(RECORD_BYTES_MAX));
        let event = Event::Login {
            attempt,
            outcome: crate::event::Outcome::Success,
        };
        assert!(matches!(encode(&event), Err(CodecError::TooLarge { .. })));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode(&bytes);
        }
    }
}
