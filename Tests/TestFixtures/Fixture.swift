import Foundation

/// The files under Tests/Fixtures, found from this source file's place in the repository
/// (the test binaries run from anywhere): one loader for every test target.
public enum Fixture {
    /// `Tests/Fixtures`.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// The repository's root folder.
    public static let repository = root.deletingLastPathComponent().deletingLastPathComponent()

    /// The path of `relative` (`crypto/rsa-2048.crt`) under Tests/Fixtures.
    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    public static func text(_ relative: String) throws -> String { try String(contentsOfFile: path(relative), encoding: .utf8) }

    public static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path(relative))))
    }

    /// The paths of the files in the folder `relative` (not hidden, not folders), sorted;
    /// empty when there is no such folder.
    public static func files(in relative: String) -> [String] {
        let folder = path(relative)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder + "/" + $0 }.filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }
}
