/// The decoded fixed part of a frame (RFC 6455 section 5.2).
public struct FrameHeader: Equatable, Sendable {
    public static let rsv1: UInt8 = 0x40
    public static let rsv2: UInt8 = 0x20
    public static let rsv3: UInt8 = 0x10

    public var fin: Bool
    /// The RSV bits as they sit in the first byte (mask with `rsv1`/`rsv2`/`rsv3`).
    public var rsv: UInt8
    public var opcode: Opcode
    /// The masking key in wire order, loaded as a little-endian word; nil for an unmasked frame.
    public var maskKey: UInt32?
    public var payloadLength: Int
    public var headerLength: Int

    public var frameLength: Int { headerLength + payloadLength }
}
