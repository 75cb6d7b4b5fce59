import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client on a plain socket, independent of SwiftNIO, so tests can send
/// exactly the bytes they mean (smuggling shapes, pipelining, slow heads) and read exactly
/// what came back.
public final class RawHTTPClient {
    public struct Response: CustomStringConvertible, Sendable {
        public let version: String
        public let status: Int
        public let headers: [(String, String)]
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        public func values(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
        public var description: String { "\(status) \(headers) \(text.prefix(200))" }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private var closedByPeer = false

    public init(port: Int, timeout: Double = 10) throws {
        fd = try Self.connected(port: port)
        setTimeout(timeout)
    }

    /// A socket connected to `port`, or nothing left open. It is made before `fd` is set: a
    /// class whose init throws after its properties are set still runs `deinit`, and closing
    /// there as well would close whatever socket another test opened with that number since.
    private static func connected(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else {
            let failure = errno
            close(fd)
            throw Failure(description: "connect to \(port) failed: errno \(failure)")
        }
        return fd
    }

    deinit { close(fd) }

    public func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += n
        }
    }

    /// Reads more bytes into the buffer; false on EOF, throws on timeout.
    private func fill() throws -> Bool {
        if closedByPeer { return false }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        // A signal (a child process of another test ending: SIGCHLD) interrupts it: again.
        while n < 0 && errno == EINTR { n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) } }
        if n == 0 { closedByPeer = true; return false }
        if n < 0 {
            if errno == ECONNRESET { closedByPeer = true; return false }
            throw Failure(description: "recv timed out or failed: errno \(errno)")
        }
        buffer += chunk[0..<n]
        return true
    }

    func readLineForTests() throws -> String { try readLine() }

    private func readLine() throws -> String {
        while true {
            if let i = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<i])
                buffer.removeFirst(i + 1)
                if line.last == 0x0D { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() else { throw Failure(description: "connection closed mid-line") }
        }
    }

    private func readExactly(_ count: Int) throws -> [UInt8] {
        while buffer.count < count {
            guard try fill() else { throw Failure(description: "connection closed after \(buffer.count) of \(count) bytes") }
        }
        let out = Array(buffer[..<count])
        buffer.removeFirst(count)
        return out
    }

    /// Reads one response. `forHead` when it answers a HEAD request (no body follows).
    /// `discardBody` counts body bytes without keeping them (for large streams).
    public func readResponse(forHead: Bool = false, discardBody: Bool = false) throws -> Response {
        var statusLine = try readLine()
        var headers: [(String, String)] = []
        while true {
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad status line: \(statusLine)") }
            headers = []
            while true {
                let line = try readLine()
                if line.isEmpty { break }
                guard let colon = line.firstIndex(of: ":") else { throw Failure(description: "bad header line: \(line)") }
                headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            if status >= 100 && status < 200 && status != 101 {
                statusLine = try readLine()  // informational: the real response follows
                continue
            }
            let version = String(parts[0])
            var body: [UInt8] = []
            var counted = 0
            func take(_ bytes: [UInt8]) { if discardBody { counted += bytes.count } else { body += bytes } }
            let lower = Dictionary(headers.map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { a, _ in a })
            if forHead || status == 204 || status == 304 {
            } else if lower["transfer-encoding"]?.lowercased() == "chunked" {
                while true {
                    let sizeLine = try readLine()
                    guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw Failure(description: "bad chunk size \(sizeLine)") }
                    if size == 0 {
                        while try !readLine().isEmpty {}
                        break
                    }
                    var left = size
                    while left > 0 {
                        let n = min(left, 1 << 20)
                        take(try readExactly(n))
                        left -= n
                    }
                    _ = try readExactly(2)
                }
            } else if let cl = lower["content-length"], let length = Int(cl) {
                var left = length
                while left > 0 {
                    let n = min(left, 1 << 20)
                    take(try readExactly(n))
                    left -= n
                }
            } else {
                while try fill() {
                    if discardBody { counted += buffer.count; buffer.removeAll(keepingCapacity: true) }
                }
                take(buffer)
                buffer.removeAll()
            }
            if discardBody { body = Array("\(counted)".utf8) }
            return Response(version: version, status: status, headers: headers, body: body)
        }
    }

    /// True when the peer closed the connection within `seconds` (after any buffered bytes).
    public func waitForClose(within seconds: Double) -> Bool {
        setTimeout(seconds)
        do {
            while try fill() { buffer.removeAll() }
            return true
        } catch {
            return false
        }
    }
}

extension RawHTTPClient {
    /// Exactly `count` raw bytes of the stream (after a protocol switch, say).
    public func readBytes(count: Int) throws -> [UInt8] { try readExactly(count) }

    /// One raw line of the response stream, without its CRLF.
    public func readRawLine() throws -> String { try readLineForTests() }
}
