import ArgumentParser
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// `philote bench`: a fan-out load test of a Philote deployment from the same binary, on the project's
/// own reactor, with end-to-end latency from a histogram of bounded error.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load-test a Philote server: fan-out throughput, end-to-end latency, loss.",
        discussion: """
            Opens --subscribers connections (dealt round-robin over --channels channels bench0, bench1, ...) at \
            --connect-rate, then --publishers connections (publisher p writes channel p mod --channels), then \
            publishes {"channel":...,"data":"T<ns>R-S<seq>-P<publisher>-xxx..."} (the load harness's format, \
            data padded to --size characters) for --warmup, then for --duration measured. Each subscriber \
            measures the latency from the send time in the message (CLOCK_MONOTONIC: the tool is sender and \
            receiver, no clock sync) and knows which sequence numbers it must get, so losses and duplicates \
            are exact.

            --rate N is open-loop: N messages/s over all publishers, due on a clock the server cannot slow; \
            messages that could not even be queued (8 MiB waiting on a publisher) count as backlog. --rate max \
            keeps --window messages per publisher in flight (sent, not yet delivered to every subscriber of \
            its channel), as the harness (wsload) does; its latency is then queueing latency.

            Progress and a live line every second go to standard error; the final table (or, with --json, one \
            JSON document with the same figures, latencies in microseconds) to standard output. Ctrl-C ends \
            the window early: the table covers the time measured so far and the exit status is 130.

            Tokens: minted from --secret or $SECRET (subscribers read their channel, publishers write \
            theirs), or --token for every connection, or none when --url carries auth=.

            Exit status: 0 done; 1 the server cannot be reached or refuses the token (one line, at once), or \
            no connection could be opened; 2 bad arguments; 130 interrupted (after printing the table).

            Example: SECRET=... philote bench --url ws://127.0.0.1:6380/ --subscribers 1000 --rate max
            """
    )

    @Option(help: "The server's ws:// or wss:// URL. Default: $PHILOTE_URL, else \(ClientCommand.defaultURL)")
    var url: String?

    @Option(help: "The server's SECRET, to mint tokens. Default: $SECRET.")
    var secret: String?

    @Option(help: "One token for every connection (it must read and write every bench channel).")
    var token: String?

    @Option(help: "Subscriber connections.")
    var subscribers = "1000"

    @Option(help: "Publisher connections.")
    var publishers = "1"

    @Option(help: "Channels (bench0, bench1, ...); at most --publishers.")
    var channels = "1"

    @Option(help: "Messages per second over all publishers (e.g. 2000, 10k), or max.")
    var rate = "max"

    @Option(help: "--rate max: messages in flight per publisher.")
    var window = "16"

    @Option(help: "Characters of each message's data (the stamp, padded).")
    var size = "100"

    @Option(help: "The measured window, e.g. 30s, 1m, 500ms.")
    var duration = "10s"

    @Option(help: "Publishing before the window opens (not measured).")
    var warmup = "1s"

    @Option(help: "After the window: how long to wait for its last messages.")
    var drain = "2s"

    @Option(help: "New connections per second.")
    var connectRate = "5000"

    @Option(help: "Event loops (threads). Default: the online CPUs.")
    var workers: String?

    @Flag(help: "Write the result as one JSON document instead of the table.")
    var json = false

    @Flag(help: "Offer permessage-deflate; when agreed, publishes go compressed and deliveries may come compressed.")
    var deflate = false

    @Option(help: "wss://: trust the certificate authorities in this PEM file.")
    var ca: String?

    @Flag(help: "wss://: do not verify the server's certificate.")
    var insecure = false

    /// Arguments the parser does not know, reported by `validate` with exit status 2 like every other mistake.
    @Argument(parsing: .allUnrecognized, help: .hidden)
    var unrecognized: [String] = []

    func validate() throws {
        do throws(BenchFailure) {
            _ = try settings()
            _ = try target()
        } catch {
            Self.fail(error)
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        do throws(BenchFailure) {
            let settings = try settings()
            let target = try target()
            let (subscriberTokens, publisherTokens) = try tokens(for: target, settings: settings)
            let address: BenchAddress
            switch BenchAddress.resolve(host: target.host, port: target.port) {
            case .success(let resolved): address = resolved
            case .failure(let failure): throw failure
            }
            // One connection first, with the subscribers' token: an unreachable server or a refused token is
            // one line at once, not thousands of failed connects.
            try BenchProbe.check(target, token: subscriberTokens[0], caFile: ca, insecure: insecure)
            Self.raiseDescriptorLimit(to: settings.subscribers + settings.publishers + 64)
            let tls = target.secure ? try BenchTLSContext(caFile: ca, insecure: insecure, host: target.host) : nil
            let plan = BenchPlan(
                settings: settings, url: target, address: address, tls: tls, deflate: deflate,
                subscriberTokens: subscriberTokens, publisherTokens: publisherTokens)
            let run = try BenchRun(plan: plan, json: json)
            let status = run.run()
            // The loops still run until the process ends, and their timers and TLS sessions reach the workers and
            // OpenSSL: keep the run (which owns the workers) alive, and end with _exit, not exit, whose handlers
            // (OpenSSL's clean-up among them) would free what a loop may still be using. Everything was written with
            // write(2), so there is no buffer to flush.
            withExtendedLifetime(run) { Glibc._exit(status) }
        } catch {
            Self.fail(error)
        }
    }

    /// The workload from the arguments, checked.
    func settings() throws(BenchFailure) -> BenchSettings {
        if let first = unrecognized.first { throw BenchFailure("unknown argument \"\(first)\"", status: 2) }
        var settings = BenchSettings()
        settings.subscribers = try Self.integer(subscribers, "--subscribers")
        settings.publishers = try Self.integer(publishers, "--publishers")
        settings.channels = try Self.integer(channels, "--channels")
        settings.window = try Self.integer(window, "--window")
        settings.size = try Self.integer(size, "--size")
        settings.connectRate = try Self.integer(connectRate, "--connect-rate")
        settings.workers = try workers.map { text throws(BenchFailure) in try Self.integer(text, "--workers") }
            ?? LoopGroup.cpuCount
        guard let parsedRate = BenchRate(argument: rate) else {
            throw BenchFailure("--rate must be a number of messages per second above zero (e.g. 2000, 10k) or max, got \"\(rate)\"", status: 2)
        }
        settings.rate = parsedRate
        settings.duration = try Self.duration(duration, "--duration")
        settings.warmup = try Self.duration(warmup, "--warmup")
        settings.drain = try Self.duration(drain, "--drain")
        if let problem = settings.problem() { throw BenchFailure(problem, status: 2) }
        return settings
    }

    func target() throws(BenchFailure) -> WebSocketURL {
        let text = url ?? ClientCommand.environment("PHILOTE_URL") ?? ClientCommand.defaultURL
        switch WebSocketURL.parse(text) {
        case .success(let parsed):
            if ca != nil && insecure { throw BenchFailure("--ca and --insecure contradict each other: pass one", status: 2) }
            return parsed
        case .failure(let error):
            throw BenchFailure(error.message, status: 2)
        }
    }

    /// Per channel: the subscribers' and publishers' tokens.
    private func tokens(for target: WebSocketURL, settings: BenchSettings) throws(BenchFailure)
        -> ([String?], [String?])
    {
        let channels = settings.channels
        let publishers = settings.publishers
        if let token {
            guard !token.isEmpty else { throw BenchFailure("--token is empty", status: 2) }
            return ([String?](repeating: token, count: channels), [String?](repeating: token, count: publishers))
        }
        guard let secret = secret ?? ClientCommand.environment("SECRET") else {
            if target.hasAuthParameter {
                return ([String?](repeating: nil, count: channels), [String?](repeating: nil, count: publishers))
            }
            throw BenchFailure("no token: pass --secret or set SECRET to mint tokens, or pass --token", status: 2)
        }
        let signer = TokenSigner(secret: secret)
        // Subscribers: one per channel. Publishers: one per connection, writing the channels of its streams.
        let reading = (0..<channels).map { signer.sign(Claims(read: [BenchSettings.channelName($0)])) }
        let writing = (0..<publishers).map { connection in
            signer.sign(Claims(write: settings.streams(of: connection).map {
                BenchSettings.channelName(settings.channel(of: $0))
            }))
        }
        return (reading, writing)
    }

    private static func integer(_ text: String, _ option: String) throws(BenchFailure) -> Int {
        guard let value = Int(text) else { throw BenchFailure("\(option) must be a whole number, got \"\(text)\"", status: 2) }
        return value
    }

    private static func duration(_ text: String, _ option: String) throws(BenchFailure) -> UInt64 {
        guard let value = BenchDuration.nanoseconds(text) else {
            throw BenchFailure("\(option) must be a duration like 30s, 500ms or 1m, got \"\(text)\"", status: 2)
        }
        return value
    }

    /// Thousands of connections need thousands of descriptors: the soft limit goes up to the hard one.
    private static func raiseDescriptorLimit(to wanted: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(wanted) else { return }
        limit.rlim_cur = min(limit.rlim_max, rlim_t(wanted))
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    static func say(_ line: String) {
        POSIXIO.writeAll(2, Array("philote bench: \(line)\n".utf8))
    }

    static func fail(_ failure: BenchFailure) -> Never {
        say(failure.message)
        Glibc.exit(failure.status)
    }
}
