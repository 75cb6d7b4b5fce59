import Access
import Compression
import HTTPWire
import NIOCore
import NIOHTTP1

/// One request/response pair in flight through the proxy: what the request asked for and
/// what the gateway decided about it (fixed when it was planned), its progress
/// (`machine`, the part both framings share), the upstream connection, and the banner
/// rewrite of the response body.
package final class Exchange {
    package let method: HTTPMethod
    package let uri: String
    package let clientVersion: HTTPVersion
    package let clientKeepAlive: Bool
    package var upstreamHead: HTTPRequestHead
    package let requestBody: RequestFraming.Body
    package let start: NIODeadline
    /// Where the request goes, planned with the runtime of the time: it serves the whole
    /// exchange (a retry included), whatever a reload does meanwhile.
    package let route: UpstreamRoute
    package var machine: ExchangeMachine

    /// Banner mode: the markup to insert into an HTML answer, and the injector once the
    /// answer turned out to be uncompressed HTML.
    package var bannerHTML: String?
    package var injector: BannerInjector?
    /// For a compressed page: undo the coding, insert, redo it.
    package var decoder: StreamDecoder?
    package var encoder: StreamEncoder?
    /// Set-Cookie for the session cookie, when it must change: cleared (it no longer opens)
    /// or sealed again without grants the configuration no longer honours.
    package var sessionCookie: String?
    /// The Strict-Transport-Security value to add, when configured.
    package var hsts: String?
    /// The identity to sign into `X-SSO-Assertion` (when `upstream_assertion` is on).
    package var assertionClaims: UpstreamClaims?
    /// The `Sec-WebSocket-Accept` the upstream's 101 must carry, for a WebSocket upgrade.
    package var webSocketAccept: [UInt8]?
    /// The session IDs a WebSocket tunnel relies on: it is closed when one of them ends.
    package var tunnelSessions: [String] = []
    /// The gateway's cookie names: an upstream Set-Cookie for them is dropped.
    package var reservedCookies: [String] = []
    package var upstream: UpstreamConnection?

    /// How the response body goes to the client (HTTP/1.1 chooses at the head).
    package var responseFraming: ResponseFraming = .none
    /// Response body bytes written toward the client.
    package var responseBytes = 0
    /// HTTP/1.1: request body bytes went to the upstream during this read (flushed at its end).
    package var wroteUpstreamInThisRead = false

    package init(method: HTTPMethod, uri: String, clientVersion: HTTPVersion, clientKeepAlive: Bool,
                 upstreamHead: HTTPRequestHead, requestBody: RequestFraming.Body, start: NIODeadline, route: UpstreamRoute,
                 tunnelEnds: NIODeadline? = nil) {
        self.method = method
        self.uri = uri
        self.clientVersion = clientVersion
        self.clientKeepAlive = clientKeepAlive
        self.upstreamHead = upstreamHead
        self.requestBody = requestBody
        self.start = start
        self.route = route
        self.machine = ExchangeMachine(method: method, requestBody: requestBody, tunnelEnds: tunnelEnds)
    }

    /// The upstream's status once its head arrived; 0 before.
    package var status: Int { machine.status }
    package var upstreamNanoseconds: Int64? { machine.upstreamNanoseconds }
    package var tunnel: Bool { machine.isTunnel }
}

/// Banner mode's rewrite of a response body, shared by the HTTP/1 and HTTP/2 paths.
extension Exchange {
    /// Whether this response gets the banner: an HTML answer (2xx, or 4xx, since an app's
    /// "restricted" page is where a visitor needs the link) that is uncompressed or in a
    /// coding the gateway can undo and redo. Sets up the injector (and codecs) when it does.
    package func prepareBanner(for head: UpstreamResponseHead, hasBody: Bool) -> Bool {
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

    package struct CorruptBody: Error {}

    /// A body part as the client gets it: unchanged, or with the banner inserted (nil when
    /// nothing is ready to write yet). Throws when a compressed body does not decode.
    package func rewrite(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) throws(CorruptBody) -> ByteBuffer? {
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
    package func finishRewrite(allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard injector != nil else { return nil }
        var rest = injector!.finish()
        injector = nil
        if let encoder { rest = encoder.encode(rest) + encoder.finish() }
        decoder = nil
        encoder = nil
        return rest.isEmpty ? nil : allocator.buffer(bytes: rest)
    }
}

/// The upstream connection's part of an exchange, shared by the HTTP/1 and HTTP/2 paths:
/// the I/O the machine's actions ask for.
extension Exchange {
    /// Attaches `connection` (reads paused unless `readsAllowed`); the machine then says what
    /// to send on it.
    package func adopt(_ connection: UpstreamConnection, delegate: UpstreamDelegate, readsAllowed: Bool) {
        upstream = connection
        connection.handler.delegate = delegate
        if readsAllowed { connection.handler.resumeReads() } else { connection.handler.pauseReads() }
    }

    /// `.sendRequest`: the head, the parts that arrived before the connection, the end.
    package func sendRequest(parts: [ByteBuffer], end: Bool, loop: FlushScheduler) {
        guard let handler = upstream?.handler else { return }
        handler.sendHead(upstreamHead, chunked: requestBody == .chunked, reservedCookies: reservedCookies, webSocketAccept: webSocketAccept)
        for part in parts { handler.sendBody(part) }
        if end { handler.sendEnd() }
        handler.flush(deferredOn: loop)
    }

    /// `.finish`: the connection goes back to the pool when it can serve another request,
    /// and is closed otherwise.
    package func releaseUpstream(reusable: Bool, to pool: UpstreamPool) {
        guard let connection = upstream else { return }
        upstream = nil
        if reusable && connection.handler.isReusable {
            pool.release(connection)
        } else {
            connection.handler.delegate = nil
            connection.channel.close(promise: nil)
        }
    }

    /// Drops an upstream connection mid-exchange: its state is unknown, it is never reused.
    package func abandonUpstream() {
        guard let connection = upstream else { return }
        upstream = nil
        connection.handler.delegate = nil
        connection.channel.close(promise: nil)
    }
}

extension Exchange {
    /// Whether `addAssertion` has anything to do (an identity, and `upstream_assertion` on).
    package var needsAssertion: Bool { assertionClaims != nil && route.minter != nil }

    /// Adds `X-SSO-Assertion` to the upstream head when this exchange carries an identity
    /// to sign, then calls `next` on `loop`: at once when a fresh token is cached, else once
    /// signed. `next` gets the signing error, if any; the request must not go out without
    /// the assertion the upstream expects.
    package func addAssertion(on loop: EventLoop, then next: @escaping (Error?) -> Void) {
        guard let claims = assertionClaims, let minter = route.minter else { return next(nil) }
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
