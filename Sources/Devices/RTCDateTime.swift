#if canImport(Glibc)
import Glibc
#endif

/// A UTC calendar time broken down the way the RTC registers hold it.
public struct RTCDateTime: Equatable, Sendable {
    public var year: Int      // e.g. 2026
    public var month: Int     // 1...12
    public var day: Int       // 1...31
    public var weekday: Int   // 1...7, Sunday = 1 (the RTC convention)
    public var hour: Int      // 0...23
    public var minute: Int
    public var second: Int

    public init(year: Int, month: Int, day: Int, weekday: Int, hour: Int, minute: Int, second: Int) {
        self.year = year; self.month = month; self.day = day; self.weekday = weekday
        self.hour = hour; self.minute = minute; self.second = second
    }

    /// Breaks down seconds since 1970-01-01 UTC (Howard Hinnant's civil-from-days algorithm),
    /// without the C library's time zone state.
    public init(secondsSinceEpoch: Int64) {
        let days = secondsSinceEpoch >= 0 ? secondsSinceEpoch / 86400 : (secondsSinceEpoch - 86399) / 86400
        let secondOfDay = Int(secondsSinceEpoch - days * 86400)
        hour = secondOfDay / 3600
        minute = secondOfDay % 3600 / 60
        second = secondOfDay % 60
        // 1970-01-01 was a Thursday: weekday 5 when Sunday is 1.
        weekday = Int(((days % 7) + 7 + 4) % 7) + 1

        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
        month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
        year = Int(yearOfEra + era * 400) + (month <= 2 ? 1 : 0)
    }

    /// The host's current UTC time.
    public static func hostNow() -> RTCDateTime {
        RTCDateTime(secondsSinceEpoch: Int64(time(nil)))
    }
}
