import Philote

/// Writes frames as a client sends them (RFC 6455 section 5.2: masked, shortest length form), with RSV1
/// where the fuzz script asks for a compressed message. Written here rather than taken from the client's
/// encoder so that the oracle does not share code with what it checks.
enum MaskedFrameWriter {
    static func frame(_ opcode: Opcode, fin: Bool, rsv1: Bool, payload: ArraySlice<UInt8>, mask: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? FrameHeader.rsv1 : 0) | opcode.rawValue]
        let count = payload.count
        if count < 126 {
            out.append(0x80 | UInt8(count))
        } else if count <= 0xFFFF {
            out += [0x80 | 126, UInt8(count >> 8), UInt8(count & 0xFF)]
        } else {
            out.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((count >> shift) & 0xFF)) }
        }
        out += mask
        for (offset, byte) in payload.enumerated() { out.append(byte ^ mask[offset & 3]) }
        return out
    }
}
