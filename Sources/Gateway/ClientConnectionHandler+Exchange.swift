import Compression
import Config
import CryptoCore
import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import Proxy

/// The HTTP/1.1 handler's part of a proxied exchange: carrying out the exchange machine's
/// actions in HTTP/1.1's framing, relaying the upstream's response, and the WebSocket
/// tunnel. The request side, deadlines and local answers are in ClientConnectionHandler.swift.
extension ClientConnectionHandler {
    // MARK: - The exchange's actions

    /// Carries out what the exchange's machine asks for, in HTTP/1.1's framing.
    func perform(_ action: ExchangeMachine.Action, _ exchange: Exchange) {
        switch action {
        case .none, .held:
            return
        case .signAssertion:
            signAssertion(for: exchange)
        case .acquireUpstream(let fresh):
            acquireUpstream(for: exchange, fresh: fresh)
        case .sendRequest(let parts, let end):
            exchange.sendRequest(parts: parts, end: end, loop: loop)
            resumeClientReadsIfPossible()
        case .sendBody(let part):
            exchange.upstream?.handler.sendBody(part)
            exchange.wroteUpstreamInThisRead = true
        case .sendEnd:
            exchange.upstream?.handler.sendEnd()
            exchange.upstream?.handler.flush(deferredOn: loop)
            exchange.wroteUpstreamInThisRead = false
        case .relayHead(let head, let requestComplete):
            relayHead(head, requestComplete: requestComplete, exchange)
        case .openTunnel(let head):
            if let context { startTunnel(exchange, head: head, context: context) }
        case .relayBody(let part):
            relayBody(part, exchange)
        case .finish(let reusable):
            if let rest = exchange.finishRewrite(allocator: allocator) { relayBody(rest, exchange) }
            finishProxied(exchange, reusable: reusable)
        case .cut:
            // The client cannot be told in-band; end its connection so it sees the cut.
            exchange.abandonUpstream()
            shared.logUpstreamCut(uri: exchange.uri)
            logAccess(method: exchange.method, uri: exchange.uri, status: exchange.status, bytes: exchange.responseBytes,
                      start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
            state = .idle
            context?.close(promise: nil)
        case .fail(let failure):
            failUpstream(exchange, failure)
        case .closeTunnel(let grantExpired):
            // A long-lived socket must not outlive the login that authorized it.
            if grantExpired {
                shared.logger.info("closed WebSocket", metadata: ["reason": "session grant expired", "path": "\(pathOnly(exchange.uri))"])
            }
            if let context { endTunnel(exchange, context: context) }
        case .abandonUpstream:
            exchange.abandonUpstream()
        }
    }

    /// Ends the exchange from the client's side: the upstream is dropped, never reused.
    func drop(_ exchange: Exchange) {
        _ = exchange.machine.handle(.clientGone)
        exchange.abandonUpstream()
    }

    var eventLoopContext: LoopContext { loop }
    func allowsUpstreamReadsOnAttach() -> Bool { clientWritable }

    func isServing(_ exchange: Exchange) -> Bool {
        if case .proxying(let current) = state { return current === exchange }
        return false
    }

    func requestBody(_ buffer: ByteBuffer) {
        if case .collectingForm(let organization, let head, var body, let start) = state {
            guard body.readableBytes + buffer.readableBytes <= Self.maxFormBytes else {
                state = .idle
                respond(.plain(.payloadTooLarge, "form too large"), method: head.method, uri: head.uri, start: start, close: true)
                return
            }
            var part = buffer
            body.writeBuffer(&part)
            state = .collectingForm(organization: organization, head: head, body: body, start: start)
            return
        }
        guard case .proxying(let exchange) = state else { return }  // local response: drop
        perform(exchange.machine.handle(.requestBody(buffer)), exchange)
    }

    func requestEnd() {
        switch state {
        case .idle:
            return
        case .collectingForm(let organization, let head, let body, let start):
            state = .consuming
            planner.answerCollected(organization: organization, head: head, body: body, requestID: label.id, trace: label.trace?.parent,
                                    on: loop.eventLoop).assumeIsolated().whenComplete { result in
                guard case .consuming = self.state else { return }
                self.state = .idle
                let answer = (try? result.get()) ?? .plain(.internalServerError, "could not finish the login")
                self.respond(answer, method: head.method, uri: head.uri, start: start)
            }
        case .consuming:
            return
        case .local:
            finishLocal()
        case .proxying(let exchange):
            perform(exchange.machine.handle(.requestEnd), exchange)
        }
    }

    // MARK: - Upstream side

    func upstreamReceived(_ event: ResponseParser.Event) {
        guard case .proxying(let exchange) = state else { return }
        switch event {
        case .head(let head): perform(exchange.machine.handle(.upstreamHead(head, now: .now())), exchange)
        case .body(let buffer): perform(exchange.machine.handle(.upstreamBody(buffer)), exchange)
        case .end: perform(exchange.machine.handle(.upstreamEnd), exchange)
        }
    }

    func relayHead(_ received: UpstreamResponseHead, requestComplete: Bool, _ exchange: Exchange) {
        guard let context else { return }
        if let nanos = exchange.upstreamNanoseconds { loop.upstreamLatency.record(nanoseconds: nanos) }
        var framing = ResponseFraming.choose(requestMethod: exchange.method, clientVersion: exchange.clientVersion, upstream: received.body)
        var head = received
        if exchange.prepareBanner(for: head, hasBody: framing != .none) {
            // The length changes: the body goes out chunked (close-delimited for HTTP/1.0).
            framing = exchange.clientVersion >= .http1_1 ? .chunked : .closeDelimited
            head.contentLength = nil
        }
        exchange.responseFraming = framing
        if framing == .closeDelimited || !exchange.clientKeepAlive || !requestComplete { closeAfterResponse = true }
        context.write(wrapOutboundOut(HTTP1Response.relayedHead(head, framing: framing, clientVersion: exchange.clientVersion,
                                                                 sessionCookie: exchange.sessionCookie, hsts: exchange.hsts,
                                                                 close: closeAfterResponse, allocator: allocator)), promise: nil)
    }

    func relayBody(_ buffer: ByteBuffer, _ exchange: Exchange) {
        guard let context else { return }
        if exchange.tunnel {
            exchange.responseBytes += buffer.readableBytes
            context.write(wrapOutboundOut(compacted(buffer, allocator: allocator)), promise: nil)
            if !clientWritable { exchange.upstream?.handler.pauseReads() }
            return
        }
        guard exchange.responseFraming != .none else { return }
        let rewritten: ByteBuffer?
        do {
            rewritten = try exchange.rewrite(buffer, allocator: allocator)
        } catch {
            // The head is out; a corrupt body can only end the connection.
            shared.logger.warning("upstream sent a corrupt compressed body", metadata: ["path": "\(pathOnly(exchange.uri))"])
            drop(exchange)
            state = .idle
            context.close(promise: nil)
            return
        }
        guard let buffer = rewritten.map({ compacted($0, allocator: allocator) }) else { return }
        exchange.responseBytes += buffer.readableBytes
        if exchange.responseFraming == .chunked {
            context.write(wrapOutboundOut(ChunkFraming.header(buffer.readableBytes, allocator: allocator)), promise: nil)
            context.write(wrapOutboundOut(buffer), promise: nil)
            context.write(wrapOutboundOut(ChunkFraming.crlf), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
        if !clientWritable { exchange.upstream?.handler.pauseReads() }
    }

    func upstreamReadComplete() {
        if let context { loop.deferFlush(context) }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReadsIfPossible() }
    }

    func upstreamClosed(error: Error?) {
        guard case .proxying(let exchange) = state else { return }
        exchange.upstream = nil  // gone: nothing more comes from it, nothing goes to it
        perform(exchange.machine.handle(.upstreamClosed(error)), exchange)
    }

    /// Ends an exchange that has no response yet with a local 502/504.
    func failUpstream(_ exchange: Exchange, _ failure: UpstreamFailure) {
        exchange.abandonUpstream()
        shared.logUpstreamFailure(failure, uri: exchange.uri)
        // The request body cannot be delivered anywhere now; the connection ends after this answer.
        let requestComplete = exchange.machine.requestEndReceived
        if !requestComplete { closeAfterResponse = true }
        state = .idle
        respond(.plain(failure.status, failure.text), method: exchange.method, uri: exchange.uri, start: exchange.start,
                requestComplete: requestComplete)
    }

    func finishProxied(_ exchange: Exchange, reusable: Bool) {
        guard let context else { return }
        exchange.releaseUpstream(reusable: reusable, to: loop.pool)
        logAccess(method: exchange.method, uri: exchange.uri, status: exchange.status, bytes: exchange.responseBytes,
                  start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
        // The upstream answered before the request body ended (e.g. 413): the rest of the
        // body is not read; the connection closes after this response (decided at the head).
        state = .idle
        endResponse(lastChunk: exchange.responseFraming == .chunked, context: context)
    }

    /// Ends the response on the wire, then either closes or turns to the next request.
    func endResponse(lastChunk: Bool, context: ChannelHandlerContext) {
        if closeAfterResponse {
            // Close once the last bytes are written: a close with writes still queued drops them.
            let last = lastChunk ? ChunkFraming.last : allocator.buffer(capacity: 0)
            context.writeAndFlush(wrapOutboundOut(last)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        if lastChunk { context.write(wrapOutboundOut(ChunkFraming.last), promise: nil) }
        loop.deferFlush(context)
        if !requestOpen { completeResponseCycle() }
    }

    // MARK: - WebSocket tunnel

    /// The upstream accepted a WebSocket upgrade: relays its 101 and from then on moves bytes
    /// both ways unchanged. The HTTP decoder leaves the pipeline, handing any bytes it held
    /// to a `TunnelRelay` in its place.
    func startTunnel(_ exchange: Exchange, head: UpstreamResponseHead, context: ChannelHandlerContext) {
        timers.tunnelOpened()
        var out = allocator.buffer(capacity: head.fields.readableBytes + 96)
        out.writeStaticString("HTTP/1.1 ")
        out.writeImmutableBuffer(head.statusText)
        out.writeStaticString("\r\n")
        out.writeImmutableBuffer(head.fields)
        out.writeStaticString("Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        let pipeline = context.pipeline.syncOperations
        do {
            try pipeline.addHandler(TunnelRelay(owner: self), position: .before(self))
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            endTunnel(exchange, context: context)
        }
    }

    /// Client bytes of an open tunnel, for the upstream.
    func tunnelReceived(_ buffer: ByteBuffer) {
        guard case .proxying(let exchange) = state, exchange.tunnel else { return }
        perform(exchange.machine.handle(.requestBody(buffer)), exchange)
    }

    /// Ends a tunnel from either side (or at the grant's expiry): both connections close.
    func endTunnel(_ exchange: Exchange, context: ChannelHandlerContext) {
        drop(exchange)
        logAccess(method: exchange.method, uri: exchange.uri, status: 101, bytes: exchange.responseBytes,
                  start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
        state = .idle
        context.writeAndFlush(wrapOutboundOut(allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
