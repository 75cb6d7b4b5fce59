import Access
import HTTP2Session
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import Proxy

/// One HTTP/2 request stream: its head is assembled from the header callbacks, planned by
/// the same `RequestPlanner` as an HTTP/1.1 request, and answered locally or proxied over
/// an HTTP/1.1 upstream connection. The response body waits in `pending` until nghttp2
/// asks for it (`read`), frame by frame, within the client's flow-control window.
final class HTTP2Stream: ExchangeDriver {
    private enum State {
        case head
        /// Answered here; request body bytes are dropped.
        case local
        case collectingForm(organization: String, head: HTTPRequestHead, body: ByteBuffer)
        case proxying(Exchange)
        case done
    }

    let id: Int32
    private unowned let connection: HTTP2Connection
    private var state: State = .head
    private let start = NIODeadline.now()
    /// The request's id and whom it is for (set by the planner), for the access log.
    private var label = RequestLabel(id: "-")

    // The request head as received.
    private var method: Substring?
    private var path: String?
    private var authority: String?
    private var headers = HTTPHeaders()
    private var cookies: [String] = []
    private var headBytes = 0
    private var malformed: String?
    private var requestEnd = false

    // The response body on its way to nghttp2.
    private var pending = CircularBuffer<ByteBuffer>()
    private var pendingBytes = 0
    private var responseEnded = false
    private var deferred = false
    private var upstreamPaused = false
    /// Request body bytes forwarded but not yet given back as window (upstream was full).
    private var unconsumed = 0
    /// When request body bytes last arrived (or the head), and when nghttp2 last took
    /// response bytes (or the first waited): the stream's body and write deadlines.
    private var lastBodyActivity: NIODeadline
    private var lastWriteProgress: NIODeadline

    enum Deadline { case headerBlockUnfinished }

    /// The whole answer was handed to nghttp2 (the stream may still be closing).
    var answered: Bool { responseEnded && pending.isEmpty }

    init(id: Int32, connection: HTTP2Connection) {
        self.id = id
        self.connection = connection
        lastBodyActivity = start
        lastWriteProgress = start
    }

    // MARK: - The request

    func header(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        headBytes += name.count + value.count + 32  // RFC 9113 §6.5.2's accounting
        guard headBytes <= GatewayServer.maxRequestHeadBytes else {
            malformed = malformed ?? "request header fields too large"
            return
        }
        // nghttp2 already refused uppercase names, connection-specific fields and bad
        // pseudo-header order; values with bytes a String cannot carry are refused here.
        guard let nameText = String(validating: name, as: UTF8.self), let valueText = String(validating: value, as: UTF8.self) else {
            malformed = malformed ?? "header value is not UTF-8"
            return
        }
        switch nameText {
        case ":method": method = Substring(valueText)
        case ":path": path = valueText
        case ":authority": authority = valueText
        case ":scheme", ":protocol": break
        case "cookie": cookies.append(valueText)  // RFC 9113 §8.2.3: several fields, one header upstream
        case "host": if authority == nil { headers.add(name: "host", value: valueText) }
        default: headers.add(name: nameText, value: valueText)
        }
    }

    func headersComplete(endStream: Bool) {
        requestEnd = endStream
        guard let method, let path, malformed == nil, method != "CONNECT" else {
            label.id = connection.loop.requestIDs.next()
            refuseHead()
            return
        }
        if let authority {
            headers.remove(name: "host")
            headers.replaceOrAdd(name: "host", value: authority)
        }
        if !cookies.isEmpty { headers.add(name: "cookie", value: cookies.joined(separator: "; ")) }
        let head = HTTPRequestHead(version: HTTPVersion(major: 2, minor: 0), method: HTTPMethod(rawValue: String(method)),
                                   uri: path, headers: headers)
        let framing: RequestFraming.Body
        if endStream {
            framing = .none
        } else if let length = headers.first(name: "content-length").flatMap(UInt64.init) {
            framing = .contentLength(length)  // nghttp2 checks the DATA frames add up to it
        } else {
            framing = .chunked
        }
        switch connection.planner.plan(head, start: start, bodyFraming: framing, label: &label) {
        case .respond(let local, let head, _):
            respond(local, method: head.method, uri: head.uri)
        case .collectBody(let organization, let head):
            state = .collectingForm(organization: organization, head: head, body: connection.allocator.buffer(capacity: 8192))
            if requestEnd { requestEnded() }
        case .proxy(let exchange, let expectContinue):
            state = .proxying(exchange)
            if requestEnd { _ = exchange.machine.handle(.requestEnd) }
            if expectContinue { connection.submitContinue(self) }
            perform(exchange.machine.handle(.start(needsAssertion: exchange.needsAssertion)), exchange)
        }
    }

