import Testing
@testable import Philote

private func load(_ environment: [String: String]) throws(ConfigurationError) -> Configuration {
    try Configuration.fromEnvironment(environment)
}

/// The error `environment` is refused with, or nil if it is accepted.
private func refusal(_ environment: [String: String]) -> ConfigurationError? {
    do {
        _ = try load(environment)
        return nil
    } catch {
        return error
    }
}

@Suite struct ConfigurationTests {
    @Test func defaults() throws {
        let config = try load([:])
        #expect(config.secret == nil)
        #expect(config.host == "0.0.0.0")
        #expect(config.port == 6380)
        #expect(config.workers == LoopGroup.cpuCount)
        #expect(config.workers >= 1)
        #expect(config.logLevel == .info)
        #expect(config.maxConnections == 255)
        #expect(config.readBufferSize == 1024)
        #expect(config.writeBufferSize == 1024)
        #expect(config.checkOrigin == false)
        #expect(config.maxMessageSize == 65536)
        #expect(config.maxBackpressure == 1 << 20)
        #expect(config.maxHeadSize == 8192)
        #expect(config.pingInterval == 30_000)
        #expect(config.pongTimeout == 10_000)
        #expect(config.handshakeTimeout == 10_000)
        #expect(config.closeTimeout == 5_000)
    }

    @Test func unrelatedVariablesAreIgnored() throws {
        let config = try load(["PATH": "/usr/bin", "HOME": "/root", "port": "1"])
        #expect(config.port == 6380)
    }

