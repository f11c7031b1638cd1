@testable import Philote

/// The positioned message built the plain way, as the reference the frame written in place
/// (`ServerMessageEncoder.positionedFrame`) is checked against.
extension ServerMessageEncoder {
    /// The message as a reader that asked for positions gets it: `json` (as encoded above) with the epoch and
    /// offset after the other keys.
    static func positioned(_ json: [UInt8], at position: StreamPosition) -> [UInt8] {
        var out = json
        // `}` and `\n` end every encoded message.
        out.removeLast(2)
        out.append(contentsOf: #","epoch":""#.utf8)
        out.append(contentsOf: position.epoch.text.utf8)
        out.append(contentsOf: #"","offset":"#.utf8)
        out.append(contentsOf: String(position.offset).utf8)
        out.append(contentsOf: "}\n".utf8)
        return out
    }
}
