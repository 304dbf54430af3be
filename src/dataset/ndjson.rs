//! NDJSON: one `POST /v1/events` line per line (api.md), parsed by the
//! server's own request code ([`AttemptDto::into_attempt`]), plus an
//! optional label: `"label": {"attack": true, "takeover": false, "kind": "naive"}`.
//!
//! A line without `event_id` gets the attempt id `line-<N>` (the server
//! would draw a random one; a dataset should replay the same every time).

use std::io::{BufRead, BufReader, Read, Write};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::{DatasetError, Label, LabelledLogin, ReadSettings};
use crate::event::Signal;
use crate::http::request::{self, AttemptDto, NAME_BYTES_MAX};

/// Longest line read (bytes); a longer one is a bad row, skipped.
pub const LINE_BYTES_MAX: usize = 1 << 20;

/// Streams [`LabelledLogin`]s from NDJSON; a bad line is an `Err` naming it.
pub struct NdjsonReader<R: Read> {
    input: BufReader<R>,
    settings: ReadSettings,
    line: Vec<u8>,
    line_no: u64,
    labelled: bool,
    done: bool,
}

/// The fields of a line that `AttemptDto` does not read.
#[derive(Deserialize)]
struct Extras {
    #[serde(default)]
    event_id: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    label: Option<Label>,
}

impl<R: Read> NdjsonReader<R> {
    pub fn new(input: R, settings: ReadSettings) -> NdjsonReader<R> {
        NdjsonReader {
            input: BufReader::with_capacity(super::INPUT_BUFFER_BYTES, input),
            settings,
            line: Vec::with_capacity(1024),
            line_no: 0,
            labelled: false,
            done: false,
        }
    }

    /// Whether any line read so far had a `label`.
    pub fn labelled(&self) -> bool {
        self.labelled
    }

    fn parse(&mut self) -> Result<LabelledLogin, String> {
        let raw = self.line.as_slice();
        let mut dto: AttemptDto = crate::http::body::json(raw).map_err(|e| e.to_string())?;
        let outcome = request::outcome(dto.outcome.take()).map_err(|e| e.to_string())?;
        let extras: Extras = serde_json::from_slice(raw).map_err(|e| format!("label: {e}"))?;
        let mut attempt = dto
            .into_attempt(
                &self.settings.enricher,
                self.settings.signals_max,
                self.settings.now_ms,
            )
            .map_err(|e| e.to_string())?;
        if extras.event_id.is_none() {
            attempt.attempt_id = format!("line-{}", self.line_no);
        }
        let label = match extras.label {
            Some(mut label) => {
                self.labelled = true;
                if label
                    .kind
                    .as_ref()
                    .is_some_and(|k| k.len() > NAME_BYTES_MAX)
                {
                    return Err(format!("label.kind is longer than {NAME_BYTES_MAX} bytes"));
                }
                if label.kind.as_deref() == Some("") {
                    label.kind = None;
                }
                label.attack |= label.takeover;
                label
            }
            None => Label::default(),
        };
        Ok(LabelledLogin {
            attempt,
            outcome,
            label,
        })
    }
}

impl<R: Read> Iterator for NdjsonReader<R> {
    type Item = Result<LabelledLogin, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.line.clear();
            let read = (&mut self.input)
                .take(LINE_BYTES_MAX as u64 + 1)
                .read_until(b'\n', &mut self.line);
            match read {
                Err(source) => {
                    self.done = true;
                    return Some(Err(DatasetError::Io {
                        origin: "ndjson data".into(),
                        source,
                    }));
                }
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line_no += 1;
                    let line = self.line_no;
                    if self.line.last() != Some(&b'\n') && self.line.len() > LINE_BYTES_MAX {
                        if let Err(source) = self.input.skip_until(b'\n') {
                            self.done = true;
                            return Some(Err(DatasetError::Io {
                                origin: "ndjson data".into(),
                                source,
                            }));
                        }
                        return Some(Err(DatasetError::Row {
                            line,
                            reason: format!("line is longer than {LINE_BYTES_MAX} bytes"),
                        }));
                    }
                    while matches!(self.line.last(), Some(b'\n' | b'\r')) {
                        self.line.pop();
                    }
                    if self.line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(
                        self.parse()
                            .map_err(|reason| DatasetError::Row { line, reason }),
                    );
                }
            }
        }
        None
    }
}

/// A line as [`NdjsonWriter`] writes it: everything the reader reads back.
#[derive(Serialize)]
struct LineOut<'a> {
    event_id: &'a str,
    user_id: &'a str,
    timestamp: String,
    ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    client: ClientOut<'a>,
    geo: GeoOut<'a>,
    #[serde(
        skip_serializing_if = "<[Signal]>::is_empty",
        serialize_with = "signals"
    )]
    signals: &'a [Signal],
    outcome: &'static str,
    label: &'a Label,
}

#[derive(Serialize)]
struct ClientOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    browser: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<&'a str>,
    device_type: &'static str,
}

