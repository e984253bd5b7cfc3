//! Event times as exports write them, for every ingest format: which text shapes are accepted
//! (RFC 3339 and its usual relaxations, naive date-times read in a configured offset,
//! CICFlowMeter's `dd/mm/YYYY` clock, epoch seconds or milliseconds), the rule that tells epoch
//! seconds from milliseconds, and the range of times a warehouse can store.
//!
//! The parser is written by hand over chrono's calendar types: chrono's own relaxed RFC 3339
//! (`str::parse::<DateTime<FixedOffset>>`) accepts unpadded fields with spaces between any of
//! them but no `GMT`, no naive times and no day-first dates, and `humantime` reads UTC only.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Epoch numbers of this magnitude or more are milliseconds, smaller ones seconds: as seconds
/// 1e11 is past the year 5000, as milliseconds it is March 1973, so no flow is misread either
/// way. Epoch microseconds or nanoseconds of any time after 1977 come out past the year 9999
/// when read as milliseconds, and are rejected rather than misread.
pub const EPOCH_MILLIS_THRESHOLD: f64 = 1e11;

/// [`EPOCH_MILLIS_THRESHOLD`] for the integer part of an epoch written as text.
const EPOCH_MILLIS_THRESHOLD_INT: u128 = 100_000_000_000;

/// Why a text or number is not an event time. The message names the value; the caller adds the
/// field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// None of the accepted shapes.
    #[error(
        "`{value}` is not a timestamp: expected RFC 3339 (2026-01-01T00:00:00Z), \
         `YYYY-mm-dd HH:MM:SS[.ffffff][ UTC]`, `dd/mm/YYYY HH:MM[:SS][ AM|PM]` \
         or epoch seconds/milliseconds"
    )]
    Unrecognized { value: String },
    /// An accepted shape naming a day or a time of day that does not exist: `2026-02-30`,
    /// month 13, `25:00`, a leap second `23:59:60`, `13:00 PM`.
    #[error("`{value}` is not a timestamp: no such date or time of day")]
    NoSuchTime { value: String },
    /// A zone named by anything but UTC or GMT: abbreviations are ambiguous (`CST` is US
    /// Central, China and Cuba) and zone names would need a time zone database.
    #[error(
        "`{value}` is not a timestamp: zone `{zone}` is not UTC, GMT, Z \
         or a numeric offset such as +05:30"
    )]
    UnknownZone { value: String, zone: String },
    /// A date-time outside the years 0001 to 9999 once converted to UTC.
    #[error("`{value}` is out of range: timestamps must fall in the years 0001 to 9999 (UTC)")]
    OutOfRange { value: String },
    /// An epoch number outside the years 0001 to 9999.
    #[error(
        "`{value}` is out of range: as epoch seconds (below 1e11) or milliseconds (from 1e11) \
         it falls outside the years 0001 to 9999"
    )]
    EpochOutOfRange { value: String },
}

/// Parses an event time as exports write it; surrounding whitespace is ignored. Accepted:
///
/// - RFC 3339 with `T`, `t` or a space between date and time, seconds optional, a fraction of
///   any length (digits past the nanosecond are dropped, as chrono does), and a zone `Z`, `z`,
///   `±HH:MM`, `±HHMM`, `±HH`, `UTC` or `GMT` (the last two also after a space, as in
///   CICFlowMeter's `2018-12-01 13:32:12.000744 UTC`);
/// - the same without a zone, and `dd/mm/YYYY HH:MM[:SS[.frac]]`, both read in `naive_offset`;
///   either may end in ` AM` or ` PM` for a 12-hour clock (hours 1 to 12);
/// - epoch seconds or milliseconds as decimal text (`1767225601`, `1767225601.25`,
///   `1767225601250`, `-1`, `1.7e9`), told apart by [`EPOCH_MILLIS_THRESHOLD`]; plain decimals
///   are read exactly, without a round trip through a float.
///
/// Month, day and hour may have one digit or two (CIC-IDS2017 writes `3/7/2017 8:55`); minutes
/// and seconds have two, years four.
///
/// A slash date is day first: CICFlowMeter writes `dd/MM/yyyy hh:mm:ss a` and the CIC-IDS
/// data sets carry dates such as `14/02/2018`. No format we ingest writes month first, and
/// guessing per row would silently swap day and month whenever both are 12 or less, so
/// `02/14/2018` is rejected as month 14 rather than read as 14 February.
///
/// The result must fall in the years 0001 to 9999 UTC, BigQuery's TIMESTAMP range, which
/// DuckDB's covers: a time outside it could not be stored everywhere.
pub fn parse_event_time(
    text: &str,
    naive_offset: FixedOffset,
) -> Result<DateTime<Utc>, TimestampError> {
    let value = text.trim();
    if let Some(epoch) = epoch_text(value) {
        return epoch;
    }
    let (naive, offset) = date_time(value)?;
    naive
        .checked_sub_offset(offset.unwrap_or(naive_offset))
        .map(|utc| utc.and_utc())
        .filter(storable)
        .ok_or_else(|| TimestampError::OutOfRange {
            value: value.to_owned(),
        })
}

