//! The RBA dataset's CSV (das-group/rba-dataset: Wiefling, Jørgensen, Thunem,
//! Lo Iacono, ACM TOPS 2022), read by header name and written back.
//!
//! Required columns: `Login Timestamp`, `User ID`, `IP Address`. Optional:
//! `Country`, `Region`, `City`, `ASN` (geo overrides; `-` or empty is
//! absent), `User Agent String`, `Browser Name and Version`, `OS Name and
//! Version`, `Device Type` (client overrides), `Login Successful` (absent:
//! success), `Is Attack IP` (the gateway's threat-intel flag: signal
//! `attack_ip` = 1, and an attack label), `Is Account Takeover`. A leading
//! index column (`index` or unnamed) names the attempt (`row-<index>`,
//! else `row-<line>`); any other column is ignored.
//!
//! `riskd simulate` writes four more, read when present: `Attack Kind`
//! (label.kind), `Is Attack` (label.attack, so that the threat-intel flag
//! can differ from the truth), `Device ID`, `Latitude` and `Longitude`.

use std::io::{Read, Write};
use std::net::IpAddr;

use csv::{ByteRecord, StringRecord};

use super::{present, DatasetError, Label, LabelledLogin, ReadSettings};
use crate::enrich::{ClientOverride, GeoOverride};
use crate::event::{DeviceType, LoginAttempt, Outcome, Signal, TimestampMs};
use crate::http::request::{
    DEVICE_ID_BYTES_MAX, EVENT_ID_BYTES_MAX, NAME_BYTES_MAX, USER_AGENT_BYTES_MAX,
    USER_ID_BYTES_MAX,
};
use crate::projection::keys::CountryCode;

pub const INDEX: &str = "index";
pub const TIMESTAMP: &str = "Login Timestamp";
pub const USER_ID: &str = "User ID";
pub const ROUND_TRIP_TIME: &str = "Round-Trip Time [ms]";
pub const IP: &str = "IP Address";
pub const COUNTRY: &str = "Country";
pub const REGION: &str = "Region";
pub const CITY: &str = "City";
pub const ASN: &str = "ASN";
pub const USER_AGENT: &str = "User Agent String";
pub const BROWSER: &str = "Browser Name and Version";
pub const OS: &str = "OS Name and Version";
pub const DEVICE_TYPE: &str = "Device Type";
pub const SUCCESS: &str = "Login Successful";
pub const ATTACK_IP: &str = "Is Attack IP";
pub const TAKEOVER: &str = "Is Account Takeover";
pub const ATTACK_KIND: &str = "Attack Kind";
pub const IS_ATTACK: &str = "Is Attack";
pub const DEVICE_ID: &str = "Device ID";
pub const LATITUDE: &str = "Latitude";
pub const LONGITUDE: &str = "Longitude";

/// The signal a row's `Is Attack IP` becomes.
pub const ATTACK_IP_SIGNAL: &str = "attack_ip";

/// Where each known column is in the header.
#[derive(Debug)]
struct Columns {
    fields: usize,
    index: Option<usize>,
    timestamp: usize,
    user_id: usize,
    ip: usize,
    country: Option<usize>,
    region: Option<usize>,
    city: Option<usize>,
    asn: Option<usize>,
    user_agent: Option<usize>,
    browser: Option<usize>,
    os: Option<usize>,
    device_type: Option<usize>,
    success: Option<usize>,
    attack_ip: Option<usize>,
    takeover: Option<usize>,
    attack_kind: Option<usize>,
    is_attack: Option<usize>,
    device_id: Option<usize>,
    latitude: Option<usize>,
    longitude: Option<usize>,
}

