import Testing

@testable import Philote

private func head(_ headers: [(String, String)]) -> RequestHead {
    RequestHead(
        method: "POST", target: "/api/publish", versionMajor: 1, versionMinor: 1,
        headers: headers.map { (name: $0.0, value: $0.1) })
}

@Suite struct RequestBodyReaderTests {
    @Test func noContentLengthMeansNoBody() throws {
        #expect(try RequestBodyReader.announcedLength(of: head([]), limit: 100).get() == 0)
    }

    @Test func validLengths() throws {
        #expect(try RequestBodyReader.announcedLength(of: head([("Content-Length", "42")]), limit: 100).get() == 42)
        #expect(try RequestBodyReader.announcedLength(of: head([("content-length", " 7 ")]), limit: 100).get() == 7)
        #expect(try RequestBodyReader.announcedLength(of: head([("Content-Length", "100")]), limit: 100).get() == 100)
        // Repeats of one value are allowed (RFC 9110 section 8.6).
        #expect(try RequestBodyReader.announcedLength(of: head([("Content-Length", "5, 5")]), limit: 100).get() == 5)
        #expect(
            try RequestBodyReader.announcedLength(
                of: head([("Content-Length", "5"), ("Content-Length", "5")]), limit: 100
            ).get() == 5)
    }

    @Test(arguments: ["", "-1", "+5", "5a", "0x10", "1.0", "5, 6", "99999999999999999999999", " "])
    func malformedLengthIs400(_ value: String) {
        let result = RequestBodyReader.announcedLength(of: head([("Content-Length", value)]), limit: 100)
        guard case .failure(let error) = result else {
            Issue.record("accepted \(value)")
            return
        }
        #expect(error.status == .badRequest)
    }

    @Test func conflictingFieldsAre400() {
        let result = RequestBodyReader.announcedLength(
            of: head([("Content-Length", "5"), ("Content-Length", "6")]), limit: 100)
        guard case .failure(let error) = result else {
            Issue.record("accepted")
            return
        }
        #expect(error.status == .badRequest)
    }

    @Test func overTheLimitIs413() {
        let result = RequestBodyReader.announcedLength(of: head([("Content-Length", "101")]), limit: 100)
        guard case .failure(let error) = result else {
            Issue.record("accepted")
            return
        }
        #expect(error.status == .contentTooLarge)
    }

    @Test func collectsExactlyTheAnnouncedBytesAcrossReads() {
        let reader = RequestBodyReader(head: head([("Content-Length", "10")]), expectedLength: 10)
        Array("abcd".utf8).withUnsafeBytes { reader.feed($0) }
        #expect(!reader.isComplete)
        Array("efghijEXTRA".utf8).withUnsafeBytes { reader.feed($0) }
        #expect(reader.isComplete)
        #expect(reader.body == Array("abcdefghij".utf8))
        Array("more".utf8).withUnsafeBytes { reader.feed($0) }
        #expect(reader.body.count == 10)
    }
}
