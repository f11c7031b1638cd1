import Philote

/// Reads one typical client message over and over through the client-message reader, for
/// `scripts/callgrind-json.sh`, which counts the instructions of two runs with different repetition counts
/// and divides the difference, so that start-up and the set-up here cancel out.
///
///   JSONBench MESSAGE REPETITIONS      MESSAGE: small, escapes, large, unicode
///   JSONBench token REPETITIONS        verifies a typical token (its claims are JSON too)
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
        if arguments.count == 3, arguments[1] == "token", let repetitions = Int(arguments[2]) {
            verifyToken(repetitions: repetitions)
            return
        }
        guard arguments.count == 3, let message = messages[arguments[1]], let repetitions = Int(arguments[2]) else {
            print("usage: JSONBench small|escapes|large|unicode|token REPETITIONS")
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

    /// A token as `philote token` mints one: a read and a write channel, `exp` and `iat`.
    static func verifyToken(repetitions: Int) {
        var claims = Claims(read: ["room-1"], write: ["room-1"], expiresAt: 1_900_000_000)
        claims.issuedAt = 1_700_000_000
        let token = TokenSigner(secret: "bench-secret").sign(claims)
        let verifier = TokenVerifier(secret: "bench-secret")
        var accepted = 0
        for _ in 0..<repetitions {
            if case .success = verifier.verify(token, now: 1_800_000_000) { accepted += 1 }
        }
        print("accepted: \(accepted) of \(token.utf8.count)-byte token")
    }
}