impl Columns {
    fn of(header: &StringRecord) -> Result<Columns, DatasetError> {
        let find = |name: &str| header.iter().position(|h| h == name);
        let required = |name: &'static str| {
            find(name).ok_or_else(|| DatasetError::MissingColumn {
                column: name,
                found: header.iter().collect::<Vec<_>>().join(", "),
            })
        };
        let index = match header.get(0) {
            Some(INDEX) | Some("") => Some(0),
            _ => None,
        };
        Ok(Columns {
            fields: header.len(),
            index,
            timestamp: required(TIMESTAMP)?,
            user_id: required(USER_ID)?,
            ip: required(IP)?,
            country: find(COUNTRY),
            region: find(REGION),
            city: find(CITY),
            asn: find(ASN),
            user_agent: find(USER_AGENT),
            browser: find(BROWSER),
            os: find(OS),
            device_type: find(DEVICE_TYPE),
            success: find(SUCCESS),
            attack_ip: find(ATTACK_IP),
            takeover: find(TAKEOVER),
            attack_kind: find(ATTACK_KIND),
            is_attack: find(IS_ATTACK),
            device_id: find(DEVICE_ID),
            latitude: find(LATITUDE),
            longitude: find(LONGITUDE),
        })
    }

    fn labelled(&self) -> bool {
        self.attack_ip.is_some()
            || self.takeover.is_some()
            || self.attack_kind.is_some()
            || self.is_attack.is_some()
    }
}

/// Streams [`LabelledLogin`]s from RBA CSV; a bad row is an `Err` naming its line.
pub struct RbaCsvReader<R: Read> {
    csv: csv::Reader<R>,
    columns: Columns,
    settings: ReadSettings,
    record: ByteRecord,
    done: bool,
}

impl<R: Read> RbaCsvReader<R> {
    /// Reads the header; a missing required column is an error naming it.
    pub fn new(input: R, settings: ReadSettings) -> Result<RbaCsvReader<R>, DatasetError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(input);
        let header = csv.headers().map_err(csv_error)?.clone();
        let columns = Columns::of(&header)?;
        Ok(RbaCsvReader {
            csv,
            columns,
            settings,
            record: ByteRecord::new(),
            done: false,
        })
    }

    /// Whether the header has label columns.
    pub fn labelled(&self) -> bool {
        self.columns.labelled()
    }
}

impl<R: Read> Iterator for RbaCsvReader<R> {
    type Item = Result<LabelledLogin, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.csv.read_byte_record(&mut self.record) {
            Ok(true) => {
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(
                    Row {
                        record: &self.record,
                        columns: &self.columns,
                    }
                    .parse(line, &self.settings)
                    .map_err(|reason| DatasetError::Row { line, reason }),
                )
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(csv_error(err)))
            }
        }
    }
}

fn csv_error(err: csv::Error) -> DatasetError {
    let message = err.to_string();
    match err.into_kind() {
        csv::ErrorKind::Io(source) => DatasetError::Io {
            origin: "rba-csv data".into(),
            source,
        },
        _ => DatasetError::Csv {
            origin: "rba-csv data".into(),
            message,
        },
    }
}

fn write_error(err: csv::Error) -> DatasetError {
    let message = err.to_string();
    match err.into_kind() {
        csv::ErrorKind::Io(source) => DatasetError::Write {
            origin: "rba-csv output".into(),
            source,
        },
        _ => DatasetError::Csv {
            origin: "rba-csv output".into(),
            message,
        },
    }
}

/// One record seen through the header.
struct Row<'a> {
    record: &'a ByteRecord,
    columns: &'a Columns,
}

