import ArgumentParser
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// `philote token`: mints a token signed with $SECRET, for trying the server and for scripts and tests.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a token signed with $SECRET.",
        discussion: """
            Channel lists are comma-separated and the options may repeat: --read a,b --read c reads a, b \
            and c. Without --ttl the token never expires. Exit status 2 when SECRET is not set.

            Example: SECRET=... philote token --read demo --write demo --ttl 1h
            """
    )

    @Option(help: "Channels the token may receive from (comma-separated).")
    var read: [String] = []

    @Option(help: "Channels the token may publish to (comma-separated).")
    var write: [String] = []

    @Flag(help: "Grant the HTTP API (/api/...).")
    var api = false

    @Option(
        help: ArgumentHelp(
            "Lifetime, e.g. 30s, 15m, 1h, 2d or 1h30m; sets the exp claim. Default: no expiry.", valueName: "duration"
        ),
        transform: { text in
            guard let lifetime = TokenLifetime(argument: text) else {
                throw ValidationError(
                    "--ttl must be a duration above zero like 30s, 15m, 1h, 2d or 1h30m, got \"\(text)\"")
            }
            return lifetime
        })
    var ttl: TokenLifetime?

    @Option(
        help: ArgumentHelp("Signing algorithm: HS256, HS384 or HS512. Default: HS256.", valueName: "alg"),
        transform: { text in
            guard let algorithm = HMACAlgorithm(rawValue: text.uppercased()) else {
                throw ValidationError("--algorithm must be HS256, HS384 or HS512, got \"\(text)\"")
            }
            return algorithm
        })
    var algorithm: HMACAlgorithm = .hs256

    func run() throws {
        guard let secret = ClientCommand.environment("SECRET") else {
            ServerRunner.fail(
                "SECRET is not set: export the server's signing key first, e.g. "
                    + "export SECRET=\"$(openssl rand -hex 32)\"",
                status: 2)
        }
        var claims = Claims(read: Self.channels(read), write: Self.channels(write), api: api)
        if let ttl { claims.expiresAt = Double(Int64(time(nil)) + ttl.seconds) }
        let token = TokenSigner(secret: secret, algorithm: algorithm).sign(claims)
        POSIXIO.writeAll(1, Array((token + "\n").utf8))
    }

    /// Splits comma-separated values; the empty string stays a channel name, as it is a legal one.
    static func channels(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }
}
