import Testing

@testable import Philote

@Suite struct OperationsConfigurationTests {
    @Test func defaults() throws {
        let config = try Configuration.fromEnvironment([:])
        #expect(config.logFormat == .text)
        #expect(config.metricsPublic == false)
    }

    @Test func logFormat() throws {
        #expect(try Configuration.fromEnvironment(["LOG_FORMAT": "json"]).logFormat == .json)
        #expect(try Configuration.fromEnvironment(["LOG_FORMAT": "text"]).logFormat == .text)
        do {
            _ = try Configuration.fromEnvironment(["LOG_FORMAT": "xml"])
            Issue.record("LOG_FORMAT=xml accepted")
        } catch {
            #expect(error.variable == "LOG_FORMAT")
            #expect(error.message.contains("text") && error.message.contains("json"))
        }
    }

    @Test func metricsPublic() throws {
        #expect(try Configuration.fromEnvironment(["METRICS_PUBLIC": "true"]).metricsPublic)
        #expect(try Configuration.fromEnvironment(["METRICS_PUBLIC": "0"]).metricsPublic == false)
        #expect(throws: ConfigurationError.self) { try Configuration.fromEnvironment(["METRICS_PUBLIC": "yes"]) }
    }
}
