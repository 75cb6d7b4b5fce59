import FuzzTargets
import Foundation
import Testing

/// Every input kept in Tests/Fixtures/fuzz (the seed corpus, and any crash the fuzzer
/// found, saved there by `make fuzz`) is run through the fuzz entry point on each
/// `swift test`: it must return.
@Suite("Fuzz corpus replay")
struct ReplayTests {
    static var inputs: [String] {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/fuzz/saml-response").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder + "/" + $0 }
    }

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