impl Row<'_> {
    fn text(&self, index: usize, name: &str) -> Result<&str, String> {
        let bytes = self.record.get(index).unwrap_or_default();
        std::str::from_utf8(bytes).map_err(|_| format!("{name} is not valid UTF-8"))
    }

    /// An optional column's value; `-` or empty is absent.
    fn optional(&self, index: Option<usize>, name: &str) -> Result<Option<&str>, String> {
        match index {
            Some(i) => Ok(present(self.text(i, name)?)),
            None => Ok(None),
        }
    }

    fn bounded(
        &self,
        index: Option<usize>,
        name: &str,
        max: usize,
    ) -> Result<Option<String>, String> {
        match self.optional(index, name)? {
            Some(text) if text.len() > max => Err(format!(
                "{name} must be 1 to {max} bytes long, got {}",
                text.len()
            )),
            Some(text) => Ok(Some(text.to_owned())),
            None => Ok(None),
        }
    }

    fn flag(&self, index: Option<usize>, name: &str) -> Result<Option<bool>, String> {
        self.optional(index, name)?
            .map(|text| {
                parse_bool(text).ok_or_else(|| format!("{name}: `{text}` is not True or False"))
            })
            .transpose()
    }

    fn coordinate(
        &self,
        index: Option<usize>,
        name: &str,
        bound: f64,
    ) -> Result<Option<f64>, String> {
        match self.optional(index, name)? {
            Some(text) => match text.parse::<f64>() {
                Ok(v) if v.is_finite() && v.abs() <= bound => Ok(Some(v)),
                _ => Err(format!("{name}: `{text}` is not a number within ±{bound}")),
            },
            None => Ok(None),
        }
    }

    fn parse(&self, line: u64, settings: &ReadSettings) -> Result<LabelledLogin, String> {
        let c = self.columns;
        if self.record.len() != c.fields {
            return Err(format!(
                "the row has {} fields, the header {}",
                self.record.len(),
                c.fields
            ));
        }
        let user_id = self.text(c.user_id, USER_ID)?;
        if user_id.is_empty() || user_id.len() > USER_ID_BYTES_MAX {
            return Err(format!(
                "{USER_ID} must be 1 to {USER_ID_BYTES_MAX} bytes long, got {}",
                user_id.len()
            ));
        }
        let ip_text = self.text(c.ip, IP)?;
        let ip: IpAddr = ip_text
            .trim()
            .parse()
            .map_err(|_| format!("{IP}: `{ip_text}` is not an IPv4 or IPv6 address"))?;
        let ip = ip.to_canonical();
        let timestamp_ms = parse_timestamp(self.text(c.timestamp, TIMESTAMP)?)?;
        let attempt_id = match self.optional(c.index, INDEX)? {
            Some(index) if index.len() + 4 <= EVENT_ID_BYTES_MAX => format!("row-{index}"),
            Some(_) => return Err(format!("{INDEX} is longer than {EVENT_ID_BYTES_MAX} bytes")),
            None => format!("row-{line}"),
        };

        let geo = GeoOverride {
            country: self
                .optional(c.country, COUNTRY)?
                .map(|text| {
                    CountryCode::parse(text)
                        .map(|code| code.as_str().to_owned())
                        .ok_or_else(|| {
                            format!("{COUNTRY}: `{text}` is not an ISO 3166-1 alpha-2 code")
                        })
                })
                .transpose()?,
            region: self.bounded(c.region, REGION, NAME_BYTES_MAX)?,
            city: self.bounded(c.city, CITY, NAME_BYTES_MAX)?,
            latitude: self.coordinate(c.latitude, LATITUDE, 90.0)?,
            longitude: self.coordinate(c.longitude, LONGITUDE, 180.0)?,
            asn: self
                .optional(c.asn, ASN)?
                .map(|text| {
                    text.parse::<u32>()
                        .map_err(|_| format!("{ASN}: `{text}` is not an AS number"))
                })
                .transpose()?,
        };
        let user_agent = self.bounded(c.user_agent, USER_AGENT, USER_AGENT_BYTES_MAX)?;
        let client = ClientOverride {
            browser: self.bounded(c.browser, BROWSER, NAME_BYTES_MAX)?,
            os: self.bounded(c.os, OS, NAME_BYTES_MAX)?,
            device_type: match c.device_type {
                Some(i) => Some(parse_device_type(self.text(i, DEVICE_TYPE)?)),
                None => None,
            },
        };
        // With browser, OS and device type all given the parser's answer
        // would be overridden field by field anyway: skip it (it is the
        // costliest step of a row).
        let parse_ua =
            client.browser.is_none() || client.os.is_none() || client.device_type.is_none();
        let client = settings.enricher.client(
            if parse_ua {
                user_agent.as_deref()
            } else {
                None
            },
            client,
        );
        let device_id = self.bounded(c.device_id, DEVICE_ID, DEVICE_ID_BYTES_MAX)?;

        let outcome = match self.flag(c.success, SUCCESS)? {
            Some(false) => Outcome::Failure,
            Some(true) | None => Outcome::Success,
        };
        let attack_ip = self.flag(c.attack_ip, ATTACK_IP)?.unwrap_or(false);
        let takeover = self.flag(c.takeover, TAKEOVER)?.unwrap_or(false);
        let attack = self
            .flag(c.is_attack, IS_ATTACK)?
            .unwrap_or(attack_ip || takeover);
        let kind = self
            .optional(c.attack_kind, ATTACK_KIND)?
            .map(str::to_owned);
        let signals = if attack_ip {
            vec![Signal {
                name: ATTACK_IP_SIGNAL.to_owned(),
                value: 1.0,
            }]
        } else {
            Vec::new()
        };
        Ok(LabelledLogin {
            attempt: LoginAttempt {
                attempt_id,
                user_id: user_id.to_owned(),
                timestamp_ms,
                ip,
                device_id,
                user_agent,
                client,
                geo: settings.enricher.geo(ip, geo),
                signals,
            },
            outcome,
            label: Label {
                attack,
                takeover,
                kind,
            },
        })
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "True" | "true" | "TRUE" | "1" => Some(true),
        "False" | "false" | "FALSE" | "0" => Some(false),
        _ => None,
    }
}

