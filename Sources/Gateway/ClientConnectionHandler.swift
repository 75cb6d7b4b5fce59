import Access
import Compression
import Config
import CryptoCore
import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import Proxy

/// Serves one client connection: internal endpoints locally, everything else through an
/// upstream connection of this event loop's pool, streaming both ways with backpressure.
///
/// Pipelined requests are queued here and served one at a time, in order. Reads are only
/// held while something is queued, a body has nowhere to go, or the client is not reading
/// its answers, so a plain keep-alive client costs no epoll change per request.
///
/// Memory per connection is bounded by construction: queued requests by `PipelineQueue`
/// (past it the connection ends after the answer in progress), answers by the send
/// buffer's high mark (nothing more is produced while the client does not read), and a
/// client that stops reading is closed after `write_timeout`.
final class ClientConnectionHandler: ChannelDuplexHandler, ExchangeDriver, DeadlineOwner {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    /// Responses are written as bytes: a relayed head is the upstream's own field bytes,
    /// never decoded and encoded again (see `ResponseParser`).
    typealias OutboundOut = ByteBuffer

    enum State {
        case idle
        case proxying(Exchange)
        /// A locally made response was written; the rest of the request body is dropped.
        case local(method: HTTPMethod, uri: String, status: Int, bytes: Int, start: NIODeadline)
        /// The ACS: its form body is read (bounded) before the SAML engine sees it.
        case collectingForm(organization: String, head: HTTPRequestHead, body: ByteBuffer, start: NIODeadline)
        /// The ACS while the replay store records the login's IDs.
        case consuming
    }

    /// A SAMLResponse is at most 256 KiB decoded; base64 and form encoding add some.
    static let maxFormBytes = 512 * 1024

    let shared: GatewayShared
    let loop: LoopContext
    var context: ChannelHandlerContext?
    /// Cached from the channel: each `context.channel` hop costs a retain/release pair.
    var allocator = ByteBufferAllocator()
    var clientWritable = true
    var state: State = .idle
    /// The current request's head arrived and its `.end` has not.
    var requestOpen = false
    /// Parts of later (pipelined) requests, in arrival order.
    var queued = PipelineQueue()
    var drainScheduled = false
    /// The queue overflowed: nothing more is read; the connection ends after the answer in progress.
    var stopReading = false
    var draining = false
    var deferredParserError: HTTPParserError?
    var readPending = false
    var closeAfterResponse = false
    var planner: RequestPlanner
    /// The request being served: its id and whom it is for (one at a time: later pipelined
    /// requests wait in `queued` until this one is logged).
    var label = RequestLabel(id: "-")

    var timers: ClientTimers

    init(shared: GatewayShared, loop: LoopContext, scheme: String, timers: ClientTimers) {
        self.shared = shared
        self.loop = loop
        self.planner = RequestPlanner(shared: shared, loop: loop, peer: nil, scheme: scheme)
        self.timers = timers
    }

