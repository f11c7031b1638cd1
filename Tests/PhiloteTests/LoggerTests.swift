import Testing

@testable import Philote

@Suite struct LoggerTests {
    @Test func textLineKeepsTheOriginalShape() {
        let line = Logger.line(
            .text, time: "2026-01-02T03:04:05.006Z", level: .info, message: "philote started",
            ["address": "ws://0.0.0.0:6380", "reason": "two words"])
        #expect(
            line
                == "time=2026-01-02T03:04:05.006Z level=info msg=\"philote started\" address=ws://0.0.0.0:6380 reason=\"two words\"\n"
        )
    }

    @Test func jsonLineIsOneObjectWithTheSameFields() throws {
        let line = Logger.line(
            .json, time: "2026-01-02T03:04:05.006Z", level: .warning, message: "accept failed, \"pausing\"",
            ["error": "too many open files\n<x>", "conn": "12"])
        #expect(line.hasSuffix("}\n"))
        #expect(line.dropLast().contains("\n") == false)
        let parsed = try JSONParser.parse(Array(line.utf8))
        #expect(parsed["time"] == .string("2026-01-02T03:04:05.006Z"))
        #expect(parsed["level"] == .string("warning"))
        #expect(parsed["msg"] == .string("accept failed, \"pausing\""))
        #expect(parsed["error"] == .string("too many open files\n<x>"))
        #expect(parsed["conn"] == .string("12"))
        guard case .object(let members) = parsed else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == ["time", "level", "msg", "error", "conn"])
    }

    @Test func jsonLineWithoutFields() throws {
        let line = Logger.line(.json, time: "t", level: .info, message: "stopped", [:])
        #expect(line == #"{"time":"t","level":"info","msg":"stopped"}"# + "\n")
    }

    @Test func logFormatNames() {
        #expect(LogFormat(name: "json") == .json)
        #expect(LogFormat(name: "JSON") == .json)
        #expect(LogFormat(name: "text") == .text)
        #expect(LogFormat(name: "logfmt") == nil)
        #expect(LogFormat(name: "") == nil)
    }
}
