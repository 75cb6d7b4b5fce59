import HTTPWire
import NIOCore
import NIOHTTP1

/// The life of one proxied exchange, the same for HTTP/1.1 and HTTP/2: what happened on
/// either side goes in as an `Event`, what to do next comes out as an `Action`. No I/O and
/// no clock of its own (times come with the events): the HTTP/1.1 handler and the HTTP/2
/// stream carry the actions out, each in its own framing, and the unit tests drive it with
/// no sockets at all.
package struct ExchangeMachine {
    package enum Phase: Equatable {
        /// The identity assertion for the upstream is being signed.
        case signing
        /// Waiting for an upstream connection.
        case connecting
        /// The request went out; its response head is due by the deadline.
        case awaitingHead(deadline: NIODeadline)
        /// The response head was relayed; its body follows.
        case relaying
        /// A WebSocket the upstream accepted: bytes both ways, untouched.
        case tunnel
        case finished
    }

    package enum Event {
        case start(needsAssertion: Bool)
        /// The assertion was signed (nil) or could not be.
        case assertionSigned(Error?)
        /// An upstream connection is attached to the exchange: taken from the pool
        /// (`reused`) or just opened.
        case upstreamReady(reused: Bool, now: NIODeadline, timeout: TimeAmount)
        case connectFailed(Error)
        case requestBody(ByteBuffer)
        case requestEnd
        case upstreamHead(UpstreamResponseHead, now: NIODeadline)
        case upstreamBody(ByteBuffer)
        case upstreamEnd
        /// The upstream connection closed or broke (a malformed response is a
        /// `ResponseParser.Failure`).
        case upstreamClosed(Error?)
        /// The loop's sweep: the response deadline, and a tunnel's end.
        case tick(NIODeadline)
        /// A session the tunnel relies on was ended (logout, revoke).
        case sessionEnded
        /// The client went away (closed, reset the stream, or timed out).
        case clientGone
    }

    package enum Action {
        case none
        /// A request body part was kept until an upstream connection is attached.
        case held
        case signAssertion
        /// Take an idle pooled connection or open one, then report `.upstreamReady` or
        /// `.connectFailed`. `fresh`: open a new one (the retry after a pooled one failed).
        case acquireUpstream(fresh: Bool)
        /// Send the request head, the body parts that arrived meanwhile, and the end of the
        /// request when it came.
        case sendRequest(parts: [ByteBuffer], end: Bool)
        case sendBody(ByteBuffer)
        case sendEnd
        /// Relay the response head. `requestComplete` false: the client's body is still
        /// coming and will not all be read (an HTTP/1 connection then ends after the answer).
        case relayHead(UpstreamResponseHead, requestComplete: Bool)
        /// The upstream's `101` to a WebSocket upgrade: relay it and turn into a tunnel.
        case openTunnel(UpstreamResponseHead)
        case relayBody(ByteBuffer)
        /// The response is complete; the upstream connection may serve another request
        /// when `reusable`.
        case finish(reusable: Bool)
        /// The upstream went away after the head was relayed: the client can only be shown
        /// the cut (HTTP/1: the connection closes; HTTP/2: the stream is reset).
        case cut
        /// No response head was relayed: answer locally (502, 504 or 500).
        case fail(UpstreamFailure)
        /// The tunnel ends (either side closed, or the session grant expired).
        case closeTunnel(grantExpired: Bool)
        /// Drop the upstream connection: its state is unknown, it is never reused.
        case abandonUpstream
    }

    package let method: HTTPMethod
    package let requestBody: RequestFraming.Body
    /// When a WebSocket tunnel must close at the latest: the expiry of the grant that
    /// authorized it.
    package let tunnelEnds: NIODeadline?

    package private(set) var phase: Phase = .connecting
    /// Whether an upstream connection is attached now.
    package private(set) var attached = false
    /// Body parts that arrived before an upstream connection was attached. An array: an
    /// empty one allocates nothing, and most requests have no body.
    package private(set) var buffered: [ByteBuffer] = []
    package private(set) var requestEndReceived = false
    package private(set) var requestFullySent = false
    package private(set) var bodyBytesSent: UInt64 = 0
    package private(set) var reusedConnection = false
    package private(set) var retried = false
    /// The upstream's status once its response head arrived; 0 before.
    package private(set) var status = 0
    package private(set) var upstreamKeepAlive = false
    package private(set) var upstreamSentAt: NIODeadline?
    package private(set) var upstreamNanoseconds: Int64?
    package private(set) var upstreamTimeout: TimeAmount = .zero

    package init(method: HTTPMethod, requestBody: RequestFraming.Body, tunnelEnds: NIODeadline? = nil) {
        self.method = method
        self.requestBody = requestBody
        self.tunnelEnds = tunnelEnds
    }

    package var isFinished: Bool { phase == .finished }
    package var isTunnel: Bool { phase == .tunnel }

    /// Whether a failure on a reused keep-alive connection may be retried on a fresh one:
    /// the upstream may have closed the idle connection just as the request went out. Only
    /// for body-less requests of safe methods, so nothing can happen twice.
    package var mayRetry: Bool {
        reusedConnection && !retried && status == 0 && requestBody == .none && [.GET, .HEAD, .OPTIONS].contains(method)
    }

    package mutating func handle(_ event: Event) -> Action {
        switch event {
        case .start(let needsAssertion):
            phase = needsAssertion ? .signing : .connecting
            return needsAssertion ? .signAssertion : .acquireUpstream(fresh: false)

        case .assertionSigned(let error):
            guard phase == .signing else { return .none }
            if let error {
                phase = .finished
                return .fail(.assertionNotSigned(error))
            }
            phase = .connecting
            return .acquireUpstream(fresh: false)

        case .upstreamReady(let reused, let now, let timeout):
            guard phase == .connecting else { return .abandonUpstream }
            attached = true
            reusedConnection = reused
            upstreamSentAt = now
            upstreamTimeout = timeout
            phase = .awaitingHead(deadline: now + timeout)
            let parts = buffered
            buffered = []
            for part in parts { bodyBytesSent += UInt64(part.readableBytes) }
            if requestEndReceived { requestFullySent = true }
            return .sendRequest(parts: parts, end: requestEndReceived)

        case .connectFailed(let error):
            guard phase == .connecting else { return .none }
            phase = .finished
            return .fail(.unreachable(error))

        case .requestBody(let part):
            switch phase {
            case .finished: return .none
            case .signing, .connecting:
                buffered.append(part)
                return .held
            case .awaitingHead, .relaying, .tunnel:
                guard attached else {
                    buffered.append(part)
                    return .held
                }
                bodyBytesSent += UInt64(part.readableBytes)
                return .sendBody(part)
            }

        case .requestEnd:
            requestEndReceived = true
            guard attached, !requestFullySent, phase != .finished else { return .none }
            requestFullySent = true
            return .sendEnd

        case .upstreamHead(let head, let now):
            guard case .awaitingHead = phase else { return .none }
            status = head.status
            upstreamKeepAlive = head.keepAlive
            if let sent = upstreamSentAt { upstreamNanoseconds = (now - sent).nanoseconds }
            if head.status == 101 {
                // The parser yields a 101 only for the WebSocket upgrade it was told to expect.
                phase = .tunnel
                return .openTunnel(head)
            }
            phase = .relaying
            return .relayHead(head, requestComplete: requestEndReceived)

        case .upstreamBody(let part):
            guard phase == .relaying || phase == .tunnel else { return .none }
            return .relayBody(part)

        case .upstreamEnd:
            guard phase == .relaying else { return .none }
            phase = .finished
            attached = false
            return .finish(reusable: requestFullySent && upstreamKeepAlive)

        case .upstreamClosed(let error):
            attached = false
            switch phase {
            case .tunnel:
                phase = .finished
                return .closeTunnel(grantExpired: false)
            case .relaying:
                phase = .finished
                return .cut
            case .awaitingHead:
                // A malformed response is not retried: the upstream answered, just badly.
                if mayRetry && !(error is ResponseParser.Failure) {
                    retried = true
                    reusedConnection = false
                    requestFullySent = false
                    phase = .connecting
                    return .acquireUpstream(fresh: true)
                }
                phase = .finished
                if let malformed = error as? ResponseParser.Failure { return .fail(.malformed(malformed)) }
                return .fail(.closedEarly(error))
            case .signing, .connecting, .finished:
                return .none
            }

        case .tick(let now):
            switch phase {
            case .awaitingHead(let deadline) where deadline <= now:
                phase = .finished
                attached = false
                return .fail(.timedOut(after: upstreamTimeout))
            case .tunnel:
                guard let tunnelEnds, tunnelEnds <= now else { return .none }
                phase = .finished
                attached = false
                return .closeTunnel(grantExpired: true)
            default:
                return .none
            }

        case .sessionEnded:
            guard case .tunnel = phase else { return .none }
            phase = .finished
            attached = false
            return .closeTunnel(grantExpired: true)

        case .clientGone:
            guard phase != .finished else { return .none }
            phase = .finished
            attached = false
            return .abandonUpstream
        }
    }
}

