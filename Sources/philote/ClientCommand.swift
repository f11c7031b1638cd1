import ArgumentParser
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// `philote client`: the successor of the original's `jane` CLI.
struct ClientCommand: ParsableCommand {
    static let defaultURL = "ws://127.0.0.1:6380/"
    static let connectTimeout: Duration = .seconds(10)
    static let handshakeTimeout: Duration = .seconds(10)

    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Connect to a Philote server, print every message it sends, publish each line of standard input.",
        discussion: """
            Output: every message the server sends is printed on standard output exactly as received (the \
            server's JSON, e.g. {"issuer":"...","channel":"demo","data":"hi"}), one message per line: the \
            newline the server ends each message with is not doubled. Error replies from the server \
            ({"error":...}) are messages too and are printed the same way.

            Input: each line of standard input (a trailing \\r is dropped; a last line without a newline \
            counts) is published as {"channel":"<channel>","data":"<line>"}. At end of input (Ctrl-D) or on \
            Ctrl-C the client closes the connection with code 1000 after every line is sent, waits up to \
            5 s for the server to answer the close, and exits 0. The server answers only after handling \
            every earlier message, so exit status 0 means every line was published.

            Token: --token, else one minted from $SECRET that reads and writes --channel, else none when \
            --url carries an auth=TOKEN query parameter. It is sent as "Authorization: Bearer <token>".

            Errors are one line on standard error. Exit status: 0 clean end; 1 connection, handshake or \
            protocol failure, or the server closed the connection (e.g. "connection closed by server: 4001 \
            token expired"); 2 invalid URL or no token; 130 a second Ctrl-C while closing.

            Example: SECRET=... philote client --channel demo
            """
    )

    @Option(help: "The server's ws:// or wss:// URL. Default: $PHILOTE_URL, else \(defaultURL)")
    var url: String?

    @Option(help: "The channel each input line is published to; a minted token reads and writes it.")
    var channel: String

    @Option(help: "The token to connect with. Default: one minted from $SECRET.")
    var token: String?

    @Option(help: "wss://: trust the certificate authorities in this PEM file instead of the system's.")
    var ca: String?

    @Flag(help: "wss://: do not verify the server's certificate (testing only).")
    var insecure = false

    @Flag(help: "Do not read standard input: only print messages, until the server closes or Ctrl-C.")
    var listen = false

    @Flag(name: .shortAndLong, help: "Say on standard error when the connection is open.")
    var verbose = false

    func run() throws {
        // A vanished server or reader must surface as EPIPE and an error line, not kill the process silently.
        signal(SIGPIPE, SIG_IGN)
        do throws(ClientFailure) {
            try connectAndRun()
        } catch {
            Self.fail(error)
        }
    }

    private func connectAndRun() throws(ClientFailure) {
        let text = url ?? Self.environment("PHILOTE_URL") ?? Self.defaultURL
        let target: WebSocketURL
        switch WebSocketURL.parse(text) {
        case .success(let parsed): target = parsed
        case .failure(let error): throw ClientFailure(error.message, status: ClientFailure.usage)
        }
        let credential = try resolveToken(for: target)
        let fd = try TCPConnector.connect(to: target, deadline: Deadline(after: Self.connectTimeout))
        let socket: ClientSocket
        let handshake: (received: [UInt8], deflateContextTakeover: Bool?)
        do {
            let deadline = Deadline(after: Self.handshakeTimeout)
            if target.secure {
                socket = try ClientSocket(
                    tlsOver: fd, host: target.host, caFile: ca, insecure: insecure, deadline: deadline)
            } else {
                socket = ClientSocket(plain: fd)
            }
            handshake = try HandshakeExchange.perform(
                socket: socket, url: target, token: credential, deadline: deadline)
        } catch {
            close(fd)
            throw error
        }
        // The session takes over Ctrl-C when it is created; only then is "connected" true in every sense.
        let session = ClientSession(
            socket: socket, channel: channel, readsInput: !listen, received: handshake.received,
            deflateContextTakeover: handshake.deflateContextTakeover)
        let interactive = isatty(0) == 1 && !listen
        if verbose || interactive {
            var note = "connected to \(target)"
            if interactive {
                note +=
                    "; each line you type is published to channel \(JSONStringEncoder.quoted(channel)) (Ctrl-D ends)"
            }
            Self.say(note)
        }
        if let failure = session.run() { throw failure }
    }

    /// --token, else nothing when the URL carries `auth=`, else a token minted from SECRET for --channel.
    private func resolveToken(for target: WebSocketURL) throws(ClientFailure) -> String? {
        if let token {
            guard !token.isEmpty else { throw ClientFailure("--token is empty", status: ClientFailure.usage) }
            return token
        }
        if target.hasAuthParameter { return nil }
        guard let secret = Self.environment("SECRET") else {
            throw ClientFailure(
                "no token: pass --token TOKEN, or set SECRET to the server's secret to mint one",
                status: ClientFailure.usage)
        }
        return TokenSigner(secret: secret).sign(Claims(read: [channel], write: [channel]))
    }

    /// A non-empty environment variable.
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name), value.pointee != 0 else { return nil }
        return String(cString: value)
    }

    static func say(_ line: String) {
        POSIXIO.writeAll(2, Array("philote client: \(line)\n".utf8))
    }

    static func fail(_ failure: ClientFailure) -> Never {
        say(failure.message)
        Glibc.exit(failure.status)
    }
}