/// An epoch number that arrived as a number (a JSON number), in seconds or milliseconds by
/// [`EPOCH_MILLIS_THRESHOLD`]. The result is rounded to the microsecond: a double carries about
/// 16 significant digits, 10 of which an epoch in seconds spends before the point, so the digits
/// below the microsecond are the float's representation noise (`1543671132.000744` is stored as
/// `1543671132.00074410…`).
pub fn from_epoch_number(v: f64) -> Result<DateTime<Utc>, TimestampError> {
    epoch_float(v, || show_float(v))
}

fn epoch_float(v: f64, value: impl Fn() -> String) -> Result<DateTime<Utc>, TimestampError> {
    if v.is_nan() {
        return Err(TimestampError::Unrecognized { value: value() });
    }
    let micros = if v.abs() >= EPOCH_MILLIS_THRESHOLD {
        v * 1e3
    } else {
        v * 1e6
    };
    // ±4e17 µs is ±12,700 years around 1970: wider than the storable range, well inside i64.
    if micros.abs() >= 4e17 {
        return Err(TimestampError::EpochOutOfRange { value: value() });
    }
    DateTime::from_timestamp_micros(micros.round() as i64)
        .filter(storable)
        .ok_or_else(|| TimestampError::EpochOutOfRange { value: value() })
}

/// A float as an error message shows it: `{}` writes 1e300 with all its 301 digits.
fn show_float(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-6) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Whether a time can be stored in every warehouse: years 0001 to 9999.
fn storable(t: &DateTime<Utc>) -> bool {
    (1..=9999).contains(&t.year())
}

/// An epoch written as text, or `None` when the text is not a number: `[+-]digits[.digits]`,
/// read exactly, or the same with an exponent, read as a float.
fn epoch_text(value: &str) -> Option<Result<DateTime<Utc>, TimestampError>> {
    let mut s = Scanner::new(value);
    let negative = s.eat(b'-');
    if !negative {
        s.eat(b'+');
    }
    let integer = s.digit_run();
    if integer.is_empty() {
        return None;
    }
    let fraction = if s.eat(b'.') {
        let fraction = s.digit_run();
        if fraction.is_empty() {
            return None;
        }
        fraction
    } else {
        ""
    };
    if s.rest().is_empty() {
        return Some(epoch_decimal(value, negative, integer, fraction));
    }
    if !(s.eat(b'e') || s.eat(b'E')) {
        return None;
    }
    if !s.eat(b'-') {
        s.eat(b'+');
    }
    if s.digit_run().is_empty() || !s.rest().is_empty() {
        return None;
    }
    let v: f64 = value.parse().ok()?;
    Some(epoch_float(v, || value.to_owned()))
}

fn epoch_decimal(
    value: &str,
    negative: bool,
    integer: &str,
    fraction: &str,
) -> Result<DateTime<Utc>, TimestampError> {
    let out_of_range = || TimestampError::EpochOutOfRange {
        value: value.to_owned(),
    };
    let whole: u128 = integer.parse().map_err(|_| out_of_range())?;
    // Nanoseconds per unit, and how many fraction digits reach down to the nanosecond.
    let (unit, places) = if whole >= EPOCH_MILLIS_THRESHOLD_INT {
        (1_000_000u128, 6)
    } else {
        (1_000_000_000, 9)
    };
    let kept = &fraction[..fraction.len().min(places)];
    let part = kept.parse::<u128>().unwrap_or(0) * 10u128.pow((places - kept.len()) as u32);
    let nanos = whole
        .checked_mul(unit)
        .and_then(|n| n.checked_add(part))
        .and_then(|n| i128::try_from(n).ok())
        .ok_or_else(out_of_range)?;
    let nanos = if negative { -nanos } else { nanos };
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| out_of_range())?;
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    DateTime::from_timestamp(secs, sub)
        .filter(storable)
        .ok_or_else(out_of_range)
}

