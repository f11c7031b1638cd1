import Testing

@testable import Philote

@Suite struct BenchHistogramTests {
    @Test func everyValueLandsInABucketThatHoldsIt() {
        var value: UInt64 = 0
        while value < UInt64.max / 3 {
            let index = LatencyHistogram.index(of: value)
            #expect(LatencyHistogram.range(of: index).contains(value), "value \(value)")
            #expect(index < LatencyHistogram.bucketCount)
            value = value < 1000 ? value + 1 : value + value / 7 + 1
        }
        #expect(LatencyHistogram.index(of: .max) == LatencyHistogram.bucketCount - 1)
    }

    @Test func bucketsAreNarrowerThanOnePartIn128() {
        for index in stride(from: 256, to: LatencyHistogram.bucketCount, by: 37) {
            let range = LatencyHistogram.range(of: index)
            let width = Double(range.upperBound - range.lowerBound + 1)
            #expect(width / Double(range.lowerBound) <= 1.0 / 128 + 1e-12)
        }
    }

    @Test(arguments: [UInt64(1), 300, 12_345, 999_999, 50_000_000, 7_000_000_000])
    func aReportedValueIsWithinHalfAPercent(value: UInt64) {
        var histogram = LatencyHistogram()
        histogram.record(value)
        histogram.record(value)  // min == max would clamp to the exact value: add a smaller one
        histogram.record(1)
        let reported = histogram.value(atQuantile: 0.9)
        let error = abs(Double(reported) - Double(value)) / Double(value)
        #expect(error <= 0.005, "\(value) reported as \(reported)")
    }

    @Test func percentilesOfAUniformSpread() {
        var histogram = LatencyHistogram()
        for value in 1...100_000 { histogram.record(UInt64(value) * 1000) }
        #expect(histogram.count == 100_000)
        for (q, exact) in [(0.5, 50_000_000.0), (0.9, 90_000_000.0), (0.99, 99_000_000.0), (0.999, 99_900_000.0)] {
            let reported = Double(histogram.value(atQuantile: q))
            #expect(abs(reported - exact) / exact <= 0.005, "q \(q): \(reported)")
        }
        #expect(histogram.max == 100_000_000)
        #expect(histogram.min == 1000)
        #expect(histogram.value(atQuantile: 1) == 100_000_000)
        #expect(abs(histogram.mean - 50_000_500) < 1)
    }

    /// Nearest rank, as HdrHistogram and the harness count: p99 is the value that 99 % of the values are at
    /// or below. Exactly one slow message in a hundred is then above p99 (p99.9 and max show it); a server
    /// whose stall also holds the messages behind the slow one makes more than 1 % slow, and p99 shows it.
    @Test func slowMessagesShowInTheQuantilesTheirShareReaches() {
        var exactlyOnePercent = LatencyHistogram()
        for index in 0..<10_000 { exactlyOnePercent.record(index % 100 == 0 ? 50_000_000 : 200_000) }
        #expect(exactlyOnePercent.value(atQuantile: 0.5) < 1_000_000)
        #expect(exactlyOnePercent.value(atQuantile: 0.99) < 1_000_000)
        #expect(exactlyOnePercent.value(atQuantile: 0.999) >= 49_800_000)
        #expect(exactlyOnePercent.max == 50_000_000)
        var twoPercent = LatencyHistogram()
        for index in 0..<10_000 { twoPercent.record(index % 100 < 2 ? 50_000_000 : 200_000) }
        #expect(twoPercent.value(atQuantile: 0.99) >= 49_800_000)
        #expect(twoPercent.value(atQuantile: 0.5) < 1_000_000)
    }

    @Test func mergingEqualsRecordingEverythingInOne() {
        var all = LatencyHistogram()
        var first = LatencyHistogram()
        var second = LatencyHistogram()
        for value in stride(from: UInt64(17), to: 5_000_000, by: 4999) {
            all.record(value)
            if value % 2 == 0 { first.record(value) } else { second.record(value) }
        }
        var merged = first
        merged.merge(second)
        #expect(merged == all)
        var empty = LatencyHistogram()
        empty.merge(LatencyHistogram())
        #expect(empty.count == 0)
        #expect(empty.value(atQuantile: 0.99) == 0)
    }
}
