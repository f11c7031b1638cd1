import Testing

@testable import Philote

private typealias Parsed = Result<RecoveryRequest, RecoveryRequest.Invalid>

/// The refusals' reasons, as README "History and recovery" describes them (each follows `invalid since: `).
private let badFormat = "expected EPOCH:OFFSET:CHANNEL or ::CHANNEL"
private let badPair = "an epoch needs an offset, and an offset an epoch"
private let badEpoch = "the epoch must be 1 to 32 letters, digits, - or _"
private let badOffset = "the offset must be a decimal number below 2^63"
private let badEncoding = "not percent-encoded UTF-8"
private let givenTwice = "channel given twice"

private func accepted(_ channel: String, _ epoch: String? = nil, _ offset: UInt64 = 0) -> Parsed {
    accepted(Array(channel.utf8), epoch, offset)
}

private func accepted(_ channel: [UInt8], _ epoch: String? = nil, _ offset: UInt64 = 0) -> Parsed {
    .success(
        RecoveryRequest(channel: channel, position: epoch.map { StreamPosition(epoch: Epoch($0), offset: offset) }))
}

private func refused(_ reason: String, _ channel: String? = nil) -> Parsed {
    .failure(RecoveryRequest.Invalid(reason: reason, channel: channel.map { Array($0.utf8) }))
}

@Suite struct RecoveryRequestTests {
    // MARK: parse

    @Test func validForms() {
        #expect(RecoveryRequest.parse("3f9a0c21b7d4:57:room-1") == accepted("room-1", "3f9a0c21b7d4", 57))
        #expect(RecoveryRequest.parse("E:5:room") == accepted("room", "E", 5))
        #expect(RecoveryRequest.parse("::room") == accepted("room"))
        #expect(RecoveryRequest.parse("E:0:room") == accepted("room", "E", 0))
        // The channel is everything after the second colon.
        #expect(RecoveryRequest.parse("E:5:a:b::c:") == accepted("a:b::c:", "E", 5))
        #expect(RecoveryRequest.parse(":::") == accepted(":"))
        // An empty channel is a channel like any other here.
        #expect(RecoveryRequest.parse("::") == accepted(""))
        #expect(RecoveryRequest.parse("E:1:") == accepted("", "E", 1))
        #expect(RecoveryRequest.parse("::é 😀&=?%") == accepted("é 😀&=?%"))
        // Every epoch character, and 32 of them.
        let epoch = "azAZ09-_" + String(repeating: "x", count: 24)
        #expect(epoch.count == 32)
        #expect(RecoveryRequest.parse("\(epoch):1:c") == accepted("c", epoch, 1))
        #expect(RecoveryRequest.parse("a:1:c") == accepted("c", "a", 1))
    }

    @Test func offsets() {
        #expect(RecoveryRequest.parse("E:9223372036854775807:c") == accepted("c", "E", UInt64(Int64.max)))
        #expect(RecoveryRequest.parse("E:9223372036854775806:c") == accepted("c", "E", UInt64(Int64.max) - 1))
        #expect(RecoveryRequest.parse("E:9223372036854775808:c") == refused(badOffset, "c"))
        #expect(RecoveryRequest.parse("E:9999999999999999999:c") == refused(badOffset, "c"))
        // 20 digits and more.
        #expect(RecoveryRequest.parse("E:18446744073709551615:c") == refused(badOffset, "c"))
        #expect(RecoveryRequest.parse("E:18446744073709551616:c") == refused(badOffset, "c"))
        #expect(RecoveryRequest.parse("E:99999999999999999999:c") == refused(badOffset, "c"))
        #expect(RecoveryRequest.parse("E:" + String(repeating: "9", count: 40) + ":c") == refused(badOffset, "c"))
        // Leading zeros are a decimal number too.
        #expect(RecoveryRequest.parse("E:007:c") == accepted("c", "E", 7))
        #expect(RecoveryRequest.parse("E:0000000000000000007:c") == accepted("c", "E", 7))
        #expect(RecoveryRequest.parse("E:00:c") == accepted("c", "E", 0))
        for offset in ["-1", "+1", "-0", "1.0", "1e3", " 1", "1 ", "0x1", "1_000", "١", "１", "∞"] {
            #expect(RecoveryRequest.parse("E:\(offset):c") == refused(badOffset, "c"), "offset \(offset)")
        }
    }

