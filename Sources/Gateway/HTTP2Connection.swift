import HTTP2Session
import HTTPWire
import Logging
import NIOCore
import NIOHTTP1

/// Serves one HTTP/2 connection (`h2` through ALPN, or `h2c` with prior knowledge).
///
/// libnghttp2 (through `HTTP2Session`, the only holder of its pointers) keeps the framing,
/// HPACK and flow-control state: this handler feeds it the bytes received, writes the
/// bytes it produces, and runs each stream (`HTTP2Stream`)
/// through the same `RequestPlanner` and upstream pool as an HTTP/1.1 request. The
/// session is only ever touched on the channel's event loop.
///
/// Request bodies use manual flow control: a DATA payload's window is given back only
/// once the upstream connection could take it, so a slow upstream slows the client
/// rather than filling memory. Response bodies wait per stream, and the stream's upstream
/// stops being read while more than `streamBufferHigh` bytes wait, or while the whole
/// connection holds more than `connectionBufferHigh` (then every stream's upstream stops).
///
/// Deadlines (`checkDeadlines`): a header block must finish within `header_timeout`, a
/// request body must keep coming within `body_timeout`, a response must keep being read
/// within `write_timeout` (each ends its stream), and a connection whose socket stays
/// unwritable for `write_timeout` is closed.
final class HTTP2Connection: ChannelDuplexHandler, DeadlineOwner, HTTP2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let streamWindow: UInt32 = 1 << 20
    static let connectionWindow: Int32 = 16 << 20
    static let streamBufferHigh = 256 * 1024
    static let streamBufferLow = 64 * 1024
    static let connectionBufferHigh = 1024 * 1024
    static let connectionBufferLow = 512 * 1024

    let shared: GatewayShared
    let loop: LoopContext
    private(set) var planner: RequestPlanner
    let maxConcurrentStreams: Int
    private(set) var allocator = ByteBufferAllocator()
    private var context: ChannelHandlerContext?
    private var session: HTTP2Session?
    private var streams: [Int32: HTTP2Stream] = [:]
    /// Streams that wrote to their upstream during this read; flushed at read complete.
    private var upstreamWrites: [HTTP2Stream] = []
    /// Inside `mem_recv` or `mem_send`: nghttp2 must not be re-entered, a send waits.
    private var inSession = false
    private var sendWanted = false
    private var closing = false
    /// A GOAWAY went out or is queued: never a second one (its last stream id could rise).
    private var goingAway = false
    /// The GOAWAY ends the session at once (a flood): it is written even to a peer that
    /// stopped reading.
    private var terminating = false
    private var budget = FrameBudget()
    let timers: ClientTimers
    private var idleTimeout: TimeAmount { timers.idleTimeout }
    private var idleDeadline: NIODeadline?
    /// Set while the socket is unwritable: the client must read again before it.
    private var writeDeadline: NIODeadline?
    /// Response bytes waiting in all streams; over `connectionBufferHigh` every upstream stops.
    private(set) var bufferedResponseBytes = 0
    private var throttled = false

    init(shared: GatewayShared, loop: LoopContext, scheme: String, timers: ClientTimers, maxConcurrentStreams: Int) {
        self.shared = shared
        self.loop = loop
        self.planner = RequestPlanner(shared: shared, loop: loop, peer: nil, scheme: scheme)
        self.timers = timers
        self.maxConcurrentStreams = maxConcurrentStreams
    }

    // MARK: - Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
        planner = RequestPlanner(shared: shared, loop: loop, peer: context.channel.remoteAddress, scheme: planner.scheme)
        session = makeSession()
        loop.register(self)
        idleDeadline = .now() + idleTimeout
        sendNow()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        loop.unregister(self)
        releaseSession()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        for stream in streams.values { stream.connectionClosed() }
        streams.removeAll()
        releaseSession()
        context.fireChannelInactive()
    }

    private func releaseSession() { session = nil }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        shared.logger.debug("client connection error", metadata: ["error": "\(error)", "protocol": "h2"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Drain: GOAWAY now names the last stream that will be served; those finish,
            // then the connection closes (want_read and want_write both turn false).
            goAway(.noError)
            sendNow()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func stall() -> (since: NIODeadline?, bytes: Int)? {
        guard let context else { return nil }
        let buffered = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        guard buffered + bufferedResponseBytes > 0 else { return nil }
        return (writeDeadline.map { $0 - timers.writeTimeout }, buffered + bufferedResponseBytes)
    }

    func abortStalled() {
        guard let context, !closing else { return }
        shared.metrics.clientTimedOut(reason: "write_timeout")
        shared.logger.info("closed a stalled connection early", metadata: ["reason": "stalled_budget", "protocol": "h2", "peer": "\(planner.peerText ?? "-")"])
        closing = true
        abort(context.channel)
    }

    /// Called by the loop's sweep: the streams' deadlines, the socket's, and the idle timeout.
    func checkDeadlines(now: NIODeadline) {
        if let deadline = writeDeadline, deadline <= now, !closing, let context {
            shared.metrics.clientTimedOut(reason: "write_timeout")
            shared.logger.info("closed connection that stopped reading its answer", metadata: [
                "reason": "write_timeout", "protocol": "h2", "peer": "\(planner.peerText ?? "-")",
            ])
            closing = true
            abort(context.channel)
            return
        }
        for stream in Array(streams.values) {
            if stream.checkDeadlines(now: now) == .headerBlockUnfinished {
                // No other frame may come until the block ends: the connection is stuck.
                shared.metrics.clientTimedOut(reason: "header_timeout")
                terminated(reason: "header_timeout", detail: "a header block did not finish within header_timeout")
                goAway(.protocolError)
                sendNow()
                closeAfterWrites()
                return
            }
        }
        if streams.isEmpty, let deadline = idleDeadline, deadline <= now, !closing {
            idleDeadline = nil
            goAway(.noError)
            sendNow()
        }
    }

    // MARK: - Bytes in and out

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session, !closing else { return }
        let bytes = unwrapInboundIn(data)
        inSession = true
        var fatal: HTTP2Session.Fatal?
        bytes.withUnsafeReadableBytes { raw in
            do throws(HTTP2Session.Fatal) { try session.receive(raw) } catch { fatal = error }
        }
        inSession = false
        if let fatal {
            // A fatal error (a library flood limit, a broken preface): the session can send
            // nothing more, so the GOAWAY RFC 9113 §5.4.1 asks for is written here.
            let code: HTTP2Session.ErrorCode = fatal.kind == .flood ? .enhanceYourCalm : .protocolError
            terminated(reason: fatal.kind == .flood ? "flood" : fatal.kind == .badPreface ? "bad_preface" : "protocol_error",
                       detail: fatal.message)
            if !goingAway {
                goingAway = true
                var frame = allocator.buffer(capacity: 17)
                frame.writeBytes([0, 0, 8, FrameBudget.FrameType.goaway.rawValue, 0, 0, 0, 0, 0])
                frame.writeInteger(UInt32(session.lastProcessedStreamID) & 0x7FFF_FFFF)
                frame.writeInteger(code.rawValue)
                context.write(wrapOutboundOut(frame), promise: nil)
            }
            releaseSession()
            closeAfterWrites()
            return
        }
        sendNow()
    }

    /// Queues the one GOAWAY of this connection, naming the last stream nghttp2 processed.
    /// `noError` (a drain, an idle connection) lets the streams up to it finish before the
    /// connection closes; any other code ends the session once the GOAWAY is out.
    private func goAway(_ code: HTTP2Session.ErrorCode) {
        guard let session else { return }
        guard !goingAway else {
            if code != .noError { closeAfterWrites() }  // misbehaving while draining: stop now
            return
        }
        goingAway = true
        if code == .noError {
            session.goAway()
        } else {
            terminating = true
            session.terminate(code)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for stream in upstreamWrites { stream.flushUpstream() }
        upstreamWrites.removeAll(keepingCapacity: true)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeDeadline = nil
            sendNow()
        } else if writeDeadline == nil {
            writeDeadline = .now() + timers.writeTimeout
        }
        context.fireChannelWritabilityChanged()
    }

    /// Writes what the session has to send, while the channel takes more. When terminating
    /// it writes regardless: the GOAWAY must reach a peer that stopped reading (a flood),
    /// and what is queued before it is bounded by the library's and the budget's limits.
    func sendNow() {
        guard let session, let context else { return }
        guard !inSession else {
            sendWanted = true
            return
        }
        inSession = true
        var out = allocator.buffer(capacity: 0)
        repeat {
            sendWanted = false
            while context.channel.isWritable || terminating {
                let chunk: UnsafeRawBufferPointer?
                do {
                    chunk = try session.nextBytesToSend()
                } catch {
                    inSession = false
                    context.close(promise: nil)
                    return
                }
                guard let chunk else { break }
                out.writeBytes(chunk)
                if out.readableBytes >= 64 * 1024 {
                    context.write(wrapOutboundOut(out), promise: nil)
                    out = allocator.buffer(capacity: 0)
                }
            }
        } while sendWanted && (context.channel.isWritable || terminating)
        inSession = false
        if out.readableBytes > 0 { context.write(wrapOutboundOut(out), promise: nil) }
        loop.deferFlush(context)
        if session.isFinished { closeAfterWrites() }
    }

    private func closeAfterWrites() {
        guard !closing, let context else { return }
        closing = true
        context.writeAndFlush(wrapOutboundOut(allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Ends the session with GOAWAY: a flood, a broken preface or another protocol error.
    func terminated(reason: String, detail: String) {
        shared.metrics.http2Terminated(reason: reason)
        shared.logger.warning("closed HTTP/2 connection", metadata: [
            "reason": "\(reason)", "detail": "\(detail)", "peer": "\(planner.peerText ?? "-")",
        ])
    }

    // MARK: - Session setup and what it reports

    private func makeSession() -> HTTP2Session? {
        // `FrameBudget` ends ping, settings, reset and empty-frame floods (GOAWAY with
        // ENHANCE_YOUR_CALM) before the library's own limits on queued ACKs and on resets
        // are reached: those are fatal errors or INTERNAL_ERROR, and would make a second
        // GOAWAY. They stay as a backstop, raised above the budget's burst.
        HTTP2Session(settings: .init(maxConcurrentStreams: maxConcurrentStreams, initialStreamWindow: Self.streamWindow,
                                     connectionWindow: Self.connectionWindow, maxHeaderListSize: GatewayServer.maxRequestHeadBytes,
                                     maxOutboundAck: 4 * Int(FrameBudget.burst), resetBurst: UInt64(4 * FrameBudget.burst),
                                     resetsPerSecond: UInt64(4 * FrameBudget.perSecond)),
                     delegate: self)
    }

    func sessionBeganFrame(_ header: HTTP2Session.FrameHeader) {
        guard session != nil else { return }
        overBudget(!budget.allows(type: header.type, length: header.length, flags: header.flags, now: .now()),
                   detail: "more than \(Int(FrameBudget.burst)) frames that carry no request")
    }

    /// What the gateway sends counts too: a RST_STREAM it sends was caused by the client
    /// (a bad WINDOW_UPDATE, DATA on a closed stream: "MadeYouReset", CVE-2025-8671) or by a
    /// stream given up; each DATA frame earns the client WINDOW_UPDATE credits.
    func sessionSentFrame(_ header: HTTP2Session.FrameHeader) {
        guard session != nil else { return }
        budget.sent(type: header.type)
    }

    /// A frame libnghttp2 refused without ending the session (it answers with RST_STREAM or
    /// ignores it): work the client caused, spent from the budget.
    func sessionRefusedFrame(_ header: HTTP2Session.FrameHeader) {
        overBudget(!budget.invalidFrame(now: .now()), detail: "invalid frames")
    }

    private func overBudget(_ over: Bool, detail: String) {
        guard over, !goingAway, session != nil else { return }
        terminated(reason: "flood", detail: detail)
        goAway(.enhanceYourCalm)
    }

    func sessionBeganRequest(streamID: Int32) {
        streams[streamID] = HTTP2Stream(id: streamID, connection: self)
        idleDeadline = nil
    }

    func sessionReceivedField(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        streams[streamID]?.header(name: name, value: value)
    }

    func sessionReceivedRequestHead(streamID: Int32, endStream: Bool) {
        streams[streamID]?.headersComplete(endStream: endStream)
    }

    /// The request ended: END_STREAM on DATA, or trailers (whose fields are not forwarded).
    func sessionReceivedRequestEnd(streamID: Int32) { streams[streamID]?.requestEnded() }

    func sessionReceivedData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else {
            consume(streamID, bytes.count)
            return
        }
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        stream.body(buffer)
    }

    func sessionClosedStream(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        // A stream that ends before its answer did, reset by either side, may leave work
        // behind at the upstream: it costs more than a frame, so resets of any origin are
        // bounded together (rapid reset and MadeYouReset alike).
        if !stream.answered { overBudget(!budget.streamAbandoned(now: .now()), detail: "streams reset before their answer") }
        stream.closed(errorCode: errorCode)
        if streams.isEmpty { idleDeadline = .now() + idleTimeout }
    }

    func sessionReadBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2Session.BodyRead {
        guard let stream = streams[streamID] else { return .failed }
        return stream.read(into: buffer)
    }

    // MARK: - For streams

    /// Gives `count` bytes of window back to the client.
    func consume(_ streamID: Int32, _ count: Int) {
        guard let session, count > 0 else { return }
        session.consume(streamID: streamID, count: count)
        if !inSession { sendNow() }
    }

    func wroteUpstream(_ stream: HTTP2Stream) { upstreamWrites.append(stream) }

    /// Response bytes entered (positive) or left (negative) a stream's buffer. Crossing the
    /// high mark stops every stream's upstream; falling under the low one lets each go on
    /// whose own buffer is low too.
    func responseBuffered(_ delta: Int) {
        bufferedResponseBytes += delta
        if !throttled, bufferedResponseBytes > Self.connectionBufferHigh {
            throttled = true
            for stream in streams.values { stream.pauseUpstream() }
        } else if throttled, bufferedResponseBytes < Self.connectionBufferLow {
            throttled = false
            for stream in streams.values { stream.resumeUpstreamIfLow() }
        }
    }

    var isThrottled: Bool { throttled }

    /// Ends one stream that broke a deadline (its body stopped coming, its answer is not
    /// read): RST_STREAM CANCEL; the connection serves the others on.
    func timedOut(_ stream: HTTP2Stream, reason: String) {
        shared.metrics.clientTimedOut(reason: reason)
        shared.logger.info("reset HTTP/2 stream", metadata: ["reason": "\(reason)", "stream": "\(stream.id)", "peer": "\(planner.peerText ?? "-")"])
        reset(stream, error: .cancel)
    }

    /// Submits a response head (with Strict-Transport-Security when `hsts` is set); `hasBody`
    /// attaches the stream as its data source.
    func submitResponse(_ stream: HTTP2Stream, status: Int, fields: [(name: [UInt8], value: [UInt8])], hsts: String?, hasBody: Bool) {
        guard let session else { return }
        var all = [(name: Array(":status".utf8), value: Array(String(status).utf8))] + fields
        if let hsts { all.append((Array("strict-transport-security".utf8), Array(hsts.utf8))) }
        session.submitResponse(streamID: stream.id, fields: all, hasBody: hasBody)
        sendNow()
    }

    /// `100 Continue` for a client that waits for it before sending its body.
    func submitContinue(_ stream: HTTP2Stream) {
        guard let session else { return }
        session.submitHeaders(streamID: stream.id, fields: [(Array(":status".utf8), Array("100".utf8))])
        sendNow()
    }

    /// A stream whose response has more bytes ready after its data source said "deferred".
    func resume(_ stream: HTTP2Stream) {
        guard let session else { return }
        session.resumeData(streamID: stream.id)
        sendNow()
    }

    /// Resets one stream (the upstream broke off mid-response, say); the connection goes on.
    func reset(_ stream: HTTP2Stream, error: HTTP2Session.ErrorCode) {
        guard let session else { return }
        session.reset(streamID: stream.id, code: error)
        sendNow()
    }
}

/// Bounds what a client can make the gateway do without asking for anything: frames that
/// carry no request work: SETTINGS, PING, PRIORITY, RST_STREAM, empty DATA, WINDOW_UPDATEs
/// beyond what the DATA sent to it explains, frames libnghttp2 refused; and streams that
/// end before their answer, whoever reset them (rapid reset, and "MadeYouReset", where the
/// client makes the server send the reset). A token bucket: `burst` at once, refilled at
/// `perSecond`. Over budget, the connection ends with GOAWAY (ENHANCE_YOUR_CALM), whatever
/// the library version does on its own.
struct FrameBudget {
    static let burst = 1000.0
    static let perSecond = 200.0

    /// RFC 9113 §6 frame type codes.
    enum FrameType: UInt8 {
        case data = 0, headers, priority, rstStream, settings, pushPromise, ping, goaway, windowUpdate, continuation
    }
    static let endStream: UInt8 = 0x1

    /// A stream closed before its answer was complete (reset by the client, or by the
    /// gateway because of something the client sent) costs this many frames.
    static let abandonedStreamCost = 10.0
    /// WINDOW_UPDATEs the client may send for free: two per DATA frame the gateway sent (the
    /// stream's window and the connection's), at most this many banked.
    static let maxWindowCredits = 1000

    private var tokens = burst
    private var refilled: NIODeadline?
    private var windowCredits = 2

    mutating func allows(type: UInt8, length: Int, flags: UInt8, now: NIODeadline) -> Bool {
        switch FrameType(rawValue: type) {
        case .headers, .continuation, .goaway:
            return true  // request work, bounded by max_concurrent_streams and nghttp2's CONTINUATION limit
        case .data where length > 0 || flags & Self.endStream != 0:
            return true
        case .windowUpdate:
            // A client reading a large response sends one every few DATA frames: those are
            // free. Any more are a flood like PING's.
            if windowCredits > 0 {
                windowCredits -= 1
                return true
            }
            return spend(1, now: now)
        default:
            return spend(1, now: now)
        }
    }

    /// A frame the gateway sent: DATA earns WINDOW_UPDATE credits.
    mutating func sent(type: UInt8) {
        if type == FrameType.data.rawValue { windowCredits = min(Self.maxWindowCredits, windowCredits + 2) }
    }

    /// A frame libnghttp2 refused and answered (or ignored) without ending the session.
    mutating func invalidFrame(now: NIODeadline) -> Bool { spend(1, now: now) }

    /// A stream ended before its answer did.
    mutating func streamAbandoned(now: NIODeadline) -> Bool { spend(Self.abandonedStreamCost, now: now) }

    private mutating func spend(_ cost: Double, now: NIODeadline) -> Bool {
        if let refilled {
            let seconds = Double((now - refilled).nanoseconds) / 1e9
            tokens = min(Self.burst, tokens + seconds * Self.perSecond)
        }
        refilled = now
        tokens -= cost
        return tokens >= 0
    }
}