fn parse_device_type(text: &str) -> DeviceType {
    DeviceType::ALL
        .into_iter()
        .find(|d| text.trim().eq_ignore_ascii_case(d.as_str()))
        .unwrap_or(DeviceType::Unknown)
}

/// `2025-06-02 00:00:22.958` (UTC, the dataset's form; fraction optional)
/// or RFC 3339 with an offset.
pub fn parse_timestamp(text: &str) -> Result<TimestampMs, String> {
    parse_dataset_timestamp(text.trim())
        .or_else(|| crate::http::request::parse_timestamp(text.trim(), TIMESTAMP).ok())
        .ok_or_else(|| {
            format!(
                "{TIMESTAMP}: `{text}` is neither `YYYY-MM-DD HH:MM:SS[.fff]` (UTC) nor RFC 3339"
            )
        })
}

fn parse_dataset_timestamp(text: &str) -> Option<TimestampMs> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = &b[range];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(year, month, u8::try_from(number(8..10)?).ok()?).ok()?;
    let time = time::Time::from_hms(
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(14..16)?).ok()?,
        u8::try_from(number(17..19)?).ok()?,
    )
    .ok()?;
    let millis = match &b[19..] {
        [] => 0,
        [b'.', fraction @ ..]
            if !fraction.is_empty() && fraction.iter().all(u8::is_ascii_digit) =>
        {
            // Milliseconds: the first three digits, right-padded.
            (0..3).fold(0i64, |ms, i| {
                ms * 10 + fraction.get(i).map_or(0, |d| i64::from(d - b'0'))
            })
        }
        _ => return None,
    };
    let seconds = time::PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp();
    Some(seconds * 1000 + millis)
}

/// `2025-06-02 00:00:22.958`, the dataset's own timestamp form (UTC).
pub fn format_timestamp(ms: TimestampMs) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The columns [`RbaCsvWriter`] writes: the dataset's, then simulate's extras.
pub const WRITTEN_COLUMNS: [&str; 21] = [
    INDEX,
    TIMESTAMP,
    USER_ID,
    ROUND_TRIP_TIME,
    IP,
    COUNTRY,
    REGION,
    CITY,
    ASN,
    USER_AGENT,
    BROWSER,
    OS,
    DEVICE_TYPE,
    SUCCESS,
    ATTACK_IP,
    TAKEOVER,
    ATTACK_KIND,
    IS_ATTACK,
    DEVICE_ID,
    LATITUDE,
    LONGITUDE,
];

/// Writes logins as RBA CSV rows (index = 1, 2, ...). Outcomes other than
/// success and failure become `Login Successful` True when they teach the
/// context (challenge passed), False otherwise.
pub struct RbaCsvWriter<W: Write> {
    csv: csv::Writer<W>,
    rows: u64,
}

impl<W: Write> RbaCsvWriter<W> {
    pub fn new(output: W) -> Result<RbaCsvWriter<W>, DatasetError> {
        let mut csv = csv::WriterBuilder::new().from_writer(output);
        csv.write_record(WRITTEN_COLUMNS).map_err(write_error)?;
        Ok(RbaCsvWriter { csv, rows: 0 })
    }

