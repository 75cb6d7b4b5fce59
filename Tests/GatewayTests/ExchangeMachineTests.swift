@testable import Gateway
@testable import Proxy
@testable import HTTPWire
import NIOCore
import NIOHTTP1
import Testing

/// The exchange's state machine driven without sockets: every path an exchange can take,
/// event by event, with the action each step asks of the HTTP/1.1 handler or HTTP/2 stream.
@Suite("Exchange state machine")
struct ExchangeMachineTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let timeout = TimeAmount.seconds(30)

    struct Broken: Error {}

    static func head(_ status: Int, keepAlive: Bool = true) -> UpstreamResponseHead {
        let text = "HTTP/1.1 \(status) X\r\n" + (status == 101 ? "Upgrade: websocket\r\nConnection: Upgrade\r\n" : "Content-Length: 0\r\n")
            + (keepAlive ? "" : "Connection: close\r\n") + "\r\n"
        guard let head = try? ResponseParser.parseHead(ByteBuffer(string: text), requestWasHead: false) else {
            fatalError("the parser refused a test head")
        }
        return head
    }

    /// A GET started and attached to an upstream (pooled when `reused`), waiting for its head.
    static func sent(method: HTTPMethod = .GET, body: RequestFraming.Body = .none, reused: Bool = false,
                     tunnelEnds: NIODeadline? = nil) -> ExchangeMachine {
        var m = ExchangeMachine(method: method, requestBody: body, tunnelEnds: tunnelEnds)
        guard case .acquireUpstream(fresh: false) = m.handle(.start(needsAssertion: false)) else { fatalError() }
        if body == .none { _ = m.handle(.requestEnd) }
        guard case .sendRequest = m.handle(.upstreamReady(reused: reused, now: t0, timeout: timeout)) else { fatalError() }
        return m
    }

    @Test func aPlainExchangeRelaysHeadBodyEndAndReusesTheConnection() {
        var m = ExchangeMachine(method: .GET, requestBody: .none)
        guard case .acquireUpstream(fresh: false) = m.handle(.start(needsAssertion: false)) else { Issue.record("start"); return }
        #expect(m.handle(.requestEnd).isNone, "nothing to send before a connection")
        guard case .sendRequest(let parts, let end) = m.handle(.upstreamReady(reused: false, now: Self.t0, timeout: Self.timeout)) else {
            Issue.record("send"); return
        }
        #expect(parts.isEmpty && end)
        guard case .relayHead(let head, let complete) = m.handle(.upstreamHead(Self.head(200), now: Self.t0 + .milliseconds(3))) else {
            Issue.record("head"); return
        }
        #expect(head.status == 200 && complete)
        #expect(m.status == 200 && m.upstreamNanoseconds == 3_000_000)
        guard case .relayBody = m.handle(.upstreamBody(ByteBuffer(string: "hello"))) else { Issue.record("body"); return }
        guard case .finish(let reusable) = m.handle(.upstreamEnd) else { Issue.record("end"); return }
        #expect(reusable)
        #expect(m.isFinished)
    }

    @Test func bodyPartsBeforeTheConnectionAreHeldThenSentWithTheHead() {
        var m = ExchangeMachine(method: .POST, requestBody: .contentLength(10))
        _ = m.handle(.start(needsAssertion: false))
        guard case .held = m.handle(.requestBody(ByteBuffer(string: "12345"))) else { Issue.record("held"); return }
        guard case .held = m.handle(.requestBody(ByteBuffer(string: "678"))) else { Issue.record("held"); return }
        guard case .sendRequest(let parts, let end) = m.handle(.upstreamReady(reused: false, now: Self.t0, timeout: Self.timeout)) else {
            Issue.record("send"); return
        }
        #expect(parts.map(\.readableBytes) == [5, 3] && !end)
        #expect(m.buffered.isEmpty && m.bodyBytesSent == 8)
        guard case .sendBody = m.handle(.requestBody(ByteBuffer(string: "90"))) else { Issue.record("body"); return }
        guard case .sendEnd = m.handle(.requestEnd) else { Issue.record("end"); return }
        #expect(m.bodyBytesSent == 10)
        #expect(m.handle(.requestEnd).isNone, "the end goes out once")
    }

    @Test func anAnswerBeforeTheBodyEndedSaysSoAndIsNotReused() {
        var m = Self.sent(method: .POST, body: .contentLength(1_000_000))
        guard case .relayHead(_, let complete) = m.handle(.upstreamHead(Self.head(413), now: Self.t0)) else { Issue.record("head"); return }
        #expect(!complete, "HTTP/1 ends the connection after this answer")
        guard case .finish(let reusable) = m.handle(.upstreamEnd) else { Issue.record("end"); return }
        #expect(!reusable, "the upstream still expects the rest of the body")
        #expect(m.handle(.requestBody(ByteBuffer(string: "late"))).isNone, "the rest of the body is dropped")
    }

    @Test func anUpstreamThatClosesMidBodyCutsTheClient() {
        var m = Self.sent()
        _ = m.handle(.upstreamHead(Self.head(200), now: Self.t0))
        guard case .cut = m.handle(.upstreamClosed(nil)) else { Issue.record("cut"); return }
        #expect(m.isFinished)
    }

    @Test func aPooledConnectionThatFailsBeforeTheHeadIsRetriedOnceOnAFreshOne() {
        var m = Self.sent(reused: true)
        guard case .acquireUpstream(fresh: true) = m.handle(.upstreamClosed(nil)) else { Issue.record("retry"); return }
        guard case .sendRequest(_, let end) = m.handle(.upstreamReady(reused: false, now: Self.t0, timeout: Self.timeout)) else {
            Issue.record("resend"); return
        }
        #expect(end, "the request goes out whole again")
        guard case .fail(let failure) = m.handle(.upstreamClosed(nil)) else { Issue.record("no second retry"); return }
        #expect(failure.status == .badGateway && failure.counted == .closed)
    }

    @Test(arguments: [HTTPMethod.POST, .PUT, .DELETE, .PATCH])
    func anUnsafeMethodIsNeverRetried(method: HTTPMethod) {
        var m = Self.sent(method: method, reused: true)
        guard case .fail(let failure) = m.handle(.upstreamClosed(nil)) else { Issue.record("\(method) retried"); return }
        #expect(failure.status == .badGateway)
    }

    @Test func aRequestWithABodyIsNeverRetried() {
        var m = Self.sent(method: .GET, body: .contentLength(3), reused: true)
        guard case .fail = m.handle(.upstreamClosed(nil)) else { Issue.record("retried with a body"); return }
    }

    @Test func aMalformedResponseIsAFailureNotARetry() {
        var m = Self.sent(reused: true)
        guard case .fail(let failure) = m.handle(.upstreamClosed(ResponseParser.Failure("bad status line"))) else {
            Issue.record("malformed"); return
        }
        #expect(failure.status == .badGateway && failure.reason == "malformed upstream response")
    }

    @Test func noConnectionIsA502AndNoHeadInTimeIsA504() {
        var m = ExchangeMachine(method: .GET, requestBody: .none)
        _ = m.handle(.start(needsAssertion: false))
        guard case .fail(let unreachable) = m.handle(.connectFailed(Broken())) else { Issue.record("502"); return }
        #expect(unreachable.status == .badGateway && unreachable.counted == .connect)

        var slow = Self.sent()
        #expect(slow.handle(.tick(Self.t0 + Self.timeout - .nanoseconds(1))).isNone)
        guard case .fail(let late) = slow.handle(.tick(Self.t0 + Self.timeout)) else { Issue.record("504"); return }
        #expect(late.status == .gatewayTimeout && late.counted == .timeout)
        #expect(slow.handle(.upstreamHead(Self.head(200), now: Self.t0 + Self.timeout)).isNone, "a head after the 504 is ignored")
    }

    @Test func theDeadlineStopsCountingOnceTheHeadArrived() {
        var m = Self.sent()
        _ = m.handle(.upstreamHead(Self.head(200), now: Self.t0))
        #expect(m.handle(.tick(Self.t0 + .hours(1))).isNone)
    }

    @Test func aClientThatLeavesAbandonsTheUpstreamOnce() {
        var m = Self.sent()
        guard case .abandonUpstream = m.handle(.clientGone) else { Issue.record("abandon"); return }
        #expect(m.handle(.clientGone).isNone)
        #expect(m.handle(.upstreamHead(Self.head(200), now: Self.t0)).isNone)
        #expect(m.handle(.upstreamEnd).isNone)

        // While still connecting: the connection made afterwards is dropped at once.
        var connecting = ExchangeMachine(method: .GET, requestBody: .none)
        _ = connecting.handle(.start(needsAssertion: false))
        _ = connecting.handle(.clientGone)
        guard case .abandonUpstream = connecting.handle(.upstreamReady(reused: false, now: Self.t0, timeout: Self.timeout)) else {
            Issue.record("late connection"); return
        }
    }

    @Test func theAssertionIsSignedBeforeAnyConnectionAndItsFailureIsA500() {
        var m = ExchangeMachine(method: .GET, requestBody: .none)
        guard case .signAssertion = m.handle(.start(needsAssertion: true)) else { Issue.record("sign"); return }
        guard case .acquireUpstream(fresh: false) = m.handle(.assertionSigned(nil)) else { Issue.record("then connect"); return }

        var failing = ExchangeMachine(method: .GET, requestBody: .none)
        _ = failing.handle(.start(needsAssertion: true))
        guard case .fail(let failure) = failing.handle(.assertionSigned(Broken())) else { Issue.record("500"); return }
        #expect(failure.status == .internalServerError && failure.counted == nil)
    }

    @Test func aWebSocketHandOffTunnelsBothWaysUntilEitherSideOrTheGrantEnds() {
        let ends = Self.t0 + .seconds(60)
        var m = Self.sent(tunnelEnds: ends)
        guard case .openTunnel(let head) = m.handle(.upstreamHead(Self.head(101), now: Self.t0)) else { Issue.record("101"); return }
        #expect(head.status == 101 && m.isTunnel)
        guard case .sendBody = m.handle(.requestBody(ByteBuffer(string: "frame"))) else { Issue.record("client to upstream"); return }
        guard case .relayBody = m.handle(.upstreamBody(ByteBuffer(string: "frame"))) else { Issue.record("upstream to client"); return }
        #expect(m.handle(.tick(ends - .nanoseconds(1))).isNone)
        guard case .closeTunnel(let expired) = m.handle(.tick(ends)) else { Issue.record("grant expiry"); return }
        #expect(expired)

        var closed = Self.sent(tunnelEnds: ends)
        _ = closed.handle(.upstreamHead(Self.head(101), now: Self.t0))
        guard case .closeTunnel(let byExpiry) = closed.handle(.upstreamClosed(nil)) else { Issue.record("upstream ends it"); return }
        #expect(!byExpiry && closed.isFinished)
    }

    @Test func aTunnelClosesWhenItsSessionIsEndedAndNothingElseDoes() {
        var m = Self.sent(tunnelEnds: Self.t0 + .seconds(3600))
        #expect(m.handle(.sessionEnded).isNone, "before the hand-off an ending is the next request's business")
        _ = m.handle(.upstreamHead(Self.head(101), now: Self.t0))
        guard case .closeTunnel(let ended) = m.handle(.sessionEnded) else { Issue.record("session ended"); return }
        #expect(ended && m.isFinished)
        #expect(m.handle(.sessionEnded).isNone, "closed once")
    }
}

extension ExchangeMachine.Action {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}
