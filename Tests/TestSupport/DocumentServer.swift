import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves one document whose body and status a test changes while it runs (an IdP's
/// metadata URL, say), and counts the requests.
public final class DocumentServer: Sendable {
    public let port: Int
    private let channel: Channel
    private let state: NIOLockedValueBox<(status: HTTPResponseStatus, body: String, requests: Int)>

    public static func start(body: String, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> DocumentServer {
        let state = NIOLockedValueBox((status: HTTPResponseStatus.ok, body: body, requests: 0))
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return DocumentServer(port: channel.localAddress!.port!, channel: channel, state: state)
    }

    private init(port: Int, channel: Channel, state: NIOLockedValueBox<(status: HTTPResponseStatus, body: String, requests: Int)>) {
        self.port = port
        self.channel = channel
        self.state = state
    }

    public func serve(_ body: String, status: HTTPResponseStatus = .ok) {
        state.withLockedValue { $0.status = status; $0.body = body }
    }

    public var requests: Int { state.withLockedValue { $0.requests } }

    public func stop() async { try? await channel.close() }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: NIOLockedValueBox<(status: HTTPResponseStatus, body: String, requests: Int)>
        init(state: NIOLockedValueBox<(status: HTTPResponseStatus, body: String, requests: Int)>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let (status, body) = state.withLockedValue { s -> (HTTPResponseStatus, String) in
                s.requests += 1
                return (s.status, s.body)
            }
            var headers = HTTPHeaders([("Content-Type", "application/samlmetadata+xml"), ("Content-Length", "\(body.utf8.count)")])
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
