//! Structural checks run once when a database is opened.
//!
//! maxminddb 0.26 trusts the file: it slices the buffer with the sizes, node numbers and
//! pointers it reads, so a damaged file makes it panic instead of returning an error, and a
//! pointer cycle makes it recurse until the stack overflows, which aborts the process. After
//! [`check`] passes, every search-tree walk stays inside the tree, and decoding any record
//! the tree points at stays inside the file and nests at most [`RECORD_DEPTH_MAX`] deep.
//! What is left are type errors (a double of 3 bytes, a string where a number belongs),
//! which maxminddb reports as errors and riskd treats as unknown.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use maxminddb::{MaxMindDbError, Metadata, Reader};

/// Precedes the metadata map at the end of every MaxMind DB file.
const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
/// The MaxMind DB spec caps the metadata section; the marker is searched for only there.
const METADATA_BYTES_MAX: usize = 128 * 1024;
/// Zero bytes between the search tree and the data section (MaxMind DB spec).
const DATA_SECTION_SEPARATOR_BYTES: usize = 16;
/// An all-zero stand-in tree, large enough for node 0 at the biggest (32-bit) record size.
const PROBE_TREE_BYTES: usize = 8;
/// Deepest nesting of maps, arrays and pointers in a record; each is one level of recursion
/// in maxminddb's decoder. MaxMind's records nest less than 10 deep.
const RECORD_DEPTH_MAX: u32 = 64;

#[derive(Debug)]
pub(super) enum Invalid {
    /// The metadata could not be decoded (includes "not a MaxMind DB file").
    Metadata(MaxMindDbError),
    /// The metadata decoded but does not describe this file.
    Layout(String),
}

/// Runs `f`, turning a panic into `None`. Only for calls into maxminddb, whose decoder
/// indexes the buffer unchecked: a damaged database must not take a scoring request down.
pub(super) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Decodes the metadata of `buf` and checks that it describes `buf`.
pub(super) fn check(buf: &[u8]) -> Result<Metadata, Invalid> {
    let marker_at = find_marker(buf).ok_or_else(|| {
        Invalid::Metadata(MaxMindDbError::InvalidDatabase(
            "no MaxMind DB metadata marker: not a MaxMind DB file".to_owned(),
        ))
    })?;
    // From the marker on, so the probe's marker search finds the same one.
    let metadata = decode_metadata(&buf[marker_at..])?;

    let record_size = usize::from(metadata.record_size);
    if !matches!(record_size, 24 | 28 | 32) {
        return Err(layout(format!("unsupported record size {record_size}")));
    }
    if !matches!(metadata.ip_version, 4 | 6) {
        return Err(layout(format!(
            "unknown ip_version {}",
            metadata.ip_version
        )));
    }
    let node_count = usize::try_from(metadata.node_count).unwrap_or(usize::MAX);
    let node_bytes = record_size / 4; // two records per node
    let tree_bytes = node_count
        .checked_mul(node_bytes)
        .filter(|&n| n > 0 && n + DATA_SECTION_SEPARATOR_BYTES <= marker_at)
        .ok_or_else(|| {
            layout(format!(
                "{node_count} nodes of {record_size}-bit records do not fit in the file"
            ))
        })?;
    let data_start = tree_bytes + DATA_SECTION_SEPARATOR_BYTES;
    // A wrong node count almost always lands the "separator" on tree or data bytes.
    if buf[tree_bytes..data_start].iter().any(|&b| b != 0) {
        return Err(layout(format!(
            "no data section separator after {node_count} nodes: wrong node count"
        )));
    }
    let data_bytes = marker_at - data_start;
    // maxminddb decodes from the data section to the end of the file, metadata included.
    let mut data = DataCheck::new(&buf[data_start..], "data section");

    for (node, bytes) in buf[..tree_bytes].chunks_exact(node_bytes).enumerate() {
        let (left, right) = records(bytes);
        for record in [left, right] {
            // < node_count: another node; == node_count: "no data"; beyond: a data pointer.
            if record <= node_count {
                continue;
            }
            match (record - node_count).checked_sub(DATA_SECTION_SEPARATOR_BYTES) {
                Some(offset) if offset < data_bytes => data.pointer_target(offset, 0)?,
                _ => {
                    return Err(layout(format!(
                        "search tree node {node} points outside the data section"
                    )))
                }
            };
        }
    }
    Ok(metadata)
}

