/// One `since` query parameter of an upgrade: a channel the client wants positions for, and the position it has
/// (nil: none yet). README "History and recovery" is the syntax: `<epoch>:<offset>:<channel>`, or `::<channel>`.
public struct RecoveryRequest: Equatable, Sendable {
    public let channel: [UInt8]
    public let position: StreamPosition?

    public init(channel: [UInt8], position: StreamPosition?) {
        self.channel = channel
        self.position = position
    }

    /// A `since` value that cannot be used: why, and the channel when the value got as far as naming one.
    public struct Invalid: Error, Equatable, Sendable {
        public let reason: String
        public let channel: [UInt8]?
    }

    /// Every `since` parameter of a request target, in order, each read or refused; a channel given a second
    /// time is refused. Empty when there is none.
    public static func all(inTarget target: String) -> [Result<RecoveryRequest, Invalid>] {
        guard let query = target.utf8.split(separator: UInt8(ascii: "?"), maxSplits: 1).dropFirst().first else {
            return []
        }
        var results: [Result<RecoveryRequest, Invalid>] = []
        var seen: Set<[UInt8]> = []
        for pair in query.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard TokenLocator.percentDecode(parts[0]) == "since" else { continue }
            // A bare `since` is an empty value, refused as one.
            guard let value = parts.count == 2 ? TokenLocator.percentDecode(parts[1]) : "" else {
                results.append(.failure(Invalid(reason: "not percent-encoded UTF-8", channel: nil)))
                continue
            }
            let parsed = parse(value)
            if case .success(let request) = parsed, !seen.insert(request.channel).inserted {
                results.append(.failure(Invalid(reason: "channel given twice", channel: request.channel)))
            } else {
                results.append(parsed)
            }
        }
        return results
    }

    /// One decoded `since` value.
    public static func parse(_ value: String) -> Result<RecoveryRequest, Invalid> {
        let bytes = Array(value.utf8)
        guard let first = bytes.firstIndex(of: UInt8(ascii: ":")),
            let second = bytes[(first + 1)...].firstIndex(of: UInt8(ascii: ":"))
        else {
            return .failure(Invalid(reason: "expected EPOCH:OFFSET:CHANNEL or ::CHANNEL", channel: nil))
        }
        let epoch = bytes[..<first]
        let offset = bytes[(first + 1)..<second]
        let channel = Array(bytes[(second + 1)...])
        func refuse(_ reason: String) -> Result<RecoveryRequest, Invalid> {
            .failure(Invalid(reason: reason, channel: channel))
        }
        if epoch.isEmpty && offset.isEmpty { return .success(RecoveryRequest(channel: channel, position: nil)) }
        guard !epoch.isEmpty, !offset.isEmpty else { return refuse("an epoch needs an offset, and an offset an epoch") }
        guard epoch.count <= 32, epoch.allSatisfy(isEpochCharacter) else {
            return refuse("the epoch must be 1 to 32 letters, digits, - or _")
        }
        guard let number = decimal(offset) else { return refuse("the offset must be a decimal number below 2^63") }
        let position = StreamPosition(epoch: Epoch(String(decoding: epoch, as: UTF8.self)), offset: number)
        return .success(RecoveryRequest(channel: channel, position: position))
    }

    private static func isEpochCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    /// Decimal digits only (no sign, no spaces); leading zeros allowed; below 2^63.
    static func decimal(_ text: some Collection<UInt8>) -> UInt64? {
        guard !text.isEmpty else { return nil }
        let digits = text.drop { $0 == UInt8(ascii: "0") }
        guard digits.count <= 19 else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + UInt64(digit - UInt8(ascii: "0"))
        }
        return value <= UInt64(Int64.max) ? value : nil
    }
}
