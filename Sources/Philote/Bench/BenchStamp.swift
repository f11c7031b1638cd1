/// What `philote bench` writes at the start of every message's data, in the format of the project's load
/// harness (`../shared/bench/wsload.c`) so the two read each other's messages: `T<send ns><R|W>-S<sequence>-P<publisher>-`
/// then filler up to the data size. `R` marks a message sent inside the measured window, `W` one sent during
/// warm-up. The sender and the receiver are the same process, so the CLOCK_MONOTONIC send time needs no sync.
public struct BenchStamp: Equatable, Sendable {
    public var sentAt: UInt64
    public var measured: Bool
    public var sequence: UInt64
    public var publisher: UInt64

    public init(sentAt: UInt64, measured: Bool, sequence: UInt64, publisher: UInt64) {
        self.sentAt = sentAt
        self.measured = measured
        self.sequence = sequence
        self.publisher = publisher
    }

    /// The stamp in a delivered message's JSON text: found after `"data":"` (the server may add keys before
    /// it, as Philote adds `issuer`); nil when the message carries none (an error reply, another client's).
    public static func find(in message: UnsafeRawBufferPointer, dataSize: Int) -> BenchStamp? {
        // Philote puts data last and a bench stamp needs no escapes: `"data":"<dataSize characters>"}` and a
        // newline end the text, so the stamp is found without a scan; anything else takes the scan below.
        let count = message.count
        if let base = message.baseAddress, dataSize > 0 {
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            func at(ending: Int) -> BenchStamp? {
                guard count >= dataSize + ending + 8 else { return nil }
                let start = count - ending - dataSize
                guard bytes[start - 1] == 0x22 && bytes[start - 2] == 0x3A && bytes[start - 3] == 0x22
                    && bytes[start - 4] == 0x61 && bytes[start - 7] == 0x64 && bytes[start - 8] == 0x22
                else { return nil }
                return parse(bytes + start, count: count - start)
            }
            if let stamp = at(ending: 3) ?? at(ending: 2) { return stamp }
        }
        return find(in: message)
    }

    public static func find(in message: UnsafeRawBufferPointer) -> BenchStamp? {
        let marker: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
            0x22, 0x64, 0x61, 0x74, 0x61, 0x22, 0x3A, 0x22
        )  // "data":"
        let count = message.count
        guard count >= 12, let base = message.baseAddress else { return nil }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        var start = 0
        // The data key comes last in Philote's messages: search from the end would also work, but a scan for
        // the quote is as fast on these short texts and makes no assumption about key order.
        while start + 9 <= count {
            if bytes[start] == marker.0 && bytes[start + 1] == marker.1 && bytes[start + 2] == marker.2
                && bytes[start + 3] == marker.3 && bytes[start + 4] == marker.4 && bytes[start + 5] == marker.5
                && bytes[start + 6] == marker.6 && bytes[start + 7] == marker.7
            {
                return parse(bytes + start + 8, count: count - start - 8)
            }
            start += 1
        }
        return nil
    }

    /// Parses `T<ns><R|W>-S<seq>-P<pub>-` at `bytes`.
    static func parse(_ bytes: UnsafePointer<UInt8>, count: Int) -> BenchStamp? {
        var position = 0
        func number() -> UInt64? {
            var value: UInt64 = 0
            let first = position
            while position < count, bytes[position] >= 0x30, bytes[position] <= 0x39, position - first < 19 {
                value = value * 10 + UInt64(bytes[position] - 0x30)
                position += 1
            }
            return position > first ? value : nil
        }
        func expect(_ byte: UInt8) -> Bool {
            guard position < count, bytes[position] == byte else { return false }
            position += 1
            return true
        }
        guard expect(0x54), let sentAt = number(), position < count else { return nil }  // T
        let flag = bytes[position]
        guard flag == 0x52 || flag == 0x57 else { return nil }  // R or W
        position += 1
        guard expect(0x2D), expect(0x53), let sequence = number(), expect(0x2D), expect(0x50),  // -S ... -P
            let publisher = number(), expect(0x2D)
        else { return nil }
        return BenchStamp(sentAt: sentAt, measured: flag == 0x52, sequence: sequence, publisher: publisher)
    }
}
