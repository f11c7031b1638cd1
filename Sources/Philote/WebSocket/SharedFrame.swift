/// An immutable, reference-counted run of bytes ready for the wire (usually one encoded frame). One
/// allocation holds both the object and its bytes; the bytes never move, so queued writes can point at
/// them from `iovec`s for as long as the queue holds a reference.
public final class SharedFrame: ManagedBuffer<SharedFrame.Header, UInt8> {
    public struct Header {
        var length: Int
        /// A data message (text or binary): `philote_messages_sent_total` counts it once written. Control frames
        /// and HTTP answers are not.
        var isMessage: Bool
    }

    public static func make(length: Int, isMessage: Bool = false) -> SharedFrame {
        let buffer = SharedFrame.create(minimumCapacity: max(length, 1)) { _ in
            Header(length: length, isMessage: isMessage)
        }
        return unsafeDowncast(buffer, to: SharedFrame.self)
    }

    public static func make(copying bytes: UnsafeRawBufferPointer, isMessage: Bool = false) -> SharedFrame {
        let frame = make(length: bytes.count, isMessage: isMessage)
        if let source = bytes.baseAddress, !bytes.isEmpty {
            frame.bytes.copyMemory(from: source, byteCount: bytes.count)
        }
        return frame
    }

    public static func make(bytes: [UInt8]) -> SharedFrame {
        bytes.withUnsafeBytes { make(copying: $0) }
    }

    public var length: Int { header.length }
    public var isMessage: Bool { header.isMessage }

    /// Stable for the object's lifetime: elements of a ManagedBuffer are stored inline and never moved.
    public var bytes: UnsafeMutableRawPointer {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) }
    }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: header.length) }
}
