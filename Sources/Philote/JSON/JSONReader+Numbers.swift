/// Numbers: RFC 8259's grammar (no leading zeros, no `+`, no bare `.`), and their value as a `Double`.
extension JSONReader {
    /// The number at the cursor. Fails for a number that is no finite `Double` (`1e999`).
    public mutating func readNumber() throws(Failure) -> JSONNumber {
        try startValue(.number)
        let (start, isInteger) = try scanNumber()
        return JSONNumber(value: try value(ofNumberFrom: start, isInteger: isInteger), isInteger: isInteger)
    }

    /// Validates the number at the cursor and moves past it; its range is checked only under rules that say so.
    mutating func skipNumber() throws(Failure) {
        let (start, isInteger) = try scanNumber()
        if rules.skippedNumbersMustBeFinite { _ = try value(ofNumberFrom: start, isInteger: isInteger) }
    }

    /// Moves past the number that starts at the cursor (on its `-` or first digit); returns where it started
    /// and whether it had neither fraction nor exponent.
    private mutating func scanNumber() throws(Failure) -> (start: Int, isInteger: Bool) {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw failure(.invalidNumber) }
        // A leading zero stands alone: what follows `0` in `01` is not part of the number.
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            skipDigits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure(.invalidNumber) }
            skipDigits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure(.invalidNumber) }
            skipDigits()
        }
        return (start, isInteger)
    }

    /// The value of the number from `start` to the cursor.
    private func value(ofNumberFrom start: Int, isInteger: Bool) throws(Failure) -> Double {
        let negative = bytes[start] == UInt8(ascii: "-")
        let digitsStart = negative ? start + 1 : start
        if isInteger && index - digitsStart <= 15 {
            // Below 2^53, so exactly what Double(text) would give, without the string and strtod: these are the
            // claims' times.
            var magnitude: Int64 = 0
            for digit in bytes[digitsStart..<index] {
                magnitude = magnitude * 10 + Int64(digit - 0x30)
            }
            let value = Double(magnitude)
            return negative ? -value : value
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw failure(.numberOutOfRange) }
        return value
    }

    @inline(__always)
    private mutating func skipDigits() {
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
}
