import FuzzSupport
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// Drives the client-message reader with arbitrary bytes (a text or binary frame's payload). Any
/// outcome but a crash is fine; a success must decode to valid UTF-8 that the writer can encode, and
/// the reader must agree with itself on a copy of the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let first = ClientMessageReader.read(input)
    let copy = Array(input)
    let second = copy.withUnsafeBytes { ClientMessageReader.read($0) }
    precondition(first == second, "reader is not deterministic")
    if case .success(let message) = first {
        precondition(String(validating: message.channel, as: UTF8.self) != nil, "channel is not UTF-8")
        precondition(String(validating: message.data, as: UTF8.self) != nil, "data is not UTF-8")
        if let token = message.token {
            precondition(message.channel.isEmpty && message.data.isEmpty, "a token refresh with a channel or data")
            precondition(String(validating: token, as: UTF8.self) != nil, "token is not UTF-8")
        }
        let encoded = message.channel.withUnsafeBytes { channel in
            message.data.withUnsafeBytes { data in
                ServerMessageEncoder.encode(
                    issuer: "00000000-0000-4000-8000-000000000000", channel: channel, data: data)
            }
        }
        precondition(encoded.last == 0x0A && String(validating: encoded, as: UTF8.self) != nil)
    }
    return 0
}

@main
struct FuzzMain {
    static func main() { runFuzzer(fuzz) }
}
