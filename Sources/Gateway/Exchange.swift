import Compression
import HTTPWire
import NIOCore
import NIOHTTP1

/// One request/response pair in flight through the proxy.
final class Exchange {
    let method: HTTPMethod
    let uri: String
    let clientVersion: HTTPVersion
    let clientKeepAlive: Bool
    var upstreamHead: HTTPRequestHead
    let requestBody: RequestFraming.Body
    let start: NIODeadline

    /// Body parts that arrived before an upstream connection was ready. An array, not a
    /// CircularBuffer: an empty array allocates nothing, and most requests have no body.
    var buffered: [ByteBuffer] = []
    var requestEndReceived = false
    var requestFullySent = false
    var bodyBytesSent: UInt64 = 0

    /// Banner mode: the markup to insert into an HTML answer, and the injector once the
    /// answer turned out to be uncompressed HTML.
    var bannerHTML: String?
    var injector: BannerInjector?
    /// For a compressed page: undo the coding, insert, redo it.
    var decoder: StreamDecoder?
    var encoder: StreamEncoder?
    /// Set-Cookie for the session cookie, when it must change: cleared (it no longer opens)
    /// or sealed again without grants the configuration no longer honours.
    var sessionCookie: String?
    /// The Strict-Transport-Security value to add, when configured.
    var hsts: String?
    /// The identity to sign into `X-SSO-Assertion` (when `upstream_assertion` is on).
    var assertionClaims: UpstreamClaims?
    /// A WebSocket upgrade was forwarded; `tunnel` once the upstream answered 101, from
    /// when on bytes pass both ways untouched until `tunnelEnds` (the grant's expiry).
    var upgrade: Bool { webSocketAccept != nil }
    /// The `Sec-WebSocket-Accept` the upstream's 101 must carry for this upgrade.
    var webSocketAccept: [UInt8]?
    var tunnel = false
    var tunnelEnds: NIODeadline?
    /// The gateway's cookie names: an upstream Set-Cookie for them is dropped.
    var reservedCookies: [String] = []
    var upstream: UpstreamConnection?
    var reusedConnection = false
    var retried = false
    var upstreamSentAt: NIODeadline?
    /// When the response head must have arrived (`upstream_timeout`), checked by the loop sweep.
    var upstreamDeadline: NIODeadline?
    var upstreamTimeout: TimeAmount = .zero

    var responseFraming: ResponseFraming = .none
    var upstreamKeepAlive = false
    /// The upstream's status once its response head arrived; 0 before.
    var status = 0
    var responseBytes = 0
    var upstreamNanoseconds: Int64?
    var wroteUpstreamInThisRead = false

    init(method: HTTPMethod, uri: String, clientVersion: HTTPVersion, clientKeepAlive: Bool,
         upstreamHead: HTTPRequestHead, requestBody: RequestFraming.Body, start: NIODeadline) {
        self.method = method
        self.uri = uri
        self.clientVersion = clientVersion
        self.clientKeepAlive = clientKeepAlive
        self.upstreamHead = upstreamHead
        self.requestBody = requestBody
        self.start = start
    }

    /// Whether a failure on a reused keep-alive connection may be retried on a fresh one:
    /// the upstream may have closed the idle connection just as the request went out. Only
    /// for body-less requests of safe methods, so nothing can happen twice.
    var mayRetry: Bool {
        reusedConnection && !retried && status == 0 && requestBody == .none
            && [.GET, .HEAD, .OPTIONS].contains(method)
    }
}

/// Banner mode's rewrite of a response body, shared by the HTTP/1 and HTTP/2 paths.
extension Exchange {
    /// Whether this response gets the banner: an HTML answer (2xx, or 4xx, since an app's
    /// "restricted" page is where a visitor needs the link) that is uncompressed or in a
    /// coding the gateway can undo and redo. Sets up the injector (and codecs) when it does.
    func prepareBanner(for head: UpstreamResponseHead, hasBody: Bool) -> Bool {
        // Whole pages only: never a 206 (a byte range of the page) or a 416; 201, 202 and 204
        // carry no page to restrict.
        guard let banner = bannerHTML, hasBody, head.status == 200 || head.status == 203 || ((400..<500).contains(head.status) && head.status != 416),
              head.contentType?.lowercased().hasPrefix("text/html") == true else { return false }
        let encoding = (head.contentEncoding ?? "identity").lowercased()
        let coding = ContentCoding(header: encoding)
        guard encoding == "identity" || coding != nil else { return false }
        // A compressed page (the upstream ignored `identity`) is decoded, given its banner
        // and encoded again, streaming; its Content-Encoding stays.
        injector = BannerInjector(banner: banner)
        if let coding {
            decoder = try? StreamDecoder(coding)
            encoder = try? StreamEncoder(coding)
        }
        return true
    }

    struct CorruptBody: Error {}

    /// A body part as the client gets it: unchanged, or with the banner inserted (nil when
    /// nothing is ready to write yet). Throws when a compressed body does not decode.
    func rewrite(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) throws(CorruptBody) -> ByteBuffer? {
        guard injector != nil else { return buffer }
        var bytes = Array(buffer.readableBytesView)
        if let decoder {
            guard let plain = try? decoder.decode(bytes) else { throw CorruptBody() }
            bytes = plain
        }
        bytes = injector!.feed(bytes)
        if let encoder { bytes = encoder.encode(bytes) }
        return bytes.isEmpty ? nil : allocator.buffer(bytes: bytes)
    }

