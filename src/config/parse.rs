//! Parsers for option values. Each takes the text a user typed (flag, environment variable or
//! config value) and returns the typed value or a short reason; the caller adds which option
//! and which source the text came from.

use std::time::Duration;

pub use personafs_client::units::{parse_duration, parse_size};

/// An optional limit in time: `None` means no limit. (A newtype because clap gives
/// `Option<Option<T>>` fields a meaning of its own.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeLimit(pub Option<Duration>);

/// A duration, or `off` / `none` / `never` for "no limit".
pub fn parse_age_limit(text: &str) -> Result<AgeLimit, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "never" => Ok(AgeLimit(None)),
        _ => parse_duration(text).map(|d| AgeLimit(Some(d))),
    }
}

/// A permission mode in octal: `0444`, `444` or `0o444`; at most `0777`.
pub fn parse_mode(text: &str) -> Result<u16, String> {
    let text = text.trim();
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = u16::from_str_radix(digits, 8)
        .ok()
        .filter(|_| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("invalid mode {text:?} (an octal number such as 0444)"))?;
    if mode > 0o777 {
        return Err(format!("mode {text:?} is out of range (at most 0777)"));
    }
    Ok(mode)
}

/// A percentage `0` to `<100` (`10`, `10%`, `2.5`), returned as a fraction (`0.10`).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let number = text.strip_suffix('%').unwrap_or(text).trim();
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("invalid percentage {text:?} (examples: 10, 2.5%)"))?;
    if !(0.0..100.0).contains(&value) {
        return Err(format!(
            "percentage {text:?} is out of range (0 to less than 100)"
        ));
    }
    Ok(value / 100.0)
}

/// A share in percent, more than `0` up to `100` (`50`, `50%`), returned as a fraction.
pub fn parse_share(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    if trimmed.strip_suffix('%').unwrap_or(trimmed).trim() == "100" {
        return Ok(1.0);
    }
    match parse_percent(text) {
        Ok(share) if share > 0.0 => Ok(share),
        _ => Err(format!(
            "invalid share {trimmed:?} (a percentage above 0, at most 100, e.g. 50)"
        )),
    }
}

/// A boolean: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "invalid boolean {text:?} (true/false, yes/no, on/off, 1/0)"
        )),
    }
}

/// `--views`: `by-reference-id,accounts,by-day` (any of them), `all` or `none`.
pub fn parse_views(text: &str) -> Result<personafs_fs::ViewSet, String> {
    personafs_fs::ViewSet::parse(text)
}

/// A positive count (threads and the like).
pub fn parse_positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "invalid number {text:?} (a whole number, at least 1)"
        )),
    }
}

/// A user or group id (numeric).
pub fn parse_id(text: &str) -> Result<u32, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid id {text:?} (a numeric user or group id)"))
}

/// API requests per minute: `300` or `300/min`; `5/s` is 300 per minute. At least 1.
pub fn parse_rate(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let bad = || format!("invalid rate {text:?} (requests per minute, e.g. 300 or 300/min)");
    let (number, per_second) = match text.split_once('/') {
        None => (text, false),
        Some((n, "min" | "m")) => (n, false),
        Some((n, "s" | "sec")) => (n, true),
        Some(_) => return Err(bad()),
    };
    let n: u32 = number.trim().parse().map_err(|_| bad())?;
    let per_minute = if per_second {
        n.checked_mul(60).ok_or_else(bad)?
    } else {
        n
    };
    if per_minute == 0 {
        return Err("rate must be at least 1 request per minute".into());
    }
    Ok(per_minute)
}

/// A log level: `error`, `warn`, `info`, `debug` or `trace` (any case), returned lowercase.
pub fn parse_log_level(text: &str) -> Result<String, String> {
    let level = text.trim().to_ascii_lowercase();
    match level.as_str() {
        "error" | "warn" | "info" | "debug" | "trace" => Ok(level),
        _ => Err(format!(
            "invalid log level {text:?} (error, warn, info, debug or trace)"
        )),
    }
}

/// An ISO-8601 date (`2024-01-31`) or date-time with offset (`2024-01-31T12:00:00Z`),
/// returned as given (trimmed), since Persona takes ISO-8601 as is.
pub fn parse_timestamp(text: &str) -> Result<String, String> {
    let text = text.trim();
    let ok = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
        || chrono::DateTime::parse_from_rfc3339(text).is_ok();
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "invalid date {text:?} (ISO-8601: 2024-01-31 or 2024-01-31T12:00:00Z)"
        ))
    }
}

/// A timestamp accepted by `parse_timestamp` as UTC (a bare date is its midnight UTC).
pub fn timestamp_utc(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A Persona API version: one of the versions Persona publishes (the list lives with the
/// client, taken from the official OpenAPI spec).
pub fn parse_persona_version(text: &str) -> Result<String, String> {
    personafs_client::version::parse_persona_version(text)
}

/// An inquiry id: `inq_` followed by letters and digits.
pub fn parse_inquiry_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    let valid = text
        .strip_prefix("inq_")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "invalid inquiry id {text:?} (ids look like inq_2T4sQ…)"
        ))
    }
}

/// A free-form filter value (status, template, reference, account): non-empty, one line.
pub fn parse_filter_value(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(format!("invalid filter value {text:?}"));
    }
    Ok(text.to_string())
}

