/// Decides when the TLS pair is loaded again and logs what came of it. A renewal is noticed by the periodic
/// check (either file's size or modification time differs from the loaded pair's) or asked for with SIGHUP.
/// A bad new pair keeps failing at every period until its files change again, so the periodic check logs a
/// refusal once per distinct failure (again only when the reason changes, or after a success); the repeats go
/// to the debug level, where they show that the check still runs. SIGHUP always logs its outcome: an operator
/// asked for it. Used from one thread (the one that waits for signals).
public final class TLSReloader {
    public enum Trigger: String, Sendable {
        case signal = "SIGHUP"
        case filesChanged = "files changed"
    }

    private let store: TLSContextStore
    private let logger: any LogSink
    /// The refusal last logged at the error level; nil after a success.
    private var loggedFailure: String?

    public init(store: TLSContextStore, logger: any LogSink) {
        self.store = store
        self.logger = logger
    }

    /// The periodic check: reloads when either file changed since the current pair was loaded.
    public func check() {
        guard store.filesChanged else {
            // The files are again those the current pair came from: a later failure, even the same one as
            // before, is news.
            loggedFailure = nil
            return
        }
        reload(.filesChanged, filesChanged: true)
    }

    /// SIGHUP: reloads whether or not the files look changed (a file rewritten in place with the same size
    /// and modification time is only picked up this way); the log says which it was.
    public func reloadOnSignal() {
        reload(.signal, filesChanged: store.filesChanged)
    }

    private func reload(_ trigger: Trigger, filesChanged: Bool) {
        let previous = store.current.serial
        // "unchanged": same size and modification time as when the current pair was loaded.
        let files = filesChanged ? "changed" : "unchanged"
        do {
            let fresh = try store.reload()
            loggedFailure = nil
            logger.info(
                "TLS certificate reloaded",
                ["serial": fresh.serial, "previous_serial": previous, "trigger": trigger.rawValue, "files": files])
        } catch {
            let failure = error.description
            guard trigger == .signal || failure != loggedFailure else {
                logger.debug("TLS reload still refused", ["error": failure, "trigger": trigger.rawValue])
                return
            }
            loggedFailure = failure
            logger.error(
                "TLS reload refused, keeping the current certificate",
                ["error": failure, "serial": previous, "trigger": trigger.rawValue, "files": files])
        }
    }
}
