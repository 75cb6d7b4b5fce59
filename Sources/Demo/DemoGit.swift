import Foundation
import NIOHTTP1

/// The demo hub's one git repository, `acme/private-model.git`, served by `git http-backend`
/// (when git is installed) so that a newcomer can clone it through the gateway with an
/// access token. Created, with one commit, in a temporary folder at first use.
enum DemoGit {
    static let path = "/acme/private-model.git"

    /// The folder holding `acme/private-model.git`; nil without git.
    static let root: String? = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/git") else { return nil }
        let root = NSTemporaryDirectory() + "ssogate-demo-git-\(getpid())"
        let bare = root + "/acme/private-model.git"
        let seed = root + "/seed"
        let steps: [[String]] = [
            ["init", "-q", "--bare", "-b", "main", bare],
            ["-C", bare, "config", "http.receivepack", "true"],
            ["init", "-q", "-b", "main", seed],
        ]
        guard steps.allSatisfy({ run($0) }) else { return nil }
        try? "# acme/private-model\n\nA private model of acme, cloned through ssogate with an access token.\n"
            .write(toFile: seed + "/README.md", atomically: true, encoding: .utf8)
        let committed = run(["-C", seed, "add", "README.md"])
            && run(["-C", seed, "-c", "user.name=Demo Hub", "-c", "user.email=hub@example.test", "commit", "-q", "-m", "First version"])
            && run(["-C", seed, "push", "-q", bare, "main"])
        return committed ? root : nil
    }()

    @discardableResult
    static func run(_ arguments: [String], input: Data? = nil, environment: [String: String]? = nil) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if let environment { process.environment = environment }
        do { try process.run() } catch { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// `git http-backend` for one request (CGI): status, headers, body. Blocks: run it off
    /// the event loop.
    static func serve(_ head: HTTPRequestHead, body: [UInt8]) -> (status: Int, headers: [(String, String)], body: [UInt8]) {
        guard let root else { return (404, [("Content-Type", "text/plain")], Array("git is not installed here\n".utf8)) }
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var environment = ["GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": String(parts[0]),
                           "QUERY_STRING": parts.count > 1 ? String(parts[1]) : "", "REQUEST_METHOD": head.method.rawValue,
                           "CONTENT_TYPE": head.headers.first(name: "Content-Type") ?? "", "CONTENT_LENGTH": String(body.count),
                           "REMOTE_USER": head.headers.first(name: "X-Forwarded-User") ?? "", "REMOTE_ADDR": "127.0.0.1",
                           "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        if let protocolVersion = head.headers.first(name: "Git-Protocol") { environment["HTTP_GIT_PROTOCOL"] = protocolVersion }
        if let encoding = head.headers.first(name: "Content-Encoding") { environment["HTTP_CONTENT_ENCODING"] = encoding }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = ["http-backend"]
        process.environment = environment
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return (500, [], []) }
        input.fileHandleForWriting.write(Data(body))
        try? input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // The CGI answer: header lines, a blank line, the body.
        guard let split = out.range(of: Data("\r\n\r\n".utf8)) ?? out.range(of: Data("\n\n".utf8)) else { return (502, [], []) }
        var status = 200
        var headers: [(String, String)] = []
        for line in String(decoding: out[..<split.lowerBound], as: UTF8.self).split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon]), value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name.lowercased() == "status" { status = Int(value.prefix(3)) ?? 200 } else { headers.append((name, value)) }
        }
        return (status, headers, Array(out[split.upperBound...]))
    }
}
