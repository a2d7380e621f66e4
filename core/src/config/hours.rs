//! Trading hours in UTC: a daily window `"HH:MM-HH:MM"` (which may wrap past
//! midnight) and an optional set of weekdays.
//!
//! # Layout
//! - [`TradingHours`]: the parsed window and its `allows(now_ms)` test.
//! - `parse_window` and `parse_weekday`: the text forms used in the config.
//!
//! # Invariants
//! - `start_minute` and `end_minute` are in `0..=1440` and differ.
//! - `weekdays` has at least one bit set and only the low seven bits.

/// Milliseconds in one UTC day; the day index is `now_ms / DAY_MS`.
pub const DAY_MS: u64 = 86_400_000;

/// Minutes in a day; `24:00` is written as minute 1440.
const DAY_MINUTES: u32 = 1440;

/// Every weekday bit set (Monday is bit 0, Sunday bit 6).
pub const WEEKDAYS_ALL: u8 = 0b111_1111;

/// Weekday names as written in `days_utc`, Monday first.
const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When opens may be copied. Closes, modifies and cancels ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TradingHours {
    /// First minute of the UTC day inside the window (inclusive).
    pub start_minute: u32,
    /// Minute the window ends (exclusive); below `start_minute` when the
    /// window wraps past midnight.
    pub end_minute: u32,
    /// UTC weekdays on which the window applies, Monday = bit 0. The weekday
    /// is that of `now_ms` itself, so a window wrapping midnight tests the
    /// early-morning part against the new day.
    pub weekdays: u8,
}

impl TradingHours {
    /// The whole day, every day: what a follow without `hours_utc` gets.
    pub const ALWAYS: TradingHours = TradingHours {
        start_minute: 0,
        end_minute: DAY_MINUTES,
        weekdays: WEEKDAYS_ALL,
    };

    /// True when `now_ms` (Unix milliseconds, UTC) falls inside the window.
    pub fn allows(&self, now_ms: u64) -> bool {
        assert!(
            self.start_minute != self.end_minute,
            "an empty window is refused at parse time"
        );
        assert!(
            self.weekdays & !WEEKDAYS_ALL == 0,
            "only seven weekday bits exist"
        );
        let day = now_ms / DAY_MS;
        // 1970-01-01 was a Thursday, which is index 3 when Monday is 0.
        let weekday = ((day + 3) % 7) as u32;
        if self.weekdays & (1 << weekday) == 0 {
            return false;
        }
        let minute = ((now_ms % DAY_MS) / 60_000) as u32;
        if self.start_minute < self.end_minute {
            minute >= self.start_minute && minute < self.end_minute
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

/// Parses `"HH:MM-HH:MM"`; `24:00` is accepted as an end. Returns the start
/// and end minutes, or a message saying what was expected.
pub(crate) fn parse_window(text: &str) -> Result<(u32, u32), String> {
    let expected = "expected \"HH:MM-HH:MM\" in UTC, such as \"08:00-20:00\" or \"22:00-06:00\"";
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| format!("\"{text}\": {expected}"))?;
    let start_minute =
        parse_clock(start.trim()).ok_or_else(|| format!("\"{text}\": {expected}"))?;
    let end_minute = parse_clock(end.trim()).ok_or_else(|| format!("\"{text}\": {expected}"))?;
    if start_minute == DAY_MINUTES {
        return Err(format!(
            "\"{text}\": a window cannot start at 24:00; {expected}"
        ));
    }
    if start_minute == end_minute {
        return Err(format!(
            "\"{text}\": start equals end; use \"00:00-24:00\" for the whole day"
        ));
    }
    Ok((start_minute, end_minute))
}

/// `"HH:MM"` to minutes since midnight; `24:00` gives 1440.
fn parse_clock(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    // Two ASCII digits each: `u32::from_str` alone would take "+8".
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|byte| byte.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    let total = hours.checked_mul(60)?.checked_add(minutes)?;
    (minutes < 60 && total <= DAY_MINUTES).then_some(total)
}

/// The weekday bit for a name such as `"mon"` (case-insensitive).
pub(crate) fn parse_weekday(text: &str) -> Result<u8, String> {
    let lower = text.to_ascii_lowercase();
    WEEKDAY_NAMES
        .iter()
        .position(|name| *name == lower)
        .map(|index| 1u8 << index)
        .ok_or_else(|| {
            format!(
                "\"{text}\" is not a weekday; expected one of mon, tue, wed, thu, fri, sat, sun"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-01 00:00 UTC, a Monday.
    const MONDAY_MS: u64 = 1_704_067_200_000;

    fn at(day_offset: u64, hour: u64, minute: u64) -> u64 {
        MONDAY_MS + day_offset * DAY_MS + hour * 3_600_000 + minute * 60_000
    }

    #[test]
    fn plain_window_includes_start_and_excludes_end() {
        // Shows the bounds of a non-wrapping window.
        let (start_minute, end_minute) = parse_window("08:00-20:00").unwrap();
        let hours = TradingHours {
            start_minute,
            end_minute,
            weekdays: WEEKDAYS_ALL,
        };
        assert!(!hours.allows(at(0, 7, 59)));
        assert!(hours.allows(at(0, 8, 0)));
        assert!(hours.allows(at(0, 19, 59)));
        assert!(!hours.allows(at(0, 20, 0)));
    }

    #[test]
    fn wrapping_window_spans_midnight() {
        // Shows that "22:00-06:00" allows late evening and early morning only.
        let (start_minute, end_minute) = parse_window("22:00-06:00").unwrap();
        let hours = TradingHours {
            start_minute,
            end_minute,
            weekdays: WEEKDAYS_ALL,
        };
        assert!(hours.allows(at(0, 23, 30)));
        assert!(hours.allows(at(1, 5, 59)));
        assert!(!hours.allows(at(1, 6, 0)));
        assert!(!hours.allows(at(1, 12, 0)));
    }

    #[test]
    fn weekdays_restrict_the_window() {
        // Shows that a Monday-to-Friday set refuses Saturday and Sunday.
        let mut weekdays = 0;
        for name in ["mon", "tue", "wed", "thu", "fri"] {
            weekdays |= parse_weekday(name).unwrap();
        }
        let hours = TradingHours {
            start_minute: 0,
            end_minute: 1440,
            weekdays,
        };
        assert!(hours.allows(at(0, 12, 0)));
        assert!(hours.allows(at(4, 12, 0)));
        assert!(!hours.allows(at(5, 12, 0)));
        assert!(!hours.allows(at(6, 12, 0)));
        assert!(hours.allows(at(7, 0, 0)));
    }

    #[test]
    fn malformed_windows_are_refused() {
        // Shows the forms that parse_window rejects, each with a message.
        for text in [
            "8-20",
            "08:00",
            "25:00-26:00",
            "08:60-09:00",
            "10:00-10:00",
            "24:00-01:00",
            "+8:00-20:00",
            "08:00-+9:00",
            "0x:00-09:00",
            "08:-1-09:00",
        ] {
            assert!(parse_window(text).is_err(), "{text} should be refused");
        }
        assert_eq!(parse_window("00:00-24:00").unwrap(), (0, 1440));
        assert!(parse_weekday("funday").is_err());
    }
}
