import Testing

@testable import Philote

private func endpoint(_ text: String) throws(RedisEndpointError) -> RedisEndpoint {
    try RedisEndpoint.parse(text)
}

/// What a user sees for `REDIS_URL=text`: the configuration reader's message, naming the variable.
private func problem(_ text: String) -> String? {
    do {
        _ = try Configuration.fromEnvironment(["REDIS_URL": text])
        return nil
    } catch {
        return error.description
    }
}

@Suite struct RedisConfigurationTests {
    @Test func hostPortAndDefaults() throws {
        let plain = try endpoint("redis://127.0.0.1")
        #expect(plain.address == .tcp(host: "127.0.0.1", port: 6379))
        #expect(plain.user == nil && plain.password == nil && plain.database == 0)
        #expect(plain.label == "127.0.0.1:6379")
        let full = try endpoint("redis://app:p%40ss%3Aw%2Frd@cache.internal:7000/3")
        #expect(full.address == .tcp(host: "cache.internal", port: 7000))
        #expect(full.user == "app" && full.password == "p@ss:w/rd" && full.database == 3)
        #expect(full.label == "cache.internal:7000")
    }

    @Test func passwordWithoutUserAndIPv6() throws {
        let bare = try endpoint("redis://:secret@[::1]:6380")
        #expect(bare.user == nil && bare.password == "secret")
        #expect(bare.address == .tcp(host: "::1", port: 6380))
        #expect(bare.label == "[::1]:6380")
        #expect(try endpoint("redis://secret@localhost").password == "secret")
    }

    @Test func unixSockets() throws {
        let unix = try endpoint("unix:///run/redis/redis.sock")
        #expect(unix.address == .unix(path: "/run/redis/redis.sock"))
        #expect(unix.label == "unix:/run/redis/redis.sock")
        let withPassword = try endpoint("unix://:pw@/tmp/r.sock")
        #expect(withPassword.address == .unix(path: "/tmp/r.sock") && withPassword.password == "pw")
    }

    @Test func listsAreTrimmedAndKeepTheirOrder() throws {
        let list = try RedisEndpoint.parseList(" redis://a:1 ,redis://b:2,unix:///c.sock ")
        #expect(list.map(\.label) == ["a:1", "b:2", "unix:/c.sock"])
    }

    @Test(arguments: [
        ("http://x", "scheme"), ("redis://", "host is missing"), ("redis://h:0", "port"), ("redis://h:x", "port"),
        ("redis://h:70000", "port"), ("redis://h/-1", "database"), ("redis://h/db", "database"),
        ("rediss://h", "not supported"), ("unix://", "absolute"), ("unix://rel.sock", "absolute"),
        ("redis://[::1", "unclosed"), ("redis://[::1]x", "junk"), ("redis://u:%zz@h", "escape"),
        ("redis://a:1,,redis://b:2", "empty entry"), ("redis://a:1,redis://a:1/2", "twice"),
    ])
    func badURLsAreRefusedNamingTheProblem(text: String, expected: String) {
        let message = problem(text)
        #expect(message?.contains("REDIS_URL") == true)
        #expect(message?.contains(expected) == true, "\(text): \(message ?? "accepted")")
    }

    @Test func messagesNameTheVariableAndTheURL() {
        #expect(problem("redis://h:0") == #"REDIS_URL: the port must be a number from 1 to 65535 in "redis://h:0""#)
        #expect(problem("redis://a:1,,redis://b:2") == "REDIS_URL: has an empty entry")
        #expect(problem("redis://a:1,redis://a:1/2") == "REDIS_URL: lists a:1 twice")
        // The broker's own error carries the same text without the variable's name.
        #expect(throws: RedisEndpointError.self) { try RedisEndpoint.parseList("redis://a:1,,redis://b:2") }
    }

    @Test func errorsNeverShowThePassword() {
        let message = problem("redis://user:hunter2@h:notaport") ?? ""
        #expect(!message.contains("hunter2"))
        #expect(message.contains("user:***@h"))
        #expect(RedisEndpoint.redactingPassword("redis://:pw@h") == "redis://:***@h")
        #expect(RedisEndpoint.redactingPassword("redis://h:1") == "redis://h:1")
    }

    @Test func environmentVariables() throws {
        let defaults = try Configuration.fromEnvironment([:])
        #expect(defaults.redisEndpoints.isEmpty)
        #expect(defaults.redisPrefix == "philote:")
        #expect(defaults.redisMaxPending == 8 << 20)
        #expect(defaults.redisTimeout == 5000)
        let set = try Configuration.fromEnvironment([
            "REDIS_URL": "redis://a:1,redis://b:2", "REDIS_PREFIX": "app1/", "REDIS_MAX_PENDING": "65536",
            "REDIS_TIMEOUT": "250ms",
        ])
        #expect(set.redisEndpoints.count == 2)
        #expect(set.redisPrefix == "app1/" && set.redisMaxPending == 65536 && set.redisTimeout == 250)
        let settings = set.brokerSettings
        #expect(settings.endpoints == set.redisEndpoints && settings.prefix == "app1/")
        #expect(settings.maxPending == 65536 && settings.timeout == 250)
        #expect(try Configuration.fromEnvironment(["REDIS_URL": "  "]).redisEndpoints.isEmpty)
        #expect(throws: ConfigurationError.self) { try Configuration.fromEnvironment(["REDIS_MAX_PENDING": "10"]) }
        #expect(throws: ConfigurationError.self) { try Configuration.fromEnvironment(["REDIS_TIMEOUT": "0"]) }
    }
}
