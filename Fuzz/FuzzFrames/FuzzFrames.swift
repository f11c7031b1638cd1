import Philote

#if canImport(Glibc)
import Glibc
#endif

/// Drives the whole inbound WebSocket path (frame parser, unmasking, assembler, UTF-8, close rules) with
/// arbitrary bytes, split at a point the input chooses, as a connection would see them across reads.
final class DiscardingSink: WebSocketEventSink {
    var events = 0
    func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) { events &+= payload.count }
    func receivedPing(_ payload: UnsafeRawBufferPointer) { events &+= 1 }
    func receivedPong(_ payload: UnsafeRawBufferPointer) { events &+= 1 }
    func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer) { events &+= 1 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let split = Int(data[0]) % (size)
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var reader = WebSocketReader(maxMessageSize: 4096)
    let sink = DiscardingSink()
    // Feed in two reads, carrying the unconsumed tail like Connection does.
    var pending: [UInt8] = []
    for chunk in [bytes[..<min(split, bytes.count)], bytes[min(split, bytes.count)...]] {
        pending.append(contentsOf: chunk)
        let outcome = pending.withUnsafeMutableBytes { reader.read($0, into: sink) }
        precondition(outcome.consumed <= pending.count)
        if outcome.stop != nil { return 0 }
        pending.removeSubrange(0..<outcome.consumed)
    }
    bytes.removeAll()
    return 0
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzz($0, $1) })
    }
}
#else
@main
struct FuzzMain {
    static func main() {
        print("Build with `make fuzz` (-sanitize=fuzzer -DFUZZING) to run this fuzz target.")
    }
}
#endif
