import Philote

extension Result where Success == [UInt8], Failure == Inflater.Failure {
    /// For a failed check's message: the size, not the bytes, which may be 64 KiB.
    var summary: String {
        switch self {
        case .success(let bytes): "\(bytes.count) bytes"
        case .failure(let failure): "\(failure)"
        }
    }
}
