import NIOCore

/// When a client connection must have sent a complete request head (slowloris defence).
/// A plain state machine: events in, the timer action out (STYLE.md).
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

/// First handler of a client connection: sees raw bytes before the HTTP decoder and
/// closes the connection when the `HeadTimer` deadline passes.
final class HeadTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var timer: HeadTimer
    private var scheduled: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private let onTimeout: (TimeAmount) -> Void

    init(headerTimeout: TimeAmount, idleTimeout: TimeAmount, onTimeout: @escaping (TimeAmount) -> Void) {
        self.timer = HeadTimer(headerTimeout: headerTimeout, idleTimeout: idleTimeout)
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { apply(timer.connectionOpened()) }
    }

    func channelActive(context: ChannelHandlerContext) {
        apply(timer.connectionOpened())
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        apply(timer.bytesReceived())
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        scheduled?.cancel()
        scheduled = nil
        context.fireChannelInactive()
    }

    func headReceived() { apply(timer.headReceived()) }
    func responseCompleted() { apply(timer.responseCompleted()) }

    private func apply(_ action: HeadTimer.Action) {
        switch action {
        case .none: return
        case .cancel:
            scheduled?.cancel()
            scheduled = nil
        case .arm(let amount):
            scheduled?.cancel()
            guard let context else { return }
            scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: amount) { [weak self] in
                guard let self, let context = self.context else { return }
                self.onTimeout(amount)
                context.close(promise: nil)
            }
        }
    }
}
