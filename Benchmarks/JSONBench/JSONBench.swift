import Philote

/// Reads one typical client message over and over through the client-message reader, for
/// `scripts/callgrind-json.sh`, which counts the instructions of two runs with different repetition counts
/// and divides the difference, so that start-up and the set-up here cancel out.
///
///   JSONBench MESSAGE REPETITIONS      MESSAGE: small, escapes, large, unicode
@main
struct JSONBench {
    static let messages: [String: [UInt8]] = [
        "small": Array(#"{"channel":"chat","data":"hello"}"#.utf8),
        "escapes": Array(#"{"channel":"chat","data":"line one\nline \"two\"\ttab \\ back\/slash \u00e9 \ud83d\ude00"}"#.utf8),
        // 4 KB of data, as a client that sends a small document serialised into the data string would.
        "large": Array(#"{"channel":"chat","data":""#.utf8)
            + Array(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 92).prefix(4096).utf8)
            + Array(#""}"#.utf8),
        "unicode": Array(#"{"channel":"café","data":"héllo wörld, 你好世界, привет, 😀🎉"}"#.utf8),
    ]

    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, let message = messages[arguments[1]], let repetitions = Int(arguments[2]) else {
            print("usage: JSONBench small|escapes|large|unicode REPETITIONS")
            return
        }
        // The sum keeps the optimiser from dropping the reads.
        var decodedBytes = 0
        message.withUnsafeBytes { bytes in
            for _ in 0..<repetitions {
                if case .success(let read) = ClientMessageReader.read(bytes) {
                    decodedBytes &+= read.channel.count &+ read.data.count
                }
            }
        }
        print("decoded bytes: \(decodedBytes)")
    }
}