/// How decoding one value goes, as far as panics and recursion are concerned.
#[derive(Clone, Copy)]
struct Step {
    /// Where the next value starts; `None` when maxminddb stops here with an error.
    end: Option<usize>,
    /// Levels of nesting below this value.
    height: u32,
}

/// What is remembered of a checked pointer target (kept small: real databases have
/// hundreds of thousands).
#[derive(Clone, Copy)]
struct Target {
    height: u32,
    /// False when maxminddb stops with an error inside it.
    decodes: bool,
}

/// Walks data-section values the way maxminddb's decoder reads them (control byte, size,
/// pointer encoding, including its quirks) and checks every read it would make.
struct DataCheck<'a> {
    data: &'a [u8],
    section: &'static str,
    /// Pointer targets already checked, so shared values are walked once.
    seen: HashMap<usize, Target>,
}

impl<'a> DataCheck<'a> {
    fn new(data: &'a [u8], section: &'static str) -> Self {
        DataCheck {
            data,
            section,
            seen: HashMap::new(),
        }
    }

    fn pointer_target(&mut self, offset: usize, depth: u32) -> Result<Target, Invalid> {
        let target = match self.seen.get(&offset) {
            Some(&target) => target,
            None => {
                let step = self.value(offset, depth)?;
                let target = Target {
                    height: step.height,
                    decodes: step.end.is_some(),
                };
                self.seen.insert(offset, target);
                target
            }
        };
        if depth + target.height > RECORD_DEPTH_MAX {
            return Err(self.deep(offset));
        }
        Ok(target)
    }

    fn value(&mut self, offset: usize, depth: u32) -> Result<Step, Invalid> {
        // A pointer cycle ends here: a value in progress is not in `seen` yet.
        if depth > RECORD_DEPTH_MAX {
            return Err(self.deep(offset));
        }
        let mut at = offset;
        let control = self.take(&mut at, 1)?[0];
        let mut kind = control >> 5;
        if kind == 0 {
            let extended = self.take(&mut at, 1)?[0];
            // maxminddb adds 7 in a u8.
            kind = extended.checked_add(7).ok_or_else(|| self.bad(offset))?;
        }
        let size_field = usize::from(control & 0x1f);
        let size_bytes = self.take(&mut at, size_field.saturating_sub(28))?;
        let size = match size_field {
            29 => 29 + be(size_bytes),
            30 => 285 + be(size_bytes),
            31 => 65_821 + be(size_bytes),
            small => small,
        };
        let leaf = |end| Ok(Step { end, height: 0 });
        match kind {
            1 => {
                let pointer_bytes = ((size >> 3) & 0x3) + 1;
                let base = if pointer_bytes == 4 { 0 } else { size & 0x7 };
                let raw = self.take(&mut at, pointer_bytes)?;
                let bias = [0, 0, 2048, 526_336, 0][pointer_bytes];
                let target = (base << (8 * pointer_bytes) | be(raw)) + bias;
                if target >= self.data.len() {
                    return Err(self.bad(offset));
                }
                let target = self.pointer_target(target, depth + 1)?;
                Ok(Step {
                    end: target.decodes.then_some(at),
                    height: target.height + 1,
                })
            }
            // String, double, bytes, float: maxminddb slices `size` bytes before checking.
            2 | 3 | 4 | 15 => {
                self.take(&mut at, size)?;
                leaf(Some(at))
            }
            // Integers: too long is an error, otherwise `size` bytes are sliced.
            5 | 6 | 8 | 9 | 10 => {
                let size_max = match kind {
                    5 => 2,
                    6 | 8 => 4,
                    9 => 8,
                    _ => 16,
                };
                if size > size_max {
                    return leaf(None);
                }
                self.take(&mut at, size)?;
                leaf(Some(at))
            }
            7 | 11 => {
                let values = if kind == 7 { size * 2 } else { size };
                let mut height = 0;
                for _ in 0..values {
                    let step = self.value(at, depth + 1)?;
                    height = height.max(step.height + 1);
                    match step.end {
                        Some(end) => at = end,
                        None => return Ok(Step { end: None, height }),
                    }
                }
                Ok(Step {
                    end: Some(at),
                    height,
                })
            }
            14 => leaf((size <= 1).then_some(at)),
            _ => leaf(None),
        }
    }

