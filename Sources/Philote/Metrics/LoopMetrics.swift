import Synchronization

/// One event loop's counters for `/metrics`. Only that loop's thread writes them (`add(fromOwner:)`: plain
/// additions, no locked instructions), and a scrape on any thread reads and sums every loop's set, so
/// counting never makes loops share a cache line or wait for each other.
///
/// A counter added here shows on `/metrics` once it has its line in `MetricFamily.all`.
public final class LoopMetrics: Sendable {
    /// Why an upgrade was refused although the request itself was well-formed.
    public enum Rejection: Int, CaseIterable, Sendable {
        case maxConnections, draining, unauthorized, forbidden, other
        /// Refused at accept: `MAX_PENDING_HANDSHAKES` sockets were already in their handshake.
        case pendingHandshakes

        public var label: String {
            switch self {
            case .maxConnections: "max_connections"
            case .draining: "draining"
            case .unauthorized: "unauthorized"
            case .forbidden: "forbidden"
            case .other: "other"
            case .pendingHandshakes: "pending_handshakes"
            }
        }

        init(status: HTTPStatus) {
            switch status {
            case .unauthorized: self = .unauthorized
            case .forbidden: self = .forbidden
            case .serviceUnavailable: self = .maxConnections
            default: self = .other
            }
        }
    }

    /// Why a token was refused (at the upgrade or by the HTTP API).
    public enum AuthFailure: Int, CaseIterable, Sendable {
        case missing, malformed, unsupportedAlgorithm, invalidSignature, expired, notYetValid, issuedInFuture
        case invalidClaim, apiNotGranted

        public init(_ error: TokenError) {
            switch error {
            case .missing: self = .missing
            case .malformed: self = .malformed
            case .unsupportedAlgorithm: self = .unsupportedAlgorithm
            case .invalidSignature: self = .invalidSignature
            case .expired: self = .expired
            case .notYetValid: self = .notYetValid
            case .issuedInFuture: self = .issuedInFuture
            case .invalidClaim: self = .invalidClaim
            }
        }

        public var label: String {
            switch self {
            case .missing: "missing"
            case .malformed: "malformed"
            case .unsupportedAlgorithm: "unsupported_algorithm"
            case .invalidSignature: "invalid_signature"
            case .expired: "expired"
            case .notYetValid: "not_yet_valid"
            case .issuedInFuture: "issued_in_future"
            case .invalidClaim: "invalid_claim"
            case .apiNotGranted: "api_not_granted"
            }
        }
    }

    /// A request that was not even a valid request or upgrade, or that did not arrive in time.
    public enum HandshakeFailure: Int, CaseIterable, Sendable {
        case badRequest, methodNotAllowed, upgradeRequired, headTooLarge, bodyTooLarge, timeout, other

        init(status: HTTPStatus) {
            switch status {
            case .badRequest: self = .badRequest
            case .methodNotAllowed: self = .methodNotAllowed
            case .upgradeRequired: self = .upgradeRequired
            case .requestHeaderFieldsTooLarge: self = .headTooLarge
            case .contentTooLarge: self = .bodyTooLarge
            default: self = .other
            }
        }

        public var label: String {
            switch self {
            case .badRequest: "bad_request"
            case .methodNotAllowed: "method_not_allowed"
            case .upgradeRequired: "upgrade_required"
            case .headTooLarge: "head_too_large"
            case .bodyTooLarge: "body_too_large"
            case .timeout: "timeout"
            case .other: "other"
            }
        }
    }

    /// Where a publish came from.
    public enum Source: Int, CaseIterable, Sendable {
        case websocket, http

        public var label: String {
            switch self {
            case .websocket: "websocket"
            case .http: "http"
            }
        }
    }

    /// How a token refresh on an open connection ended.
    public enum Refresh: Int, CaseIterable, Sendable {
        case accepted, refused

        public var label: String {
            switch self {
            case .accepted: "accepted"
            case .refused: "refused"
            }
        }
    }

    // InlineArray sizes are literals: LoopMetricsTests checks each against its enum's case count.
    let rejections: InlineArray<6, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    let authFailures: InlineArray<9, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    let handshakeFailures: InlineArray<7, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    let publishes: InlineArray<2, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    let publishesDenied: InlineArray<2, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    let tokenRefreshes: InlineArray<2, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }

    /// WebSocket upgrades completed.
    let connectionsOpened = Atomic<UInt64>(0)
    /// Data messages received from clients.
    let messagesIn = Atomic<UInt64>(0)
    /// Data messages written in full to clients (deliveries and replies), counted by each connection's flush.
    let messagesOut = Atomic<UInt64>(0)
    let bytesIn = Atomic<UInt64>(0)
    let bytesOut = Atomic<UInt64>(0)
    let slowConsumerCloses = Atomic<UInt64>(0)
    /// Publishes from this loop that another loop missed because it had `HandOffBudget.limit` bytes waiting.
    let handOffDropped = Atomic<UInt64>(0)
    /// Bytes given to a compressor, and what came out (once per publish and window size, not per reader).
    let compressionInput = Atomic<UInt64>(0)
    let compressionOutput = Atomic<UInt64>(0)
    /// For the TLS layer to count finished and failed handshakes.
    let tlsHandshakes = Atomic<UInt64>(0)
    let tlsHandshakeFailures = Atomic<UInt64>(0)
    /// Sockets on this loop (WebSocket connections and requests still in their handshake).
    let sockets = Atomic<Int>(0)

    public init() {}

    func rejected(_ reason: Rejection) { rejections[reason.rawValue].add(fromOwner: 1) }
    func authFailed(_ reason: AuthFailure) { authFailures[reason.rawValue].add(fromOwner: 1) }
    func handshakeFailed(_ reason: HandshakeFailure) { handshakeFailures[reason.rawValue].add(fromOwner: 1) }
    func published(_ source: Source, count: Int = 1) { publishes[source.rawValue].add(fromOwner: UInt64(count)) }
    func publishDenied(_ source: Source) { publishesDenied[source.rawValue].add(fromOwner: 1) }
    func tokenRefreshed(_ result: Refresh) { tokenRefreshes[result.rawValue].add(fromOwner: 1) }

    func compressed(from input: Int, to output: Int) {
        compressionInput.add(fromOwner: UInt64(input))
        compressionOutput.add(fromOwner: UInt64(output))
    }
}
