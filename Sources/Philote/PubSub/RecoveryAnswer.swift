/// The one message that answers a `since` (README "History and recovery"):
/// `{"channel":"<name>","recovery":"<ok|new|failed>"[,"reason":"<why>"][,"epoch":"<epoch>"],"offset":<n>}` + `\n`.
enum RecoveryAnswer {
    /// `position` nil: the channel has no record (offset 0, no epoch); with `withPosition` false (history off),
    /// neither is said.
    static func encode(
        channel: [UInt8], outcome: String, reason: String?, position: StreamPosition?, withPosition: Bool = true
    ) -> [UInt8] {
        var out: [UInt8] = Array(#"{"channel":""#.utf8)
        channel.withUnsafeBytes { JSONStringEncoder.append($0, to: &out) }
        out.append(contentsOf: #"","recovery":""#.utf8)
        out.append(contentsOf: outcome.utf8)
        out.append(0x22)
        if let reason {
            out.append(contentsOf: #","reason":""#.utf8)
            out.append(contentsOf: reason.utf8)
            out.append(0x22)
        }
        if withPosition {
            if let position {
                out.append(contentsOf: #","epoch":""#.utf8)
                out.append(contentsOf: position.epoch.text.utf8)
                out.append(0x22)
            }
            out.append(contentsOf: #","offset":"#.utf8)
            out.append(contentsOf: String(position?.offset ?? 0).utf8)
        }
        out.append(contentsOf: "}\n".utf8)
        return out
    }
}
