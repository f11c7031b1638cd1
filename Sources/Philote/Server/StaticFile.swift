/// A file the server serves as it is (the browser module, its typings, the demo page): its bytes, its type and an
/// entity tag made once, so that a browser revalidates with `If-None-Match` and gets 304 when nothing changed.
struct StaticFile: Sendable {
    let body: String
    let contentType: String
    /// A strong ETag: FNV-1a (64 bits) of the body. Not a security measure; any change of the body changes it.
    let etag: String
    /// Modules are loaded across origins (`import ... from "https://your-server/philote.js"`), which needs CORS.
    let headers: [(String, String)]

    init(_ body: String, contentType: String, maxAge: Int) {
        self.body = body
        self.contentType = contentType
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in body.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        etag = "\"" + String(repeating: "0", count: 16 - hex.count) + hex + "\""
        headers = [
            ("ETag", etag), ("Cache-Control", "public, max-age=\(maxAge)"), ("Access-Control-Allow-Origin", "*"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    }

    /// 200 with the body (its head only for HEAD), or 304 when `If-None-Match` names this version; 405 for other
    /// methods.
    func response(to head: RequestHead) -> [UInt8] {
        guard head.method == "GET" || head.method == "HEAD" else {
            return HTTPResponse.text(.methodNotAllowed, "method not allowed", headers: [("Allow", "GET, HEAD")])
        }
        if head.values("If-None-Match").contains(where: { matches($0) }) {
            return HTTPResponse.notModified(headers: headers)
        }
        let response = HTTPResponse.raw(.ok, contentType: contentType, body: body, headers: headers)
        return head.method == "HEAD" ? HTTPResponse.withoutBody(response) : response
    }

    /// `If-None-Match` holds a list of tags (weak ones compare by their opaque part, RFC 9110 section 13.1.2) or `*`.
    private func matches(_ field: String) -> Bool {
        field.split(separator: ",").contains { item in
            var tag = item.trimmingHTTPWhitespace()
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            return tag == etag[...]
        }
    }
}
