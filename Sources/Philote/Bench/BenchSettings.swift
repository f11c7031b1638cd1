/// The workload of a `philote bench` run, checked as a whole: each rule's message names the option and says
/// what it must be, for the one line a user sees before exit status 2.
public struct BenchSettings: Equatable, Sendable {
    public var subscribers = 1000
    public var publishers = 1
    public var channels = 1
    public var rate: BenchRate = .max
    /// `--rate max`: messages each publisher may have in flight (sent but not yet delivered to every
    /// subscriber of its channel).
    public var window = 16
    /// Characters of each message's data string.
    public var size = 100
    public var duration: UInt64 = 10_000_000_000
    public var warmup: UInt64 = 1_000_000_000
    /// After the window: how long to wait for its last messages before counting what is missing as lost.
    public var drain: UInt64 = 2_000_000_000
    /// New connections per second, over all workers.
    public var connectRate = 5000
    public var workers = 1

    /// Fewer than 20 characters cannot hold the stamp of a message with a large sequence number anyway.
    public static let minimumSize = 40
    public static let maximumSize = 16 << 20

    public init() {}

    /// The first rule broken, as one line; nil when the workload is valid.
    public func problem() -> String? {
        if subscribers < 0 { return "--subscribers must be 0 or more, got \(subscribers)" }
        if publishers < 1 { return "--publishers must be at least 1, got \(publishers)" }
        if channels < 1 { return "--channels must be at least 1, got \(channels)" }
        if subscribers > 0 && subscribers < channels {
            return "--subscribers (\(subscribers)) must be at least --channels (\(channels)), so that every channel is read"
        }
        if window < 1 || window > 1_000_000 { return "--window must be between 1 and 1000000, got \(window)" }
        if size < Self.minimumSize || size > Self.maximumSize {
            return "--size must be between \(Self.minimumSize) and \(Self.maximumSize) bytes, got \(size)"
        }
        if duration == 0 { return "--duration must be above zero" }
        if connectRate < 1 { return "--connect-rate must be at least 1 connection per second, got \(connectRate)" }
        if workers < 1 || workers > 1024 { return "--workers must be between 1 and 1024, got \(workers)" }
        if subscribers + publishers > 1_000_000 { return "at most 1000000 connections in all" }
        return nil
    }

    /// Publishing streams: one per (publisher connection, channel) pair that publishes, so that every channel
    /// has one even with more channels than publishers (`--publishers 4 --channels 10`: ten streams, publisher
    /// connection p carrying streams p, p + 4, p + 8). Each stream numbers its own messages.
    public var streams: Int { max(publishers, channels) }

    /// The channel stream or subscriber `index` uses: they are dealt round-robin, so channel c has the
    /// streams and subscribers whose index is c modulo the channel count.
    public func channel(of index: Int) -> Int { index % channels }

    /// The streams publisher connection `connection` carries.
    public func streams(of connection: Int) -> [Int] { Array(stride(from: connection, to: streams, by: publishers)) }

    /// The number of channel `channel`'s streams; stream s is the (s / channels)-th of its channel.
    public func publishers(on channel: Int) -> Int {
        streams / channels + (channel < streams % channels ? 1 : 0)
    }

    /// The channel's name on the server.
    public static func channelName(_ channel: Int) -> String { "bench\(channel)" }
}