/// A date and time with the offset it was written in, `None` for a naive one.
fn date_time(value: &str) -> Result<(NaiveDateTime, Option<FixedOffset>), TimestampError> {
    let unrecognized = || TimestampError::Unrecognized {
        value: value.to_owned(),
    };
    let no_such_time = || TimestampError::NoSuchTime {
        value: value.to_owned(),
    };
    let mut s = Scanner::new(value);
    let (year, month, day) = if let Some(ymd) = s.attempt(iso_date) {
        if !(s.eat(b'T') || s.eat(b't') || s.eat(b' ')) {
            return Err(unrecognized());
        }
        ymd
    } else if let Some(ymd) = s.attempt(day_first_date) {
        if !s.eat(b' ') {
            return Err(unrecognized());
        }
        ymd
    } else {
        return Err(unrecognized());
    };
    let (hour, minute, second, nano) = s.attempt(clock).ok_or_else(unrecognized)?;
    let hour = match s.attempt(meridiem) {
        None => hour,
        Some(_) if hour == 0 || hour > 12 => return Err(no_such_time()),
        Some(pm) => hour % 12 + if pm { 12 } else { 0 },
    };
    let offset = zone(value, s.rest())?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(no_such_time)?;
    // Seconds stop at 59: chrono would take 60 only with the nanoseconds of a leap second.
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nano).ok_or_else(no_such_time)?;
    Ok((date.and_time(time), offset))
}

/// `YYYY-mm-dd`.
fn iso_date(s: &mut Scanner) -> Option<(u32, u32, u32)> {
    let year = s.number(4, 4)?;
    s.expect(b'-')?;
    let month = s.number(1, 2)?;
    s.expect(b'-')?;
    let day = s.number(1, 2)?;
    Some((year, month, day))
}

/// `dd/mm/YYYY`.
fn day_first_date(s: &mut Scanner) -> Option<(u32, u32, u32)> {
    let day = s.number(1, 2)?;
    s.expect(b'/')?;
    let month = s.number(1, 2)?;
    s.expect(b'/')?;
    let year = s.number(4, 4)?;
    Some((year, month, day))
}

/// `HH:MM[:SS[.frac]]` as hour, minute, second and nanosecond.
fn clock(s: &mut Scanner) -> Option<(u32, u32, u32, u32)> {
    let hour = s.number(1, 2)?;
    s.expect(b':')?;
    let minute = s.number(2, 2)?;
    if !s.eat(b':') {
        return Some((hour, minute, 0, 0));
    }
    let second = s.number(2, 2)?;
    if !s.eat(b'.') {
        return Some((hour, minute, second, 0));
    }
    let digits = s.digit_run();
    if digits.is_empty() {
        return None;
    }
    let kept = &digits[..digits.len().min(9)];
    let nano = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
    Some((hour, minute, second, nano))
}

/// ` AM` or ` PM` (any case) before the end or a space: whether it is PM.
fn meridiem(s: &mut Scanner) -> Option<bool> {
    s.expect(b' ')?;
    let word = s.rest().get(..2)?;
    let pm = if word.eq_ignore_ascii_case("PM") {
        true
    } else if word.eq_ignore_ascii_case("AM") {
        false
    } else {
        return None;
    };
    s.advance(2);
    (s.rest().is_empty() || s.rest().starts_with(' ')).then_some(pm)
}

