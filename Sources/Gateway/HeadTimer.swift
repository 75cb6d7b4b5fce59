import NIOCore

/// When a client connection must have sent a complete request head (slowloris defence).
/// A plain state machine: events in, the timer action out (docs/STYLE.md).
///
/// - A new connection gets `headerTimeout` for its first head.
/// - Between requests, a keep-alive connection may sit idle for `idleTimeout`; its first
///   byte starts a fresh `headerTimeout` for the rest of the head.
/// - While a request is being served, no head deadline runs (the upstream timeout and
///   backpressure govern that part).
struct HeadTimer {
    enum State { case awaitingFirstByte, receivingHead, serving }
    enum Action: Equatable { case arm(TimeAmount), cancel, none }

    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount
    private(set) var state: State = .receivingHead

    init(headerTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
    }

    mutating func connectionOpened() -> Action {
        state = .receivingHead
        return .arm(headerTimeout)
    }

    mutating func bytesReceived() -> Action {
        guard state == .awaitingFirstByte else { return .none }
        state = .receivingHead
        return .arm(headerTimeout)
    }

    mutating func headReceived() -> Action {
        state = .serving
        return .cancel
    }

    mutating func responseCompleted() -> Action {
        state = .awaitingFirstByte
        return .arm(idleTimeout)
    }
}

/// First handler of a client connection: sees raw bytes before the HTTP decoder, so the
/// connection handler learns when the next request's first byte arrives.
final class RawBytesObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let owner: ClientConnectionHandler

    init(owner: ClientConnectionHandler) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.bytesReceived()
        context.fireChannelRead(data)
    }
}

/// Stands in for the HTTP decoder once a connection is a WebSocket tunnel: client bytes
/// go to the connection handler as they are.
final class TunnelRelay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private unowned let owner: ClientConnectionHandler

    init(owner: ClientConnectionHandler) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.tunnelReceived(unwrapInboundIn(data))
    }
}
