import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TestFixtures

/// A real HTTP server on loopback that plays the protected application in tests.
///
/// Routes:
/// - `/echo`: answers JSON with the method, target, headers and body size it received.
/// - `/stream?bytes=N[&chunked=1]`: sends N bytes, honouring backpressure.
/// - `/sink[?stall_ms=N]`: reads the request body without keeping it (after not reading
///   for N ms); answers the byte count.
/// - `/slow?ms=N`: answers after N milliseconds.
/// - `/close`: closes the connection without answering.
/// - `/hop`: answers with hop-by-hop response fields.
/// - `/early`: answers 413 at once without reading the body.
/// - anything else: 200 with a short text body.
public final class TestUpstream: Sendable {
    public struct Seen: Sendable {
        public let method: String
        public let uri: String
        public let headers: [(String, String)]
        public let bodyBytes: Int
        public func values(_ name: String) -> [String] {
            headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
        }
    }

    public let port: Int
    private let channel: Channel
    private let state: NIOLockedValueBox<(requests: [Seen], connections: Int)>

    /// TLS on the upstream's listener: its certificate chain and key (PEM), and, to ask every
    /// client for a certificate, the CA it must chain to.
    public struct TLS: Sendable {
        public let certificateChainPEM: String
        public let keyPEM: String
        public let clientCAPEM: String?
        public init(certificateChainPEM: String, keyPEM: String, clientCAPEM: String? = nil) {
            self.certificateChainPEM = certificateChainPEM
            self.keyPEM = keyPEM
            self.clientCAPEM = clientCAPEM
        }
    }

