//! Durations on the command line: `60s`, `500ms`, `250us`, `2m`, `1.5s`.

use std::time::Duration;

/// Longest duration accepted (a day): a longer one is a typo.
pub const DURATION_S_MAX: f64 = 24.0 * 3600.0;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a duration like 60s, 500ms, 250us, 2m or 1h (at most a day)")]
pub struct InvalidDuration(pub String);

/// Parses a number followed by a unit (`us`, `µs`, `ms`, `s`, `m`, `h`);
/// a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_owned());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(invalid()),
    };
    let seconds = value * seconds_per_unit;
    if !seconds.is_finite() || !(0.0..=DURATION_S_MAX).contains(&seconds) {
        return Err(invalid());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("60s"), Ok(ms(60_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("10"), Ok(ms(10_000)));
        assert_eq!(parse_duration(" 5ms "), Ok(ms(5)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn nonsense_is_refused() {
        for text in [
            "",
            "s",
            "ten s",
            "5 parsecs",
            "-1s",
            "1e3s",
            "2d",
            "25h",
            "1..2s",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }
}
