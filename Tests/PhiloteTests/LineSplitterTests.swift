import Testing

@testable import Philote

private func split(_ chunks: [[UInt8]]) -> [String] {
    var splitter = LineSplitter()
    var lines: [String] = []
    for chunk in chunks { chunk.withUnsafeBytes { splitter.append($0) { lines.append($0) } } }
    if let last = splitter.finish() { lines.append(last) }
    return lines
}

@Suite struct LineSplitterTests {
    @Test func splitsLikeGoScanLines() {
        #expect(split([Array("a\r\nb\n\nc".utf8)]) == ["a", "b", "", "c"])
        #expect(split([Array("a\n".utf8)]) == ["a"])
        #expect(split([]) == [])
        #expect(split([Array("a\r\r\n".utf8)]) == ["a\r"])
    }

    @Test func joinsLinesAcrossChunks() {
        let text = Array("héllo\r\nwörld\nlast".utf8)
        for cut in 0...text.count {
            #expect(split([Array(text[..<cut]), Array(text[cut...])]) == ["héllo", "wörld", "last"])
        }
    }

    @Test func replacesInvalidUTF8() {
        #expect(split([[0x61, 0xFF, 0x0A]]) == ["a\u{FFFD}"])
    }
}
