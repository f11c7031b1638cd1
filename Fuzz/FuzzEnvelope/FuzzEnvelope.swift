import FuzzSupport
import Philote

/// Drives the broker-envelope checks (plain, positioned, fetch marker) with arbitrary bytes (whatever anyone with access to Redis publishes on
/// our channels). Any outcome but a crash is fine; an accepted envelope must be one whole unmasked text
/// frame whose payload is the frame's tail.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    // History's envelopes (a positioned publish, a fetch marker): same rule, and a position in range.
    if let positioned = BrokerEnvelope.openPositioned(input) {
        precondition(positioned.position.offset > 0 && positioned.position.offset <= UInt64(Int64.max))
        precondition(positioned.position.epoch.text.utf8.count == 12)
        precondition(positioned.sender.count == BrokerEnvelope.senderSize)
        precondition(positioned.frame.baseAddress! + positioned.frame.count == input.baseAddress! + input.count)
        precondition(positioned.payload.last == 0x0A)
    }
    if let marker = BrokerEnvelope.openFetchMarker(input) {
        precondition(input.count == 27 && marker.id == input[19...].reduce(0) { $0 << 8 | UInt64($1) })
    }
    guard let opened = BrokerEnvelope.open(input) else { return 0 }
    precondition(opened.frame.baseAddress! + opened.frame.count == input.baseAddress! + input.count)
    precondition(opened.payload.baseAddress! + opened.payload.count == input.baseAddress! + input.count)
    precondition(opened.frame[0] == 0x81 && opened.frame[1] & 0x80 == 0)
    let header = opened.frame.count - opened.payload.count
    precondition(header == 2 || header == 4 || header == 10)
    return 0
}

@main
struct FuzzMain {
    static func main() { runFuzzer(fuzz) }
}
