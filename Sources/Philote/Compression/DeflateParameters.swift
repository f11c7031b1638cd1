/// What was agreed for permessage-deflate (RFC 7692) on one connection, and the response header value.
/// The server always takes `server_no_context_takeover`, so that a published message is compressed once
/// and the same bytes go to every compressing subscriber.
public struct DeflateParameters: Equatable, Sendable {
    /// The window the server compresses with (the client may have limited it; 9 to 15).
    public var serverWindowBits = 15
    /// Whether the client resets its compressor per message (then no inflate state is kept between
    /// messages).
    public var clientNoContextTakeover = false
    /// The `Sec-WebSocket-Extensions` response value.
    public var response = "permessage-deflate; server_no_context_takeover"

    public init() {}

    /// Accepts the first acceptable permessage-deflate offer of `headerValues`, or nil (no extension; the
    /// connection proceeds uncompressed). An offer with an unknown, repeated or out-of-range parameter is
    /// declined and the next one considered.
    public static func negotiate(_ headerValues: [String]) -> DeflateParameters? {
        for offer in ExtensionOffer.parse(headerValues) {
            guard let offer, offer.name.asciiCaseInsensitiveEquals("permessage-deflate") else { continue }
            if let accepted = accept(offer) { return accepted }
        }
        return nil
    }

    private static func accept(_ offer: ExtensionOffer) -> DeflateParameters? {
        var parameters = DeflateParameters()
        var seen = Set<String>()
        var serverBits: Int?
        for (name, value) in offer.parameters {
            let key = name.lowercased()
            guard seen.insert(key).inserted else { return nil }
            switch key {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                parameters.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let bits = value.flatMap(windowBits) else { return nil }
                // zlib cannot write a raw deflate stream with a 256-byte window: decline rather than
                // send back-references the client may not follow.
                guard bits >= 9 else { return nil }
                serverBits = bits
            case "client_max_window_bits":
                // The client's own limit on itself: any window up to 15 is inflated, so it needs no answer.
                if let value, windowBits(value) == nil { return nil }
            default:
                return nil
            }
        }
        var response = "permessage-deflate; server_no_context_takeover"
        if parameters.clientNoContextTakeover { response += "; client_no_context_takeover" }
        if let serverBits {
            parameters.serverWindowBits = serverBits
            response += "; server_max_window_bits=\(serverBits)"
        }
        parameters.response = response
        return parameters
    }

    /// 8 to 15 in plain decimal (RFC 7692 section 7.1.2: no leading zeros).
    private static func windowBits(_ text: String) -> Int? {
        guard let bits = Int(text), (8...15).contains(bits), String(bits) == text else { return nil }
        return bits
    }
}
