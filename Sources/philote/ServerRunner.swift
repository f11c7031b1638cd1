import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// Start-up and shutdown shared by every serving command.
enum ServerRunner {
    static func environment() -> [String: String] {
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

    static func fail(_ message: String, status: Int32) -> Never {
        Logger.flush()  // log lines queued before this one come first
        var line = Array("philote: \(message)\n".utf8)
        line.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
        exit(status)
    }

    static func loadConfiguration() -> Configuration {
        do {
            return try Configuration.fromEnvironment(environment())
        } catch {
            fail("invalid configuration: \(error)", status: 2)
        }
    }

    /// Serves until SIGTERM or SIGINT, then drains (close 1001 to everyone) and exits 0.
    static func run(
        configuration: Configuration, application: WebSocketApplication, mode: String,
        prepare: (Server) -> Void
    ) -> Never {
        // Writes to a vanished peer must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        // Block the stop signals before any loop thread exists (threads inherit the mask), then take
        // them synchronously with sigwait: no async-signal-safety concerns.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        var tls: TLSContextStore?
        var handOverFailure: String?
        if let certificate = configuration.tlsCertificateFile, let key = configuration.tlsKeyFile {
            do {
                let serving = try TLSContext.serving(
                    certificateFile: certificate, keyFile: key, recordLayer: configuration.tlsRecordLayer)
                tls = TLSContextStore(serving.context)
                handOverFailure = serving.handOverFailure
            } catch {
                fail("TLS: \(error)", status: 2)
            }
        }
        // Configuration accepted HOST, so it parses; the description brackets an IPv6 literal ([::]:6380).
        let listenAddress = { (port: Int) in SocketAddress(host: configuration.host, port: port)!.description }
        let server: Server
        do {
            server = try Server(configuration: configuration, application: application, tls: tls)
        } catch {
            fail("cannot listen on \(listenAddress(configuration.port)): \(error)", status: 1)
        }
        prepare(server)
        if let handOverFailure {
            server.logger.warning(
                "TLS hand-over check failed: OpenSSL keeps the records (TLS_RECORD_LAYER=openssl)",
                ["error": handOverFailure, "openssl": TLSContext.libraryVersion])
        }
        server.start()
        server.logger.info(
            "philote started",
            [
                "version": PhiloteVersion.string, "mode": mode,
                "address": "\(tls == nil ? "ws" : "wss")://\(listenAddress(server.port))",
                "workers": String(configuration.workers), "tls": tls == nil ? "off" : "on (wss:// only)",
                "tls_records": tls.map { $0.current.recordLayer.rawValue } ?? "none",
                "broker": configuration.redisEndpoints.isEmpty
                    ? "none" : "redis " + configuration.redisEndpoints.map(\.label).joined(separator: ","),
            ])
        if mode == "demo" {
            // A wildcard address is no place to browse to: the loopback one of its family is.
            let host = ["0.0.0.0", "::", "[::]"].contains(configuration.host) ? "127.0.0.1" : configuration.host
            let page = "\(tls == nil ? "http" : "https")://\(SocketAddress(host: host, port: server.port)!)/demo"
            server.logger.info("demo: open the chat in two browser windows", ["url": page])
        }
        var received: Int32 = 0
        // Stop signals end the loop; SIGHUP, or certificate files changed on disk (checked every
        // TLS_RELOAD_INTERVAL), reload the TLS pair without touching established connections.
        let reloader = tls.map { TLSReloader(store: $0, logger: server.logger) }
        let interval = configuration.tlsReloadInterval
        while true {
            var timeout = timespec(tv_sec: Int(interval / 1000), tv_nsec: Int(interval % 1000) * 1_000_000)
            received = sigtimedwait(&stopSignals, nil, &timeout)
            if received == SIGINT || received == SIGTERM { break }
            guard let reloader else { continue }
            if received == SIGHUP {
                reloader.reloadOnSignal()
            } else {
                reloader.check()
            }
        }
        server.logger.info("shutting down", ["signal": received == SIGTERM ? "SIGTERM" : "SIGINT"])
        server.shutdown(gracePeriod: configuration.drainTimeout)
        server.wait()
        server.logger.info("stopped")
        Logger.flush()
        exit(0)
    }
}