    /// A head that is never planned: malformed, CONNECT, or without `:method` or `:path`.
    private func refuseHead() {
        if let malformed {
            let status: HTTPResponseStatus = malformed.contains("too large") ? .requestHeaderFieldsTooLarge : .badRequest
            connection.planner.rejected(status, reason: malformed)
            respond(.plain(status, malformed == "header value is not UTF-8" ? "bad request" : malformed), method: .GET, uri: path ?? "-")
        } else if method == "CONNECT" {
            // RFC 9113 §8.5: CONNECT has no :path. The gateway tunnels nothing: refused at
            // once, before anything waits on a path that will not come.
            connection.planner.rejected(.methodNotAllowed, reason: "CONNECT method")
            respond(.plain(.methodNotAllowed, "CONNECT is not supported"), method: .CONNECT, uri: authority ?? "-")
        } else {
            // nghttp2 refuses a request without them; should one pass, it is still answered.
            respond(.plain(.badRequest, "bad request"), method: .GET, uri: "-")
        }
    }

    func body(_ buffer: ByteBuffer) {
        lastBodyActivity = .now()
        switch state {
        case .collectingForm(let organization, let head, var body):
            connection.consume(id, buffer.readableBytes)
            guard body.readableBytes + buffer.readableBytes <= ClientConnectionHandler.maxFormBytes else {
                respond(.plain(.payloadTooLarge, "form too large"), method: head.method, uri: head.uri)
                return
            }
            var part = buffer
            body.writeBuffer(&part)
            state = .collectingForm(organization: organization, head: head, body: body)
        case .proxying(let exchange):
            // The window is given back once the upstream takes the bytes.
            let count = buffer.readableBytes
            switch exchange.machine.handle(.requestBody(buffer)) {
            case .held:
                unconsumed += count
            case .sendBody(let part):
                guard let upstream = exchange.upstream else { return }
                upstream.handler.sendBody(part)
                connection.wroteUpstream(self)
                if upstream.channel.isWritable { connection.consume(id, count) } else { unconsumed += count }
            default:
                connection.consume(id, count)
            }
        case .head, .local, .done:
            connection.consume(id, buffer.readableBytes)
        }
    }

    func requestEnded() {
        requestEnd = true
        switch state {
        case .collectingForm(let organization, let head, let body):
            state = .local
            connection.planner.answerCollected(organization: organization, head: head, body: body, requestID: label.id, trace: label.trace?.parent,
                                               on: connection.loop.eventLoop)
                .assumeIsolated().whenComplete { result in
                    guard case .local = self.state else { return }  // the stream closed meanwhile
                    let answer = (try? result.get()) ?? .plain(.internalServerError, "could not finish the login")
                    self.respond(answer, method: head.method, uri: head.uri)
                }
        case .proxying(let exchange):
            perform(exchange.machine.handle(.requestEnd), exchange)
        case .head, .local, .done:
            break
        }
    }

    func flushUpstream() {
        if case .proxying(let exchange) = state { exchange.upstream?.handler.flush(deferredOn: connection.loop) }
    }

    // MARK: - Upstream

