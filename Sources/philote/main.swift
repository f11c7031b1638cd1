import Philote

#if canImport(Glibc)
    import Glibc
#endif

let usage = """
    usage: philote [command]

    commands:
      echo        serve a WebSocket echo server (every message back to its sender)
      help        show this text
      version     print the version

    Configuration comes from the environment (PORT, HOST, WORKERS, LOGLEVEL, MAX_MESSAGE_SIZE,
    PING_INTERVAL, PONG_TIMEOUT, HANDSHAKE_TIMEOUT, CLOSE_TIMEOUT, ...); see README.md.

    """

func environment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    return result
}

func fail(_ message: String, status: Int32) -> Never {
    var line = Array("philote: \(message)\n".utf8)
    line.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
    exit(status)
}

func runServer(application: WebSocketApplication, mode: String) -> Never {
    let configuration: Configuration
    do {
        configuration = try Configuration.fromEnvironment(environment())
    } catch {
        fail("invalid configuration: \(error)", status: 2)
    }
    // Writes to a vanished peer must fail with EPIPE, not kill the process.
    signal(SIGPIPE, SIG_IGN)
    // Block the stop signals before any loop thread exists (threads inherit the mask), then take
    // them synchronously here with sigwait: no async-signal-safety concerns.
    var stopSignals = sigset_t()
    sigemptyset(&stopSignals)
    sigaddset(&stopSignals, SIGINT)
    sigaddset(&stopSignals, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

    let server: Server
    do {
        server = try Server(configuration: configuration, application: application)
    } catch {
        fail("cannot listen on \(configuration.host):\(configuration.port): \(error)", status: 1)
    }
    server.start()
    server.logger.info(
        "philote started",
        [
            "version": PhiloteVersion.string, "mode": mode, "address": "ws://\(configuration.host):\(server.port)",
            "workers": String(configuration.workers),
        ])
    var received: Int32 = 0
    sigwait(&stopSignals, &received)
    server.logger.info("shutting down", ["signal": received == SIGTERM ? "SIGTERM" : "SIGINT"])
    server.shutdown()
    server.wait()
    server.logger.info("stopped")
    exit(0)
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "echo", nil:
    runServer(application: EchoApplication(), mode: "echo")
case "help", "-h", "--help":
    print(usage, terminator: "")
case "version", "--version":
    print("philote \(PhiloteVersion.string)")
default:
    fail("unknown command \"\(arguments[0])\"\n\(usage)", status: 2)
}
