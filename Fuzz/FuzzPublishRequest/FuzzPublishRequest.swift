import FuzzSupport
import Philote

/// Drives the `POST /api/publish` body reader (PublishRequestReader) with arbitrary bytes: the body of any
/// request that carries an API token.
///
/// Oracles, besides "no crash, no memory error":
/// - all or nothing: a success holds at least one message, a failure none (the type guarantees the rest);
/// - a refusal's reason is short (it goes back in the 400 answer and must never echo the body);
/// - an accepted body is valid UTF-8 (RFC 8259 section 8.1; the reader reads under JSONReader's strict rules,
///   which refuse invalid UTF-8, and it no longer checks the body whole), and so is every channel and data it
///   yields;
/// - what is accepted re-reads identically: the messages written back as a list, and the first one as a
///   lone object, read to the same messages;
/// - the reader agrees with the WebSocket path: each accepted message, written as an object, reads the
///   same through ClientMessageReader; and a body that is one object and that this reader accepts is
///   accepted as the same message by ClientMessageReader (the HTTP path is the stricter of the two, never
///   the other way round), but for an object that is a token refresh over WebSocket (an `auth` member and
///   neither `channel` nor `data`). Both read through JSONReader, but under different rules and with their own
///   walks over the document, which this keeps consistent.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    switch PublishRequestReader.read(body) {
    case .failure(let failure):
        precondition(!failure.reason.isEmpty && failure.reason.utf8.count <= 100, "refusal reason: \(failure.reason)")
    case .success(let messages):
        precondition(!messages.isEmpty, "accepted a body with no message")
        precondition(String(validating: body, as: UTF8.self) != nil, "accepted a body that is not UTF-8")
        for message in messages {
            precondition(String(validating: message.channel, as: UTF8.self) != nil, "channel is not UTF-8")
            precondition(String(validating: message.data, as: UTF8.self) != nil, "data is not UTF-8")
            let object = PublishBodyWriter.object(message)
            let overWebSocket = object.withUnsafeBytes { ClientMessageReader.read($0) }
            precondition(overWebSocket == .success(message), "the WebSocket reader reads a written message differently")
        }
        let relisted = PublishRequestReader.read(PublishBodyWriter.list(messages))
        precondition(relisted == .success(messages), "the messages written as a list read back differently")
        let alone = PublishRequestReader.read(PublishBodyWriter.object(messages[0]))
        precondition(alone == .success([messages[0]]), "the first message written alone reads back differently")
        if body.first(where: { !isJSONWhitespace($0) }) == UInt8(ascii: "{") {
            let overWebSocket = body.withUnsafeBytes { ClientMessageReader.read($0) }
            switch overWebSocket {
            // An `auth` member without `channel` or `data` is a token refresh over WebSocket, not a publish.
            case .success(let read) where read.token != nil: break
            case .failure(let failure) where failure.reason == "auth must be a string": break
            default:
                precondition(overWebSocket == .success(messages[0]), "the WebSocket reader disagrees on an object body")
            }
        }
    }
    return 0
}

private func isJSONWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
}

@main
struct FuzzMain {
    static func main() { runFuzzer(fuzz) }
}
