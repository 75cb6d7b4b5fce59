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

    /// Config/ssogate.example.yaml says it shows every key: each one the decoder accepts
    /// stands in it as a key, set or commented out (`# key:`), so a new key cannot be
    /// forgotten there.
    @Test func theExampleConfigurationShowsEveryKey() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = try String(contentsOf: root.appendingPathComponent("Config/ssogate.example.yaml"), encoding: .utf8)
        let leaves = Set(ConfigSchema.keyPaths.map { path in
            String(path.split(separator: ".").last!.replacingOccurrences(of: "[]", with: ""))
        })
        let missing = leaves.filter { key in
            example.range(of: #"(^|[\s{,#-])"# + NSRegularExpression.escapedPattern(for: key) + ":", options: .regularExpression) == nil
        }
        #expect(missing.sorted() == [], "keys the example does not show")
    }
}

@Suite("The README's metrics")
struct MetricsReferenceTests {
    /// Every metric the sources define (a name ending as metric names here do) is listed
    /// in the README, so a new one cannot be left out of "Observability".
    @Test func everyMetricIsListedInTheReadme() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #""(ssogate_[a-z0-9_]+_(total|seconds|connections|pending))""#)
        var names = Set<String>()
        let enumerator = FileManager.default.enumerator(atPath: root.appendingPathComponent("Sources").path)
        while let name = enumerator?.nextObject() as? String {
            guard name.hasSuffix(".swift") else { continue }
            let text = try String(contentsOf: root.appendingPathComponent("Sources/" + name), encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                names.insert(String(text[Range(match.range(at: 1), in: text)!]))
            }
        }
        #expect(names.count >= 15, "the scan found the metrics: \(names.sorted())")
        #expect(names.filter { !readme.contains("`" + $0) }.sorted() == [], "metrics the README does not list")
    }
}

@Suite("The repository stands on its own")
struct SelfContainedTests {
    /// Sources and tests cite the contract, the style guide and the measured facts as the
    /// repository's own docs/CONTRACT.md, docs/CODE-STYLE.md and docs/MEASURED.md, never a file
    /// outside it: not the team's shared folder, and not the shared files' names (SPEC, STYLE,
    /// NOTES), which would read as the copies outside.
    @Test func noSourceOrTestCitesAFileOutsideTheRepository() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        // Spelled in pieces, so this file does not match itself.
        let outside = ".." + "/shared/"
        let sharedNames = try NSRegularExpression(pattern: "(^|[^-A-Za-z])(" + ["SPEC", "STYLE", "NOTES"].joined(separator: "|") + ")" + #"\.md"#)
        var offenders: [String] = []
        for folder in ["Sources", "Tests"] {
            let enumerator = FileManager.default.enumerator(atPath: root.appendingPathComponent(folder).path)
            while let name = enumerator?.nextObject() as? String {
                guard name.hasSuffix(".swift") || name.hasSuffix(".py") || name.hasSuffix(".sh") || name.hasSuffix(".md") else { continue }
                let path = root.appendingPathComponent(folder).appendingPathComponent(name)
                guard let text = try? String(contentsOf: path, encoding: .utf8) else { continue }
                for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let line = String(line)
                    let cited = line.contains(outside)
                        || sharedNames.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
                    if cited { offenders.append("\(folder)/\(name):\(number + 1)") }
                }
            }
        }
        #expect(offenders == [])
        for file in ["CONTRACT", "CODE-STYLE", "MEASURED"].map({ "docs/" + $0 + ".md" }) {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(file).path), "\(file)")
        }
    }
}
