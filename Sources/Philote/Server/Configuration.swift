/// Everything the server reads from the environment, validated once at start-up.
public struct Configuration: Sendable {
    public var secret: String?
    public var host = "0.0.0.0"
    public var port = 6380
    public var workers = LoopGroup.cpuCount
    public var logLevel = LogLevel.info
    public var maxConnections = 255
    /// Sockets not yet upgraded (TLS handshake, HTTP request, an HTTP answer lingering) at once, all loops: what
    /// unauthenticated clients can hold is bounded by this, not by MAX_CONNECTIONS.
    public var maxPendingHandshakes = 1024
    public var readBufferSize = 1024
    public var writeBufferSize = 1024
    public var checkOrigin = false
    /// Largest message after reassembly (bytes).
    public var maxMessageSize = 65536
    /// Queued outbound bytes per connection before it is treated as a slow reader.
    public var maxBackpressure = 1 << 20
    /// Largest HTTP request head (bytes).
    public var maxHeadSize = 8192
    /// Milliseconds; 0 disables idle pings.
    public var pingInterval: UInt64 = 30_000
    public var pongTimeout: UInt64 = 10_000
    public var handshakeTimeout: UInt64 = 10_000
    /// How long to wait for the peer's close frame (or FIN) after this side closed.
    public var closeTimeout: UInt64 = 5_000
    /// PEM certificate chain and key: when both are set the port serves wss:// only.
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// `TLS_RELOAD_INTERVAL` (ms): how often the certificate and key files are checked for a renewal.
    public var tlsReloadInterval: UInt64 = 5_000
    /// `TLS_RECORD_LAYER`: who protects the records after the handshake.
    public var tlsRecordLayer = TLSRecordLayerMode.builtin
    /// permessage-deflate (RFC 7692) offered by clients is accepted.
    public var compression = true
    /// Messages shorter than this go out uncompressed even to compressing clients.
    public var compressionMinSize = 128
    /// On SIGTERM/SIGINT: how long clients get to answer close 1001 before the process exits anyway.
    public var drainTimeout: UInt64 = 10_000
    /// `LOG_FORMAT`: text lines (the default) or one JSON object per line.
    public var logFormat = LogFormat.text
    /// `METRICS_PUBLIC`: `/metrics` answers without an `api` token.
    public var metricsPublic = false
    /// `REDIS_URL`: one Redis instance per entry (channels are spread over several by hashing); empty: no
    /// broker, the in-process hub alone.
    public var redisEndpoints: [RedisEndpoint] = []
    /// `REDIS_PREFIX`: put before every channel name on Redis, so several deployments can share one.
    public var redisPrefix = "philote:"
    /// `REDIS_MAX_PENDING`: bytes of publishes waiting for one instance's answer before more are dropped.
    public var redisMaxPending = 8 << 20
    /// `REDIS_TIMEOUT` (ms): connect, handshake and PING answer deadline before a connection is retried.
    public var redisTimeout: UInt64 = 5_000
    /// `HISTORY_SIZE`: messages kept per channel for recovery; 0: no history, positions or recovery.
    public var historySize = 0
    /// `HISTORY_TTL` (ms): how long a message stays recoverable.
    public var historyTTL: UInt64 = 300_000
    /// `HISTORY_MAX_MEMORY`: bytes of history, all channels, shared evenly by the loops.
    public var historyMaxMemory = 64 << 20

    public init() {}

