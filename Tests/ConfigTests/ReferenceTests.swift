import Config
import Foundation
import Testing

@Suite("Config/REFERENCE.md")
struct ReferenceTests {
    /// The first-column keys of the reference table, in order.
    static func documentedKeys() throws -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("Config/REFERENCE.md"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("| `") else { return nil }
            let cell = line.dropFirst(3)
            return cell.firstIndex(of: "`").map { String(cell[..<$0]) }
        }
    }

    @Test func listsExactlyTheKeysTheDecoderAccepts() throws {
        let documented = try Self.documentedKeys()
        let accepted = ConfigSchema.keyPaths
        #expect(Set(documented).subtracting(accepted).sorted() == [], "documented but not accepted")
        #expect(Set(accepted).subtracting(documented).sorted() == [], "accepted but not documented")
        #expect(documented.count == Set(documented).count, "a key is listed twice")
    }
}
