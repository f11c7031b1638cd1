/// What one token allows, shared by every connection on a loop that presents the same token (so a
/// thousand tabs with one token hold one copy of its lists).
public final class Permissions {
    /// Channels to receive, without duplicates, in token order.
    public let read: [[UInt8]]
    public let write: Set<[UInt8]>
    public let api: Bool
    /// The token it was made from: its key in the loop's cache (one copy per token, not per connection).
    let token: String
    /// Connections on this loop using it; the loop's cache drops it at zero.
    var users = 0

    public init(_ claims: Claims, token: String) {
        self.token = token
        var seen = Set<[UInt8]>()
        read = claims.read.map { Array($0.utf8) }.filter { seen.insert($0).inserted }
        write = Set(claims.write.map { Array($0.utf8) })
        api = claims.api
    }

    public func mayWrite(_ channel: [UInt8]) -> Bool { write.contains(channel) }
}
