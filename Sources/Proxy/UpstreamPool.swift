import Config
import HTTPWire
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A keep-alive connection to the upstream, with the handler that relays its responses.
package final class UpstreamConnection {
    package let channel: Channel
    package let handler: UpstreamHandler
    package let endpoint: GatewayConfiguration.Endpoint
    /// The TLS context it was made with (a reload makes new ones: older connections are not reused).
    let tls: NIOSSLContext?
    fileprivate var idleSince = NIODeadline.distantPast

    package init(channel: Channel, handler: UpstreamHandler, endpoint: GatewayConfiguration.Endpoint, tls: NIOSSLContext? = nil) {
        self.channel = channel
        self.handler = handler
        self.endpoint = endpoint
        self.tls = tls
    }
}

/// Idle upstream connections of one event loop. Client connections and the upstream
/// connections they use live on the same loop, so a proxied byte never changes thread and
/// nothing here needs a lock. Only ever touched on `eventLoop`.
package final class UpstreamPool {
    package let eventLoop: EventLoop
    private var idle: [UpstreamConnection] = []
    private let maxIdle: Int
    private let idleTimeout: TimeAmount

    /// Set by the loop's sweep while answers waiting for clients hold more than half the
    /// loop's budget: upstream reads are then small (`UpstreamHandler.read`).
    package let pressure = LoopPressure()

    package init(eventLoop: EventLoop, maxIdle: Int = 128, idleTimeout: TimeAmount = .seconds(30)) {
        self.eventLoop = eventLoop
        self.maxIdle = maxIdle
        self.idleTimeout = idleTimeout
    }

    /// The most recently used live idle connection to `endpoint`, if any (LIFO keeps the
    /// warm ones warm and lets the rest reach their idle timeout).
    package func takeIdle(for endpoint: GatewayConfiguration.Endpoint, tls: UpstreamTLSContext? = nil) -> UpstreamConnection? {
        eventLoop.preconditionInEventLoop()
        while let connection = idle.popLast() {
            if connection.channel.isActive && connection.endpoint == endpoint && connection.tls === tls?.context { return connection }
            connection.channel.close(promise: nil)
        }
        return nil
    }

    /// A new connection; over TLS (`tls`), once its handshake is done.
    package func connect(to endpoint: GatewayConfiguration.Endpoint, timeout: TimeAmount,
                         tls: UpstreamTLSContext? = nil) -> EventLoopFuture<UpstreamConnection> {
        let loop = eventLoop
        let pressure = self.pressure
        // Only an embedded loop (the wire fuzz targets) has no sockets: connecting fails there.
        guard let bootstrap = ClientBootstrap(validatingGroup: loop) else {
            return loop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        return bootstrap
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: SocketTuning.receiveAllocator)
            // Two reads per readiness (NIO's default is four): once a client stops taking the
            // answer and reads are paused, at most two more (512 KiB) arrive; under memory
            // pressure one of 16 KiB. One per readiness cost a third of the streaming rate.
            .channelOption(.maxMessagesPerRead, value: 2)
            .channelOption(.writeBufferWaterMark, value: SocketTuning.writeWaterMark)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                // One handler: requests are serialized and responses parsed right here, so a
                // relayed response is never decoded into strings and encoded again.
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
                        try channel.pipeline.syncOperations.addHandler(HandshakeWaiter(ready: channel.eventLoop.makePromise()))
                    }
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(pressure: pressure))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMap { channel -> EventLoopFuture<UpstreamConnection> in
                let made = channel.eventLoop.makeCompletedFuture {
                    UpstreamConnection(channel: channel, handler: try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self),
                                       endpoint: endpoint, tls: tls?.context)
                }
                guard tls != nil, let waiter = try? channel.pipeline.syncOperations.handler(type: HandshakeWaiter.self) else { return made }
                return waiter.ready.futureResult.flatMap { made }.flatMapError { error in
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
    }

    /// Returns a connection whose last exchange completed cleanly.
    package func release(_ connection: UpstreamConnection) {
        eventLoop.preconditionInEventLoop()
        connection.handler.delegate = nil
        guard connection.channel.isActive, idle.count < maxIdle else {
            connection.channel.close(promise: nil)
            return
        }
        connection.idleSince = .now()
        idle.append(connection)
    }

    /// Called by the loop's sweep: closes connections idle for longer than `idleTimeout`
    /// and drops those the upstream has closed. The oldest are at the front (LIFO use).
    package func evictIdle(now: NIODeadline) {
        guard !idle.isEmpty else { return }
        let cutoff = now - idleTimeout
        idle.removeAll { connection in
            guard connection.idleSince < cutoff || !connection.channel.isActive else { return false }
            connection.channel.close(promise: nil)
            return true
        }
    }

    package func closeAll() {
        eventLoop.preconditionInEventLoop()
        for connection in idle { connection.channel.close(promise: nil) }
        idle.removeAll()
    }
}

