import Philote

#if canImport(Glibc)
import Glibc
#endif

/// Drives the request-head parser and the upgrade validation with arbitrary bytes, split into two reads
/// at a point the input chooses. Any outcome is fine except a crash or an inconsistent `consumed`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let split = Int(data[0]) % size
    let bytes = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var parser = RequestHeadParser(maxHeadSize: 1024)
    for chunk in [UnsafeRawBufferPointer(rebasing: bytes[..<min(split, bytes.count)]),
                  UnsafeRawBufferPointer(rebasing: bytes[min(split, bytes.count)...])] {
        switch parser.feed(chunk) {
        case .needMore: continue
        case .failure: return 0
        case .complete(let head, let consumed):
            precondition(consumed >= 0 && consumed <= chunk.count)
            if case .success(let request) = UpgradeRequest.validate(head) {
                precondition(request.acceptValue.utf8.count == 28)
            }
            return 0
        }
    }
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
