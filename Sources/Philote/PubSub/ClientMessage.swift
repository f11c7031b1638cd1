/// A client's publish: `{"channel": "...", "data": "..."}`, strings decoded to UTF-8 bytes.
public struct ClientMessage: Equatable, Sendable {
    public var channel: [UInt8]
    public var data: [UInt8]

    public init(channel: [UInt8], data: [UInt8]) {
        self.channel = channel
        self.data = data
    }
}