    @Test func refusals() {
        for value in ["", "room", ":", "E:5", ":room", "E5room"] {
            #expect(RecoveryRequest.parse(value) == refused(badFormat), "value \(value)")
        }
        #expect(RecoveryRequest.parse("E::room") == refused(badPair, "room"))
        #expect(RecoveryRequest.parse(":5:room") == refused(badPair, "room"))
        #expect(RecoveryRequest.parse(":0:") == refused(badPair, ""))
        let tooLong = String(repeating: "a", count: 33)
        for epoch in [tooLong, "ab.c", "a b", "é", "a%41", "a+b", "a/b", "a\u{0}b", "ÿ"] {
            #expect(RecoveryRequest.parse("\(epoch):1:room") == refused(badEpoch, "room"), "epoch \(epoch)")
        }
        // The epoch is checked before the offset.
        #expect(RecoveryRequest.parse("a.b:x:room") == refused(badEpoch, "room"))
    }

    // MARK: all(inTarget:)

    @Test func noSince() {
        #expect(RecoveryRequest.all(inTarget: "/").isEmpty)
        #expect(RecoveryRequest.all(inTarget: "/?").isEmpty)
        #expect(RecoveryRequest.all(inTarget: "/?auth=x.y.z").isEmpty)
        #expect(RecoveryRequest.all(inTarget: "/?auth=since%3D%3A%3Aa").isEmpty)
        // Other names, however close, are ignored.
        for name in ["Since", "SINCE", "sincee", "since_", "xsince", "since%20", "since+", "sinc", "%73inc"] {
            #expect(RecoveryRequest.all(inTarget: "/?\(name)=::room").isEmpty, "name \(name)")
        }
    }