    /// Carries out what the exchange's machine asks for, in HTTP/2's framing.
    func perform(_ action: ExchangeMachine.Action, _ exchange: Exchange) {
        switch action {
        case .none, .held:
            return
        case .signAssertion:
            signAssertion(for: exchange)
        case .acquireUpstream(let fresh):
            acquireUpstream(for: exchange, fresh: fresh)
        case .sendRequest(let parts, let end):
            exchange.sendRequest(parts: parts, end: end, loop: connection.loop)
            if exchange.upstream?.channel.isWritable == true { giveBackWindow() }
        case .sendBody(let part):
            exchange.upstream?.handler.sendBody(part)
            connection.wroteUpstream(self)
        case .sendEnd:
            exchange.upstream?.handler.sendEnd()
            connection.wroteUpstream(self)
        case .relayHead(let head, _):
            relayHead(head, exchange)
        case .relayBody(let part):
            relayBody(part, exchange)
        case .finish(let reusable):
            if let rest = exchange.finishRewrite(allocator: connection.allocator) { enqueue(rest) }
            exchange.releaseUpstream(reusable: reusable, to: connection.loop.pool)
            logAccess(status: exchange.status, bytes: exchange.responseBytes, exchange: exchange)
            state = .done
            responseEnded = true
            if deferred { resumeOutput() }
        case .cut, .openTunnel, .closeTunnel:
            // Only this stream is cut; the connection serves the others on. (HTTP/2 relays
            // no upgrade, so a tunnel cannot open here.)
            exchange.abandonUpstream()
            shared.logUpstreamCut(uri: exchange.uri)
            logAccess(status: exchange.status, bytes: exchange.responseBytes, exchange: exchange)
            state = .done
            connection.reset(self, error: .internalError)
        case .fail(let failure):
            failUpstream(exchange, failure)
        case .abandonUpstream:
            exchange.abandonUpstream()
        }
    }

    private var shared: GatewayShared { connection.shared }

    var eventLoopContext: LoopContext { connection.loop }

    /// The stream's upstream is not read while its own buffer or the connection's is full.
    func allowsUpstreamReadsOnAttach() -> Bool {
        if connection.isThrottled { upstreamPaused = true }
        return !upstreamPaused
    }

    func isServing(_ exchange: Exchange) -> Bool {
        if case .proxying(let current) = state { return current === exchange }
        return false
    }

    private func giveBackWindow() {
        let count = unconsumed
        unconsumed = 0
        connection.consume(id, count)
    }

    func upstreamReceived(_ event: ResponseParser.Event) {
        guard case .proxying(let exchange) = state else { return }
        switch event {
        case .head(let head): perform(exchange.machine.handle(.upstreamHead(head, now: .now())), exchange)
        case .body(let buffer): perform(exchange.machine.handle(.upstreamBody(buffer)), exchange)
        case .end: perform(exchange.machine.handle(.upstreamEnd), exchange)
        }
    }

    private func relayHead(_ head: UpstreamResponseHead, _ exchange: Exchange) {
        if let nanos = exchange.upstreamNanoseconds { connection.loop.upstreamLatency.record(nanoseconds: nanos) }
        let hasBody = exchange.method != .HEAD && head.body != .none
        let injecting = exchange.prepareBanner(for: head, hasBody: hasBody)
        var fields = Self.lowercasedFields(head.fields)
        if let clear = exchange.sessionCookie { fields.append((Array("set-cookie".utf8), Array(clear.utf8))) }
        if let length = head.contentLength, !injecting, head.status != 204 {
            fields.append((Array("content-length".utf8), Array(String(length).utf8)))
        }
        exchange.responseFraming = hasBody ? .contentLength : .none
        // The runtime's value, read once when the request was planned.
        connection.submitResponse(self, status: head.status, fields: fields, hsts: exchange.hsts, hasBody: hasBody)
    }

    private func relayBody(_ buffer: ByteBuffer, _ exchange: Exchange) {
        guard exchange.responseFraming != .none else { return }
        do {
            if let rewritten = try exchange.rewrite(buffer, allocator: connection.allocator) { enqueue(rewritten) }
        } catch {
            shared.logger.warning("upstream sent a corrupt compressed body", metadata: ["path": "\(pathOnly(exchange.uri))"])
            _ = exchange.machine.handle(.clientGone)
            exchange.abandonUpstream()
            state = .done
            connection.reset(self, error: .internalError)
        }
    }

