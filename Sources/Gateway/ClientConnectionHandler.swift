import Config
import Logging
import NIOCore
import NIOHTTP1

/// Serves one client connection: internal endpoints locally, everything else through an
/// upstream connection of this event loop's pool, streaming both ways with backpressure.
final class ClientConnectionHandler: ChannelDuplexHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case proxying(Exchange)
        /// A locally made response was written; the rest of the request body is dropped.
        case local(method: HTTPMethod, uri: String, status: Int, bytes: Int, start: NIODeadline)
    }

    private let shared: GatewayShared
    private let pool: UpstreamPool
    private let headTimer: HeadTimeoutHandler
    private var context: ChannelHandlerContext?
    private var state: State = .idle
    private var readPending = false
    private var closeAfterResponse = false
    private var peerText: String?
    private var peerBytes: [UInt8]?

    init(shared: GatewayShared, pool: UpstreamPool, headTimer: HeadTimeoutHandler) {
        self.shared = shared
        self.pool = pool
        self.headTimer = headTimer
    }

    // MARK: - Client side

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let address = context.channel.remoteAddress {
            peerText = address.ipAddress
            switch address {
            case .v4(let a): peerBytes = withUnsafeBytes(of: a.address.sin_addr.s_addr) { Array($0) }
            case .v6(let a): peerBytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            default: peerBytes = nil
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): requestHead(head, context: context)
        case .body(let buffer): requestBody(buffer)
        case .end: requestEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .proxying(let exchange) = state, exchange.wroteUpstreamInThisRead {
            exchange.wroteUpstreamInThisRead = false
            exchange.upstream?.handler.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .proxying(let exchange) = state {
            exchange.upstream?.handler.resumeReads()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if holdsClientReads {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Client reads wait while the request body has nowhere to go: no upstream yet and a
    /// part already buffered, or an upstream that cannot take more.
    private var holdsClientReads: Bool {
        guard case .proxying(let exchange) = state, !exchange.requestEndReceived else { return false }
        if let upstream = exchange.upstream { return !upstream.channel.isWritable }
        return !exchange.buffered.isEmpty
    }

    private func resumeClientReadsIfPossible() {
        guard readPending, !holdsClientReads, let context else { return }
        readPending = false
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .proxying(let exchange) = state {
            exchange.timeout?.cancel()
            if let upstream = exchange.upstream {
                // The upstream connection is mid-exchange: its state is unknown, never reuse it.
                upstream.handler.delegate = nil
                upstream.channel.close(promise: nil)
            }
            if !exchange.responseHeadReceived || exchange.status == 0 {
                logAccess(method: exchange.method, uri: exchange.uri, status: 499, bytes: exchange.responseBytes,
                          start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
            }
            state = .idle
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTPParserError {
            // The request head could not be read; nothing was forwarded.
            let tooLarge = parserError == .headerOverflow
            let status: HTTPResponseStatus = tooLarge ? .requestHeaderFieldsTooLarge : .badRequest
            shared.logger.warning("rejected malformed request", metadata: [
                "reason": "\(tooLarge ? "request head over 32 KiB" : "\(parserError)")", "peer": "\(peerText ?? "-")",
            ])
            if case .idle = state {
                respondLocally(status: status, text: tooLarge ? "request header fields too large" : "bad request",
                               method: .GET, uri: "-", close: true)
            } else {
                context.close(promise: nil)
            }
            return
        }
        shared.logger.debug("client connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    private func requestHead(_ received: HTTPRequestHead, context: ChannelHandlerContext) {
        headTimer.headReceived()
        let start = NIODeadline.now()
        if !received.isKeepAlive { closeAfterResponse = true }
        let head: HTTPRequestHead
        switch RequestTarget.normalise(received) {
        case .success(let normalised): head = normalised
        case .failure(let rejection):
            reject(received, .badRequest, rejection.rawValue, reason: rejection.rawValue)
            return
        }

        if head.uri.hasPrefix("/_ssogate/") {
            serveInternal(head)
            return
        }
        if head.method == .CONNECT {
            reject(head, .methodNotAllowed, "CONNECT is not supported", reason: "CONNECT method")
            return
        }
        let body: RequestFraming.Body
        switch RequestFraming.body(of: head) {
        case .success(let b): body = b
        case .failure(let rejection):
            reject(head, .badRequest, "bad request framing", reason: rejection.rawValue)
            return
        }
        var expectContinue = false
        if let expect = head.headers.first(name: "expect") {
            guard expect.lowercased() == "100-continue" else {
                reject(head, .expectationFailed, "unsupported expectation", reason: "Expect other than 100-continue")
                return
            }
            expectContinue = head.version >= .http1_1 && body != .none
        }

        let runtime = shared.runtime
        let upstreamHead = HeaderPolicy.upstreamRequestHead(
            from: head, peer: peerText, peerTrusted: runtime.isTrusted(peer: peerBytes),
            scheme: shared.scheme, bodyFraming: body)
        let exchange = Exchange(method: head.method, uri: head.uri, clientVersion: head.version,
                                clientKeepAlive: head.isKeepAlive, upstreamHead: upstreamHead,
                                requestBody: body, start: start)
        state = .proxying(exchange)
        if expectContinue {
            // The gateway answers the expectation itself, once it has decided to forward;
            // the upstream gets no Expect header.
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }

        if let idle = pool.takeIdle(for: runtime.configuration.upstream) {
            exchange.reusedConnection = true
            attach(idle, to: exchange, runtime: runtime)
        } else {
            connectUpstream(for: exchange, runtime: runtime)
        }
    }

    private func connectUpstream(for exchange: Exchange, runtime: GatewayRuntime) {
        let endpoint = runtime.configuration.upstream
        pool.connect(to: endpoint, timeout: min(runtime.upstreamTimeout, .seconds(10)))
            .assumeIsolated()
            .whenComplete { [weak self] result in
                guard let self else { return }
                guard case .proxying(let current) = self.state, current === exchange else {
                    // The client went away while we connected.
                    if case .success(let connection) = result { connection.channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let connection):
                    self.attach(connection, to: exchange, runtime: runtime)
                case .failure(let error):
                    self.shared.metrics.upstreamFailed(.connect)
                    self.failUpstream(exchange, status: .badGateway, text: "upstream unreachable",
                                      reason: "upstream connect failed", detail: "\(error)")
                }
            }
    }

    private func attach(_ connection: UpstreamConnection, to exchange: Exchange, runtime: GatewayRuntime) {
        exchange.upstream = connection
        connection.handler.delegate = self
        if let context, !context.channel.isWritable { connection.handler.pauseReads() } else { connection.handler.resumeReads() }
        exchange.upstreamSentAt = .now()
        connection.handler.write(.head(exchange.upstreamHead))
        while let part = exchange.buffered.popFirst() {
            exchange.bodyBytesSent += UInt64(part.readableBytes)
            connection.handler.write(.body(.byteBuffer(part)))
        }
        if exchange.requestEndReceived {
            connection.handler.write(.end(nil))
            exchange.requestFullySent = true
        }
        connection.handler.flush()
        exchange.timeout = context?.eventLoop.assumeIsolated().scheduleTask(in: runtime.upstreamTimeout) { [weak self, weak exchange] in
            guard let self, let exchange else { return }
            self.upstreamTimedOut(exchange, after: runtime.upstreamTimeout)
        }
        resumeClientReadsIfPossible()
    }

    private func requestBody(_ buffer: ByteBuffer) {
        guard case .proxying(let exchange) = state else { return }  // local response: drop
        if exchange.responseHeadReceived && exchange.upstream == nil { return }  // upstream answered early
        if let upstream = exchange.upstream {
            exchange.bodyBytesSent += UInt64(buffer.readableBytes)
            upstream.handler.write(.body(.byteBuffer(buffer)))
            exchange.wroteUpstreamInThisRead = true
        } else {
            exchange.buffered.append(buffer)
        }
    }

    private func requestEnd() {
        switch state {
        case .idle:
            return
        case .local:
            finishLocal()
        case .proxying(let exchange):
            exchange.requestEndReceived = true
            if let upstream = exchange.upstream {
                upstream.handler.write(.end(nil))
                upstream.handler.flush()
                exchange.wroteUpstreamInThisRead = false
                exchange.requestFullySent = true
            }
        }
    }

    // MARK: - Upstream side

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard case .proxying(let exchange) = state, let context else { return }
        switch part {
        case .head(let head):
            exchange.timeout?.cancel()
            exchange.timeout = nil
            exchange.responseHeadReceived = true
            exchange.status = Int(head.status.code)
            if let sent = exchange.upstreamSentAt {
                let nanos = (NIODeadline.now() - sent).nanoseconds
                exchange.upstreamNanoseconds = nanos
                shared.metrics.upstreamResponded(afterNanoseconds: nanos)
            }
            exchange.upstreamKeepAlive = head.isKeepAlive
            let framing = ResponseFraming.choose(requestMethod: exchange.method, clientVersion: exchange.clientVersion, upstream: head)
            exchange.responseFraming = framing
            var clientHead = HeaderPolicy.clientResponseHead(from: head, framing: framing)
            if framing == .closeDelimited || !exchange.clientKeepAlive { closeAfterResponse = true }
            if closeAfterResponse {
                if exchange.clientVersion >= .http1_1 { clientHead.headers.add(name: "Connection", value: "close") }
            } else if exchange.clientVersion < .http1_1 {
                clientHead.headers.add(name: "Connection", value: "keep-alive")
            }
            clientHead.version = exchange.clientVersion < .http1_1 ? exchange.clientVersion : .http1_1
            context.write(wrapOutboundOut(.head(clientHead)), promise: nil)
        case .body(let buffer):
            guard exchange.responseFraming != .none else { return }
            exchange.responseBytes += buffer.readableBytes
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            if !context.channel.isWritable { exchange.upstream?.handler.pauseReads() }
        case .end(let trailers):
            finishProxied(exchange, trailers: exchange.responseFraming == .chunked ? trailers : nil)
        }
    }

    func upstreamReadComplete() { context?.flush() }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReadsIfPossible() }
    }

    func upstreamClosed(error: Error?) {
        guard case .proxying(let exchange) = state else { return }
        exchange.upstream = nil
        exchange.timeout?.cancel()
        if exchange.responseHeadReceived {
            // Mid-body: the client cannot be told in-band; end its connection so it sees the cut.
            shared.metrics.upstreamFailed(.closed)
            shared.logger.warning("upstream closed mid-response", metadata: ["path": "\(pathOnly(exchange.uri))"])
            logAccess(method: exchange.method, uri: exchange.uri, status: exchange.status, bytes: exchange.responseBytes,
                      start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
            state = .idle
            context?.close(promise: nil)
            return
        }
        if exchange.mayRetry {
            exchange.retried = true
            exchange.reusedConnection = false
            connectUpstream(for: exchange, runtime: shared.runtime)
            return
        }
        shared.metrics.upstreamFailed(.closed)
        failUpstream(exchange, status: .badGateway, text: "upstream closed the connection",
                     reason: "upstream closed before responding", detail: error.map { "\($0)" } ?? "eof")
    }

    private func upstreamTimedOut(_ exchange: Exchange, after amount: TimeAmount) {
        guard case .proxying(let current) = state, current === exchange, !exchange.responseHeadReceived else { return }
        shared.metrics.upstreamFailed(.timeout)
        failUpstream(exchange, status: .gatewayTimeout, text: "upstream timed out",
                     reason: "no response headers within upstream_timeout",
                     detail: "\(amount.nanoseconds / 1_000_000)ms")
    }

    /// Ends an exchange that has no response yet with a local 502/504.
    private func failUpstream(_ exchange: Exchange, status: HTTPResponseStatus, text: String, reason: String, detail: String) {
        exchange.timeout?.cancel()
        if let upstream = exchange.upstream {
            upstream.handler.delegate = nil
            upstream.channel.close(promise: nil)
            exchange.upstream = nil
        }
        shared.logger.error("upstream failure", metadata: [
            "reason": "\(reason)", "detail": "\(detail)", "status": "\(status.code)", "path": "\(pathOnly(exchange.uri))",
        ])
        // The request body cannot be delivered anywhere now; the connection ends after this answer.
        if !exchange.requestEndReceived { closeAfterResponse = true }
        state = .idle
        respondLocally(status: status, text: text, method: exchange.method, uri: exchange.uri,
                       close: closeAfterResponse, start: exchange.start, requestComplete: exchange.requestEndReceived)
    }

    private func finishProxied(_ exchange: Exchange, trailers: HTTPHeaders?) {
        guard let context else { return }
        exchange.timeout?.cancel()
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            if exchange.requestFullySent && exchange.upstreamKeepAlive {
                pool.release(upstream)
            } else {
                upstream.handler.delegate = nil
                upstream.channel.close(promise: nil)
            }
        }
        logAccess(method: exchange.method, uri: exchange.uri, status: exchange.status, bytes: exchange.responseBytes,
                  start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
        if !exchange.requestEndReceived {
            // The upstream answered before the request body ended (e.g. 413): stop reading it.
            closeAfterResponse = true
        }
        // Settle this connection's state before writing `.end`: NIO's pipeline handler
        // delivers the next pipelined request from inside that write.
        state = .idle
        if closeAfterResponse {
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            completeResponseCycle()
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        }
    }

    // MARK: - Local responses

    private func serveInternal(_ head: HTTPRequestHead) {
        let path = pathOnly(head.uri)
        switch (head.method, path) {
        case (.GET, "/_ssogate/healthz"), (.HEAD, "/_ssogate/healthz"):
            respondLocally(status: .ok, text: "ok", method: head.method, uri: head.uri, close: closeAfterResponse)
        case (.GET, "/_ssogate/metrics"):
            var buffer = context!.channel.allocator.buffer(capacity: 4096)
            buffer.writeBytes(shared.metrics.exposition())
            respondLocally(status: .ok, body: buffer, contentType: "text/plain; version=0.0.4; charset=utf-8",
                           method: head.method, uri: head.uri, close: closeAfterResponse)
        default:
            respondLocally(status: .notFound, text: "not found", method: head.method, uri: head.uri, close: closeAfterResponse)
        }
    }

    private func reject(_ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ text: String, reason: String) {
        shared.logger.warning("rejected request", metadata: [
            "reason": "\(reason)", "status": "\(status.code)", "peer": "\(peerText ?? "-")",
        ])
        respondLocally(status: status, text: text, method: head.method, uri: head.uri, close: true)
    }

    private func respondLocally(status: HTTPResponseStatus, text: String, method: HTTPMethod, uri: String, close: Bool,
                                start: NIODeadline = .now(), requestComplete: Bool = false) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count + 1)
        buffer.writeString(text)
        buffer.writeString("\n")
        respondLocally(status: status, body: buffer, contentType: "text/plain; charset=utf-8", method: method, uri: uri,
                       close: close, start: start, requestComplete: requestComplete)
    }

    private func respondLocally(status: HTTPResponseStatus, body: ByteBuffer, contentType: String, method: HTTPMethod,
                                uri: String, close: Bool, start: NIODeadline = .now(), requestComplete: Bool = false) {
        guard let context else { return }
        if close { closeAfterResponse = true }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        if closeAfterResponse { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let bytes = method == .HEAD ? 0 : body.readableBytes
        // As in finishProxied: state first, then `.end` (which may deliver the next request).
        if closeAfterResponse {
            logAccess(method: method, uri: uri, status: Int(status.code), bytes: bytes, start: start, upstreamNanoseconds: nil)
            state = .idle
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        state = .local(method: method, uri: uri, status: Int(status.code), bytes: bytes, start: start)
        if requestComplete { finishLocal() }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func finishLocal() {
        guard case .local(let method, let uri, let status, let bytes, let start) = state else { return }
        logAccess(method: method, uri: uri, status: status, bytes: bytes, start: start, upstreamNanoseconds: nil)
        state = .idle
        completeResponseCycle()
    }

    /// The connection is ready for its next request.
    private func completeResponseCycle() {
        headTimer.responseCompleted()
        resumeClientReadsIfPossible()
    }

    // MARK: - Logging

    private func logAccess(method: HTTPMethod, uri: String, status: Int, bytes: Int, start: NIODeadline, upstreamNanoseconds: Int64?) {
        shared.metrics.requestFinished(status: status)
        guard let accessLogger = shared.accessLogger else { return }
        let durationMs = Double((NIODeadline.now() - start).nanoseconds) / 1_000_000
        var metadata: Logger.Metadata = [
            "method": "\(method.rawValue)", "path": "\(pathOnly(uri))", "status": "\(status)", "bytes": "\(bytes)",
            "duration_ms": "\(rounded(durationMs))", "peer": "\(peerText ?? "-")",
        ]
        if let upstreamNanoseconds {
            metadata["upstream_ms"] = "\(rounded(Double(upstreamNanoseconds) / 1_000_000))"
        }
        accessLogger.info("request", metadata: metadata)
    }

    private func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}

/// The path of a request target without its query, which may carry tokens.
func pathOnly(_ uri: String) -> Substring {
    if let q = uri.firstIndex(of: "?") { return uri[..<q] }
    return Substring(uri)
}