    @Test func percentEncodedValuesInOrder() {
        let target = "/?auth=x&since=3f9a0c21b7d4%3A57%3Aroom-1&channel=z&since=%3A%3Aother&since=E:1:lit:eral"
        #expect(
            RecoveryRequest.all(inTarget: target) == [
                accepted("room-1", "3f9a0c21b7d4", 57), accepted("other"), accepted("lit:eral", "E", 1),
            ])
        // encodeURIComponent's output for a channel with spaces, ampersands, equals signs, question marks, non-ASCII.
        #expect(
            RecoveryRequest.all(inTarget: "/?since=%3A%3Aa%20b%26c%3Dd%3Fe%C3%A9%F0%9F%98%80")
                == [accepted("a b&c=d?eé😀")])
        // A name may be percent-encoded too; `+` is a space (form encoding); a `?` after the first is data.
        #expect(RecoveryRequest.all(inTarget: "/?%73ince=::a") == [accepted("a")])
        #expect(RecoveryRequest.all(inTarget: "/?since=::a+b") == [accepted("a b")])
        #expect(RecoveryRequest.all(inTarget: "/?since=::a%2Bb") == [accepted("a+b")])
        #expect(RecoveryRequest.all(inTarget: "/?since=::a?b") == [accepted("a?b")])
        #expect(RecoveryRequest.all(inTarget: "/?since=::a=b") == [accepted("a=b")])
        // Empty pairs are nothing.
        #expect(RecoveryRequest.all(inTarget: "/?&&since=::a&&") == [accepted("a")])
        #expect(RecoveryRequest.all(inTarget: "/path/x?since=%3A%3A") == [accepted("")])
    }

    @Test func offsetLimitsThroughTheTarget() {
        #expect(
            RecoveryRequest.all(inTarget: "/?since=E%3A9223372036854775807%3Ac") == [
                accepted("c", "E", UInt64(Int64.max))
            ])
        #expect(RecoveryRequest.all(inTarget: "/?since=E%3A9223372036854775808%3Ac") == [refused(badOffset, "c")])
    }

    /// Every refusal of the README, each with its reason (and its channel when the value got as far as one); a
    /// refusal does not stop the parameters after it.
    @Test func everyRefusalWithItsReason() {
        let target =
            "/?since=room&since=E%3A%3Aa&since=%3A5%3Ab&since=E%3A-1%3Ac&since=E%3A9223372036854775808%3Ad"
            + "&since=a.b%3A1%3Ae&since=\(String(repeating: "e", count: 33))%3A1%3Af&since=%3A%3Ag&since=%3A%3Ag"
        #expect(
            RecoveryRequest.all(inTarget: target) == [
                refused(badFormat), refused(badPair, "a"), refused(badPair, "b"), refused(badOffset, "c"),
                refused(badOffset, "d"), refused(badEpoch, "e"), refused(badEpoch, "f"), accepted("g"),
                refused(givenTwice, "g"),
            ])
    }

    @Test func duplicates() {
        #expect(
            RecoveryRequest.all(inTarget: "/?since=::a&since=E:1:a&since=::b&since=::a") == [
                accepted("a"), refused(givenTwice, "a"), accepted("b"), refused(givenTwice, "a"),
            ])
        // The same channel encoded two ways is the same channel.
        #expect(
            RecoveryRequest.all(inTarget: "/?since=::a%20b&since=::a+b") == [
                accepted("a b"), refused(givenTwice, "a b"),
            ])
        // A refused value does not take its channel: a later valid one for it is read.
        #expect(
            RecoveryRequest.all(inTarget: "/?since=E::a&since=::a&since=::a") == [
                refused(badPair, "a"), accepted("a"), refused(givenTwice, "a"),
            ])
        // Channels differ by bytes: no folding of case.
        #expect(RecoveryRequest.all(inTarget: "/?since=::a&since=::A") == [accepted("a"), accepted("A")])
    }

    /// Percent escapes that are not escapes, and escapes of what is not UTF-8.
    @Test func badPercentEncoding() {
        for value in [
            "%", "%3", "%3A%3Aro%ZZom", "%3A%3A%G0", "%3A%3Aa%", "%3A%3Aa%2", "%3A%3A%C3%28", "%3A%3A%FF",
            "%3A%3A%ED%A0%80", "%3A%3A%C0%AF",
        ] {
            #expect(RecoveryRequest.all(inTarget: "/?since=\(value)") == [refused(badEncoding)], "value \(value)")
        }
        // A name that does not decode is not `since`.
        #expect(RecoveryRequest.all(inTarget: "/?since%=::a&%ZZ=::b").isEmpty)
        // Lower- and upper-case hexadecimal digits alike.
        #expect(RecoveryRequest.all(inTarget: "/?since=%3a%3a%c3%a9") == [accepted("é")])
    }

    /// `since` with an empty value, or with no `=` at all (which QueryParameters reads as an empty value too): a
    /// value that is not `EPOCH:OFFSET:CHANNEL`, not a value that failed to decode.
    @Test func sinceWithoutAValue() {
        #expect(RecoveryRequest.all(inTarget: "/?since=") == [refused(badFormat)])
        #expect(RecoveryRequest.all(inTarget: "/?since=&since=::a") == [refused(badFormat), accepted("a")])
        #expect(RecoveryRequest.all(inTarget: "/?since&since=::a") == [refused(badFormat), accepted("a")])
    }

    // MARK: What is sent

    @Test func recoveryAnswers() {
        let position = StreamPosition(epoch: Epoch("3f9a0c21b7d4"), offset: 57)
        func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
        // README's three examples.
        #expect(
            text(RecoveryAnswer.encode(channel: Array("room-1".utf8), outcome: "ok", reason: nil, position: position))
                == #"{"channel":"room-1","recovery":"ok","epoch":"3f9a0c21b7d4","offset":57}"# + "\n")
        #expect(
            text(RecoveryAnswer.encode(channel: Array("room-1".utf8), outcome: "new", reason: nil, position: position))
                == #"{"channel":"room-1","recovery":"new","epoch":"3f9a0c21b7d4","offset":57}"# + "\n")
        #expect(
            text(
                RecoveryAnswer.encode(
                    channel: Array("room-1".utf8), outcome: "failed", reason: "offset too old", position: position))
                == #"{"channel":"room-1","recovery":"failed","reason":"offset too old","epoch":"3f9a0c21b7d4","offset":57}"#
                + "\n")
        // A channel without history: offset 0, no epoch.
        #expect(
            text(RecoveryAnswer.encode(channel: Array("c".utf8), outcome: "new", reason: nil, position: nil))
                == #"{"channel":"c","recovery":"new","offset":0}"# + "\n")
        #expect(
            text(
                RecoveryAnswer.encode(
                    channel: Array("c".utf8), outcome: "failed", reason: "epoch changed", position: nil))
                == #"{"channel":"c","recovery":"failed","reason":"epoch changed","offset":0}"# + "\n")
        // History off: neither.
        #expect(
            text(
                RecoveryAnswer.encode(
                    channel: Array("c".utf8), outcome: "failed", reason: "history off", position: position,
                    withPosition: false))
                == #"{"channel":"c","recovery":"failed","reason":"history off"}"# + "\n")
        // The channel is escaped like every string the server writes; the largest offset in full.
        let big = StreamPosition(epoch: Epoch("e"), offset: UInt64(Int64.max))
        #expect(
            text(
                RecoveryAnswer.encode(
                    channel: Array("a\"b\\<\n\u{2028}".utf8), outcome: "ok", reason: nil, position: big))
                == #"{"channel":"a\"b\\\u003c\n\u2028","recovery":"ok","epoch":"e","offset":9223372036854775807}"#
                + "\n")
        #expect(
            text(RecoveryAnswer.encode(channel: [], outcome: "new", reason: nil, position: nil))
                == #"{"channel":"","recovery":"new","offset":0}"# + "\n")
    }

    @Test func positionedMessages() {
        func positioned(_ channel: String, _ data: String, _ position: StreamPosition) -> String {
            let json = Array(channel.utf8).withUnsafeBytes { channel in
                Array(data.utf8).withUnsafeBytes { data in
                    ServerMessageEncoder.encode(
                        issuer: "0f8fad5b-d9cb-469f-a165-70867728950e", channel: channel, data: data)
                }
            }
            return String(decoding: ServerMessageEncoder.positioned(json, at: position), as: UTF8.self)
        }
        let issuer = #"{"issuer":"0f8fad5b-d9cb-469f-a165-70867728950e""#
        // README's example.
        #expect(
            positioned("room-1", "hello", StreamPosition(epoch: Epoch("3f9a0c21b7d4"), offset: 58))
                == issuer + #","channel":"room-1","data":"hello","epoch":"3f9a0c21b7d4","offset":58}"# + "\n")
        // Empty keys stay omitted; escapes stay; offsets 1 and 2^63-1.
        #expect(
            positioned("", "x", StreamPosition(epoch: Epoch("000000000000"), offset: 1))
                == issuer + #","data":"x","epoch":"000000000000","offset":1}"# + "\n")
        #expect(
            positioned("c", "", StreamPosition(epoch: Epoch("abcdefabcdef"), offset: UInt64(Int64.max)))
                == issuer + #","channel":"c","epoch":"abcdefabcdef","offset":9223372036854775807}"# + "\n")
        #expect(
            positioned("<c>", "}\n", StreamPosition(epoch: Epoch("e"), offset: 0))
                == issuer + #","channel":"\u003cc\u003e","data":"}\n","epoch":"e","offset":0}"# + "\n")
    }

    // MARK: Delivery variants

    @Test func variantNumbers() {
        #expect(Delivery.variant(windowBits: 0, positioned: false) == 0)
        #expect(Delivery.variant(windowBits: 15, positioned: false) == 15)
        #expect(Delivery.variant(windowBits: 0, positioned: true) == 16)
        #expect(Delivery.variant(windowBits: 9, positioned: true) == 25)
        #expect(Delivery.variant(windowBits: 15, positioned: true) == 31)
    }

    /// Which frame each kind of reader gets, and what it falls back to when its variant was not made.
    @Test func framesForVariants() {
        func frame(_ name: String) -> SharedFrame { SharedFrame.make(bytes: Array(name.utf8)) }
        func taken(_ delivery: Delivery, _ variant: UInt8) -> SharedFrame {
            delivery.frame(forVariant: variant).takeUnretainedValue()
        }
        let everyVariant: [UInt8] = Array(0...40) + [127, 255]

        // Plain only: every reader gets the plain frame, positioned ones too (a channel without history).
        let plain = frame("plain")
        let only = Delivery(plain: plain)
        #expect(only.positioned == nil)
        for variant in everyVariant { #expect(taken(only, variant) === plain, "variant \(variant)") }

        // Compressed for window 15 only: window 9 falls back to the plain frame; positioned readers get plain.
        var compressed = [SharedFrame?](repeating: nil, count: 16)
        let c15 = frame("c15")
        compressed[15] = c15
        let withCompressed = Delivery(plain: plain, compressed: compressed)
        #expect(withCompressed.positioned == nil)
        #expect(taken(withCompressed, 0) === plain)
        #expect(taken(withCompressed, 15) === c15)
        for variant: UInt8 in [9, 10, 14, 16, 25, 31, 32, 255] {
            #expect(taken(withCompressed, variant) === plain, "variant \(variant)")
        }

        // History: positioned, with a positioned compressed form for window 15 only (and a stray one at index 0,
        // which is not a window and must not replace the positioned frame).
        let positioned = frame("positioned")
        var positionedCompressed = [SharedFrame?](repeating: nil, count: 16)
        let p15 = frame("p15")
        positionedCompressed[15] = p15
        positionedCompressed[0] = frame("stray")
        var compressed9 = [SharedFrame?](repeating: nil, count: 16)
        let c9 = frame("c9")
        compressed9[9] = c9
        let history = Delivery(
            plain: plain, compressed: compressed9, positioned: positioned, positionedCompressed: positionedCompressed)
        #expect(history.positioned === positioned)
        #expect(taken(history, 0) === plain)
        #expect(taken(history, 9) === c9)
        #expect(taken(history, 15) === plain)
        #expect(taken(history, 16) === positioned)
        #expect(taken(history, 31) === p15)
        for variant: UInt8 in [17, 24, 25, 30] { #expect(taken(history, variant) === positioned, "variant \(variant)") }
        // Past 31 no reader's variant goes (window bits stop at 15): such a number still gets the positioned frame.
        for variant: UInt8 in [32, 40, 255] { #expect(taken(history, variant) === positioned, "variant \(variant)") }

        // History without any compressed frames (compression off).
        let bare = Delivery(plain: plain, compressed: [], positioned: positioned, positionedCompressed: [])
        #expect(bare.positioned === positioned)
        for variant: UInt8 in 0...15 { #expect(taken(bare, variant) === plain, "variant \(variant)") }
        for variant: UInt8 in 16...31 { #expect(taken(bare, variant) === positioned, "variant \(variant)") }
    }

    /// The frame written in place is the positioned JSON in a text frame, byte for byte, across the header sizes.
    @Test func positionedFrameInPlace() {
        let epoch = Epoch("0123456789ab")
        for dataLength in [0, 1, 60, 100, 70_000] {
            let data = [UInt8](repeating: UInt8(ascii: "x"), count: dataLength)
            let json = Array("room".utf8).withUnsafeBytes { channel in
                data.withUnsafeBytes { ServerMessageEncoder.encode(issuer: "i", channel: channel, data: $0) }
            }
            for offset: UInt64 in [1, 9, 10, 99, 12_345, UInt64(Int64.max)] {
                let position = StreamPosition(epoch: epoch, offset: offset)
                let expected = ServerMessageEncoder.positioned(json, at: position).withUnsafeBytes {
                    FrameWriter.frame(.text, payload: $0)
                }
                let made = json.withUnsafeBytes { ServerMessageEncoder.positionedFrame($0, at: position) }
                #expect(Array(made.buffer) == Array(expected.buffer), "data \(dataLength), offset \(offset)")
                #expect(made.isMessage)
                #expect(Array(ServerMessageEncoder.payload(of: made)) == ServerMessageEncoder.positioned(json, at: position))
            }
        }
    }
}
