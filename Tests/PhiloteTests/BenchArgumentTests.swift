import Testing

@testable import Philote

@Suite struct BenchArgumentTests {
    @Test func theDefaultsAreValid() {
        #expect(BenchSettings().problem() == nil)
    }

    @Test func eachRuleNamesItsOption() {
        func problem(_ change: (inout BenchSettings) -> Void) -> String {
            var settings = BenchSettings()
            change(&settings)
            return settings.problem() ?? ""
        }
        #expect(problem { $0.publishers = 0 }.hasPrefix("--publishers"))
        #expect(problem { $0.channels = 0 }.hasPrefix("--channels"))
        #expect(BenchSettings().problem() == nil)
        #expect(problem { $0.subscribers = 2; $0.channels = 3; $0.publishers = 3 }.hasPrefix("--subscribers"))
        #expect(problem { $0.subscribers = -1 }.hasPrefix("--subscribers"))
        #expect(problem { $0.window = 0 }.hasPrefix("--window"))
        #expect(problem { $0.size = 10 }.hasPrefix("--size"))
        #expect(problem { $0.duration = 0 }.hasPrefix("--duration"))
        #expect(problem { $0.connectRate = 0 }.hasPrefix("--connect-rate"))
        #expect(problem { $0.workers = 0 }.hasPrefix("--workers"))
    }

    @Test func rates() {
        #expect(BenchRate(argument: "max") == .max)
        #expect(BenchRate(argument: "MAX") == .max)
        #expect(BenchRate(argument: "2000") == .fixed(2000))
        #expect(BenchRate(argument: "0.5") == .fixed(0.5))
        #expect(BenchRate(argument: "10k") == .fixed(10_000))
        for bad in ["0", "-5", "fast", "", "nan", "inf", "1e12"] { #expect(BenchRate(argument: bad) == nil, "\(bad)") }
    }

    @Test func durations() {
        #expect(BenchDuration.nanoseconds("30s") == 30_000_000_000)
        #expect(BenchDuration.nanoseconds("30") == 30_000_000_000)
        #expect(BenchDuration.nanoseconds("500ms") == 500_000_000)
        #expect(BenchDuration.nanoseconds("1m30s") == 90_000_000_000)
        #expect(BenchDuration.nanoseconds("1.5s") == 1_500_000_000)
        #expect(BenchDuration.nanoseconds("0s") == 0)
        for bad in ["", "s", "10x", "-1s", "1s2", "forever"] { #expect(BenchDuration.nanoseconds(bad) == nil, "\(bad)") }
    }

    @Test func channelsAreDealtRoundRobin() {
        var settings = BenchSettings()
        settings.publishers = 5
        settings.channels = 2
        #expect((0..<5).map(settings.channel(of:)) == [0, 1, 0, 1, 0])
        #expect(settings.publishers(on: 0) == 3)
        #expect(settings.publishers(on: 1) == 2)
        #expect(settings.streams == 5 && settings.streams(of: 1) == [1])
    }

    /// More channels than publisher connections: a stream per channel, the connections carrying them in turn.
    @Test func moreChannelsThanPublishersMakeAStreamPerChannel() {
        var settings = BenchSettings()
        settings.publishers = 4
        settings.channels = 10
        #expect(settings.problem() == nil)
        #expect(settings.streams == 10)
        #expect(settings.streams(of: 0) == [0, 4, 8])
        #expect(settings.streams(of: 3) == [3, 7])
        #expect((0..<10).map(settings.publishers(on:)) == Array(repeating: 1, count: 10))
        #expect(Set((0..<4).flatMap { settings.streams(of: $0) }.map(settings.channel(of:))) == Set(0..<10))
    }

    @Test func theFixedRateScheduleKeepsTheOfferedRate() {
        var schedule = FixedRateSchedule(interval: 1_000_000, start: 10_000_000)
        #expect(schedule.due(at: 9_999_999) == 0)
        #expect(schedule.due(at: 10_000_000) == 1)
        #expect(schedule.due(at: 10_500_000) == 0)
        // A loop that wakes 5 ms late sends the five it owes, and the clock does not drift.
        #expect(schedule.due(at: 15_200_000) == 5)
        #expect(schedule.nextDue == 16_000_000)
    }
}