    // MARK: - Lifecycle and deadlines

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
        planner = RequestPlanner(shared: shared, loop: loop, peer: context.channel.remoteAddress, scheme: planner.scheme)
        loop.register(self)
        timers.connectionOpened(now: .now())
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        loop.unregister(self)
        self.context = nil
    }

    /// Whether client bytes are still parsed: not after the queue overflowed or a deadline passed.
    var wantsBytes: Bool { !stopReading }

    /// From the raw-bytes observer in front of the decoder.
    func bytesReceived() {
        if timers.wantsByteTimes { timers.bytesReceived(now: .now()) }
    }

    /// Called by the loop's sweep.
    func checkDeadlines(now: NIODeadline) {
        if let expired = timers.expired(now: now), let context {
            timedOut(expired, context: context)
            return
        }
        // The upstream's response deadline; a tunnel's end at its grant's expiry.
        if case .proxying(let exchange) = state {
            let ended = !exchange.tunnelSessions.isEmpty && shared.revocations.containsAny(exchange.tunnelSessions)
            perform(exchange.machine.handle(ended ? .sessionEnded : .tick(now)), exchange)
        }
    }

    func stall() -> (since: NIODeadline?, bytes: Int)? {
        guard let context else { return nil }
        // Only a connection producing an answer (or not reading one) can have bytes waiting.
        if clientWritable, queued.isEmpty, case .idle = state { return nil }
        let buffered = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        guard buffered + queued.bytes > 0 else { return nil }
        let since = clientWritable ? nil : timers.writeDeadline.map { $0 - timers.writeTimeout }
        return (since, buffered + queued.bytes)
    }

    func abortStalled() {
        guard let context else { return }
        shared.logger.info("closed a stalled connection early", metadata: ["reason": "stalled_budget", "peer": "\(planner.peerText ?? "-")"])
        timedOut(.write, context: context)
    }

    /// A client deadline passed (`ClientTimers`): the connection ends. A request whose body
    /// stopped coming is answered `408` when nothing of its answer went out yet.
    func timedOut(_ expired: ClientTimers.Expired, context: ChannelHandlerContext) {
        shared.metrics.clientTimedOut(reason: expired.reason)
        if let message = expired.logMessage {
            shared.logger.info("\(message)", metadata: ["reason": "\(expired.reason)", "peer": "\(planner.peerText ?? "-")"])
        }
        queued.removeAll()
        stopReading = true
        var answerable = expired == .body
        if case .proxying(let exchange) = state {
            drop(exchange)
            answerable = answerable && exchange.status == 0
            logAccess(method: exchange.method, uri: exchange.uri, status: answerable ? 408 : (exchange.status == 0 ? 499 : exchange.status),
                      bytes: exchange.responseBytes, start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
            state = .idle
        } else if case .collectingForm(_, let head, _, let start) = state {
            if answerable { logAccess(method: head.method, uri: head.uri, status: 408, bytes: 0, start: start, upstreamNanoseconds: nil) }
            state = .idle
        } else if case .local(let method, let uri, let status, let bytes, let start) = state {
            answerable = false  // its answer is out; the body it announced never came
            logAccess(method: method, uri: uri, status: status, bytes: bytes, start: start, upstreamNanoseconds: nil)
            state = .idle
        } else {
            answerable = false
        }
        if expired == .write {
            abort(context.channel)
        } else if answerable {
            closeAfterResponse = true
            let answer = HTTP1Response.local(.plain(.requestTimeout, "the request body did not arrive in time"), method: .GET,
                                             hsts: shared.runtime(on: loop).hstsValue, close: true, allocator: allocator)
            context.writeAndFlush(wrapOutboundOut(answer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Drain: finish what is in flight, then close; an idle connection closes now.
            closeAfterResponse = true
            if case .idle = state, !requestOpen { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !stopReading else { return }
        let part = unwrapInboundIn(data)
        // A new request waits while the client is not reading the answers it has: the
        // decoder hands over every request of a read at once, whatever the reads held.
        if !queued.isEmpty || isLaterRequest(part) || (part.isHead && (!clientWritable || !queued.mayStartRequest)) {
            queue(part, context: context)
            return
        }
        dispatch(part)
    }

    /// Keeps a part of a pipelined request for later. When the queue overflows nothing more
    /// is read: the answer in progress finishes and the connection closes.
    func queue(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        guard queued.append(part) else {
            shared.logger.info("closing a connection that pipelined too far ahead", metadata: [
                "queue_limit_bytes": "\(PipelineQueue.maxBytes)", "peer": "\(planner.peerText ?? "-")",
            ])
            stopReading = true
            closeAfterResponse = true
            if case .idle = state, !requestOpen {
                context.writeAndFlush(wrapOutboundOut(allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
            return
        }
    }

    /// A head while a response is still being produced belongs to a pipelined request.
    func isLaterRequest(_ part: HTTPServerRequestPart) -> Bool {
        guard case .head = part else { return false }
        if case .idle = state { return requestOpen }
        return true
    }

    func dispatch(_ part: HTTPServerRequestPart) {
        guard let context else { return }
        switch part {
        case .head(let head):
            requestOpen = true
            queued.requestStarted()
            requestHead(head, context: context)
        case .body(let buffer):
            requestBody(buffer)
        case .end:
            requestOpen = false
            timers.requestEnded()
            requestEnd()
        }
    }

    /// Serves queued requests while the connection is free, then asks for more bytes.
    func drainQueue() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        // Nothing new is produced for a client that is not reading what it has.
        while clientWritable, let part = queued.first {
            if isLaterRequest(part) { break }
            if part.isHead, !queued.mayStartRequest {
                scheduleDrain()  // the other connections first
                return
            }
            dispatch(queued.removeFirst())
        }
        if queued.isEmpty, case .idle = state, !requestOpen, let error = deferredParserError {
            deferredParserError = nil
            respondToParserError(error)
            return
        }
        resumeClientReadsIfPossible()
    }

    /// Goes on with the queue on the loop's next turn, with a fresh allowance.
    func scheduleDrain() {
        guard !drainScheduled else { return }
        drainScheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
        loop.eventLoop.execute {
            let handler = bound.value
            handler.drainScheduled = false
            handler.queued.newTick()
            guard handler.context != nil else { return }
            handler.drainQueue()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        queued.newTick()
        if !queued.isEmpty { scheduleDrain() }
        if case .proxying(let exchange) = state, exchange.wroteUpstreamInThisRead {
            exchange.wroteUpstreamInThisRead = false
            exchange.upstream?.handler.flush(deferredOn: loop)
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clientWritable = context.channel.isWritable
        timers.writabilityChanged(writable: clientWritable, now: .now())
        if clientWritable {
            if case .proxying(let exchange) = state { exchange.upstream?.handler.resumeReads() }
            drainQueue()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if holdsClientReads {
            readPending = true
            timers.readsHeld(true, now: .now())
        } else {
            context.read()
        }
    }

    /// Client reads wait while pipelined requests are queued, or while the request body has
    /// nowhere to go: no upstream yet and a part already buffered, or an upstream that
    /// cannot take more.
    var holdsClientReads: Bool {
        if !queued.isEmpty || !clientWritable || stopReading { return true }
        if case .proxying(let exchange) = state, exchange.tunnel { return exchange.upstream.map { !$0.channel.isWritable } ?? false }
        guard case .proxying(let exchange) = state, !exchange.machine.requestEndReceived else { return false }
        if let upstream = exchange.upstream { return !upstream.channel.isWritable }
        return !exchange.machine.buffered.isEmpty
    }

    func resumeClientReadsIfPossible() {
        guard readPending, !holdsClientReads, let context else { return }
        readPending = false
        timers.readsHeld(false, now: .now())
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .proxying(let exchange) = state {
            let tunnel = exchange.tunnel
            drop(exchange)
            if exchange.status == 0 || tunnel {
                // 499: the client left before an answer; a tunnel it closed is logged as its 101.
                logAccess(method: exchange.method, uri: exchange.uri, status: tunnel ? 101 : 499, bytes: exchange.responseBytes,
                          start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
            }
            state = .idle
        }
        queued.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTPParserError, requestOpen, queued.isEmpty {
            // The current request's own body is malformed (a bad chunk line, say): it can
            // never be completed, so it is not waited for.
            badRequestBody(parserError, context: context)
            return
        }
        if let parserError = error as? HTTPParserError {
            // Nothing of the unreadable request was forwarded. A response in flight (and any
            // request queued before the bad one) is finished first; then the error is
            // answered and the connection closed.
            if case .idle = state, !requestOpen, queued.isEmpty {
                respondToParserError(parserError)
            } else {
                deferredParserError = parserError
            }
            return
        }
        shared.logger.debug("client connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func badRequestBody(_ error: HTTPParserError, context: ChannelHandlerContext) {
        shared.logger.warning("rejected malformed request body", metadata: ["reason": "\(error)", "peer": "\(planner.peerText ?? "-")"])
        requestOpen = false
        stopReading = true
        closeAfterResponse = true
        timers.requestEnded()
        switch state {
        case .proxying(let exchange) where exchange.status == 0:
            drop(exchange)
            state = .idle
            respond(.plain(.badRequest, "malformed request body"), method: exchange.method, uri: exchange.uri, start: exchange.start, close: true)
        case .collectingForm(_, let head, _, let start):
            state = .idle
            respond(.plain(.badRequest, "malformed request body"), method: head.method, uri: head.uri, start: start, close: true)
        case .proxying(let exchange):
            // Its answer is already on the way: the connection can only end.
            drop(exchange)
            logAccess(method: exchange.method, uri: exchange.uri, status: exchange.status, bytes: exchange.responseBytes,
                      start: exchange.start, upstreamNanoseconds: exchange.upstreamNanoseconds)
            state = .idle
            context.close(promise: nil)
        case .local(let method, let uri, let status, let bytes, let start):
            logAccess(method: method, uri: uri, status: status, bytes: bytes, start: start, upstreamNanoseconds: nil)
            state = .idle
            context.writeAndFlush(wrapOutboundOut(allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .idle, .consuming:
            break  // an answer that closes the connection is already on its way
        }
    }

    func respondToParserError(_ error: HTTPParserError) {
        let tooLarge = error == .headerOverflow
        shared.logger.warning("rejected malformed request", metadata: [
            "reason": "\(tooLarge ? "request head over 32 KiB" : "\(error)")", "peer": "\(planner.peerText ?? "-")",
        ])
        label = RequestLabel(id: loop.requestIDs.next())
        respond(.plain(tooLarge ? .requestHeaderFieldsTooLarge : .badRequest, tooLarge ? "request header fields too large" : "bad request"),
                method: .GET, uri: "-", start: .now(), close: true)
    }

    func requestHead(_ received: HTTPRequestHead, context: ChannelHandlerContext) {
        let start = NIODeadline.now()
        timers.headReceived(now: start)
        // After a head asking to switch protocols the decoder reads no further: the
        // connection either becomes a WebSocket tunnel or ends after this response. An
        // HTTP/1.0 message with Transfer-Encoding has faulty framing (RFC 9112 §6.1): the
        // connection ends after it.
        if !received.isKeepAlive || HeaderPolicy.asksUpgrade(received)
            || (received.version < .http1_1 && received.headers.contains(name: "transfer-encoding")) {
            closeAfterResponse = true
        }
        switch planner.plan(received, start: start, label: &label) {
        case .respond(let local, let head, let close):
            respond(local, method: head.method, uri: head.uri, start: start, close: close)
        case .collectBody(let organization, let head):
            state = .collectingForm(organization: organization, head: head, body: allocator.buffer(capacity: 8192), start: start)
        case .proxy(let exchange, let expectContinue):
            state = .proxying(exchange)
            if expectContinue {
                // The gateway answers the expectation itself, once it has decided to forward;
                // the upstream gets no Expect header.
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
            }
            perform(exchange.machine.handle(.start(needsAssertion: exchange.needsAssertion)), exchange)
        }
    }

    // MARK: - Local responses

    func respond(_ local: LocalResponse, method: HTTPMethod, uri: String, start: NIODeadline, close: Bool = false,
                         requestComplete: Bool = false) {
        guard let context else { return }
        if close { closeAfterResponse = true }
        context.write(wrapOutboundOut(HTTP1Response.local(local, method: method, hsts: shared.runtime(on: loop).hstsValue, close: closeAfterResponse,
                                                          allocator: allocator)), promise: nil)
        finishLocalResponse(method: method, uri: uri, status: Int(local.status.code), bytes: method == .HEAD ? 0 : local.body.count,
                            start: start, requestComplete: requestComplete, context: context)
    }

    /// State first, then the end of the response (which may deliver the next request).
    func finishLocalResponse(method: HTTPMethod, uri: String, status: Int, bytes: Int, start: NIODeadline,
                                     requestComplete: Bool, context: ChannelHandlerContext) {
        if closeAfterResponse || requestComplete || !requestOpen {
            logAccess(method: method, uri: uri, status: status, bytes: bytes, start: start, upstreamNanoseconds: nil)
            state = .idle
        } else {
            // The request body is still coming: drop it, then turn to the next request.
            state = .local(method: method, uri: uri, status: status, bytes: bytes, start: start)
        }
        endResponse(lastChunk: false, context: context)
    }

    func finishLocal() {
        guard case .local(let method, let uri, let status, let bytes, let start) = state else { return }
        logAccess(method: method, uri: uri, status: status, bytes: bytes, start: start, upstreamNanoseconds: nil)
        state = .idle
        completeResponseCycle()
    }

    /// The connection is ready for its next request.
    func completeResponseCycle() {
        timers.responseCompleted(now: .now())
        drainQueue()
    }

    // MARK: - Logging

    func logAccess(method: HTTPMethod, uri: String, status: Int, bytes: Int, start: NIODeadline, upstreamNanoseconds: Int64?) {
        shared.logAccess(loop: loop, method: method, uri: uri, status: status, bytes: bytes, start: start,
                         upstreamNanoseconds: upstreamNanoseconds, peer: planner.peerText, label: label)
    }
}