    @Test func everyVariableIsRead() throws {
        let config = try load([
            "SECRET": "s3cret", "HOST": "127.0.0.1", "PORT": "8080", "WORKERS": "3", "LOGLEVEL": "debug",
            "MAX_CONNECTIONS": "10000", "READ_BUFFER_SIZE": "4096", "WRITE_BUFFER_SIZE": "2048", "CHECK_ORIGIN": "true",
            "MAX_MESSAGE_SIZE": "1048576", "MAX_BACKPRESSURE": "2048", "MAX_HEADER_SIZE": "16384",
            "PING_INTERVAL": "15", "PONG_TIMEOUT": "5s", "HANDSHAKE_TIMEOUT": "2500ms", "CLOSE_TIMEOUT": "1m",
        ])
        #expect(config.secret == "s3cret")
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 8080)
        #expect(config.workers == 3)
        #expect(config.logLevel == .debug)
        #expect(config.maxConnections == 10000)
        #expect(config.readBufferSize == 4096)
        #expect(config.writeBufferSize == 2048)
        #expect(config.checkOrigin == true)
        #expect(config.maxMessageSize == 1 << 20)
        #expect(config.maxBackpressure == 2048)
        #expect(config.maxHeadSize == 16384)
        #expect(config.pingInterval == 15_000)
        #expect(config.pongTimeout == 5_000)
        #expect(config.handshakeTimeout == 2_500)
        #expect(config.closeTimeout == 60_000)
    }

    @Test func emptySecretMeansNone() throws {
        #expect(try load(["SECRET": ""]).secret == nil)
    }

    @Test(arguments: ["0.0.0.0", "127.0.0.1", "::", "::1", "fe80::1"])
    func numericHostsAreAccepted(_ host: String) throws {
        #expect(try load(["HOST": host]).host == host)
    }

    @Test(arguments: [("0", 0), ("65535", 65535), (" 443 ", 443), ("+80", 80)])
    func portRange(_ text: String, _ value: Int) throws {
        #expect(try load(["PORT": text]).port == value)
    }

    @Test(arguments: [("debug", LogLevel.debug), ("INFO", .info), ("warn", .warning), ("Warning", .warning),
                      ("error", .error), ("fatal", .fatal), ("panic", .panic)])
    func logLevels(_ text: String, _ level: LogLevel) throws {
        #expect(try load(["LOGLEVEL": text]).logLevel == level)
        #expect(LogLevel(name: level.name) == level)
    }

    @Test(arguments: [("1", true), ("t", true), ("T", true), ("TRUE", true), ("True", true), ("true", true),
                      ("0", false), ("f", false), ("F", false), ("FALSE", false), ("False", false), ("false", false)])
    func booleans(_ text: String, _ value: Bool) throws {
        #expect(try load(["CHECK_ORIGIN": text]).checkOrigin == value)
    }

    // MARK: Durations

    @Test(arguments: [
        ("0.5", UInt64(500)), ("500ms", 500), ("2m", 120_000), ("30s", 30_000), ("30", 30_000), ("1.5s", 1_500),
        ("0.25m", 15_000), (" 10 ", 10_000), ("1ms", 1), ("0.0015", 2),
    ])
    func durations(_ text: String, _ milliseconds: UInt64) throws {
        let config = try load(["PING_INTERVAL": text, "PONG_TIMEOUT": text, "HANDSHAKE_TIMEOUT": text, "CLOSE_TIMEOUT": text])
        #expect(config.pingInterval == milliseconds)
        #expect(config.pongTimeout == milliseconds)
        #expect(config.handshakeTimeout == milliseconds)
        #expect(config.closeTimeout == milliseconds)
    }

    @Test(arguments: ["0", "0s", "0ms", "0.0"])
    func zeroPingIntervalDisablesPings(_ text: String) throws {
        #expect(try load(["PING_INTERVAL": text]).pingInterval == 0)
    }

    @Test(arguments: ["PONG_TIMEOUT", "HANDSHAKE_TIMEOUT", "CLOSE_TIMEOUT"])
    func zeroIsRefusedForTimeouts(_ name: String) {
        for text in ["0", "0s", "0ms", "0.0001"] {
            #expect(refusal([name: text])?.variable == name, "\(name)=\(text)")
        }
    }

    // MARK: Each bad value names its variable

    static let badValues: [(String, String)] = [
        ("HOST", "localhost"), ("HOST", "999.1.1.1"), ("HOST", ""), ("HOST", "1.2.3"), ("HOST", "example.com"),
        ("PORT", "abc"), ("PORT", "65536"), ("PORT", "-1"), ("PORT", ""), ("PORT", "80.5"), ("PORT", "8080x"),
        ("WORKERS", "0"), ("WORKERS", "1025"), ("WORKERS", "many"),
        ("LOGLEVEL", "verbose"), ("LOGLEVEL", ""), ("LOGLEVEL", "trace"),
        ("MAX_CONNECTIONS", "0"), ("MAX_CONNECTIONS", "10000001"), ("MAX_CONNECTIONS", "lots"),
        ("READ_BUFFER_SIZE", "0"), ("READ_BUFFER_SIZE", "1k"),
        ("WRITE_BUFFER_SIZE", "0"), ("WRITE_BUFFER_SIZE", "x"),
        ("CHECK_ORIGIN", "yes"), ("CHECK_ORIGIN", "no"), ("CHECK_ORIGIN", ""), ("CHECK_ORIGIN", "on"),
        ("MAX_MESSAGE_SIZE", "0"), ("MAX_MESSAGE_SIZE", "-5"), ("MAX_MESSAGE_SIZE", "1073741825"), ("MAX_MESSAGE_SIZE", "64KiB"),
        ("MAX_BACKPRESSURE", "10"), ("MAX_BACKPRESSURE", "1073741825"),
        ("MAX_HEADER_SIZE", "100"), ("MAX_HEADER_SIZE", "1048577"),
        ("PING_INTERVAL", "-1"), ("PING_INTERVAL", "abc"), ("PING_INTERVAL", "5h"), ("PING_INTERVAL", "ms"),
        ("PING_INTERVAL", "s"), ("PING_INTERVAL", ""), ("PING_INTERVAL", "nan"), ("PING_INTERVAL", "inf"),
        ("PING_INTERVAL", "1e30"), ("PING_INTERVAL", "5 s"), ("PING_INTERVAL", "10sec"),
        ("PONG_TIMEOUT", "x"), ("PONG_TIMEOUT", "-10ms"),
        ("HANDSHAKE_TIMEOUT", "ten"), ("HANDSHAKE_TIMEOUT", "10m5s"),
        ("CLOSE_TIMEOUT", ""), ("CLOSE_TIMEOUT", "forever"),
    ]

    @Test(arguments: badValues)
    func badValueThrowsNamingTheVariable(_ name: String, _ value: String) {
        guard let error = refusal([name: value]) else {
            Issue.record("\(name)=\(value.debugDescription) was accepted")
            return
        }
        #expect(error.variable == name)
        #expect(error.description.hasPrefix("\(name): "))
        #expect(error.description.contains("\"\(value)\""), "the message quotes the bad value: \(error.description)")
    }

    @Test func firstBadVariableIsReportedAmongGoodOnes() {
        let error = refusal(["PORT": "80", "WORKERS": "2", "MAX_MESSAGE_SIZE": "zero", "LOGLEVEL": "info"])
        #expect(error?.variable == "MAX_MESSAGE_SIZE")
    }
}