/// Why an exchange without a relayed response head is answered locally: its status, the
/// client's text, the reason and detail for the log, and what the metrics count it as.
package struct UpstreamFailure {
    package let status: HTTPResponseStatus
    package let text: String
    package let reason: String
    package let detail: String
    /// `ssogate_upstream_failures_total{reason}`; nil for a failure of the gateway's own.
    package let counted: UpstreamFailureKind?

    package static func unreachable(_ error: Error) -> UpstreamFailure {
        UpstreamFailure(status: .badGateway, text: "upstream unreachable", reason: "upstream connect failed", detail: "\(error)",
                        counted: .connect)
    }

    package static func timedOut(after timeout: TimeAmount) -> UpstreamFailure {
        UpstreamFailure(status: .gatewayTimeout, text: "upstream timed out", reason: "no response headers within upstream_timeout",
                        detail: "\(timeout.nanoseconds / 1_000_000)ms", counted: .timeout)
    }

    package static func assertionNotSigned(_ error: Error) -> UpstreamFailure {
        UpstreamFailure(status: .internalServerError, text: "could not sign the identity for the upstream",
                        reason: "upstream_assertion signing failed", detail: "\(error)", counted: nil)
    }

    package static func malformed(_ failure: ResponseParser.Failure) -> UpstreamFailure {
        UpstreamFailure(status: .badGateway, text: "upstream sent a malformed response", reason: "malformed upstream response",
                        detail: failure.description, counted: .closed)
    }

    package static func closedEarly(_ error: Error?) -> UpstreamFailure {
        UpstreamFailure(status: .badGateway, text: "upstream closed the connection", reason: "upstream closed before responding",
                        detail: error.map { "\($0)" } ?? "eof", counted: .closed)
    }
}
