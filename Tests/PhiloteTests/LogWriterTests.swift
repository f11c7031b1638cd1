import Testing

@testable import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// A log output that stops taking lines never blocks whoever logs: lines past the writer's capacity are dropped
/// and counted, and once the output moves again everything kept comes out in order, then the count.
@Suite struct LogWriterTests {
    @Test func aStalledOutputNeverBlocksTheCallerAndDropsAreReported() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        // A pipe holds 64 KiB by default: make it small, so the writer thread blocks soon.
        _ = fcntl(ends[1], 1031 /* F_SETPIPE_SZ, not exported to Swift */, 4096)
        let writer = LogWriter(fd: ends[1], capacity: 16 << 10)
        let line = { (number: Int) in Array("line \(number) \(String(repeating: "x", count: 90))\n".utf8) }
        // 1,000 lines of 100 bytes against 4 KiB of pipe and 16 KiB of buffer: most cannot be kept. The calls
        // return regardless (a blocking write here would hang the test instead).
        for number in 0..<1000 { writer.write(line(number)) }
        #expect(writer.flush(milliseconds: 50) == false)
        #expect(writer.droppedLines > 0)

        // The reader catches up: every line kept, in order, and a notice of how many were dropped.
        var output: [UInt8] = []
        let reading = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 1)
        defer { reading.deallocate() }
        let drained = { () -> Bool in writer.flush(milliseconds: 0) }
        while true {
            var poller = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 200) <= 0 {
                if drained() { break }
                continue
            }
            let count = read(ends[0], reading.baseAddress, reading.count)
            #expect(count > 0)
            output += reading[..<count]
        }
        close(ends[1])
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
        let numbers = lines.compactMap { $0.hasPrefix("line ") ? Int($0.split(separator: " ")[1]) : nil }
        #expect(numbers.first == 0)
        #expect(numbers == numbers.sorted() && Set(numbers).count == numbers.count)
        // One notice per stretch of drops; together they count every line missing.
        let notices = lines.filter { $0.contains("log lines dropped") }
        #expect(!notices.isEmpty)
        let reported = notices.compactMap { $0.split(separator: "lines=").last.flatMap { Int($0) } }.reduce(0, +)
        #expect(reported == 1000 - numbers.count)
        #expect(reported == writer.droppedLines)
    }
}