    /// What the rewrite still holds at the end of the body.
    func finishRewrite(allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard injector != nil else { return nil }
        var rest = injector!.finish()
        injector = nil
        if let encoder { rest = encoder.encode(rest) + encoder.finish() }
        decoder = nil
        encoder = nil
        return rest.isEmpty ? nil : allocator.buffer(bytes: rest)
    }
}

/// The upstream connection's part of an exchange, shared by the HTTP/1 and HTTP/2 paths.
extension Exchange {
    /// Sends the request on `connection`: its head, the body parts that arrived meanwhile,
    /// and its end if that came too; starts the response deadline.
    func attach(_ connection: UpstreamConnection, delegate: UpstreamDelegate, timeout: TimeAmount, readsAllowed: Bool,
                loop: LoopContext) {
        upstream = connection
        connection.handler.delegate = delegate
        if readsAllowed { connection.handler.resumeReads() } else { connection.handler.pauseReads() }
        let now = NIODeadline.now()
        upstreamSentAt = now
        upstreamDeadline = now + timeout
        upstreamTimeout = timeout
        connection.handler.sendHead(upstreamHead, chunked: requestBody == .chunked, reservedCookies: reservedCookies,
                                    webSocketAccept: webSocketAccept)
        for part in buffered {
            bodyBytesSent += UInt64(part.readableBytes)
            connection.handler.sendBody(part)
        }
        buffered = []
        if requestEndReceived {
            connection.handler.sendEnd()
            requestFullySent = true
        }
        connection.handler.flush(deferredOn: loop)
    }

    /// The response ended: the connection goes back to the pool when it can serve another
    /// request, and is closed otherwise.
    func releaseUpstream(to pool: UpstreamPool) {
        upstreamDeadline = nil
        guard let connection = upstream else { return }
        upstream = nil
        if requestFullySent && upstreamKeepAlive && connection.handler.isReusable {
            pool.release(connection)
        } else {
            connection.handler.delegate = nil
            connection.channel.close(promise: nil)
        }
    }

    /// Drops an upstream connection mid-exchange: its state is unknown, it is never reused.
    func abandonUpstream() {
        upstreamDeadline = nil
        guard let connection = upstream else { return }
        upstream = nil
        connection.handler.delegate = nil
        connection.channel.close(promise: nil)
    }
}

extension Exchange {
    /// Whether `addAssertion` has anything to do (an identity, and `upstream_assertion` on).
    func needsAssertion(from minter: AssertionMinter?) -> Bool { assertionClaims != nil && minter != nil }

    /// Adds `X-SSO-Assertion` to the upstream head when this exchange carries an identity
    /// to sign, then calls `next` on `loop`: at once when a fresh token is cached, else once
    /// signed. `next` gets the signing error, if any; the request must not go out without
    /// the assertion the upstream expects.
    func addAssertion(using minter: AssertionMinter?, on loop: EventLoop, then next: @escaping (Error?) -> Void) {
        guard let claims = assertionClaims, let minter else { return next(nil) }
        if let token = minter.cached(claims) {
            upstreamHead.headers.add(name: AssertionMinter.header, value: token)
            return next(nil)
        }
        minter.token(for: claims, on: loop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let token):
                self.upstreamHead.headers.add(name: AssertionMinter.header, value: token)
                next(nil)
            case .failure(let error):
                next(error)
            }
        }
    }
}

/// Why an exchange without a relayed response head is answered locally: its status, the
/// client's text, and the reason and detail for the log. Shared by HTTP/1.1 and HTTP/2.
struct UpstreamFailure {
    let status: HTTPResponseStatus
    let text: String
    let reason: String
    let detail: String

    static func unreachable(_ error: Error) -> UpstreamFailure {
        UpstreamFailure(status: .badGateway, text: "upstream unreachable", reason: "upstream connect failed", detail: "\(error)")
    }

    static func timedOut(after timeout: TimeAmount) -> UpstreamFailure {
        UpstreamFailure(status: .gatewayTimeout, text: "upstream timed out", reason: "no response headers within upstream_timeout",
                        detail: "\(timeout.nanoseconds / 1_000_000)ms")
    }

    static func assertionNotSigned(_ error: Error) -> UpstreamFailure {
        UpstreamFailure(status: .internalServerError, text: "could not sign the identity for the upstream",
                        reason: "upstream_assertion signing failed", detail: "\(error)")
    }
}

/// What an upstream connection closing (or breaking) before its response ended means.
enum UpstreamLoss {
    /// The head was relayed: the client can only be shown the cut.
    case midBody
    /// A safe request on a reused connection: try once more on a fresh one.
    case retry
    /// Nothing was relayed: answer locally.
    case failed(UpstreamFailure)
}

extension Exchange {
    /// Forgets the closed connection, counts and logs the loss, and says what to do next.
    func upstreamLost(_ error: Error?, shared: GatewayShared) -> UpstreamLoss {
        upstream = nil
        upstreamDeadline = nil
        if status != 0 {
            shared.metrics.upstreamFailed(.closed)
            shared.logger.warning("upstream closed mid-response", metadata: ["path": "\(pathOnly(uri))"])
            return .midBody
        }
        // A malformed response is not retried: the upstream answered, just badly.
        if mayRetry && !(error is ResponseParser.Failure) {
            retried = true
            reusedConnection = false
            return .retry
        }
        shared.metrics.upstreamFailed(.closed)
        if let malformed = error as? ResponseParser.Failure {
            return .failed(UpstreamFailure(status: .badGateway, text: "upstream sent a malformed response",
                                           reason: "malformed upstream response", detail: malformed.description))
        }
        return .failed(UpstreamFailure(status: .badGateway, text: "upstream closed the connection",
                                       reason: "upstream closed before responding", detail: error.map { "\($0)" } ?? "eof"))
    }
}
