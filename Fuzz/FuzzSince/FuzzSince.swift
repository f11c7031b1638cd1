import FuzzSupport

@testable import Philote

/// Drives the `since` reader (RecoveryRequest, README "History and recovery") with arbitrary bytes, taken both as
/// one decoded `since` value (`parse`) and as the query of an upgrade's request target (`all(inTarget: "/?" +
/// input)`): what any client puts on its upgrade URL.
///
/// Oracles, besides "no crash, no memory error":
/// - `parse` agrees with `ReferenceSince.parse`, a plain reading of the README's syntax (epoch of 1 to 32 letters,
///   digits, `-` or `_`; offset of at most 19 decimal digits, below 2^63; the channel everything after the second
///   colon), reason for reason;
/// - a success has no position, or an offset below 2^63 and an epoch of 1 to 32 allowed characters;
/// - a success written back as `epoch:offset:channel` (or `::channel`, the offset in plain decimal), raw or
///   percent-encoded (as `encodeURIComponent` would) in a target of its own, reads back as the same request;
/// - `all` gives one result per `since` parameter (its name percent-decoded), in order: the refusal of a value that
///   does not decode (or of a `since` without a value), the duplicate refusal for a channel already accepted, or
///   else exactly what `parse` gives for the decoded value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)

    // As one decoded value.
    let parsed = RecoveryRequest.parse(input)
    let expected = ReferenceSince.parse(Array(input.utf8))
    precondition(parsed == expected, "parse(\(input.debugDescription)): \(parsed), reference: \(expected)")
    check(parsed)

    // As a query.
    let results = RecoveryRequest.all(inTarget: "/?" + input)
    let values = ReferenceSince.sinceValues(query: Array(input.utf8))
    precondition(results.count == values.count, "\(results.count) results for \(values.count) since parameters")
    var accepted: Set<[UInt8]> = []
    for (result, value) in zip(results, values) {
        guard let value else {
            // README does not say which reason; see RecoveryRequestTests.sinceWithoutAValue.
            precondition(
                result.invalid?.channel == nil
                    && [ReferenceSince.badEncoding, ReferenceSince.badFormat].contains(result.invalid?.reason ?? ""),
                "a since without a value: \(result)")
            continue
        }
        guard let decoded = ReferenceSince.formDecode(value) else {
            precondition(
                result == .failure(RecoveryRequest.Invalid(reason: ReferenceSince.badEncoding, channel: nil)),
                "a since value that does not decode: \(result)")
            continue
        }
        let alone = RecoveryRequest.parse(String(decoding: decoded, as: UTF8.self))
        if case .success(let request) = alone, !accepted.insert(request.channel).inserted {
            precondition(
                result
                    == .failure(RecoveryRequest.Invalid(reason: ReferenceSince.givenTwice, channel: request.channel)),
                "a channel given twice: \(result)")
        } else {
            precondition(result == alone, "since=\(decoded): \(result), alone: \(alone)")
        }
        check(result)
    }
    return 0
}

/// What any result must be, and a success's round trips.
private func check(_ result: Result<RecoveryRequest, RecoveryRequest.Invalid>) {
    switch result {
    case .failure(let invalid):
        precondition(ReferenceSince.reasons.contains(invalid.reason), "unknown reason \(invalid.reason)")
        let named = invalid.channel != nil
        precondition(
            named == ![ReferenceSince.badFormat, ReferenceSince.badEncoding].contains(invalid.reason),
            "\(invalid.reason) with channel \(String(describing: invalid.channel))")
    case .success(let request):
        precondition(String(validating: request.channel, as: UTF8.self) != nil, "channel is not UTF-8")
        let channel = String(decoding: request.channel, as: UTF8.self)
        var raw = "::" + channel
        if let position = request.position {
            precondition(position.offset <= UInt64(Int64.max), "offset \(position.offset)")
            let epoch = Array(position.epoch.text.utf8)
            precondition((1...32).contains(epoch.count) && epoch.allSatisfy(ReferenceSince.isEpochCharacter), "epoch")
            raw = "\(position.epoch.text):\(position.offset):\(channel)"
        }
        precondition(
            RecoveryRequest.parse(raw) == result, "\(raw.debugDescription) reads back as \(RecoveryRequest.parse(raw))")
        let target = "/?auth=x&since=" + ReferenceSince.percentEncode(Array(raw.utf8)) + "&x=1"
        let again = RecoveryRequest.all(inTarget: target)
        precondition(again == [result], "\(target.debugDescription) reads back as \(again)")
    }
}

extension Result where Failure == RecoveryRequest.Invalid {
    fileprivate var invalid: RecoveryRequest.Invalid? {
        if case .failure(let invalid) = self { invalid } else { nil }
    }
}

@main
struct FuzzMain {
    static func main() { runFuzzer(fuzz) }
}