    public static func fromEnvironment(_ environment: [String: String]) throws(ConfigurationError) -> Configuration {
        var config = Configuration()
        let reader = EnvironmentReader(environment)
        if let secret = environment["SECRET"], !secret.isEmpty { config.secret = secret }
        if let host = environment["HOST"] {
            guard SocketAddress(host: host, port: 0) != nil else {
                throw ConfigurationError(
                    "HOST", "must be a numeric IPv4 or IPv6 address such as 0.0.0.0 or ::, got \"\(host)\"")
            }
            config.host = host
        }
        config.port = try reader.integer("PORT", in: 0...65535) ?? config.port
        config.workers = try reader.integer("WORKERS", in: 1...1024) ?? config.workers
        if let level = environment["LOGLEVEL"] {
            guard let parsed = LogLevel(name: level) else {
                throw ConfigurationError(
                    "LOGLEVEL", "must be one of debug, info, warning, error, fatal, panic, got \"\(level)\"")
            }
            config.logLevel = parsed
        }
        config.maxConnections = try reader.integer("MAX_CONNECTIONS", in: 1...10_000_000) ?? config.maxConnections
        config.maxPendingHandshakes =
            try reader.integer("MAX_PENDING_HANDSHAKES", in: 1...10_000_000) ?? config.maxPendingHandshakes
        config.readBufferSize = try reader.integer("READ_BUFFER_SIZE", in: 1...(64 << 20)) ?? config.readBufferSize
        config.writeBufferSize = try reader.integer("WRITE_BUFFER_SIZE", in: 1...(64 << 20)) ?? config.writeBufferSize
        config.checkOrigin = try reader.boolean("CHECK_ORIGIN") ?? config.checkOrigin
        config.maxMessageSize = try reader.integer("MAX_MESSAGE_SIZE", in: 1...(1 << 30)) ?? config.maxMessageSize
        config.maxBackpressure = try reader.integer("MAX_BACKPRESSURE", in: 1024...(1 << 30)) ?? config.maxBackpressure
        config.maxHeadSize = try reader.integer("MAX_HEADER_SIZE", in: 1024...(1 << 20)) ?? config.maxHeadSize
        config.pingInterval = try reader.duration("PING_INTERVAL", allowZero: true) ?? config.pingInterval
        config.pongTimeout = try reader.duration("PONG_TIMEOUT") ?? config.pongTimeout
        config.handshakeTimeout = try reader.duration("HANDSHAKE_TIMEOUT") ?? config.handshakeTimeout
        config.closeTimeout = try reader.duration("CLOSE_TIMEOUT") ?? config.closeTimeout
        config.drainTimeout = try reader.duration("DRAIN_TIMEOUT") ?? config.drainTimeout
        config.tlsCertificateFile = environment["TLS_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        config.tlsKeyFile = environment["TLS_KEY_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        if (config.tlsCertificateFile == nil) != (config.tlsKeyFile == nil) {
            let missing = config.tlsCertificateFile == nil ? "TLS_CERT_FILE" : "TLS_KEY_FILE"
            throw ConfigurationError(
                missing,
                "must be set together with \(missing == "TLS_CERT_FILE" ? "TLS_KEY_FILE" : "TLS_CERT_FILE") to serve wss://"
            )
        }
        config.tlsReloadInterval = try reader.duration("TLS_RELOAD_INTERVAL") ?? config.tlsReloadInterval
        if let layer = environment["TLS_RECORD_LAYER"], !layer.isEmpty {
            guard let parsed = TLSRecordLayerMode(rawValue: layer) else {
                throw ConfigurationError("TLS_RECORD_LAYER", "must be builtin or openssl, got \"\(layer)\"")
            }
            config.tlsRecordLayer = parsed
        }
        config.compression = try reader.boolean("COMPRESSION") ?? config.compression
        config.compressionMinSize =
            try reader.integer("COMPRESSION_MIN_SIZE", in: 0...(1 << 30)) ?? config.compressionMinSize
        if let format = environment["LOG_FORMAT"] {
            guard let parsed = LogFormat(name: String(format.trimmingHTTPWhitespace())) else {
                throw ConfigurationError("LOG_FORMAT", "must be text or json, got \"\(format)\"")
            }
            config.logFormat = parsed
        }
        config.metricsPublic = try reader.boolean("METRICS_PUBLIC") ?? config.metricsPublic
        if let urls = environment["REDIS_URL"], !urls.trimmingHTTPWhitespace().isEmpty {
            do {
                config.redisEndpoints = try RedisEndpoint.parseList(urls)
            } catch {
                throw ConfigurationError("REDIS_URL", error.message)
            }
        }
        if let prefix = environment["REDIS_PREFIX"] { config.redisPrefix = prefix }
        config.redisMaxPending =
            try reader.integer("REDIS_MAX_PENDING", in: 1024...(1 << 30)) ?? config.redisMaxPending
        config.redisTimeout = try reader.duration("REDIS_TIMEOUT") ?? config.redisTimeout
        config.historySize = try reader.integer("HISTORY_SIZE", in: 0...1_000_000) ?? config.historySize
        config.historyTTL = try reader.duration("HISTORY_TTL") ?? config.historyTTL
        config.historyMaxMemory =
            try reader.integer("HISTORY_MAX_MEMORY", in: 65536...(1 << 40)) ?? config.historyMaxMemory
        return config
    }
}
