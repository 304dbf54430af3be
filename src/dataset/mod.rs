//! Datasets of logins that already happened, with what is known about them
//! (labels): the input of `riskd import` and `riskd backtest`, the output of
//! `riskd simulate`.
//!
//! Two formats, each a streaming reader and a writer:
//!
//! - [`rba_csv`]: the CSV of the RBA dataset (das-group/rba-dataset; Wiefling
//!   et al.), columns found by header name.
//! - [`ndjson`]: one `POST /v1/events` line per line, parsed by the server's
//!   own request code, plus an optional `label` object.
//!
//! Readers turn rows into the same validated [`LoginAttempt`]s the HTTP
//! layer builds (GeoIP and User-Agent parsing fill what a row leaves out,
//! exactly as [`crate::enrich::Enricher`] does for a request). A bad row is
//! an [`DatasetError::Row`] naming its line: the caller reports it and goes
//! on. Other errors (I/O, a header without a required column) end the read.

pub mod import;
pub mod ndjson;
pub mod rba_csv;

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::GeoIpConfig;
use crate::enrich::Enricher;
use crate::event::{LoginAttempt, Outcome};
use crate::geoip::{DbSource, GeoIp, GeoIpError};

/// What a dataset says about a login beyond what the engine sees.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Label {
    /// The login came from an attacker (any attack, successful or not).
    pub attack: bool,
    /// The attacker got in: an account takeover.
    pub takeover: bool,
    /// The scenario, when the source names one: attacker kinds ("naive",
    /// "vpn", "targeted", "credential_stuffing", "password_spray",
    /// "brute_force") and legitimate ones ("travel", "new_phone",
    /// "forgot_password").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// One login with its outcome, as the engine would have seen it, and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledLogin {
    pub attempt: LoginAttempt,
    pub outcome: Outcome,
    pub label: Label,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    RbaCsv,
    Ndjson,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::RbaCsv, Format::Ndjson];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::RbaCsv => "rba-csv",
            Format::Ndjson => "ndjson",
        }
    }

    /// Guesses the format of an input from its first bytes (without
    /// consuming them): a JSON object opens NDJSON, anything else is CSV.
    pub fn sniff(input: &mut impl BufRead) -> std::io::Result<Format> {
        let head = input.fill_buf()?;
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        Ok(match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | None => Format::Ndjson,
            Some(_) => Format::RbaCsv,
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == text)
            .ok_or_else(|| format!("`{text}` is not a dataset format (rba-csv, ndjson)"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// One row cannot be read; the reader goes on with the next.
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: String },
    #[error("rba-csv: the header has no `{column}` column (it has: {found})")]
    MissingColumn { column: &'static str, found: String },
    #[error("cannot read {origin}: {source}")]
    Io {
        origin: String,
        source: std::io::Error,
    },
    #[error("cannot write {origin}: {source}")]
    Write {
        origin: String,
        source: std::io::Error,
    },
    #[error("cannot read {origin}: {message}")]
    Csv { origin: String, message: String },
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
}

impl DatasetError {
    /// A bad row: report it and continue. Anything else ends the read.
    pub fn is_row(&self) -> bool {
        matches!(self, DatasetError::Row { .. })
    }
}

/// What a reader needs besides its input.
pub struct ReadSettings {
    /// GeoIP and User-Agent parsing for what a row does not say.
    pub enricher: Enricher,
    /// `limits.signals_max`: most signals on one NDJSON line.
    pub signals_max: usize,
    /// Filled in for an NDJSON line without `timestamp` (the server uses its clock).
    pub now_ms: i64,
}

impl ReadSettings {
    /// The enricher of a configuration's `[geoip]` databases, as `riskd serve` builds it.
    pub fn from_config(config: &crate::config::Config) -> Result<ReadSettings, DatasetError> {
        Ok(ReadSettings {
            enricher: enricher(&config.geoip)?,
            signals_max: config.limits.signals_max,
            now_ms: crate::clock::now_ms(),
        })
    }
}

/// The enricher `riskd serve` would use with these `[geoip]` settings.
pub fn enricher(config: &GeoIpConfig) -> Result<Enricher, GeoIpError> {
    let source = |setting: &str| match setting {
        "builtin" => DbSource::Builtin,
        "" => DbSource::Disabled,
        path => DbSource::File(PathBuf::from(path)),
    };
    Ok(Enricher::new(GeoIp::open(
        &source(&config.city_db),
        &source(&config.asn_db),
        &source(&config.anonymous_ip_db),
    )?))
}

/// A reader of either format: an iterator of logins and bad rows.
pub enum Reader<R: Read> {
    RbaCsv(Box<rba_csv::RbaCsvReader<R>>),
    Ndjson(Box<ndjson::NdjsonReader<R>>),
}

impl<R: Read> Reader<R> {
    pub fn new(
        format: Format,
        input: R,
        settings: ReadSettings,
    ) -> Result<Reader<R>, DatasetError> {
        Ok(match format {
            Format::RbaCsv => {
                Reader::RbaCsv(Box::new(rba_csv::RbaCsvReader::new(input, settings)?))
            }
            Format::Ndjson => Reader::Ndjson(Box::new(ndjson::NdjsonReader::new(input, settings))),
        })
    }

    /// Whether the input carries labels: label columns in the CSV header,
    /// or at least one `label` object read so far in NDJSON.
    pub fn labelled(&self) -> bool {
        match self {
            Reader::RbaCsv(r) => r.labelled(),
            Reader::Ndjson(r) => r.labelled(),
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<LabelledLogin, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Reader::RbaCsv(r) => r.next(),
            Reader::Ndjson(r) => r.next(),
        }
    }
}

/// A writer of either format.
pub enum Writer<W: Write> {
    RbaCsv(Box<rba_csv::RbaCsvWriter<W>>),
    Ndjson(ndjson::NdjsonWriter<W>),
}

impl<W: Write> Writer<W> {
    pub fn new(format: Format, output: W) -> Result<Writer<W>, DatasetError> {
        Ok(match format {
            Format::RbaCsv => Writer::RbaCsv(Box::new(rba_csv::RbaCsvWriter::new(output)?)),
            Format::Ndjson => Writer::Ndjson(ndjson::NdjsonWriter::new(output)),
        })
    }

    pub fn write(&mut self, login: &LabelledLogin) -> Result<(), DatasetError> {
        match self {
            Writer::RbaCsv(w) => w.write(login),
            Writer::Ndjson(w) => w.write(login),
        }
    }

    /// Flushes and hands back the output.
    pub fn finish(self) -> Result<W, DatasetError> {
        match self {
            Writer::RbaCsv(w) => w.finish(),
            Writer::Ndjson(w) => w.finish(),
        }
    }
}

/// Bytes buffered between the input and a reader.
const INPUT_BUFFER_BYTES: usize = 256 * 1024;

/// A file, or standard input for `-`, buffered.
pub fn open_input(path: &Path) -> Result<Box<dyn BufRead + Send>, DatasetError> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::with_capacity(
            INPUT_BUFFER_BYTES,
            std::io::stdin(),
        )));
    }
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        origin: path.display().to_string(),
        source,
    })?;
    Ok(Box::new(BufReader::with_capacity(INPUT_BUFFER_BYTES, file)))
}

/// Column or field text that means "absent": empty, or the dataset's `-`.
pub(crate) fn present(text: &str) -> Option<&str> {
    match text.trim() {
        "" | "-" => None,
        text => Some(text),
    }
}
