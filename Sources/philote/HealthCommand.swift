import ArgumentParser
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// `philote health`: asks the server on this host for `/readyz` (or `--path`) and exits 0 only on 200.
/// Container images carry no curl or wget, so the Dockerfile's HEALTHCHECK runs this (with `--path /livez`);
/// it reads HOST, PORT and the TLS variables from the same environment as the server, so it needs no
/// address there.
struct HealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check a server on this host: exit 0 when its /readyz (or --path) answers 200, else 1.",
        discussion: """
            The address comes from the server's environment: PORT (default 6380) and HOST. HOST unset, \
            empty or :: tries 127.0.0.1, then ::1 (containers often have no IPv6); 0.0.0.0 means \
            127.0.0.1; any other address is asked as it is. When TLS_CERT_FILE and TLS_KEY_FILE are set it \
            speaks TLS without checking the certificate (it only asks whether this host's server answers). \
            /livez answers 200 while the process serves; /readyz also fails while draining or while Redis \
            is down: a container's HEALTHCHECK wants /livez, a load balancer /readyz. Prints the status \
            line on failure.
            """
    )

    @Option(help: "The path to ask: /readyz (ready for clients) or /livez (alive).")
    var path = "/readyz"

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int = 5

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let environment = ServerRunner.environment()
        let port = environment["PORT"].flatMap { Int($0) } ?? 6380
        let secure = !(environment["TLS_CERT_FILE"] ?? "").isEmpty && !(environment["TLS_KEY_FILE"] ?? "").isEmpty
        do throws(ClientFailure) {
            let deadline = Deadline(after: .seconds(max(1, timeout)))
            let (fd, host) = try Self.connect(
                HealthTargets.hosts(forListenHost: environment["HOST"]), port: port, secure: secure,
                deadline: deadline)
            let connection =
                secure
                ? try ClientSocket(tlsOver: fd, host: host, caFile: nil, insecure: true, deadline: deadline)
                : ClientSocket(plain: fd)
            defer { connection.close() }
            let status = try Self.statusLine(of: connection, path: path, deadline: deadline)
            guard status.split(separator: " ").dropFirst().first == "200" else {
                throw ClientFailure("\(path): \(status)")
            }
        } catch {
            POSIXIO.writeAll(2, Array("philote health: \(error.message)\n".utf8))
            Glibc.exit(error.status)
        }
    }

    /// The first of `hosts` that accepts a TCP connection, in order; an HTTP answer from it, good or bad, is
    /// the verdict. Fails with every host's reason when none does.
    private static func connect(_ hosts: [String], port: Int, secure: Bool, deadline: Deadline) throws(ClientFailure)
        -> (fd: Int32, host: String)
    {
        var reasons: [String] = []
        for host in hosts {
            let text = "\(secure ? "wss" : "ws")://\(host.contains(":") ? "[\(host)]" : host):\(port)/"
            guard case .success(let url) = WebSocketURL.parse(text) else {
                throw ClientFailure("cannot make a URL of HOST and PORT: \(text)", status: ClientFailure.usage)
            }
            do throws(ClientFailure) {
                return (try TCPConnector.connect(to: url, deadline: deadline), host)
            } catch {
                reasons.append(error.message)
            }
            if deadline.hasPassed { break }
        }
        throw ClientFailure(reasons.joined(separator: "; "))
    }

    /// Sends `GET path` and reads the answer's status line.
    private static func statusLine(of socket: ClientSocket, path: String, deadline: Deadline) throws(ClientFailure)
        -> String
    {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let result = request.withUnsafeBytes { socket.write(UnsafeRawBufferPointer(rebasing: $0[sent...])) }
            switch result {
            case .transferred(let count): sent += count
            case .wouldBlock: try wait(socket, for: Int16(POLLOUT), deadline: deadline)
            case .endOfFile, .failed: throw ClientFailure("\(path): the server closed the connection")
            }
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while !received.contains(0x0A) && received.count < 8192 {
            let result = buffer.withUnsafeMutableBytes { socket.read(into: $0) }
            switch result {
            case .transferred(let count): received += buffer[..<count]
            case .wouldBlock: try wait(socket, for: Int16(POLLIN), deadline: deadline)
            case .endOfFile, .failed: throw ClientFailure("\(path): the server closed the connection without an answer")
            }
        }
        let line = received.prefix { $0 != 0x0D && $0 != 0x0A }
        return String(decoding: line, as: UTF8.self)
    }

    private static func wait(_ socket: ClientSocket, for events: Int16, deadline: Deadline) throws(ClientFailure) {
        if socket.hasBufferedInput && events == Int16(POLLIN) { return }
        if POSIXIO.wait(socket.fd, for: events, milliseconds: deadline.remainingMilliseconds) == 0 {
            throw ClientFailure("no answer within the timeout")
        }
    }
}