#[derive(Serialize)]
struct GeoOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    longitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
}

fn signals<S: Serializer>(signals: &&[Signal], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(signals.len()))?;
    for signal in signals.iter() {
        map.serialize_entry(&signal.name, &signal.value)?;
    }
    map.end()
}

/// Writes logins as NDJSON lines with their labels.
pub struct NdjsonWriter<W: Write> {
    output: W,
}

impl<W: Write> NdjsonWriter<W> {
    pub fn new(output: W) -> NdjsonWriter<W> {
        NdjsonWriter { output }
    }

    pub fn write(&mut self, login: &LabelledLogin) -> Result<(), DatasetError> {
        let a = &login.attempt;
        let line = LineOut {
            event_id: &a.attempt_id,
            user_id: &a.user_id,
            timestamp: request::format_timestamp(a.timestamp_ms),
            ip: a.ip.to_string(),
            device_id: a.device_id.as_deref(),
            user_agent: a.user_agent.as_deref(),
            client: ClientOut {
                browser: a.client.browser.as_deref(),
                os: a.client.os.as_deref(),
                device_type: a.client.device_type.as_str(),
            },
            geo: GeoOut {
                country: a.geo.country.as_deref(),
                region: a.geo.region.as_deref(),
                city: a.geo.city.as_deref(),
                latitude: a.geo.latitude,
                longitude: a.geo.longitude,
                asn: a.geo.asn,
            },
            signals: &a.signals,
            outcome: login.outcome.as_str(),
            label: &login.label,
        };
        let io = |source| DatasetError::Write {
            origin: "ndjson output".into(),
            source,
        };
        serde_json::to_writer(&mut self.output, &line).map_err(|e| io(e.into()))?;
        self.output.write_all(b"\n").map_err(io)
    }

    /// Flushes and hands back the output.
    pub fn finish(mut self) -> Result<W, DatasetError> {
        self.output.flush().map_err(|source| DatasetError::Write {
            origin: "ndjson output".into(),
            source,
        })?;
        Ok(self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::Enricher;
    use crate::event::Outcome;
    use crate::geoip::GeoIp;

    fn read(text: &str) -> Vec<Result<LabelledLogin, DatasetError>> {
        let settings = ReadSettings {
            enricher: Enricher::new(GeoIp::builtin().unwrap()),
            signals_max: 32,
            now_ms: 0,
        };
        NdjsonReader::new(text.as_bytes(), settings).collect()
    }

    #[test]
    fn lines_parse_like_the_server_with_labels() {
        let text = "{\"user_id\":\"u1\",\"ip\":\"192.0.2.10\",\"timestamp\":\"2025-06-02T00:00:00Z\",\"outcome\":\"success\",\"label\":{\"takeover\":true,\"kind\":\"naive\"}}\n\
                    \n\
                    {\"user_id\":\"u2\",\"ip\":\"nowhere\",\"outcome\":\"success\"}\r\n\
                    {\"user_id\":\"u3\",\"ip\":\"198.51.100.7\",\"event_id\":\"e3\",\"outcome\":\"failure\"}";
        let logins = read(text);
        assert_eq!(logins.len(), 3);
        let first = logins[0].as_ref().unwrap();
        assert_eq!(first.attempt.attempt_id, "line-1");
        assert_eq!(first.attempt.geo.country.as_deref(), Some("NO"));
        assert_eq!(
            first.label,
            Label {
                attack: true,
                takeover: true,
                kind: Some("naive".into())
            }
        );
        match &logins[1] {
            Err(DatasetError::Row { line: 3, reason }) => {
                assert!(reason.contains("ip"), "{reason}")
            }
            other => panic!("expected a bad line 3, got {other:?}"),
        }
        let third = logins[2].as_ref().unwrap();
        assert_eq!(third.attempt.attempt_id, "e3");
        assert_eq!(third.outcome, Outcome::Failure);
        assert_eq!(third.label, Label::default());
    }

    #[test]
    fn written_lines_read_back_the_same() {
        let text = "{\"user_id\":\"u1\",\"ip\":\"203.0.113.9\",\"event_id\":\"e1\",\"timestamp\":\"2025-06-02T00:00:00.250Z\",\"device_id\":\"d1\",\"user_agent\":\"curl/8.5.0\",\"geo\":{\"country\":\"SE\",\"city\":\"Lund\",\"latitude\":55.7,\"longitude\":13.19,\"asn\":64501},\"signals\":{\"attack_ip\":true},\"outcome\":\"failure\",\"label\":{\"attack\":true,\"kind\":\"vpn\"}}\n";
        let first = read(text).remove(0).unwrap();
        let mut writer = NdjsonWriter::new(Vec::new());
        writer.write(&first).unwrap();
        let written = String::from_utf8(writer.finish().unwrap()).unwrap();
        let again = read(&written).remove(0).unwrap();
        assert_eq!(first, again);
    }
}
