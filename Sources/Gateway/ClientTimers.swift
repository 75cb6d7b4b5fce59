import HTTPWire
import NIOCore

/// How long an HTTP/1 client connection may keep the gateway waiting, per request rather
/// than per connection state (docs/CODE-STYLE.md: a plain state machine, events in, deadlines
/// out, the clock passed in):
///
/// - A new connection gets `headerTimeout` for its first head; between requests a
///   keep-alive connection may sit idle for `idleTimeout`, and its first byte starts a fresh
///   `headerTimeout` for the rest of the head.
/// - From a head to its request's end, each read must bring body bytes within
///   `bodyTimeout`, counted only while the gateway wants them (not while reads are held
///   because the upstream or the client is slow). A locally answered request whose
///   announced body never comes ends here too.
/// - While the client leaves the gateway's answer unread (the send buffer over its high
///   mark), it has `writeTimeout` to read again.
/// - An open WebSocket tunnel has no head or body deadline; the write deadline still holds.
struct ClientTimers {
    enum Phase { case awaitingFirstByte, receivingHead, receivingBody, serving, tunnel }
    enum Expired: Equatable {
        case head, idle, body, write

        /// The configuration key that ran out: the log's and the metric's reason.
        var reason: String {
            switch self {
            case .head: "header_timeout"
            case .idle: "idle_timeout"
            case .body: "body_timeout"
            case .write: "write_timeout"
            }
        }

        /// What the log says; an idle keep-alive connection closes without a line.
        var logMessage: String? {
            switch self {
            case .idle: nil
            case .head: "closed connection without a complete request head"
            case .body: "closed connection whose request body stopped coming"
            case .write: "closed connection that stopped reading its answer"
            }
        }
    }

    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount
    let bodyTimeout: TimeAmount
    let writeTimeout: TimeAmount
    private(set) var phase: Phase = .receivingHead
    private(set) var headDeadline: NIODeadline?
    private(set) var bodyDeadline: NIODeadline?
    private(set) var writeDeadline: NIODeadline?
    private var readsHeld = false

    init(headerTimeout: TimeAmount, idleTimeout: TimeAmount, bodyTimeout: TimeAmount, writeTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
        self.writeTimeout = writeTimeout
    }

    /// Whether the next read's arrival time matters (so the caller reads the clock only then).
    var wantsByteTimes: Bool { phase == .awaitingFirstByte || (phase == .receivingBody && !readsHeld) }

    mutating func connectionOpened(now: NIODeadline) {
        phase = .receivingHead
        headDeadline = now + headerTimeout
    }

    mutating func bytesReceived(now: NIODeadline) {
        switch phase {
        case .awaitingFirstByte:
            phase = .receivingHead
            headDeadline = now + headerTimeout
        case .receivingBody where !readsHeld:
            bodyDeadline = now + bodyTimeout
        default:
            break
        }
    }

    /// A head arrived; its body (if any) is due until `requestEnded`.
    mutating func headReceived(now: NIODeadline) {
        headDeadline = nil
        phase = .receivingBody
        bodyDeadline = readsHeld ? nil : now + bodyTimeout
    }

    mutating func requestEnded() {
        if phase == .receivingBody { phase = .serving }
        bodyDeadline = nil
    }

    /// Reads held (or resumed) by the gateway's own backpressure: the body clock stops.
    mutating func readsHeld(_ held: Bool, now: NIODeadline) {
        guard held != readsHeld else { return }
        readsHeld = held
        if phase == .receivingBody { bodyDeadline = held ? nil : now + bodyTimeout }
    }

    /// The response went out and the request had ended: the connection waits for the next.
    mutating func responseCompleted(now: NIODeadline) {
        phase = .awaitingFirstByte
        bodyDeadline = nil
        headDeadline = now + idleTimeout
    }

    mutating func tunnelOpened() {
        phase = .tunnel
        headDeadline = nil
        bodyDeadline = nil
    }

    /// The connection's send buffer crossed its high mark (`false`) or drained below the
    /// low one (`true`). The deadline runs from when the client stopped reading.
    mutating func writabilityChanged(writable: Bool, now: NIODeadline) {
        if writable {
            writeDeadline = nil
        } else if writeDeadline == nil {
            writeDeadline = now + writeTimeout
        }
    }

    /// The first deadline that has passed, if any.
    func expired(now: NIODeadline) -> Expired? {
        if let deadline = writeDeadline, deadline <= now { return .write }
        if let deadline = headDeadline, deadline <= now { return phase == .awaitingFirstByte ? .idle : .head }
        if let deadline = bodyDeadline, deadline <= now { return .body }
        return nil
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
        // Once the handler stopped reading (a pipelining flood), nothing more is parsed; a
        // read is handed on in slices so that this holds within a read too.
        guard owner.wantsBytes else { return }
        owner.bytesReceived()
        var bytes = unwrapInboundIn(data)
        while bytes.readableBytes > Self.slice, owner.wantsBytes {
            context.fireChannelRead(wrapInboundOut(bytes.readSlice(length: Self.slice)!))
        }
        if owner.wantsBytes { context.fireChannelRead(wrapInboundOut(bytes)) }
    }

    static let slice = 16 * 1024
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
