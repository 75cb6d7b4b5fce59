import Foundation
import TestFixtures

/// The real `ssogate` executable run as a child process, for what only a process shows:
/// resident memory, signals, reload and drain.
public final class GatewayProcess {
    public let process: Process
    public let port: Int
    public let configPath: String
    private let output: Pipe
    private let collected = LogCollector()

    /// The built executable next to the test bundle (`swift build` puts both in one folder).
    public static var executable: String {
        let candidates = [
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("ssogate").path,
            Fixture.repository.appendingPathComponent(".build/debug/ssogate").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                _ = bind(fd, p, length)
                return getsockname(fd, p, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Writes `yaml` (with `PORT` replaced by a free port) to a temp file and starts
    /// `ssogate serve`; returns once `/_ssogate/healthz` answers over plain HTTP (or, for a
    /// TLS listener, once the log says `readyLog`).
    public init(yaml: String, directory: String? = nil, readyLog: String? = nil) throws {
        let port = try Self.freePort()
        let folder = directory ?? NSTemporaryDirectory() + "ssogate-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        configPath = folder + "/ssogate.yaml"
        try yaml.replacingOccurrences(of: "PORT", with: String(port)).write(toFile: configPath, atomically: true, encoding: .utf8)
        self.port = port
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["serve", "--config", configPath]
        output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let collected = self.collected
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { collected.append(data) }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let readyLog, collected.text.contains(readyLog) { return }
            if readyLog == nil, let client = try? RawHTTPClient(port: port, timeout: 2) {
                try? client.send("GET /_ssogate/healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                if (try? client.readResponse())?.status == 200 { return }
            }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        throw RawHTTPClient.Failure(description: "ssogate did not become healthy; output:\n\(log)")
    }

    deinit {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        output.fileHandleForReading.readabilityHandler = nil
    }

    public var log: String { collected.text }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Resident set size now and at its peak, from /proc, in bytes.
    public func memory() -> (rss: Int, peak: Int) {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
                return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0) * 1024
            }
            return 0
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// Waits for exit; returns the status, or nil if still running after `seconds`.
    public func waitForExit(within seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Waits until the log contains `text`.
    public func waitForLog(_ text: String, within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if log.contains(text) { return true }
            usleep(20_000)
        }
        return log.contains(text)
    }
}

final class LogCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ more: Data) { lock.lock(); data.append(more); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}

/// A loopback port that is bound but never listens, so connecting to it is refused, for as
/// long as this value lives (a port merely found free may be taken by a parallel test).
public final class RefusingPort {
    public let port: Int
    private let fd: Int32

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                guard bind(fd, p, length) == 0 else { return -1 }
                return getsockname(fd, p, &length)
            }
        }
        guard ok == 0 else { close(fd); throw RawHTTPClient.Failure(description: "cannot reserve a port") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
