@testable import Philote

/// The `since` syntax of README "History and recovery", read the plainest way, for the fuzz target to compare
/// RecoveryRequest with: an independent splitter, form decoder and value reader, and the percent-encoder a browser
/// uses (`encodeURIComponent`).
enum ReferenceSince {
    static let badFormat = "expected EPOCH:OFFSET:CHANNEL or ::CHANNEL"
    static let badPair = "an epoch needs an offset, and an offset an epoch"
    static let badEpoch = "the epoch must be 1 to 32 letters, digits, - or _"
    static let badOffset = "the offset must be a decimal number below 2^63"
    static let badEncoding = "not percent-encoded UTF-8"
    static let givenTwice = "channel given twice"
    static let reasons: Set<String> = [badFormat, badPair, badEpoch, badOffset, badEncoding, givenTwice]

    static func isEpochCharacter(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D
            || byte == 0x5F
    }

    /// One decoded value.
    static func parse(_ value: [UInt8]) -> Result<RecoveryRequest, RecoveryRequest.Invalid> {
        let colon = UInt8(ascii: ":")
        var fields: [[UInt8]] = [[]]
        var rest = value[...]
        while fields.count < 3, let byte = rest.first {
            rest = rest.dropFirst()
            if byte == colon { fields.append([]) } else { fields[fields.count - 1].append(byte) }
        }
        guard fields.count == 3 else { return .failure(RecoveryRequest.Invalid(reason: badFormat, channel: nil)) }
        let (epoch, offset, channel) = (fields[0], fields[1], fields[2] + rest)
        func refuse(_ reason: String) -> Result<RecoveryRequest, RecoveryRequest.Invalid> {
            .failure(RecoveryRequest.Invalid(reason: reason, channel: channel))
        }
        if epoch.isEmpty && offset.isEmpty { return .success(RecoveryRequest(channel: channel, position: nil)) }
        if epoch.isEmpty || offset.isEmpty { return refuse(badPair) }
        if epoch.count > 32 || !epoch.allSatisfy(isEpochCharacter) { return refuse(badEpoch) }
        // Digits only; leading zeros allowed (README: "a decimal number below 2^63"), then at most 19 significant
        // digits (2^63 has 19), compared as text with 2^63 - 1 once the lengths are made equal.
        let limit = Array("9223372036854775807".utf8)
        guard offset.allSatisfy({ (0x30...0x39).contains($0) }) else { return refuse(badOffset) }
        let significant = Array(offset.drop { $0 == 0x30 })
        guard significant.count <= 19 else { return refuse(badOffset) }
        let padded = [UInt8](repeating: 0x30, count: 19 - significant.count) + significant
        if limit.lexicographicallyPrecedes(padded) { return refuse(badOffset) }
        var number: UInt64 = 0
        for digit in significant { number = number * 10 + UInt64(digit - 0x30) }
        let position = StreamPosition(epoch: Epoch(String(decoding: epoch, as: UTF8.self)), offset: number)
        return .success(RecoveryRequest(channel: channel, position: position))
    }

    /// The raw value of every `since` parameter of a query, in order (nil: a `since` without `=`).
    static func sinceValues(query: [UInt8]) -> [[UInt8]?] {
        var values: [[UInt8]?] = []
        for pair in query.split(separator: UInt8(ascii: "&")) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let name = pair[..<(equals ?? pair.endIndex)]
            guard formDecode(Array(name)) == Array("since".utf8) else { continue }
            values.append(equals.map { Array(pair[($0 + 1)...]) })
        }
        return values
    }

    /// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XY` a byte; nil for a `%` not followed by two
    /// hexadecimal digits, or for bytes that are not UTF-8.
    static func formDecode(_ bytes: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "+"):
                out.append(0x20)
                index += 1
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) else {
                    return nil
                }
                out.append(high << 4 | low)
                index += 3
            default:
                out.append(bytes[index])
                index += 1
            }
        }
        return String(validating: out, as: UTF8.self) == nil ? nil : out
    }

    /// What `encodeURIComponent` leaves alone stays; every other byte becomes `%XY`.
    static func percentEncode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            if isEpochCharacter(byte) || Array("!'()*.~".utf8).contains(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}
