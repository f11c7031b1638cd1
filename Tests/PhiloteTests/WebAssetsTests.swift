import Testing

@testable import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// The files compiled into the server (scripts/embed-web.sh) are the committed ones in web/: run `make web` after
/// editing them.
@Suite struct WebAssetsTests {
    static let web: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/web/"
    }()

    static func contents(_ name: String) -> String? {
        guard let file = fopen(web + name, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// By name only: a whole file as a test argument would fill the test log.
    static func embedded(_ name: String) -> String {
        switch name {
        case "philote.js": WebAssets.philoteJS
        case "philote.d.ts": WebAssets.philoteTypes
        default: WebAssets.demoPage
        }
    }

    @Test(arguments: ["philote.js", "philote.d.ts", "demo.html"])
    func theEmbeddedFileIsTheCommittedOne(_ name: String) throws {
        let embedded = Self.embedded(name)
        let committed = try #require(Self.contents(name), "cannot read web/\(name)")
        #expect(embedded == committed, "web/\(name) changed: run `make web` (scripts/embed-web.sh)")
    }

    @Test func theEntityTagFollowsTheBody() {
        let one = StaticFile("a", contentType: "text/plain", maxAge: 1)
        let same = StaticFile("a", contentType: "text/html", maxAge: 9)
        let other = StaticFile("b", contentType: "text/plain", maxAge: 1)
        #expect(one.etag == same.etag)
        #expect(one.etag != other.etag)
        #expect(one.etag.count == 18 && one.etag.first == "\"" && one.etag.last == "\"")
    }
}
