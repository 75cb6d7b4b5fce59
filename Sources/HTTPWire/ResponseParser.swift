import Foundation
import NIOCore

/// An upstream response head, ready to relay: the fields to forward are already bytes
/// (`Name: value\r\n` each), with hop-by-hop fields, the fields named in `Connection`
/// and the framing fields removed. Nothing of it is decoded into strings.
package struct UpstreamResponseHead {
    package var version: (major: Int, minor: Int)
    package var status: Int
    /// `200 OK` — the status code and reason phrase, as sent.
    package var statusText: ByteBuffer
    package var fields: ByteBuffer
    /// The upstream's Content-Length, when it sent one (kept as metadata for HEAD and 304).
    package var contentLength: UInt64?
    package var keepAlive: Bool
    package var body: ResponseParser.BodyFraming
    package var contentType: String? = nil
    package var contentEncoding: String? = nil
    /// On a 101 only: `Upgrade` names `websocket`, and the `Sec-WebSocket-Accept` value.
    package var upgradesToWebSocket = false
    package var webSocketAccept: [UInt8]? = nil
}

/// Incremental parser of upstream HTTP/1.x responses (RFC 9112), a plain state machine:
/// bytes in, events out, no sockets. Strict where leniency would let one response bleed
/// into the next (RFC 9112 §6.3, §11.1): a malformed head, differing Content-Length
/// values, obs-fold, bare CR, or a bad chunk line is an error, and the connection is
/// never reused.
package struct ResponseParser {
    package enum BodyFraming: Equatable {
        case none
        case contentLength(UInt64)
        case chunked
        /// No length: the body ends when the upstream closes the connection.
        case untilClose
    }

    package enum Event {
        case head(UpstreamResponseHead)
        case body(ByteBuffer)
        case end
    }

    package struct Failure: Error, Equatable, CustomStringConvertible {
        package let description: String
        package init(_ description: String) { self.description = description }
    }

    package static let maxHeadBytes = 64 * 1024
    package static let maxChunkLineBytes = 1024

    package init() {}

    private enum State {
        case head
        case fixed(remaining: UInt64)
        case chunkSize
        case chunkData(remaining: UInt64)
        case chunkDataEnd
        case trailers
        case untilClose
        /// After `101 Switching Protocols` to a WebSocket upgrade: bytes, no more HTTP.
        case tunnel
        /// The body is complete; `.end` is the next event.
        case endPending
        /// A response ended; bytes before the next request are an error.
        case idle
        case failed
    }

    private var state: State = .idle
    /// Received bytes not yet turned into events.
    private var buffered = ByteBuffer()
    /// Whether the request this response answers was HEAD (no body follows, RFC 9110 §9.3.2).
    private var requestWasHead = false
    /// When that request asked to switch to WebSocket: the `Sec-WebSocket-Accept` value a
    /// 101 must carry (RFC 6455 §4.2.2), so a 101 is only believed as that handshake's answer.
    private var expectedAccept: [UInt8]?
    /// Cookie names the upstream may not set (the gateway's own session cookies).
    package var reservedCookies: [String] = []

    /// Called when a request is sent: the next bytes are its response.
    package mutating func expectResponse(toHead: Bool, webSocketAccept: [UInt8]? = nil) {
        requestWasHead = toHead
        expectedAccept = webSocketAccept
        state = .head
    }

    package var isIdle: Bool { if case .idle = state { return true } else { return false } }

    /// Takes received bytes; `next()` turns them into events. A pull interface, so that no
    /// event is handed out while the parser is being mutated (the receiver may send the
    /// next request from inside its event handling).
    package mutating func receive(_ input: ByteBuffer) {
        if buffered.readableBytes == 0 {
            buffered = input
        } else {
            buffered.writeImmutableBuffer(input)
        }
    }

    /// The next complete event, or nil when more bytes are needed.
    package mutating func next() throws(Failure) -> Event? {
        while true {
            switch state {
            case .failed:
                throw Failure("upstream connection already failed")
            case .idle:
                guard buffered.readableBytes == 0 else {
                    state = .failed
                    throw Failure("upstream sent bytes without a request")
                }
                return nil
            case .endPending:
                state = .idle
                return .end
            case .head:
                guard let head = try takeHead() else {
                    guard buffered.readableBytes <= Self.maxHeadBytes else { return try failing("upstream response head over 64 KiB") }
                    return nil
                }
                let parsed: UpstreamResponseHead
                do {
                    parsed = try Self.parseHead(head, requestWasHead: requestWasHead, reservedCookies: reservedCookies)
                } catch {
                    state = .failed
                    throw error
                }
                if parsed.status == 101 {
                    // A tunnel opens only for the WebSocket handshake the client asked for,
                    // answered as RFC 6455 says; any other 101 would let raw client bytes
                    // reach an upstream that still reads them as HTTP requests.
                    guard let expected = expectedAccept else { return try failing("upstream switched protocols unasked") }
                    guard parsed.upgradesToWebSocket else { return try failing("upstream's 101 does not upgrade to websocket") }
                    guard parsed.webSocketAccept == expected else { return try failing("upstream's 101 has no matching Sec-WebSocket-Accept") }
                    state = .tunnel
                    return .head(parsed)
                }
                if (100..<200).contains(parsed.status) {
                    continue  // interim responses are the gateway's to answer, never relayed
                }
                switch parsed.body {
                case .none, .contentLength(0): state = .endPending
                case .contentLength(let n): state = .fixed(remaining: n)
                case .chunked: state = .chunkSize
                case .untilClose: state = .untilClose
                }
                return .head(parsed)
            case .fixed(let remaining):
                guard buffered.readableBytes > 0 else { return nil }
                let n = Int(min(UInt64(buffered.readableBytes), remaining))
                state = remaining == UInt64(n) ? .endPending : .fixed(remaining: remaining - UInt64(n))
                return .body(buffered.readSlice(length: n)!)
            case .untilClose, .tunnel:
                guard buffered.readableBytes > 0 else { return nil }
                return .body(buffered.readSlice(length: buffered.readableBytes)!)
            case .chunkSize:
                guard let line = try takeLine(limit: Self.maxChunkLineBytes) else { return nil }
                let size = try chunkSize(line)
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard buffered.readableBytes > 0 else { return nil }
                let n = Int(min(UInt64(buffered.readableBytes), remaining))
                state = remaining == UInt64(n) ? .chunkDataEnd : .chunkData(remaining: remaining - UInt64(n))
                return .body(buffered.readSlice(length: n)!)
            case .chunkDataEnd:
                guard let line = try takeLine(limit: 2) else { return nil }
                guard line.readableBytes == 0 else { return try failing("chunk data longer than its size") }
                state = .chunkSize
            case .trailers:
                // Trailer fields are read and dropped: the gateway does not relay them.
                guard let line = try takeLine(limit: Self.maxHeadBytes) else { return nil }
                if line.readableBytes == 0 {
                    state = .idle
                    return .end
                }
            }
        }
    }

    /// The upstream closed the connection: ends a read-until-close body (returning `.end`),
    /// or fails. A close before any byte of the response is not a parse failure (the caller
    /// reports it as a plain close, which may be retried).
    package mutating func closed() throws(Failure) -> Event? {
        switch state {
        case .untilClose:
            state = .idle
            return .end
        case .idle, .failed:
            return nil
        case .tunnel:
            state = .failed  // a tunnel ends with its connection; nothing to reuse
            return nil
        case .head where buffered.readableBytes == 0:
            state = .failed
            return nil
        default:
            return try failing("upstream closed mid-response")
        }
    }

    private mutating func failing(_ reason: String) throws(Failure) -> Event? {
        state = .failed
        throw Failure(reason)
    }

    // MARK: - Lines

    /// One line without its terminator (CRLF, or a bare LF as RFC 9112 §2.2 allows), or nil
    /// when no complete line has arrived yet (the bytes stay buffered).
    private mutating func takeLine(limit: Int) throws(Failure) -> ByteBuffer? {
        let view = buffered.readableBytesView
        guard let lf = view.firstIndex(of: 0x0A) else {
            if buffered.readableBytes > limit + 1 { _ = try failing("line too long") }
            return nil
        }
        var length = lf - view.startIndex
        var line = buffered.readSlice(length: length)!
        buffered.moveReaderIndex(forwardBy: 1)
        if length > 0, line.getInteger(at: line.readerIndex + length - 1, as: UInt8.self) == 0x0D {
            length -= 1
            line = line.getSlice(at: line.readerIndex, length: length)!
        }
        if length > limit { _ = try failing("line too long") }
        return line
    }

    /// Takes a whole head (through the empty line) off the buffer, or nil if incomplete.
    private mutating func takeHead() throws(Failure) -> ByteBuffer? {
        // memchr from line feed to line feed; the head ends at an empty line.
        let headLength: Int? = buffered.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return nil }
            var index = 0
            while index < raw.count, let hit = memchr(base + index, 0x0A, raw.count - index) {
                let lf = base.distance(to: UnsafeRawPointer(hit))
                let lineLength = lf - index
                if lineLength == 0 || (lineLength == 1 && raw[index] == 0x0D) { return lf + 1 }
                index = lf + 1
            }
            return nil
        }
        guard let headLength else { return nil }
        guard headLength <= Self.maxHeadBytes else { _ = try failing("upstream response head over 64 KiB"); return nil }
        return buffered.readSlice(length: headLength)!
    }

    private mutating func chunkSize(_ line: ByteBuffer) throws(Failure) -> UInt64 {
        var size: UInt64 = 0
        var digits = 0
        for byte in line.readableBytesView {
            if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { break }  // extensions
            let value: UInt8
            switch byte {
            case 0x30...0x39: value = byte - 0x30
            case 0x41...0x46: value = byte - 0x41 + 10
            case 0x61...0x66: value = byte - 0x61 + 10
            default: state = .failed; throw Failure("bad chunk size")
            }
            digits += 1
            guard digits <= 15 else { state = .failed; throw Failure("chunk size too large") }
            size = size << 4 | UInt64(value)
        }
        guard digits > 0 else { state = .failed; throw Failure("bad chunk size") }
        return size
    }

    // MARK: - Head

    package static func parseHead(_ head: ByteBuffer, requestWasHead: Bool, reservedCookies: [String] = []) throws(Failure) -> UpstreamResponseHead {
        // One pass over the raw bytes: no buffer, view or string per line.
        let result = head.withUnsafeReadableBytes { raw in
            parseHead(raw, head: head, requestWasHead: requestWasHead, reservedCookies: reservedCookies)
        }
        return try result.get()
    }

    private static func parseHead(_ raw: UnsafeRawBufferPointer, head: ByteBuffer, requestWasHead: Bool,
                                  reservedCookies: [String]) -> Result<UpstreamResponseHead, Failure> {
        let bytes = raw.bindMemory(to: UInt8.self)
        let count = bytes.count
        /// The line starting at `start`: its end without CR, and where the next begins.
        func line(from start: Int) -> (end: Int, next: Int)? {
            guard start < count, let base = bytes.baseAddress,
                  let hit = memchr(base + start, 0x0A, count - start) else { return nil }
            let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            let end = i > start && bytes[i - 1] == 0x0D ? i - 1 : i
            return (end, i + 1)
        }
        func isOWS(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
        func lowerEquals(_ start: Int, _ end: Int, _ literal: StaticString) -> Bool {
            guard end - start == literal.utf8CodeUnitCount else { return false }
            let l = literal.utf8Start
            for k in 0..<(end - start) {
                let b = bytes[start + k]
                if ((b >= 0x41 && b <= 0x5A) ? b | 0x20 : b) != l[k] { return false }
            }
            return true
        }

        /// Each comma-separated token of `bytes[start..<end]`, without its OWS, as a range.
        func forEachToken(_ start: Int, _ end: Int, _ body: (Int, Int) -> Void) {
            var k = start
            while k < end {
                var tokenEnd = k
                while tokenEnd < end && bytes[tokenEnd] != UInt8(ascii: ",") { tokenEnd += 1 }
                var a = k, b = tokenEnd
                while a < b && isOWS(bytes[a]) { a += 1 }
                while b > a && isOWS(bytes[b - 1]) { b -= 1 }
                body(a, b)
                k = tokenEnd + 1
            }
        }

        // Status line: HTTP/1.x SP 3DIGIT [SP reason]
        guard let status = line(from: 0) else { return .failure(Failure("empty response head")) }
        let s = status.end
        // HTTP-name is case-sensitive (RFC 9112 §2.3).
        guard s >= 12, memcmp(bytes.baseAddress!, "HTTP/1.", 7) == 0,
              bytes[7] == 0x30 || bytes[7] == 0x31, bytes[8] == 0x20,
              (9...11).allSatisfy({ (0x30...0x39).contains(bytes[$0]) }),
              s == 12 || bytes[12] == 0x20
        else { return .failure(Failure("malformed status line")) }
        for k in 0..<s where bytes[k] == 0x0D || bytes[k] == 0 { return .failure(Failure("bare CR or NUL in the response head")) }
        let code = Int(bytes[9] - 0x30) * 100 + Int(bytes[10] - 0x30) * 10 + Int(bytes[11] - 0x30)
        guard (100...599).contains(code) else { return .failure(Failure("status code out of range")) }
        let minor = Int(bytes[7] - 0x30)
        let statusText = head.getSlice(at: head.readerIndex + 9, length: s - 9)!

        // The relayed field lines, as (start, end) offsets, copied into one buffer at the end
        // (see `HeadWriter`).
        var kept: [Int] = []
        kept.reserveCapacity(32)
        func keep(_ start: Int, _ end: Int) {
            kept.append(start)
            kept.append(end)
        }
        var contentLength: UInt64?
        var transferCodings: [String] = []
        var close = false
        var keepAliveToken = false
        var listed: [String] = []
        var contentType: String?
        var contentEncoding: String?
        var upgradesToWebSocket = false
        var webSocketAccept: [UInt8]?
        var acceptCount = 0
        var position = status.next
        while let current = line(from: position) {
            let start = position, end = current.end
            position = current.next
            if start == end { break }  // the empty line ends the head
            guard !isOWS(bytes[start]) else { return .failure(Failure("obsolete line folding")) }
            // memchr over the line for CR, NUL and the colon: a third of the cost of a byte loop.
            let lineStart = bytes.baseAddress! + start
            if memchr(lineStart, 0x0D, end - start) != nil || memchr(lineStart, 0, end - start) != nil {
                return .failure(Failure("bare CR or NUL in the response head"))
            }
            guard let colonAt = memchr(lineStart, Int32(UInt8(ascii: ":")), end - start) else {
                return .failure(Failure("malformed header line"))
            }
            let colon = start + lineStart.distance(to: colonAt.assumingMemoryBound(to: UInt8.self))
            guard colon > start else { return .failure(Failure("malformed header line")) }
            for k in start..<colon where !isTokenByte(bytes[k]) { return .failure(Failure("malformed header name")) }
            let kind = HeaderName.classify(bytes: UnsafeBufferPointer(rebasing: bytes[start..<colon])).0
            var valueStart = colon + 1, valueEnd = end
            while valueStart < valueEnd && isOWS(bytes[valueStart]) { valueStart += 1 }
            while valueEnd > valueStart && isOWS(bytes[valueEnd - 1]) { valueEnd -= 1 }
            switch kind {
            case .contentLength:
                var k = valueStart
                while k <= valueEnd {
                    var itemEnd = k
                    while itemEnd < valueEnd && bytes[itemEnd] != UInt8(ascii: ",") { itemEnd += 1 }
                    var a = k, b = itemEnd
                    while a < b && isOWS(bytes[a]) { a += 1 }
                    while b > a && isOWS(bytes[b - 1]) { b -= 1 }
                    guard b > a, b - a <= 18 else { return .failure(Failure("malformed Content-Length")) }
                    var n: UInt64 = 0
                    for d in a..<b {
                        guard (0x30...0x39).contains(bytes[d]) else { return .failure(Failure("malformed Content-Length")) }
                        n = n * 10 + UInt64(bytes[d] - 0x30)
                    }
                    if let contentLength, contentLength != n { return .failure(Failure("differing Content-Length values")) }
                    contentLength = n
                    k = itemEnd + 1
                }
            case .transferEncoding:
                transferCodings.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[valueStart..<valueEnd]), as: UTF8.self))
            case .connection:
                forEachToken(valueStart, valueEnd) { a, b in
                    if lowerEquals(a, b, "close") {
                        close = true
                    } else if lowerEquals(a, b, "keep-alive") {
                        keepAliveToken = true
                    } else if b > a {
                        listed.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[a..<b]), as: UTF8.self).lowercased())
                    }
                }
            case .hopByHop:
                if code == 101, colon - start == 7, lowerEquals(start, colon, "upgrade") {
                    // `Upgrade: websocket` (RFC 6455 §4.2.2), compared without case.
                    forEachToken(valueStart, valueEnd) { a, b in
                        if lowerEquals(a, b, "websocket") { upgradesToWebSocket = true }
                    }
                }
            case .contentType, .contentEncoding:
                let value = String(decoding: UnsafeBufferPointer(rebasing: bytes[valueStart..<valueEnd]), as: UTF8.self)
                if kind == .contentType { contentType = contentType ?? value } else { contentEncoding = contentEncoding ?? value }
                keep(start, end)
            case .setCookie where !reservedCookies.isEmpty:
                // An upstream cannot set (or clear) the gateway's own session cookies.
                let value = String(decoding: UnsafeBufferPointer(rebasing: bytes[valueStart..<valueEnd]), as: UTF8.self)
                let cookieName = value.prefix { $0 != "=" }.trimmingCharacters(in: .whitespaces)
                if reservedCookies.contains(cookieName) { break }
                keep(start, end)
            default:
                if code == 101, lowerEquals(start, colon, "sec-websocket-accept") {
                    acceptCount += 1
                    webSocketAccept = Array(bytes[valueStart..<valueEnd])
                }
                keep(start, end)
            }
        }
        if acceptCount > 1 { webSocketAccept = nil }  // two answers are no answer
        var fields = ByteBufferAllocator().head(estimate: count) { out in
            for k in stride(from: 0, to: kept.count, by: 2) {
                out.put(UnsafeBufferPointer(rebasing: bytes[kept[k]..<kept[k + 1]]))
                out.put("\r\n")
            }
        }
        if !listed.isEmpty { fields = dropping(listed, from: fields) }

        let keepAlive = minor == 1 ? !close : keepAliveToken && !close
        var body: BodyFraming
        if requestWasHead || code == 204 || code == 304 || (100..<200).contains(code) {
            body = .none
        } else if let last = transferCodings.last {
            // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; chunked must come last,
            // otherwise the body runs to the end of the connection.
            let codings = last.lowercased().split(separator: ",").map { $0.trimmingASCIISpaces() }
            body = codings.last == "chunked" && transferCodings.count == 1 ? .chunked : .untilClose
        } else if let contentLength {
            body = .contentLength(contentLength)
        } else {
            body = .untilClose
        }
        return .success(UpstreamResponseHead(
            version: (1, minor), status: code, statusText: statusText, fields: fields, contentLength: contentLength,
            keepAlive: keepAlive && body != .untilClose, body: body, contentType: contentType, contentEncoding: contentEncoding,
            upgradesToWebSocket: upgradesToWebSocket, webSocketAccept: webSocketAccept))
    }

    /// The relay fields without those a `Connection` field named (rare: built anew).
    package static func dropping(_ names: [String], from fields: ByteBuffer) -> ByteBuffer {
        // Works on bytes: field values may hold obs-text (0x80-0xFF), which a String round
        // trip would turn into U+FFFD. Names are tokens (ASCII), compared case-insensitively.
        let lowered = names.map { Array($0.lowercased().utf8) }
        var out = ByteBuffer()
        let bytes = fields.readableBytesView
        var start = bytes.startIndex
        while start < bytes.endIndex {
            var end = start
            while end < bytes.endIndex, !(bytes[end] == 0x0D && bytes.index(after: end) < bytes.endIndex && bytes[bytes.index(after: end)] == 0x0A) {
                end = bytes.index(after: end)
            }
            let line = bytes[start..<end]
            if !line.isEmpty {
                let name = line.prefix { $0 != UInt8(ascii: ":") }.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
                if !lowered.contains(name) {
                    out.writeBytes(line)
                    out.writeStaticString("\r\n")
                }
            }
            start = end < bytes.endIndex ? bytes.index(end, offsetBy: 2) : end
        }
        return out
    }

    /// RFC 9110 §5.6.2 token characters.
    package static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): return true
        default: return false
        }
    }
}