/// The zone after the time: none (naive), `Z`, `UTC`/`GMT` with or without a space before it,
/// or a numeric offset `±HH[[:]MM]`.
fn zone(value: &str, rest: &str) -> Result<Option<FixedOffset>, TimestampError> {
    let utc = FixedOffset::east_opt(0);
    match rest {
        "" => return Ok(None),
        "Z" | "z" => return Ok(utc),
        _ => {}
    }
    if rest.starts_with(['+', '-']) {
        return numeric_offset(rest)
            .map(Some)
            .ok_or_else(|| TimestampError::Unrecognized {
                value: value.to_owned(),
            });
    }
    let name = rest.strip_prefix(' ').unwrap_or(rest);
    if name.eq_ignore_ascii_case("UTC") || name.eq_ignore_ascii_case("GMT") {
        return Ok(utc);
    }
    // ` Z` is a misplaced Z, not a zone name.
    let named = name.starts_with(|c: char| c.is_ascii_alphabetic()) && !matches!(name, "Z" | "z");
    if named && !name.contains(char::is_whitespace) {
        return Err(TimestampError::UnknownZone {
            value: value.to_owned(),
            zone: name.to_owned(),
        });
    }
    Err(TimestampError::Unrecognized {
        value: value.to_owned(),
    })
}

/// `±HH`, `±HHMM` or `±HH:MM`, the whole of `text`.
fn numeric_offset(text: &str) -> Option<FixedOffset> {
    let mut s = Scanner::new(text);
    let sign = if s.eat(b'-') {
        -1
    } else {
        s.expect(b'+')?;
        1
    };
    let hours = s.two_digits()?;
    let minutes = if s.rest().is_empty() {
        0
    } else {
        s.eat(b':');
        s.two_digits()?
    };
    if !s.rest().is_empty() || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60) as i32)
}