    /// The next `len` bytes at `*at`, advancing it; an error if they run past the file.
    fn take(&self, at: &mut usize, len: usize) -> Result<&[u8], Invalid> {
        let bytes = at
            .checked_add(len)
            .and_then(|end| self.data.get(*at..end))
            .ok_or_else(|| self.bad(*at))?;
        *at += len;
        Ok(bytes)
    }

    fn bad(&self, offset: usize) -> Invalid {
        layout(format!(
            "{} value at offset {offset} is malformed",
            self.section
        ))
    }

    fn deep(&self, offset: usize) -> Invalid {
        layout(format!(
            "{} value at offset {offset} nests deeper than {RECORD_DEPTH_MAX} (a pointer cycle?)",
            self.section
        ))
    }
}

fn be(bytes: &[u8]) -> usize {
    bytes.iter().fold(0, |acc, &b| acc << 8 | usize::from(b))
}

fn layout(reason: String) -> Invalid {
    Invalid::Layout(reason)
}

/// Start of the last metadata marker within the last [`METADATA_BYTES_MAX`] bytes.
fn find_marker(buf: &[u8]) -> Option<usize> {
    let window_start = buf
        .len()
        .saturating_sub(METADATA_BYTES_MAX + METADATA_MARKER.len());
    buf[window_start..]
        .windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)
        .map(|at| window_start + at)
}

/// Decodes the metadata without touching the real search tree: maxminddb walks the tree for
/// the IPv4 start node as soon as it has the metadata, before its node count can be checked.
/// Behind an all-zero tree that walk stays on node 0.
fn decode_metadata(metadata_section: &[u8]) -> Result<Metadata, Invalid> {
    let metadata_start = METADATA_MARKER.len();
    DataCheck::new(&metadata_section[metadata_start..], "metadata").value(0, 0)?;
    let mut probe = vec![0; PROBE_TREE_BYTES];
    probe.extend_from_slice(metadata_section);
    match guarded(|| Reader::from_source(probe)) {
        Some(Ok(reader)) => Ok(reader.metadata),
        Some(Err(e)) => Err(Invalid::Metadata(e)),
        None => Err(layout("metadata section is unreadable".to_owned())),
    }
}

/// The two records of a node whose bytes are `node` (6, 7 or 8 bytes for 24-, 28- and
/// 32-bit records).
fn records(node: &[u8]) -> (usize, usize) {
    match *node {
        // 28-bit records: the middle byte holds the high nibble of each record.
        [a0, a1, a2, middle, b0, b1, b2] => (
            be(&[middle >> 4, a0, a1, a2]),
            be(&[middle & 0x0f, b0, b1, b2]),
        ),
        _ => {
            let (left, right) = node.split_at(node.len() / 2);
            (be(left), be(right))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_decode_all_three_sizes() {
        assert_eq!(records(&[0, 0, 1, 0, 0, 2]), (1, 2));
        assert_eq!(
            records(&[0, 0, 1, 0x12, 0, 0, 2]),
            (0x0100_0001, 0x0200_0002)
        );
        assert_eq!(records(&[0, 0, 0, 1, 1, 0, 0, 0]), (1, 0x0100_0000));
    }

    #[test]
    fn non_mmdb_bytes_are_a_metadata_error() {
        for buf in [&b""[..], b"hello", &[0; 4096]] {
            assert!(matches!(check(buf), Err(Invalid::Metadata(_))), "{buf:?}");
        }
    }
}
