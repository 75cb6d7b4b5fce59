import Config
import CryptoCore
import Foundation
import HTTPWire
import Logging
import NIOCore
import NIOEmbedded
import Proxy

/// Entry points for coverage-guided fuzzing of the wire: what a client or an upstream can
/// send. Each must return for every input, with memory bounded (libFuzzer's RSS and malloc
/// limits catch growth): an error, a 4xx or a closed connection is fine, a crash or a hang
/// is not. `make fuzz` runs each; `swift test` replays their corpora (Tests/Fixtures/fuzz).
public enum WireFuzz {
    /// One embedded loop and gateway per thread (an embedded loop belongs to the thread that
    /// made it), reused for every input: the real client pipeline (protocol choice, HTTP/1.1
    /// decoder and connection handler, or the nghttp2 session) with a configuration that
    /// protects `/{org}/` for `acme`. Upstream connects fail at once on an embedded loop, so
    /// proxied requests end in `502`.
    private final class Context {
        let loop = EmbeddedEventLoop()
        let shared: GatewayShared

        init() {
            let quiet = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
            shared = GatewayShared(configuration: WireFuzz.configuration, metrics: GatewayMetrics(), logger: quiet, accessLogger: nil,
                                   accessLogSink: nil, group: loop, clock: { Date(timeIntervalSince1970: 1_767_261_660) })
        }

        static var current: Context {
            let key = "ssogate.WireFuzz.Context"
            if let existing = Thread.current.threadDictionary[key] as? Context { return existing }
            let made = Context()
            Thread.current.threadDictionary[key] = made
            return made
        }
    }

    private static let peer = try! SocketAddress(ipAddress: "192.0.2.1", port: 40000)
    /// The IdP certificate is made here (the wire targets never verify a signature); the
    /// configuration is the same for every input.
    private static let configuration: GatewayConfiguration = {
        let certificate = try! SelfSignedIdentity.generate(commonName: "wire-fuzz-idp", days: 3650).certificatePEM
        let yaml = """
        listen: "127.0.0.1:8080"
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:9"
        session: {secrets: ["0123456789abcdef0123456789abcdef"]}
        protected_paths: ["/{org}/", "/datasets/{org}/"]
        organizations:
          - name: acme
            saml:
              enabled: true
              sign_on_url: "https://idp.example/sso"
              certificate: |
        \(certificate.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n"))
        """
        return try! ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: ".")
    }()

    /// Client bytes on a plain listener: HTTP/1.x (or h2c, when they start with the preface).
    /// The first byte, times 4, is where the rest is cut in two reads. Returns what the
    /// gateway wrote back.
    @discardableResult
    public static func clientBytes(_ input: [UInt8]) -> [UInt8] {
        drive(Array(input.dropFirst()), cut: Int(input.first ?? 0) * 4)
    }

    /// HTTP/2 frames from a client, after the connection preface (added here); the first
    /// byte cuts as for `clientBytes`.
    @discardableResult
    public static func http2Frames(_ input: [UInt8]) -> [UInt8] {
        drive(PrefaceSniffer.preface + input.dropFirst(), cut: Int(input.first ?? 0) * 4)
    }

    private static func drive(_ bytes: [UInt8], cut: Int) -> [UInt8] {
        let context = Context.current
        let loop = context.loop
        let channel = EmbeddedChannel(loop: loop)
        var written: [UInt8] = []
        func collect() {
            while let buffer = (try? channel.readOutbound(as: ByteBuffer.self)) ?? nil {
                if written.count < 1 << 20 { written += buffer.readableBytesView }
            }
        }
        defer {
            _ = try? channel.finish(acceptAlreadyClosed: true)
            loop.run()
        }
        guard (try? GatewayServer.configureClientPipeline(channel, shared: context.shared)) != nil else { return [] }
        _ = channel.connect(to: peer)  // an embedded channel takes writes only once "connected"
        loop.run()
        let cut = min(bytes.count, cut)
        for part in [bytes[..<cut], bytes[cut...]] where !part.isEmpty {
            guard channel.isActive else { break }
            _ = try? channel.writeInbound(ByteBuffer(bytes: part))
            loop.run()
            collect()
        }
        channel.pipeline.fireChannelReadComplete()
        loop.run()
        collect()
        return written
    }

    /// Upstream response bytes: the parser (a HEAD or a WebSocket handshake answer when the
    /// first byte says so), then what the gateway does with a head (HTTP/2 fields, fields
    /// named by Connection) and a body (banner injection).
    public static func upstreamResponse(_ bytes: [UInt8]) {
        var parser = ResponseParser()
        parser.reservedCookies = ["ssogate_session"]
        let flags = bytes.first ?? 0
        let accept = flags & 2 != 0 ? HeaderPolicy.webSocketAccept(forKey: ["dGhlIHNhbXBsZSBub25jZQ=="]) : nil
        parser.expectResponse(toHead: flags & 1 != 0, webSocketAccept: accept)
        var injector = BannerInjector(banner: "<div>B</div>")
        let cut = bytes.isEmpty ? 0 : min(bytes.count, Int(flags) * 2)
        var responses = 0
        for part in [bytes[..<cut], bytes[cut...]] {
            parser.receive(ByteBuffer(bytes: part))
            while let event = try? parser.next() {
                switch event {
                case .head(let head):
                    _ = HTTP2Stream.lowercasedFields(head.fields)
                    _ = ResponseParser.dropping(["x-hop"], from: head.fields)
                case .body(let body):
                    _ = injector.feed(body)
                case .end:
                    _ = injector.finish()
                    responses += 1
                    guard responses < 64 else { return }
                    parser.expectResponse(toHead: false)
                }
            }
        }
        _ = try? parser.closed()
    }
}