/// A position in ASCII text; anything else simply fails to match.
#[derive(Clone, Copy)]
struct Scanner<'a> {
    rest: &'a str,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner { rest: text }
    }

    fn rest(&self) -> &'a str {
        self.rest
    }

    fn advance(&mut self, bytes: usize) {
        self.rest = &self.rest[bytes..];
    }

    /// Runs `part`, and moves past what it read only when it matched.
    fn attempt<T>(&mut self, part: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let mut copy = *self;
        let found = part(&mut copy)?;
        *self = copy;
        Some(found)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.rest.as_bytes().first() == Some(&byte);
        if found {
            self.advance(1);
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// All the ASCII digits from here on.
    fn digit_run(&mut self) -> &'a str {
        let len = self
            .rest
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(self.rest.len());
        let run = &self.rest[..len];
        self.advance(len);
        run
    }

    /// Exactly two digits, whatever follows them.
    fn two_digits(&mut self) -> Option<u32> {
        let pair = self
            .rest
            .get(..2)
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))?;
        self.advance(2);
        pair.parse().ok()
    }

    /// A number of `min` to `max` digits, not followed by another digit.
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let run = self.digit_run();
        if (min..=max).contains(&run.len()) {
            run.parse().ok()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Offset, TimeZone};

    use super::*;

    fn utc() -> FixedOffset {
        Utc.fix()
    }

    fn offset(text: &str) -> FixedOffset {
        text.parse().unwrap()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn micros(t: DateTime<Utc>, us: i64) -> DateTime<Utc> {
        t + chrono::Duration::microseconds(us)
    }

    fn parse(text: &str) -> DateTime<Utc> {
        parse_event_time(text, utc()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn cicflowmeter_utc_suffix_keeps_its_microseconds() {
        let t = parse("2018-12-01 13:32:12.000744 UTC");
        assert_eq!(t, micros(at(2018, 12, 1, 13, 32, 12), 744));
        assert_eq!(t.to_rfc3339(), "2018-12-01T13:32:12.000744+00:00");
    }

    #[test]
    fn rfc3339_with_every_utc_spelling_and_separator() {
        let expected = micros(at(2026, 1, 1, 0, 0, 1), 250_000);
        for text in [
            "2026-01-01T00:00:01.25Z",
            "2026-01-01T00:00:01.250z",
            "2026-01-01t00:00:01.250000Z",
            "2026-01-01 00:00:01.250000000Z",
            "2026-01-01T00:00:01.25+00:00",
            "2026-01-01T00:00:01.25-00:00",
            "2026-01-01T00:00:01.25+0000",
            "2026-01-01 00:00:01.25+00",
            "2026-01-01 00:00:01.25 UTC",
            "2026-01-01 00:00:01.25UTC",
            "2026-01-01 00:00:01.25 GMT",
            "2026-01-01 00:00:01.25 utc",
            "  2026-01-01T00:00:01.25Z\n",
        ] {
            assert_eq!(parse(text), expected, "{text}");
        }
    }

    #[test]
    fn seconds_and_fractions_are_optional() {
        assert_eq!(parse("2026-01-01T00:00:01Z"), at(2026, 1, 1, 0, 0, 1));
        assert_eq!(parse("2026-01-01 07:05Z"), at(2026, 1, 1, 7, 5, 0));
        assert_eq!(
            parse("2026-01-01T00:00:01.5Z"),
            micros(at(2026, 1, 1, 0, 0, 1), 500_000)
        );
        let nanos = parse("2026-01-01T00:00:01.123456789Z");
        assert_eq!(nanos.timestamp_subsec_nanos(), 123_456_789);
        // Digits past the nanosecond are dropped, not rounded.
        let beyond = parse("2026-01-01T00:00:01.1234567899Z");
        assert_eq!(beyond.timestamp_subsec_nanos(), 123_456_789);
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        for text in [
            "2026-01-01T05:30:00+05:30",
            "2026-01-01T05:30:00+0530",
            "2026-01-01 05:30:00+05:30",
        ] {
            assert_eq!(parse(text), at(2026, 1, 1, 0, 0, 0), "{text}");
        }
        assert_eq!(parse("2025-12-31T21:00:00-03:00"), at(2026, 1, 1, 0, 0, 0));
        assert_eq!(parse("2026-01-01T01:00:00+01"), at(2026, 1, 1, 0, 0, 0));
    }

    #[test]
    fn naive_times_are_read_in_the_given_offset() {
        let india = offset("+05:30");
        for text in [
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00",
            "2026-01-01 00:00",
            "01/01/2026 00:00:00",
            "1/1/2026 0:00",
            "01/01/2026 12:00:00 AM",
        ] {
            assert_eq!(
                parse_event_time(text, india).unwrap(),
                at(2025, 12, 31, 18, 30, 0),
                "{text}"
            );
            assert_eq!(
                parse_event_time(text, utc()).unwrap(),
                at(2026, 1, 1, 0, 0, 0)
            );
        }
        let brazil = offset("-03:00");
        assert_eq!(
            parse_event_time("2017-07-03 08:55:58.5", brazil).unwrap(),
            micros(at(2017, 7, 3, 11, 55, 58), 500_000)
        );
    }

    #[test]
    fn a_written_zone_wins_over_the_naive_offset() {
        let india = offset("+05:30");
        for text in [
            "2026-01-01 00:00:00 UTC",
            "2026-01-01T00:00:00Z",
            "01/01/2026 00:00 GMT",
        ] {
            assert_eq!(
                parse_event_time(text, india).unwrap(),
                at(2026, 1, 1, 0, 0, 0),
                "{text}"
            );
        }
    }

    #[test]
    fn slash_dates_are_day_first_with_an_optional_12_hour_clock() {
        assert_eq!(parse("01/02/2026 13:05:09"), at(2026, 2, 1, 13, 5, 9));
        assert_eq!(parse("14/02/2018 08:31:01"), at(2018, 2, 14, 8, 31, 1));
        assert_eq!(parse("3/7/2017 8:55"), at(2017, 7, 3, 8, 55, 0));
        assert_eq!(parse("01/02/2026 01:05:09 PM"), at(2026, 2, 1, 13, 5, 9));
        assert_eq!(parse("01/02/2026 1:05 pm"), at(2026, 2, 1, 13, 5, 0));
        assert_eq!(parse("01/02/2026 12:30:00 PM"), at(2026, 2, 1, 12, 30, 0));
        assert_eq!(parse("01/02/2026 12:30:00 AM"), at(2026, 2, 1, 0, 30, 0));
        assert_eq!(parse("01/02/2026 11:59:59 AM"), at(2026, 2, 1, 11, 59, 59));
        assert_eq!(
            parse("01/02/2026 01:05:09 PM UTC"),
            at(2026, 2, 1, 13, 5, 9)
        );
        assert_eq!(
            parse("01/02/2026 01:05:09.000744 PM"),
            micros(at(2026, 2, 1, 13, 5, 9), 744)
        );
    }

    #[test]
    fn epoch_seconds_and_milliseconds_as_text() {
        let expected = micros(at(2026, 1, 1, 0, 0, 1), 250_000);
        for text in [
            "1767225601.25",
            "1767225601.250000000",
            "+1767225601.25",
            "1767225601250",
            "1767225601250.0",
            "1.76722560125e9",
            "1.76722560125E+12",
            " 1767225601.25 ",
        ] {
            assert_eq!(parse(text), expected, "{text}");
        }
        assert_eq!(parse("1767225601"), at(2026, 1, 1, 0, 0, 1));
        assert_eq!(parse("0"), at(1970, 1, 1, 0, 0, 0));
        assert_eq!(parse("-1.5"), micros(at(1969, 12, 31, 23, 59, 58), 500_000));
        // Exact decimals: no float rounding of the fraction.
        assert_eq!(
            parse("1543671132.000744001").timestamp_subsec_nanos(),
            744_001
        );
        assert_eq!(
            parse("1767225601250.000744").timestamp_subsec_nanos(),
            250_000_744
        );
    }

    #[test]
    fn the_milliseconds_threshold_is_1e11() {
        // Just below: seconds, in the year 5138.
        assert_eq!(parse("99999999999").year(), 5138);
        // At it: milliseconds, in March 1973.
        assert_eq!(parse("100000000000"), at(1973, 3, 3, 9, 46, 40));
        assert_eq!(from_epoch_number(1e11).unwrap(), at(1973, 3, 3, 9, 46, 40));
        assert_eq!(
            from_epoch_number(-1e11).unwrap(),
            at(1966, 10, 31, 14, 13, 20)
        );
    }

    #[test]
    fn epoch_numbers_round_to_the_microsecond() {
        assert_eq!(
            from_epoch_number(1543671132.000744).unwrap(),
            micros(at(2018, 12, 1, 13, 32, 12), 744)
        );
        assert_eq!(
            from_epoch_number(1767225601.25).unwrap(),
            micros(at(2026, 1, 1, 0, 0, 1), 250_000)
        );
        assert_eq!(
            from_epoch_number(1767225601250.0).unwrap(),
            micros(at(2026, 1, 1, 0, 0, 1), 250_000)
        );
        assert_eq!(
            from_epoch_number(1767225601.0).unwrap(),
            at(2026, 1, 1, 0, 0, 1)
        );
    }

    #[test]
    fn the_range_is_the_years_0001_to_9999() {
        assert_eq!(parse("-62135596800"), at(1, 1, 1, 0, 0, 0));
        assert_eq!(
            parse("253402300799999"),
            micros(at(9999, 12, 31, 23, 59, 59), 999_000)
        );
        assert_eq!(parse("9999-12-31T23:59:59.999999999Z").year(), 9999);
        assert_eq!(parse("0001-01-01T00:00:00Z"), at(1, 1, 1, 0, 0, 0));
        for text in [
            "0000-12-31T23:59:59Z",
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:30:00+01:00",
        ] {
            assert_eq!(
                parse_event_time(text, utc()),
                Err(TimestampError::OutOfRange {
                    value: text.to_owned()
                }),
                "{text}"
            );
        }
        assert!(matches!(
            parse_event_time("9999-12-31 23:00:00", offset("-05:00")),
            Err(TimestampError::OutOfRange { .. })
        ));
    }

    #[test]
    fn out_of_range_epochs_are_rejected() {
        for text in [
            "-62135596801",
            "253402300800000",
            // Epoch microseconds and nanoseconds read as milliseconds: far past 9999.
            "1767225601250000",
            "1767225601250000000",
            "1e20",
            "-1e20",
            "1e400",
            "123456789012345678901234567890123456789012345",
        ] {
            assert_eq!(
                parse_event_time(text, utc()),
                Err(TimestampError::EpochOutOfRange {
                    value: text.to_owned()
                }),
                "{text}"
            );
        }
        for v in [
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            253402300800000.0,
            -62135596801.0,
        ] {
            assert!(
                matches!(
                    from_epoch_number(v),
                    Err(TimestampError::EpochOutOfRange { .. })
                ),
                "{v}"
            );
        }
        assert!(matches!(
            from_epoch_number(f64::NAN),
            Err(TimestampError::Unrecognized { .. })
        ));
    }

    #[test]
    fn garbage_is_unrecognized() {
        for text in [
            "",
            "   ",
            "yesterday",
            "NaN",
            "inf",
            "0x10",
            "1,5",
            "1.",
            ".5",
            "1e",
            "--1",
            "１７６７２２５６０１",
            "2026-01-01",
            "2026-01-01T",
            "2026-01-01T00",
            "2026-01-01T00:00:",
            "2026-01-01T00:00:00.",
            "2026-01-01T00:00:00 Z",
            "2026-01-01T00:00:00 +00:00",
            "2026-01-01T00:00:00+5:30",
            "2026-01-01T00:00:00+05:3",
            "2026-01-01T00:00:00+05:60",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+05:30:00",
            "2026-01-01_00:00:00",
            "2026/01/01 00:00:00",
            "26-01-01 00:00:00",
            "01/02/26 00:00:00",
            "01/02/2026T00:00:00",
            "01-02-2026 00:00:00",
            "2026-001-01 00:00:00",
            "2026-01-01 00:0:00",
            "2026-01-01 000:00:00",
            "2026-01-01 00:00:0",
            "2026-01-01 00:00:00 1",
            "Mon, 01 Jan 2026 00:00:00 GMT",
        ] {
            assert_eq!(
                parse_event_time(text, utc()),
                Err(TimestampError::Unrecognized {
                    value: text.trim().to_owned()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn impossible_dates_and_times_are_rejected() {
        for text in [
            "2026-02-30 00:00:00",
            "2018-13-01 00:00:00",
            "2026-00-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
            "2016-12-31T23:59:60Z",
            // Month first, as a US locale writes it: there is no month 14.
            "02/14/2018 08:00",
            "29/02/2026 00:00",
            "01/02/2026 13:00 PM",
            "01/02/2026 00:30 AM",
        ] {
            assert_eq!(
                parse_event_time(text, utc()),
                Err(TimestampError::NoSuchTime {
                    value: text.to_owned()
                }),
                "{text}"
            );
        }
        assert_eq!(parse("29/02/2024 00:00"), at(2024, 2, 29, 0, 0, 0));
    }

    #[test]
    fn zone_names_other_than_utc_and_gmt_are_rejected() {
        for (text, zone) in [
            ("2026-01-01 00:00:00 CET", "CET"),
            ("2026-01-01 00:00:00 CST", "CST"),
            ("2026-01-01T00:00:00EST", "EST"),
            ("2026-01-01T00:00:00Zjunk", "Zjunk"),
            ("2026-01-01 00:00:00 Europe/Paris", "Europe/Paris"),
            ("2026-01-01 00:00:00 UTC+1", "UTC+1"),
            ("01/02/2026 01:05 PMT", "PMT"),
        ] {
            assert_eq!(
                parse_event_time(text, utc()),
                Err(TimestampError::UnknownZone {
                    value: text.to_owned(),
                    zone: zone.to_owned()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn messages_name_the_value_and_the_accepted_shapes() {
        let message = |text| parse_event_time(text, utc()).unwrap_err().to_string();
        assert_eq!(
            message("yesterday"),
            "`yesterday` is not a timestamp: expected RFC 3339 (2026-01-01T00:00:00Z), \
             `YYYY-mm-dd HH:MM:SS[.ffffff][ UTC]`, `dd/mm/YYYY HH:MM[:SS][ AM|PM]` \
             or epoch seconds/milliseconds"
        );
        assert_eq!(
            message("2018-13-01 00:00:00"),
            "`2018-13-01 00:00:00` is not a timestamp: no such date or time of day"
        );
        assert_eq!(
            message("2026-01-01 00:00:00 CET"),
            "`2026-01-01 00:00:00 CET` is not a timestamp: zone `CET` is not UTC, GMT, Z \
             or a numeric offset such as +05:30"
        );
        assert_eq!(
            message("1767225601250000"),
            "`1767225601250000` is out of range: as epoch seconds (below 1e11) or milliseconds \
             (from 1e11) it falls outside the years 0001 to 9999"
        );
        assert_eq!(
            from_epoch_number(1e300).unwrap_err().to_string(),
            "`1e300` is out of range: as epoch seconds (below 1e11) or milliseconds (from 1e11) \
             it falls outside the years 0001 to 9999"
        );
    }
}
