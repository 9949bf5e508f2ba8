//! Durations as Kubernetes and Go write them (`10s`, `1m30s`, `500ms`, `720h`), parsed with
//! checked arithmetic: the API server's `?timeout=`, every duration flag and a policy's
//! `maxAge` go through [`parse`], so no spelling of a duration can overflow or panic.
//!
//! The syntax is Go's `time.ParseDuration` without the sign: one or more decimal numbers, each
//! with an optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), or a bare
//! `0`. Like Go, a duration is at most `i64::MAX` nanoseconds (about 292 years); each caller
//! sets its own, smaller, ceiling with [`parse_at_most`].

use std::time::Duration;

/// The longest duration Go can represent, and so the longest the API server can send.
pub const MAX: Duration = Duration::from_nanos(i64::MAX as u64);

/// Longest input read; a real duration is a few characters.
const MAX_LEN: usize = 64;

/// Why a string is not an acceptable duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration (e.g. 500ms, 10s, 5m, 1h30m)")]
    Syntax(String),
    #[error("{0:?} is not a duration: unknown unit {1:?} (ns, us, ms, s, m, h)")]
    Unit(String, String),
    #[error("{0:?} is not a duration: a duration cannot be negative")]
    Negative(String),
    #[error("{value:?} is longer than {limit}, the most allowed here")]
    TooLong { value: String, limit: String },
}

/// Parses a Go duration of at most [`MAX`].
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    parse_at_most(s, MAX)
}

/// Parses a Go duration and refuses one longer than `limit`.
pub fn parse_at_most(s: &str, limit: Duration) -> Result<Duration, DurationError> {
    let syntax = || DurationError::Syntax(shorten(s));
    let too_long = || DurationError::TooLong { value: shorten(s), limit: format(limit) };
    let text = s.trim();
    if text.len() > MAX_LEN {
        // Digits alone cannot make a valid duration this long: it would be over MAX.
        return Err(if text.bytes().any(|b| b.is_ascii_digit()) { too_long() } else { syntax() });
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative(shorten(s)));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(syntax());
    }
    let limit_ns = limit.as_nanos().min(MAX.as_nanos());
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let int_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (int_digits, after) = rest.split_at(int_end);
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(f) => f.split_at(f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len())),
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(syntax());
        }
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(syntax()),
            other => return Err(DurationError::Unit(shorten(s), other.to_owned())),
        };
        let mut whole: u128 = 0;
        for d in int_digits.bytes() {
            whole = whole.checked_mul(10).and_then(|w| w.checked_add(u128::from(d - b'0'))).ok_or_else(too_long)?;
            if whole > limit_ns {
                return Err(too_long());
            }
        }
        let mut part = whole.checked_mul(scale).ok_or_else(too_long)?;
        // The fraction, digit by digit, down to whole nanoseconds (Go drops what is below).
        let mut place = scale;
        for d in frac_digits.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            part = part.checked_add(u128::from(d - b'0') * place).ok_or_else(too_long)?;
        }
        total = total.checked_add(part).ok_or_else(too_long)?;
        if total > limit_ns {
            return Err(too_long());
        }
        rest = after;
    }
    let nanos = u64::try_from(total).map_err(|_| too_long())?;
    Ok(Duration::from_nanos(nanos))
}

/// A duration the way a person writes it back: `720h`, `1h30m`, `10s`, `250ms`.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    if secs == 0 {
        return if millis > 0 { format!("{millis}ms") } else { format!("{}ns", d.subsec_nanos()) };
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || millis > 0 {
        if millis > 0 {
            out.push_str(&format!("{s}.{millis:03}s"));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

/// The input as quoted in an error: at most 40 characters of it.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or_default()),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("10s", Duration::from_secs(10))]
    #[case("1m30s", Duration::from_secs(90))]
    #[case("500ms", Duration::from_millis(500))]
    #[case("1.5s", Duration::from_millis(1500))]
    #[case(".5s", Duration::from_millis(500))]
    #[case("1.s", Duration::from_secs(1))]
    #[case("720h", Duration::from_secs(720 * 3600))]
    #[case("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006))]
    #[case("2µs", Duration::from_micros(2))]
    #[case("2μs", Duration::from_micros(2))]
    #[case("0", Duration::ZERO)]
    #[case("+3s", Duration::from_secs(3))]
    #[case("0.0000000001s", Duration::ZERO)]
    #[case("2562047h47m16.854775807s", MAX)]
    fn parses_like_go(#[case] input: &str, #[case] want: Duration) {
        assert_eq!(parse(input), Ok(want), "{input}");
    }

    #[rstest]
    #[case("")]
    #[case("10")]
    #[case("s")]
    #[case(".s")]
    #[case("ten seconds")]
    #[case("1h 30m")]
    #[case("1..5s")]
    fn rejects_what_go_rejects(#[case] input: &str) {
        assert!(parse(input).is_err(), "{input:?} should not parse");
    }

    #[test]
    fn overflow_is_an_error_never_a_panic() {
        for input in [
            "99999999999999999999999h",
            "10000000000000000000000s",
            "2562047h47m16.854775808s",
            "9223372036854775808ns",
            "340282366920938463463374607431768211456ns",
            &"9".repeat(1000),
            &format!("{}s", "9".repeat(100_000)),
            &"1h".repeat(100),
        ] {
            match parse(input) {
                Err(DurationError::TooLong { .. }) | Err(DurationError::Syntax(_)) => {}
                other => panic!("{input:.40}: {other:?}"),
            }
        }
        let e = parse("99999999999999999999999h").unwrap_err().to_string();
        assert!(e.contains("is longer than 2562047h47m16.854s"), "{e}");
    }

    #[test]
    fn callers_set_their_own_ceiling() {
        let day = Duration::from_secs(86_400);
        assert_eq!(parse_at_most("24h", day), Ok(day));
        assert_eq!(
            parse_at_most("25h", day).unwrap_err().to_string(),
            "\"25h\" is longer than 24h, the most allowed here"
        );
        assert!(matches!(parse("-1s"), Err(DurationError::Negative(_))));
        assert!(matches!(parse("1d"), Err(DurationError::Unit(_, u)) if u == "d"));
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format(Duration::from_secs(720 * 3600)), "720h");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(1500)), "1.500s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
    }
}
