/// What browsers load from the server itself (README "From the browser"): the client module at `/philote.js`, its
/// typings at `/philote.d.ts`, `GET /api/token` (whether a token would be let in: browsers cannot see an upgrade's
/// 401), and in demo mode only, the chat page at `/demo` and its token endpoint.
extension PubSubApplication {
    static let module = StaticFile(WebAssets.philoteJS, contentType: "text/javascript; charset=utf-8", maxAge: 300)
    static let typings = StaticFile(
        WebAssets.philoteTypes, contentType: "application/typescript; charset=utf-8", maxAge: 300)
    static let demoPage = StaticFile(WebAssets.demoPage, contentType: "text/html; charset=utf-8", maxAge: 0)

    /// The answer for a browser path, or nil when `path` is none of them.
    func browserResponse(_ path: Substring, head: RequestHead, connection: Connection) -> [UInt8]? {
        switch path {
        case "/philote.js": return Self.module.response(to: head)
        case "/philote.d.ts": return Self.typings.response(to: head)
        case "/api/token": return tokenCheck(head, connection: connection)
        case "/demo", "/demo/": return demo == nil ? nil : Self.demoPage.response(to: head)
        case "/demo/token": return demo.map { demoToken(head, demo: $0) }
        default: return nil
        }
    }

    /// `GET /api/token`: 200 with the token's lists and `exp` when the server would let it in, else 401 with the
    /// reason (counted as an auth failure). Any token may ask (no `api` grant): it learns only what it says itself
    /// and what an upgrade would tell it. CORS lets a page on another origin read the answer.
    private func tokenCheck(_ head: RequestHead, connection: Connection) -> [UInt8] {
        let cors = [("Access-Control-Allow-Origin", "*"), ("Cache-Control", "no-store")]
        guard head.method == "GET" else {
            return Self.jsonError(.methodNotAllowed, "method not allowed", headers: [("Allow", "GET")] + cors)
        }
        guard let token = TokenLocator.token(in: head) else {
            connection.services.metrics.authFailed(.missing)
            return Self.jsonError(.unauthorized, TokenError.missing.reason, headers: cors)
        }
        switch verifier.verify(token, now: ProcessStatistics.wallClockSeconds()) {
        case .failure(let error):
            connection.services.metrics.authFailed(.init(error))
            return Self.jsonError(.unauthorized, error.reason, headers: cors)
        case .success(let claims):
            let exp = claims.expiresAt.map(Self.numericDate) ?? "null"
            let body = #"{"exp":\#(exp),"read":\#(Self.jsonList(claims.read)),"write":\#(Self.jsonList(claims.write)),"api":\#(claims.api)}"#
            return HTTPResponse.json(.ok, body, headers: cors)
        }
    }

    /// `GET /demo/token?name=<name>`: a token for the chat, minted for anyone who asks. It exists only under
    /// `philote demo`, which runs only with the development secret.
    private func demoToken(_ head: RequestHead, demo: DemoSettings) -> [UInt8] {
        guard head.method == "GET" else {
            return Self.jsonError(.methodNotAllowed, "method not allowed", headers: [("Allow", "GET")])
        }
        let claims = Claims(
            read: [demo.channel], write: [demo.channel],
            expiresAt: (ProcessStatistics.wallClockSeconds() + Double(demo.tokenLifetime)).rounded(.down))
        let token = TokenSigner(secret: configuration.secret ?? "").sign(claims)
        return HTTPResponse.json(.ok, #"{"token":\#(JSONStringEncoder.quoted(token))}"#, headers: [("Cache-Control", "no-store")])
    }

    private static func jsonList(_ names: [String]) -> String {
        "[" + names.map { JSONStringEncoder.quoted($0) }.joined(separator: ",") + "]"
    }
}