    private func enqueue(_ received: ByteBuffer) {
        guard case .proxying(let exchange) = state else { return }
        let buffer = compacted(received, allocator: connection.allocator)
        exchange.responseBytes += buffer.readableBytes
        if pending.isEmpty { lastWriteProgress = .now() }
        pending.append(buffer)
        pendingBytes += buffer.readableBytes
        connection.responseBuffered(buffer.readableBytes)
        if pendingBytes > HTTP2Connection.streamBufferHigh || connection.isThrottled { pauseUpstream() }
        if deferred { resumeOutput() }
    }

    /// Stops reading this stream's upstream (its own buffer, or the connection's, is full).
    func pauseUpstream() {
        guard !upstreamPaused else { return }
        upstreamPaused = true
        if case .proxying(let exchange) = state { exchange.upstream?.handler.pauseReads() }
    }

    /// Reads the upstream again once both this stream's and the connection's buffers are low.
    func resumeUpstreamIfLow() {
        guard upstreamPaused, pendingBytes < HTTP2Connection.streamBufferLow, !connection.isThrottled else { return }
        upstreamPaused = false
        if case .proxying(let exchange) = state { exchange.upstream?.handler.resumeReads() }
    }

    private func resumeOutput() {
        deferred = false
        connection.resume(self)
    }

