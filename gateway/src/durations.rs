//! Durations as users write and read them: the "friendly" form (`500ms`, `10s`, `1h 4m`,
//! `1d`) and ISO-8601 (`PT10S`) on input; Restate's compact form (`1d`, `1m`, `500ms`,
//! `1d 12h 4m 2s`) on output; and RFC 3339 timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest duration perdure accepts from clients, operators, deployments and config
/// (delays, retentions, timeouts, retry intervals): 100 years. Anything longer is a mistake,
/// and every time computed from an accepted one stays far inside `u64` milliseconds.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86_400);
/// [`MAX`] in milliseconds.
pub const MAX_MS: u64 = MAX.as_millis() as u64;

/// Milliseconds since the Unix epoch by the wall clock. Only drivers read the clock; the
/// engine gets time as input.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Parses a friendly or ISO-8601 duration of at most [`MAX`].
pub fn parse(input: &str) -> Result<Duration, String> {
    let d = parse_unbounded(input)?;
    if d > MAX {
        return Err(format!("'{input}' is longer than 36500d, the longest duration perdure accepts"));
    }
    Ok(d)
}

/// Milliseconds of a duration, checked against [`MAX`]: for durations given in ms.
pub fn check_ms(ms: u64) -> Result<u64, String> {
    if ms > MAX_MS {
        return Err(format!("{ms} ms is longer than 36500d, the longest duration perdure accepts"));
    }
    Ok(ms)
}

fn parse_unbounded(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if let Some(iso) = s.strip_prefix('P').or_else(|| s.strip_prefix('p')) {
        return parse_iso(iso).ok_or_else(|| format!("'{input}' is not an ISO-8601 duration"));
    }
    if !s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "'{input}' is not a duration: expected a number followed by a unit, like 500ms, 10s, 5m, 1h or 1d"
        ));
    }
    humantime::parse_duration(s).map_err(|e| format!("'{input}' is not a duration: {e}"))
}

/// ISO-8601 `[nD][T[nH][nM][n[.f]S]]`, after the leading `P`.
fn parse_iso(s: &str) -> Option<Duration> {
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut total = 0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let unit = units.iter().find(|(u, _)| u.eq_ignore_ascii_case(&c))?.1;
                total += num.parse::<f64>().ok()? * unit;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(t) = time {
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !any {
        return None;
    }
    // Too long for a Duration is too long for perdure: [`parse`] says so.
    Some(Duration::try_from_secs_f64(total).unwrap_or(Duration::MAX))
}

/// Restate's compact form: `0s`, `500ms`, `1m`, `1d 12h 4m 2s`.
pub fn format_compact(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400_000u64), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if ms >= size {
            parts.push(format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    parts.join(" ")
}

/// `2026-11-22T12:02:25.628000000Z`: RFC 3339, UTC, nanosecond digits (as Restate's REST).
pub fn rfc3339_nanos(ms: u64) -> String {
    let (date, time) = civil(ms);
    format!("{date}T{time}.{:03}000000Z", ms % 1000)
}

/// `2026-11-23T12:28:07.407+00:00`: the `idempotency-expires` header form.
pub fn rfc3339_offset(ms: u64) -> String {
    let (date, time) = civil(ms);
    format!("{date}T{time}.{:03}+00:00", ms % 1000)
}

/// `2026-11-22T13:23:46.978Z`: millisecond form.
pub fn rfc3339_millis(ms: u64) -> String {
    let (date, time) = civil(ms);
    format!("{date}T{time}.{:03}Z", ms % 1000)
}

/// Calendar date and time of day (UTC) of a Unix time in ms.
fn civil(ms: u64) -> (String, String) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (format!("{y:04}-{m:02}-{d:02}"), format!("{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60))
}

/// Serde support for durations in config files: friendly strings or plain milliseconds.
pub mod serde_friendly {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_compact(*d).replace(' ', ""))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => super::check_ms(ms).map(Duration::from_millis).map_err(serde::de::Error::custom),
            Raw::Text(t) => super::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_friendly_and_iso() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("1h 4m").unwrap(), Duration::from_secs(3840));
        assert_eq!(parse("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse("PT10S").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("P1DT1H").unwrap(), Duration::from_secs(90_000));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert!(parse("banana").is_err());
        assert!(parse("").is_err());
        assert!(parse("PTxS").is_err());
    }

    #[test]
    fn durations_beyond_the_limit_are_errors_not_panics() {
        assert!(parse("36500d").is_ok());
        for huge in [
            "36501d",
            "PT99999999999999H",
            "P99999999999999999999D",
            "P1e400D",
            "99999999999d",
            "18446744073709551615s",
        ] {
            let err = parse(huge).expect_err(huge);
            assert!(err.contains(huge), "{err}");
        }
        assert!(check_ms(MAX_MS).is_ok());
        assert!(check_ms(MAX_MS + 1).is_err());
    }

    #[test]
    fn formats_like_restate() {
        assert_eq!(format_compact(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_compact(Duration::from_secs(60)), "1m");
        assert_eq!(format_compact(Duration::from_millis(500)), "500ms");
        assert_eq!(format_compact(Duration::from_secs(600)), "10m");
        assert_eq!(format_compact(Duration::ZERO), "0s");
        assert_eq!(format_compact(Duration::from_secs(86_400 + 12 * 3600 + 4 * 60 + 2)), "1d 12h 4m 2s");
    }

    #[test]
    fn formats_timestamps() {
        // 2026-11-22T12:28:06.733Z
        let ms = 1_795_350_486_733;
        assert_eq!(rfc3339_nanos(ms), "2026-11-22T12:28:06.733000000Z");
        assert_eq!(rfc3339_offset(ms), "2026-11-22T12:28:06.733+00:00");
        assert_eq!(rfc3339_millis(ms), "2026-11-22T12:28:06.733Z");
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: crate::fuzz_cases(5000), failure_persistence: None, ..Default::default() })]

        /// Durations come from query strings, admin bodies and config: parsing never panics,
        /// and nothing above the limit gets through.
        #[test]
        fn arbitrary_durations_parse_within_the_limit_or_fail(s in "[Pp]?[Tt]?([0-9]{0,25}(\\.[0-9]{0,5})?[a-zA-Z]{0,3} ?){0,4}|\\PC{0,30}") {
            if let Ok(d) = parse(&s) {
                proptest::prop_assert!(d <= MAX);
            }
        }
    }
}
