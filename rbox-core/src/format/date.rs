//! Date strings of `rmb` (`YYYY-MM-DD HH:MM:SS`) ↔ Unix seconds.
//!
//! Upstream converts with `strptime` + `mktime`, i.e. in the *local* time zone of whoever
//! runs the tool. rbox-core uses UTC so the same query gives the same answer on every host
//! (containers run in UTC anyway); `docs/rbox-format.md` records the difference.
//! Besides the full form, `YYYY-MM-DD HH:MM` and `YYYY-MM-DD` are accepted (upstream's own
//! test writes `R<2013-12-04 15:03`, which its parser silently turned into 0).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid date {0:?}: use YYYY-MM-DD HH:MM:SS, YYYY-MM-DD HH:MM or YYYY-MM-DD (UTC)")]
pub struct DateError(pub String);

/// Parse an `rmb` date into Unix seconds (UTC).
pub fn parse_date(s: &str) -> Result<i64, DateError> {
    let err = || DateError(s.chars().take(40).collect());
    // Exact shapes only (zero-padded fields, no surrounding spaces): strptime would take
    // "2017-2-2", which upstream's full-format parse refuses.
    let shape_ok = |pattern: &str| {
        s.len() == pattern.len()
            && s.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
                b'9' => c.is_ascii_digit(),
                _ => c == p,
            })
    };
    if !["9999-99-99 99:99:99", "9999-99-99 99:99", "9999-99-99"]
        .iter()
        .any(|p| shape_ok(p))
    {
        return Err(err());
    }
    let t = s;
    let formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"];
    for f in formats {
        let parsed = if f == "%Y-%m-%d" {
            jiff::civil::Date::strptime(f, t).map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        } else {
            DateTime::strptime(f, t)
        };
        if let Ok(dt) = parsed {
            return dt
                .to_zoned(TimeZone::UTC)
                .map(|z| z.timestamp().as_second())
                .map_err(|_| err());
        }
    }
    Err(err())
}

/// Render Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC). Out-of-range values render as
/// `invalid date`, like upstream's `convert_time_t_to_str` for -1.
pub fn format_date(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => ts
            .to_zoned(TimeZone::UTC)
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => "invalid date".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_upstream_examples() {
        // utils_convert_str_to_time: "2017-10-10 12:12:12" (1507637532 in UTC).
        assert_eq!(parse_date("2017-10-10 12:12:12").unwrap(), 1_507_637_532);
        assert_eq!(format_date(1_507_637_532), "2017-10-10 12:12:12");
        // date_arg / observed R of alice UID 3.
        assert_eq!(format_date(1_704_110_403), "2024-01-01 12:00:03");
        assert_eq!(parse_date("2013-12-04 15:03").unwrap(), 1_386_169_380);
        assert_eq!(parse_date("2013-12-04").unwrap(), 1_386_115_200);
    }

    #[test]
    fn rejects_what_upstream_rejects() {
        // utils_convert_str_to_time: "2017-2-2 " and "" are invalid.
        assert!(parse_date("2017-2-2 ").is_err());
        assert!(parse_date("").is_err());
        assert!(parse_date("asjsjsjsj09202920").is_err());
        assert!(parse_date("2017-13-01 00:00:00").is_err());
        assert!(parse_date("2017-10-10 12:12:12 junk").is_err());
        assert_eq!(format_date(i64::MAX), "invalid date");
    }
}
