import FuzzTargets
import Foundation
import Gateway
import Testing
import TestFixtures

/// Every input kept in Tests/Fixtures/fuzz (the seed corpus, and any crash the fuzzer
/// found, saved there by `make fuzz`) is run through the fuzz entry point on each
/// `swift test`: it must return.
@Suite("Fuzz corpus replay")
struct ReplayTests {
    static var inputs: [String] { Fixture.files(in: "fuzz/saml-response") }

    @Test func thereIsACorpus() { #expect(Self.inputs.count >= 5) }

    /// The hostile shapes (FuzzTargets.HostileShapes) join the corpus: `make fuzz` seeds
    /// with them, and each must come back from the fuzz entry point too.
    @Test func theHostileShapesReplay() throws {
        let shapes = try HostileShapes.all(now: Date())
        #expect(shapes.count >= 20)
        for shape in shapes { FuzzTargets.samlResponse(shape.xml) }
    }

    @Test(arguments: inputs)
    func replays(_ path: String) throws {
        let data = try #require(FileManager.default.contents(atPath: path))
        FuzzTargets.samlResponse(Array(data))
    }
}

/// The wire targets' corpora (seeds, and crashes `make fuzz` kept): client bytes over
/// HTTP/1.x, HTTP/2 frames, upstream responses. Each input must come back.
@Suite("Wire fuzz corpus replay")
struct WireReplayTests {
    static func inputs(_ target: String) -> [String] { Fixture.files(in: "fuzz/\(target)") }

    @Test func eachWireTargetHasACorpus() {
        for target in ["http1", "http2", "upstream-response"] { #expect(Self.inputs(target).count >= 5, "\(target)") }
    }

    /// The targets reach the real pipeline: an API request for protected content gets the
    /// 401, an unprotected one reaches for the (absent) upstream, and over HTTP/2 a SETTINGS
    /// frame comes back first.
    @Test func theTargetsAnswerLikeTheGateway() {
        let request = Array("GET /acme/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\nGET /public HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        let answer = String(decoding: WireFuzz.clientBytes([0] + request), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 401 ") && answer.contains("HTTP/1.1 502 "), "\(answer.prefix(400))")
        let frames = WireFuzz.http2Frames([0, 0, 0, 4, 0, 0, 0, 0, 0])
        #expect(frames.count >= 9 && frames[3] == 4, "\(frames.prefix(18))")
    }

    @Test(arguments: inputs("http1"))
    func http1(_ path: String) throws {
        WireFuzz.clientBytes(Array(try #require(FileManager.default.contents(atPath: path))))
    }

    @Test(arguments: inputs("http2"))
    func http2(_ path: String) throws {
        WireFuzz.http2Frames(Array(try #require(FileManager.default.contents(atPath: path))))
    }

    @Test(arguments: inputs("upstream-response"))
    func upstreamResponse(_ path: String) throws {
        WireFuzz.upstreamResponse(Array(try #require(FileManager.default.contents(atPath: path))))
    }
}