    pub fn write(&mut self, login: &LabelledLogin) -> Result<(), DatasetError> {
        self.rows += 1;
        let a = &login.attempt;
        let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
        let number = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
        let attack_ip = a
            .signals
            .iter()
            .any(|s| s.name == ATTACK_IP_SIGNAL && s.value != 0.0);
        let bool_text = |b: bool| if b { "True" } else { "False" }.to_owned();
        let row: [String; 21] = [
            self.rows.to_string(),
            format_timestamp(a.timestamp_ms),
            a.user_id.clone(),
            String::new(),
            a.ip.to_string(),
            or_dash(&a.geo.country),
            or_dash(&a.geo.region),
            or_dash(&a.geo.city),
            a.geo
                .asn
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".to_owned()),
            a.user_agent.clone().unwrap_or_default(),
            or_dash(&a.client.browser),
            or_dash(&a.client.os),
            a.client.device_type.as_str().to_owned(),
            bool_text(login.outcome.teaches_context()),
            bool_text(attack_ip),
            bool_text(login.label.takeover),
            login.label.kind.clone().unwrap_or_default(),
            bool_text(login.label.attack),
            a.device_id.clone().unwrap_or_default(),
            number(a.geo.latitude),
            number(a.geo.longitude),
        ];
        self.csv.write_record(&row).map_err(write_error)
    }

    /// Flushes and hands back the output.
    pub fn finish(self) -> Result<W, DatasetError> {
        self.csv.into_inner().map_err(|err| DatasetError::Write {
            origin: "rba-csv output".into(),
            source: err.into_error(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::Enricher;
    use crate::geoip::GeoIp;

    fn settings() -> ReadSettings {
        ReadSettings {
            enricher: Enricher::new(GeoIp::builtin().unwrap()),
            signals_max: 32,
            now_ms: 0,
        }
    }

    #[test]
    fn dataset_timestamps_are_utc_milliseconds() {
        assert_eq!(
            parse_timestamp("2025-06-02 00:09:12.904").unwrap(),
            1_748_822_952_904
        );
        assert_eq!(
            parse_timestamp("2025-06-02 00:09:12.9").unwrap(),
            1_748_822_952_900
        );
        assert_eq!(
            parse_timestamp("2025-06-02 00:09:12").unwrap(),
            1_748_822_952_000
        );
        assert_eq!(
            parse_timestamp("2025-06-02T02:09:12.904+02:00").unwrap(),
            1_748_822_952_904
        );
        assert!(parse_timestamp("2025-06-31 00:09:12").is_err());
        assert!(parse_timestamp("yesterday").is_err());
        assert_eq!(
            format_timestamp(1_748_822_952_904),
            "2025-06-02 00:09:12.904"
        );
    }

    #[test]
    fn a_row_maps_to_the_attempt_the_server_would_build() {
        let csv = "index,Login Timestamp,User ID,IP Address,Country,Region,City,ASN,User Agent String,Browser Name and Version,OS Name and Version,Device Type,Login Successful,Is Attack IP,Is Account Takeover\n\
                   7,2025-06-02 00:09:12.904,u1,192.0.2.10,NO,-,-,64500,Mozilla/5.0,Chrome 80.0.3987,Windows 10,desktop,False,True,False\n";
        let mut reader = RbaCsvReader::new(csv.as_bytes(), settings()).unwrap();
        assert!(reader.labelled());
        let login = reader.next().unwrap().unwrap();
        let a = &login.attempt;
        assert_eq!(a.attempt_id, "row-7");
        assert_eq!(a.geo.country.as_deref(), Some("NO"));
        // Region and city are "-": GeoIP fills them for this fixture range.
        assert_eq!(a.geo.city.as_deref(), Some("Oslo"));
        assert_eq!(a.client.device_type, DeviceType::Desktop);
        assert_eq!(login.outcome, Outcome::Failure);
        assert_eq!(a.signals[0].name, "attack_ip");
        assert!(login.label.attack && !login.label.takeover);
        assert!(reader.next().is_none());
    }
}
