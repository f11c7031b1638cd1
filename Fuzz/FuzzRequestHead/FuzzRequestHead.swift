import FuzzSupport
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// Drives the request-head parser and the upgrade validation with arbitrary bytes, split into two reads
/// at a point the input chooses (the first byte, modulo the input size; the rest is the data).
/// Oracles, besides "no crash, no memory error":
/// - `consumed` is within the read it refers to, and the head ends with CRLFCRLF right there;
/// - one read and two reads give the same outcome (same head, same error, same end of head);
/// - an accepted upgrade has a 28-character accept value.
let maxHeadSize = 1024

enum Outcome: Equatable {
    case needMore
    /// The head and the offset just past it in the whole input.
    case complete(RequestHead, end: Int)
    case failure(HandshakeError)
}

func run(_ bytes: UnsafeRawBufferPointer, cuts: [Int]) -> Outcome {
    var parser = RequestHeadParser(maxHeadSize: maxHeadSize)
    var start = 0
    for end in cuts + [bytes.count] {
        let chunk = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        switch parser.feed(chunk) {
        case .needMore:
            precondition(parser.bufferedCount <= maxHeadSize, "buffered more than the cap")
            start = end
        case .failure(let error):
            precondition((400..<500).contains(error.status.rawValue), "refusal that is not 4xx")
            return .failure(error)
        case .complete(let head, let consumed):
            precondition(consumed > 0 && consumed <= chunk.count, "consumed out of range")
            let headEnd = start + consumed
            precondition(headEnd >= 4 && headEnd <= maxHeadSize, "head end out of range")
            precondition(Array(bytes[(headEnd - 4)..<headEnd]) == [13, 10, 13, 10], "head does not end in CRLFCRLF")
            switch UpgradeRequest.validate(head) {
            case .success(let request):
                precondition(request.acceptValue.utf8.count == 28, "accept value is not 28 characters")
            case .failure(let error):
                precondition((400..<500).contains(error.status.rawValue), "refusal that is not 4xx")
                precondition(!error.reason.isEmpty && !error.reason.utf8.contains(10), "reason not one line")
            }
            return .complete(head, end: headEnd)
        }
    }
    return .needMore
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let split = Int(data[0]) % size
    let bytes = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let cut = min(split, bytes.count)
    let whole = run(bytes, cuts: [])
    let pieces = run(bytes, cuts: [cut])
    precondition(whole == pieces, "one read and two reads split at \(cut) disagree: \(whole) vs \(pieces)")
    return 0
}

@main
struct FuzzMain {
    static func main() { runFuzzer(fuzz) }
}
