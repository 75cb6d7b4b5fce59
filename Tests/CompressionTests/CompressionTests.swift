import Compression
import Foundation
import Testing
import TestFixtures

@Suite("Streaming content codings")
struct CompressionTests {
    static func fixture(_ name: String) -> [UInt8] { try! Fixture.bytes("compression/\(name)") }

    static let page = fixture("page.html")

    @Test(arguments: [("page.html.gz", ContentCoding.gzip), ("page.html.zz", .deflate), ("page.html.br", .br)])
    func filesCompressedElsewhereDecodeWholeAndByteByByte(file: String, coding: ContentCoding) throws {
        let compressed = Self.fixture(file)
        #expect(try StreamDecoder(coding).decode(compressed) == Self.page)
        let decoder = try StreamDecoder(coding)
        var out: [UInt8] = []
        for byte in compressed { out += try decoder.decode([byte]) }
        #expect(out == Self.page)
    }

    @Test(arguments: ContentCoding.allCases)
    func ourEncodingDecodesAgainInAnyPieces(coding: ContentCoding) throws {
        let encoder = try StreamEncoder(coding)
        var encoded: [UInt8] = []
        var offset = 0
        var size = 1
        while offset < Self.page.count {
            let end = min(Self.page.count, offset + size)
            encoded += encoder.encode(Array(Self.page[offset..<end]))
            offset = end
            size = size * 3 + 7
        }
        encoded += encoder.finish()
        #expect(encoded.count < Self.page.count / 4)
        #expect(try StreamDecoder(coding).decode(encoded) == Self.page)
    }

    /// Python's gzip and zlib read what our encoders write.
    @Test(arguments: [(ContentCoding.gzip, "gzip.decompress(d)"), (.deflate, "zlib.decompress(d)")])
    func anotherImplementationReadsOurOutput(coding: ContentCoding, call: String) throws {
        let encoder = try StreamEncoder(coding)
        let encoded = encoder.encode(Array(Self.page[0..<1000])) + encoder.encode(Array(Self.page[1000...])) + encoder.finish()
        let path = NSTemporaryDirectory() + "ssogate-\(UUID().uuidString)"
        try Data(encoded).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import gzip,zlib,sys;d=open(sys.argv[1],'rb').read();sys.stdout.buffer.write(\(call))", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let decoded = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(Array(decoded) == Self.page)
    }

    @Test(arguments: ContentCoding.allCases)
    func corruptInputIsAnError(coding: ContentCoding) throws {
        #expect(throws: CompressionError.self) {
            let decoder = try StreamDecoder(coding)
            _ = try decoder.decode(Array(repeating: 0xFF, count: 64))
        }
    }

    @Test(arguments: [ContentCoding.gzip, .br])
    func aDecompressionBombStopsAtTheLimit(coding: ContentCoding) throws {
        let encoder = try StreamEncoder(coding)
        let bomb = encoder.encode([UInt8](repeating: 0, count: 32 << 20)) + encoder.finish()
        #expect(bomb.count < 64 * 1024)
        #expect(throws: CompressionError.self) { _ = try StreamDecoder(coding).decode(bomb, limit: 1 << 20) }
    }

    @Test func headerValuesMapToCodings() {
        #expect(ContentCoding(header: "GZIP") == .gzip)
        #expect(ContentCoding(header: " br ") == .br)
        #expect(ContentCoding(header: "identity") == nil)
        #expect(ContentCoding(header: "gzip, br") == nil)
    }
}
