import Config
import NIOCore
import NIOHTTP1
import NIOPosix

/// A keep-alive connection to the upstream, with the handler that relays its responses.
final class UpstreamConnection {
    let channel: Channel
    let handler: UpstreamHandler
    let endpoint: GatewayConfiguration.Endpoint
    fileprivate var idleSince = NIODeadline.distantPast

    init(channel: Channel, handler: UpstreamHandler, endpoint: GatewayConfiguration.Endpoint) {
        self.channel = channel
        self.handler = handler
        self.endpoint = endpoint
    }
}

/// Idle upstream connections of one event loop. Client connections and the upstream
/// connections they use live on the same loop, so a proxied byte never changes thread and
/// nothing here needs a lock. Only ever touched on `eventLoop`.
final class UpstreamPool {
    let eventLoop: EventLoop
    private var idle: [UpstreamConnection] = []
    private let maxIdle: Int
    private let idleTimeout: TimeAmount

    init(eventLoop: EventLoop, maxIdle: Int = 128, idleTimeout: TimeAmount = .seconds(30)) {
        self.eventLoop = eventLoop
        self.maxIdle = maxIdle
        self.idleTimeout = idleTimeout
    }

    /// The most recently used live idle connection to `endpoint`, if any (LIFO keeps the
    /// warm ones warm and lets the rest reach their idle timeout).
    func takeIdle(for endpoint: GatewayConfiguration.Endpoint) -> UpstreamConnection? {
        eventLoop.preconditionInEventLoop()
        while let connection = idle.popLast() {
            if connection.channel.isActive && connection.endpoint == endpoint { return connection }
            connection.channel.close(promise: nil)
        }
        return nil
    }

    func connect(to endpoint: GatewayConfiguration.Endpoint, timeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        let loop = eventLoop
        return ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: GatewayServer.receiveAllocator)
            .channelOption(.writeBufferWaterMark, value: GatewayServer.writeWaterMark)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var encoder = HTTPRequestEncoder.Configuration()
                    encoder.automaticallySetFramingHeaders = false  // the proxy frames each hop itself
                    // No outbound header validator: every field sent upstream either came through
                    // the request decoder (which refuses CR, LF and NUL) or is the gateway's own.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .dropBytes, enableOutboundHeaderValidation: false,
                        encoderConfiguration: encoder)
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                return UpstreamConnection(channel: channel, handler: handler, endpoint: endpoint)
            }
    }

    /// Returns a connection whose last exchange completed cleanly.
    func release(_ connection: UpstreamConnection) {
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
    func evictIdle(now: NIODeadline) {
        guard !idle.isEmpty else { return }
        let cutoff = now - idleTimeout
        idle.removeAll { connection in
            guard connection.idleSince < cutoff || !connection.channel.isActive else { return false }
            connection.channel.close(promise: nil)
            return true
        }
    }

    func closeAll() {
        eventLoop.preconditionInEventLoop()
        for connection in idle { connection.channel.close(promise: nil) }
        idle.removeAll()
    }
}

/// What an upstream connection reports to the client connection that is using it.
protocol UpstreamDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamClosed(error: Error?)
}

/// Last handler of an upstream connection: relays response parts to the client connection
/// using it, and withholds reads while that client cannot take more (backpressure).
final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var delegate: UpstreamDelegate?
    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readPending = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard let delegate else {
            // Bytes on an idle connection: the upstream is out of step; never reuse it.
            context.close(promise: nil)
            return
        }
        delegate.upstreamReceived(part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // An idle connection that closes is dropped from the pool by the next sweep.
        if let delegate {
            self.delegate = nil
            delegate.upstreamClosed(error: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let delegate {
            self.delegate = nil
            delegate.upstreamClosed(error: error)
        }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    func pauseReads() { readsPaused = true }

    func resumeReads() {
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() { context?.flush() }
}