    public static func start(group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, tls: TLS? = nil) async throws -> TestUpstream {
        let state = NIOLockedValueBox<(requests: [Seen], connections: Int)>(([], 0))
        let context = try tls.map { tls -> NIOSSLContext in
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(tls.certificateChainPEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(tls.keyPEM.utf8), format: .pem)))
            if let ca = tls.clientCAPEM {
                configuration.certificateVerification = .noHostnameVerification
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.utf8)))
            }
            return try NIOSSLContext(configuration: configuration)
        }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                state.withLockedValue { $0.connections += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    if let context { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TestUpstream(port: channel.localAddress!.port!, channel: channel, state: state)
    }

    private init(port: Int, channel: Channel, state: NIOLockedValueBox<(requests: [Seen], connections: Int)>) {
        self.port = port
        self.channel = channel
        self.state = state
    }

    public var requests: [Seen] { state.withLockedValue { $0.requests } }
    public var connectionCount: Int { state.withLockedValue { $0.connections } }

    public func stop() async { try? await channel.close() }

    final class Handler: ChannelDuplexHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundIn = Never
        typealias OutboundOut = HTTPServerResponsePart

        let state: NIOLockedValueBox<(requests: [Seen], connections: Int)>
        var head: HTTPRequestHead?
        var bodyBytes = 0
        var body = ByteBuffer()
        var remaining = 0
        var chunked = false
        var readPending = false
        var stalled = false

        init(state: NIOLockedValueBox<(requests: [Seen], connections: Int)>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                bodyBytes = 0
                body.clear()
                if h.uri.hasPrefix("/sink"), let ms = query(h.uri, "stall_ms").flatMap(Int64.init) {
                    // Stop reading the body for a while, so the gateway must hold the client back.
                    stalled = true
                    context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(ms)) {
                        self.stalled = false
                        if self.readPending { self.readPending = false; context.read() }
                    }
                }
                if h.uri.hasPrefix("/early") {
                    respond(context, status: .payloadTooLarge, body: "too large", extra: [("Connection", "close")])
                }
            case .body(var b):
                bodyBytes += b.readableBytes
                if head?.uri.hasPrefix("/echo") == true, body.readableBytes < 1 << 20 { body.writeBuffer(&b) }
            case .end:
                guard let h = head else { return }
                state.withLockedValue {
                    $0.requests.append(Seen(method: h.method.rawValue, uri: h.uri,
                                            headers: h.headers.map { ($0.name, $0.value) }, bodyBytes: bodyBytes))
                }
                route(context, h)
            }
        }

        private func query(_ uri: String, _ key: String) -> String? {
            guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
            for pair in q.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == key { return String(kv[1]) }
            }
            return nil
        }

        private func route(_ context: ChannelHandlerContext, _ h: HTTPRequestHead) {
            let path = h.uri.split(separator: "?").first.map(String.init) ?? h.uri
            switch path {
            case "/echo":
                let headers = h.headers.map { "[\(json($0.name)),\(json($0.value))]" }.joined(separator: ",")
                let text = "{\"method\":\(json(h.method.rawValue)),\"uri\":\(json(h.uri)),\"headers\":[\(headers)],\"body_bytes\":\(bodyBytes),\"body\":\(json(String(buffer: body)))}"
                respond(context, status: .ok, body: text, extra: [("Content-Type", "application/json")])
            case "/stream":
                remaining = Int(query(h.uri, "bytes") ?? "0") ?? 0
                chunked = query(h.uri, "chunked") == "1"
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/octet-stream")
                if !chunked { headers.add(name: "Content-Length", value: String(remaining)) }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                pump(context)
            case "/sink":
                respond(context, status: .ok, body: "\(bodyBytes)")
            case "/slow":
                let ms = Int64(query(h.uri, "ms") ?? "0") ?? 0
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(ms)) {
                    self.respond(context, status: .ok, body: "slow")
                }
            case "/close":
                context.close(promise: nil)
            case "/html", "/acme/html":
                respond(context, status: .ok, body: "<!doctype html><html><head><title>t</title></head><body class=\"app\"><h1>Repo</h1></body></html>",
                        extra: [("Content-Type", "text/html; charset=utf-8")])
            case "/acme/restricted", "/acme/broken":
                // What an app answers an anonymous visitor of restricted content, or fails with.
                respond(context, status: path == "/acme/restricted" ? .forbidden : .internalServerError,
                        body: "<!doctype html><html><body><p>Restricted</p></body></html>",
                        extra: [("Content-Type", "text/html; charset=utf-8")])
            case "/acme/html-zstd":
                // A coding the gateway does not handle: must pass through untouched.
                respond(context, status: .ok, body: "ZSTD-BYTES", extra: [("Content-Type", "text/html"), ("Content-Encoding", "zstd")])
            case "/acme/compressed":
                // The page of Tests/Fixtures/compression as compressed elsewhere, sent coded
                // whatever the request asked for.
                let coding = query(h.uri, "coding") ?? "gzip"
                let file = ["gzip": "page.html.gz", "deflate": "page.html.zz", "br": "page.html.br"][coding] ?? "page.html.gz"
                let bytes = Data((try? Fixture.bytes("compression/\(file)")) ?? [])
                var headers = HTTPHeaders([("Content-Type", "text/html"), ("Content-Encoding", coding), ("Content-Length", String(bytes.count))])
                headers.add(name: "Vary", value: "Accept-Encoding")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                // Sent in 700-byte pieces, so the compressed stream arrives split.
                var offset = 0
                while offset < bytes.count {
                    let end = min(bytes.count, offset + 700)
                    context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes[offset..<end])))), promise: nil)
                    offset = end
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case "/acme/bightml":
                // A streamed HTML page of `bytes` bytes whose <body> tag comes after 1 KiB.
                remaining = Int(query(h.uri, "bytes") ?? "0") ?? 0
                chunked = true
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/html")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                var prefix = context.channel.allocator.buffer(capacity: 1100)
                prefix.writeString("<html><head>" + String(repeating: " ", count: 1024) + "</head><bo")
                context.write(wrapOutboundOut(.body(.byteBuffer(prefix))), promise: nil)
                var rest = context.channel.allocator.buffer(capacity: 16)
                rest.writeString("dy id=\"b\">")
                context.write(wrapOutboundOut(.body(.byteBuffer(rest))), promise: nil)
                pump(context)
            case "/setcookie":
                // Tries to set the gateway's own session cookie beside an ordinary one.
                respond(context, status: .ok, body: "cookies", extra: [
                    ("Set-Cookie", "ssogate_session=forged; Path=/"), ("Set-Cookie", "app=1; Path=/"),
                ])
            case "/hop":
                // Hop-by-hop fields, including one named by Connection, that must not reach the client.
                respond(context, status: .ok, body: "hop", extra: [
                    ("Connection", "X-Up-Hop"), ("X-Up-Hop", "1"), ("Keep-Alive", "timeout=5"),
                    ("Proxy-Connection", "keep-alive"), ("X-End-To-End", "kept"),
                ])
            case "/early":
                break  // answered at the head
            default:
                respond(context, status: .ok, body: "hello from upstream")
            }
        }

        /// Writes the stream in 64 KiB pieces while the channel is writable.
        private func pump(_ context: ChannelHandlerContext) {
            while remaining > 0 && context.channel.isWritable {
                let n = min(remaining, 65_536)
                remaining -= n
                var buffer = context.channel.allocator.buffer(capacity: n)
                buffer.writeRepeatingByte(0x61, count: n)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            if remaining == 0, head != nil {
                head = nil
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                context.flush()
            }
        }

        func read(context: ChannelHandlerContext) {
            if stalled { readPending = true } else { context.read() }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if context.channel.isWritable && remaining > 0 { pump(context) }
            context.fireChannelWritabilityChanged()
        }

        private func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, body: String, extra: [(String, String)] = []) {
            var headers = HTTPHeaders(extra)
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            let close = extra.contains { $0.0 == "Connection" && $0.1 == "close" }
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if close { context.close(promise: nil) }
            }
        }
    }
}

func json(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}