    func upstreamReadComplete() { connection.sendNow() }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { giveBackWindow() }
    }

    func upstreamClosed(error: Error?) {
        guard case .proxying(let exchange) = state else { return }
        exchange.upstream = nil  // gone: nothing more comes from it, nothing goes to it
        perform(exchange.machine.handle(.upstreamClosed(error)), exchange)
    }

    /// The stream's deadlines (`ClientTimers`' rules, per stream): a header block that does
    /// not finish is the connection's problem (returned); a body that stops coming or an
    /// answer nobody reads ends this stream; the upstream's answer has `upstream_timeout`.
    func checkDeadlines(now: NIODeadline) -> Deadline? {
        let timers = connection.timers
        switch state {
        case .head:
            return now - start >= timers.headerTimeout ? .headerBlockUnfinished : nil
        case .done:
            return nil
        case .local, .collectingForm, .proxying:
            break
        }
        if !pending.isEmpty, now - lastWriteProgress >= timers.writeTimeout {
            abandon(status: 499)
            connection.timedOut(self, reason: "write_timeout")
            return nil
        }
        // The body clock runs only while the gateway wants the bytes (window not withheld).
        if !requestEnd, unconsumed == 0, now - lastBodyActivity >= timers.bodyTimeout {
            abandon(status: 408)
            connection.timedOut(self, reason: "body_timeout")
            return nil
        }
        if case .proxying(let exchange) = state {
            let ended = !exchange.tunnelSessions.isEmpty && shared.revocations.containsAny(exchange.tunnelSessions)
            perform(exchange.machine.handle(ended ? .sessionEnded : .tick(now)), exchange)
        }
        return nil
    }

    /// Gives up a stream the gateway is about to reset: its upstream, its buffer, its log line.
    private func abandon(status: Int) {
        if case .proxying(let exchange) = state {
            _ = exchange.machine.handle(.clientGone)
            exchange.abandonUpstream()
            logAccess(status: exchange.status == 0 ? status : exchange.status, bytes: exchange.responseBytes, exchange: exchange)
        }
        state = .done
        dropPending()
    }

    private func dropPending() {
        connection.responseBuffered(-pendingBytes)
        pending.removeAll()
        pendingBytes = 0
    }

    private func failUpstream(_ exchange: Exchange, _ failure: UpstreamFailure) {
        exchange.abandonUpstream()
        connection.shared.logUpstreamFailure(failure, uri: exchange.uri)
        respond(.plain(failure.status, failure.text), method: exchange.method, uri: exchange.uri, upstreamNanoseconds: exchange.upstreamNanoseconds)
    }

    // MARK: - The response

    /// Answers with a locally made response and logs it.
    private func respond(_ local: LocalResponse, method: HTTPMethod, uri: String, upstreamNanoseconds: Int64? = nil) {
        state = .local
        var fields = local.headers.map { (Array($0.0.lowercased().utf8), Array($0.1.utf8)) }
        fields.append((Array("content-length".utf8), Array(String(local.body.count).utf8)))
        let hasBody = method != .HEAD && !local.body.isEmpty
        dropPending()
        if hasBody {
            lastWriteProgress = .now()
            pending.append(connection.allocator.buffer(bytes: local.body))
            pendingBytes = local.body.count
            connection.responseBuffered(pendingBytes)
        }
        responseEnded = true
        connection.submitResponse(self, status: Int(local.status.code), fields: fields, hsts: connection.shared.runtime(on: connection.loop).hstsValue,
                                  hasBody: hasBody)
        connection.shared.logAccess(loop: connection.loop, method: method, uri: uri, status: Int(local.status.code),
                                    bytes: hasBody ? local.body.count : 0, start: start, upstreamNanoseconds: upstreamNanoseconds,
                                    peer: connection.planner.peerText, label: label)
    }

    /// The session's data source: copies what is pending, up to the frame's room, into a
    /// DATA frame.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> HTTP2Session.BodyRead {
        var written = 0
        while written < buffer.count, var first = pending.first {
            let count = min(first.readableBytes, buffer.count - written)
            first.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[written..<written + count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
            }
            first.moveReaderIndex(forwardBy: count)
            written += count
            if first.readableBytes == 0 { pending.removeFirst() } else { pending[pending.startIndex] = first }
        }
        pendingBytes -= written
        if written > 0 {
            lastWriteProgress = .now()
            connection.responseBuffered(-written)
        }
        resumeUpstreamIfLow()
        if pending.isEmpty {
            if responseEnded { return .bytes(written, end: true) }
            if written == 0 {
                deferred = true
                return .deferred
            }
        }
        return .bytes(written, end: false)
    }

    // MARK: - The end

    /// nghttp2 closed the stream: finished, or reset by either side.
    func closed(errorCode: UInt32) {
        if case .proxying(let exchange) = state {
            // Reset before the response ended: the upstream is mid-exchange, never reused.
            _ = exchange.machine.handle(.clientGone)
            exchange.abandonUpstream()
            logAccess(status: exchange.status == 0 ? 499 : exchange.status, bytes: exchange.responseBytes, exchange: exchange)
        }
        state = .done
        dropPending()
    }

    /// The client connection went away with this stream open.
    func connectionClosed() { closed(errorCode: HTTP2Session.ErrorCode.cancel.rawValue) }

    private func logAccess(status: Int, bytes: Int, exchange: Exchange) {
        connection.shared.logAccess(loop: connection.loop, method: exchange.method, uri: exchange.uri, status: status, bytes: bytes,
                                    start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds, peer: connection.planner.peerText,
                                    label: label)
    }

    /// The upstream's relay fields (`Name: value\r\n` lines, hop-by-hop and framing fields
    /// already gone) as HTTP/2 fields, whose names must be lower case (RFC 9113 §8.2.1).
    static func lowercasedFields(_ fields: ByteBuffer) -> [(name: [UInt8], value: [UInt8])] {
        var out: [(name: [UInt8], value: [UInt8])] = []
        let bytes = Array(fields.readableBytesView)
        var start = 0
        while start < bytes.count {
            var end = start
            while end + 1 < bytes.count, !(bytes[end] == 0x0D && bytes[end + 1] == 0x0A) { end += 1 }
            if end + 1 >= bytes.count { end = bytes.count }
            if let colon = bytes[start..<end].firstIndex(of: UInt8(ascii: ":")) {
                let name = bytes[start..<colon].map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
                var valueStart = colon + 1, valueEnd = end
                while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
                while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
                out.append((name, Array(bytes[valueStart..<valueEnd])))
            }
            start = end + 2
        }
        return out
    }
}