/// What an upstream connection reports to the client connection that is using it.
package protocol UpstreamDelegate: AnyObject {
    func upstreamReceived(_ event: ResponseParser.Event)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The connection closed or sent something unparseable; `error` says why.
    func upstreamClosed(error: Error?)
}

/// The only handler of an upstream connection: writes requests as bytes, parses the
/// responses with `ResponseParser`, relays the events to the client connection using it,
/// and withholds reads while that client cannot take more (backpressure).
package final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    weak var delegate: UpstreamDelegate?
    private var context: ChannelHandlerContext?
    private var allocator = ByteBufferAllocator()
    private var parser = ResponseParser()
    private var readsPaused = false
    private var readPending = false
    private var chunkedRequest = false
    private let pressure: LoopPressure
    private var smallReads = false

    package init(pressure: LoopPressure = LoopPressure()) { self.pressure = pressure }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
    }
    package func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let delegate else {
            // Bytes on an idle connection: the upstream is out of step; never reuse it.
            context.close(promise: nil)
            return
        }
        parser.receive(bytes)
        do {
            // Each event is handed out after the parser call returns: the receiver may send
            // the next request (which resets the parser) from inside its handling.
            while let event = try parser.next() {
                guard let receiver = self.delegate else { return }
                receiver.upstreamReceived(event)
            }
        } catch {
            fail(error, context: context)
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        // An idle connection that closes is dropped from the pool by the next sweep.
        guard let delegate else { return }
        do {
            if let event = try parser.closed() { delegate.upstreamReceived(event) }
            if let stillUsing = self.delegate {
                self.delegate = nil
                stillUsing.upstreamClosed(error: nil)
            }
        } catch {
            self.delegate = nil
            delegate.upstreamClosed(error: error)
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(error, context: context)
    }

    private func fail(_ error: Error, context: ChannelHandlerContext) {
        if let delegate {
            self.delegate = nil
            delegate.upstreamClosed(error: error)
        }
        context.close(promise: nil)
    }

    /// Whether the last response ended cleanly, so the connection may serve another request.
    package var isReusable: Bool { parser.isIdle }

    package func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
            return
        }
        if pressure.high != smallReads {
            // While clients that stopped reading fill the loop's budget, what one read can add
            // to an answer waiting for its client is small; streaming goes back to large reads.
            smallReads = pressure.high
            let options = context.channel.syncOptions
            try? options?.setOption(.recvAllocator, value: smallReads ? SocketTuning.pressureReceiveAllocator : SocketTuning.receiveAllocator)
            try? options?.setOption(.maxMessagesPerRead, value: UInt(smallReads ? 1 : 2))
        }
        context.read()
    }

    package func pauseReads() { readsPaused = true }

    package func resumeReads() {
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// Serializes a request head (framing fields already chosen by the header policy).
    package func sendHead(_ head: HTTPRequestHead, chunked: Bool, reservedCookies: [String], webSocketAccept: [UInt8]? = nil) {
        guard let context else { return }
        parser.expectResponse(toHead: head.method == .HEAD, webSocketAccept: webSocketAccept)
        parser.reservedCookies = reservedCookies
        chunkedRequest = chunked
        // Written in one go: a head is some forty pieces (see `HeadWriter`).
        let method = head.method.rawValue
        let bytes = allocator.head(estimate: 512 + head.uri.utf8.count) { out in
            out.put(method)
            out.put(" ")
            out.put(head.uri)
            out.put(" HTTP/1.1\r\n")
            for (name, value) in head.headers { out.field(name, value) }
            out.put("\r\n")
        }
        context.write(wrapOutboundOut(bytes), promise: nil)
    }

    package func sendBody(_ part: ByteBuffer) {
        guard let context, part.readableBytes > 0 else { return }
        if chunkedRequest {
            context.write(wrapOutboundOut(ChunkFraming.header(part.readableBytes, allocator: allocator)), promise: nil)
            context.write(wrapOutboundOut(part), promise: nil)
            context.write(wrapOutboundOut(ChunkFraming.crlf), promise: nil)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
    }

    package func sendEnd() {
        guard let context, chunkedRequest else { return }
        context.write(wrapOutboundOut(ChunkFraming.last), promise: nil)
    }

    /// Flushes at the end of the loop's current tick (see `LoopContext.deferFlush`).
    package func flush(deferredOn loop: FlushScheduler) {
        if let context { loop.deferFlush(context, upstream: true) }
    }
}
