/// An immutable, reference-counted run of bytes ready for the wire (usually one encoded frame). One
/// allocation holds both the object and its bytes; the bytes never move, so queued writes can point at
/// them from `iovec`s for as long as the queue holds a reference.
public final class SharedFrame: ManagedBuffer<Int, UInt8> {
    public static func make(length: Int) -> SharedFrame {
        let buffer = SharedFrame.create(minimumCapacity: max(length, 1)) { _ in length }
        return unsafeDowncast(buffer, to: SharedFrame.self)
    }

    public static func make(copying bytes: UnsafeRawBufferPointer) -> SharedFrame {
        let frame = make(length: bytes.count)
        if let source = bytes.baseAddress, !bytes.isEmpty {
            frame.bytes.copyMemory(from: source, byteCount: bytes.count)
        }
        return frame
    }

    public static func make(bytes: [UInt8]) -> SharedFrame {
        bytes.withUnsafeBytes { make(copying: $0) }
    }

    public var length: Int { header }

    /// Stable for the object's lifetime: elements of a ManagedBuffer are stored inline and never moved.
    public var bytes: UnsafeMutableRawPointer {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) }
    }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: header) }
}