/// The API base URL: http(s), with a host, without credentials, query or fragment.
/// Returned without a trailing slash.
/// `HOST` or `HOST:PORT`, as file URLs name them.
pub fn parse_host(text: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    let (host, port) = match t.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (t.as_str(), None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if host_ok && port_ok {
        Ok(t)
    } else {
        Err(format!("{text:?} is not a host name or host:port"))
    }
}

pub fn parse_api_base(text: &str) -> Result<String, String> {
    let text = text.trim();
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the API base must be an http:// or https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the API base URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the API base URL must not contain credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the API base URL must not have a query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("50us"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_duration("20µs"), Ok(Duration::from_micros(20)));
        assert_eq!(parse_duration("2s"), Ok(s(2)));
        assert_eq!(parse_duration("10m"), Ok(s(600)));
        assert_eq!(parse_duration("6h"), Ok(s(6 * 3600)));
        assert_eq!(parse_duration("3d"), Ok(s(3 * 86_400)));
        assert_eq!(parse_duration("60"), Ok(s(60)));
        assert_eq!(parse_duration(" 0 "), Ok(s(0)));
        assert_eq!(parse_duration("1h30m"), Ok(s(5400)));
        for bad in ["", "s", "5x", "1.5h", "-3s", "h5", "5 s", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_age_limit("off"), Ok(AgeLimit(None)));
        assert_eq!(parse_age_limit("7d"), Ok(AgeLimit(Some(s(7 * 86_400)))));
        assert!(parse_age_limit("sometimes").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("10B"), Ok(10));
        for bad in ["", "GiB", "5XB", "-1G", "1.2.3G", "99999999999TB"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0444"), Ok(0o444));
        assert_eq!(parse_mode("555"), Ok(0o555));
        assert_eq!(parse_mode("0o440"), Ok(0o440));
        for bad in ["", "0o", "0888", "abc", "1777", "+444", "-1"] {
            assert!(parse_mode(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("10"), Ok(0.10));
        assert_eq!(parse_percent("5%"), Ok(0.05));
        assert_eq!(parse_percent("2.5"), Ok(0.025));
        assert_eq!(parse_percent("0"), Ok(0.0));
        for bad in ["", "%", "100", "-1", "NaN", "inf", "ten"] {
            assert!(parse_percent(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn shares() {
        assert_eq!(parse_share("50"), Ok(0.5));
        assert_eq!(parse_share("100%"), Ok(1.0));
        assert_eq!(parse_share("12.5%"), Ok(0.125));
        for bad in ["0", "", "101", "-5", "half"] {
            assert!(parse_share(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn booleans() {
        for yes in ["true", "YES", "on", "1"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["false", "No", "off", "0"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        assert!(parse_bool("maybe").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn numbers_rates_levels() {
        assert_eq!(parse_positive("4"), Ok(4));
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("-2").is_err());
        assert_eq!(parse_id("1000"), Ok(1000));
        assert!(parse_id("root").is_err());
        assert_eq!(parse_rate("300"), Ok(300));
        assert_eq!(parse_rate("120/min"), Ok(120));
        assert_eq!(parse_rate("5/s"), Ok(300));
        for bad in ["0", "5/h", "x/min", ""] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_log_level("DEBUG"), Ok("debug".to_string()));
        assert!(parse_log_level("verbose").is_err());
    }

    #[test]
    fn timestamps_versions_ids() {
        assert_eq!(parse_timestamp("2024-01-31"), Ok("2024-01-31".into()));
        assert!(parse_timestamp("2024-01-31T12:00:00Z").is_ok());
        assert!(parse_timestamp("2024-01-31T12:00:00+02:00").is_ok());
        for bad in ["2024-13-01", "yesterday", "2024-01-31T25:00:00Z", ""] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_persona_version("2025-12-08"), Ok("2025-12-08".into()));
        assert!(parse_persona_version("v2").is_err());
        // A date, but not a version Persona publishes.
        assert!(parse_persona_version("2024-02-30").is_err());
        assert!(parse_persona_version("2024-03-01").is_err());
        assert_eq!(parse_inquiry_id("inq_2T4sQab"), Ok("inq_2T4sQab".into()));
        assert_eq!(parse_host("127.0.0.1:8080"), Ok("127.0.0.1:8080".into()));
        assert_eq!(
            parse_host("Files.Example.com"),
            Ok("files.example.com".into())
        );
        for bad in ["", "a/b", "h:0", "h:99999", "user@h"] {
            assert!(parse_host(bad).is_err(), "{bad:?} accepted");
        }
        for bad in ["inq_", "doc_abc", "inq_a/b", "inq_a b"] {
            assert!(parse_inquiry_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_filter_value("completed").is_ok());
        assert!(parse_filter_value(" ").is_err());
        assert!(parse_filter_value("a\nb").is_err());
    }

    #[test]
    fn api_bases() {
        assert_eq!(
            parse_api_base("https://withpersona.com/api/v1/"),
            Ok("https://withpersona.com/api/v1".into())
        );
        assert_eq!(
            parse_api_base("http://127.0.0.1:8080/api/v1"),
            Ok("http://127.0.0.1:8080/api/v1".into())
        );
        for bad in [
            "withpersona.com",
            "ftp://x/api",
            "https://user:pw@x/api",
            "https://x/api?a=1",
            "",
        ] {
            assert!(parse_api_base(bad).is_err(), "{bad:?} accepted");
        }
    }
}
