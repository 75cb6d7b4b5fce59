import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An upstream that answers every request head with fixed raw bytes, then optionally
/// closes: for response shapes a well-behaved HTTP library will not produce (no length,
/// interim responses, malformed heads).
public final class ScriptedUpstream: Sendable {
    public let port: Int
    private let channel: Channel
    private let heads: NIOLockedValueBox<Int>

    public static func start(answer: String, thenClose: Bool,
                             group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ScriptedUpstream {
        let heads = NIOLockedValueBox(0)
        let bytes = Array(answer.utf8)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(answer: bytes, thenClose: thenClose, heads: heads))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return ScriptedUpstream(port: channel.localAddress!.port!, channel: channel, heads: heads)
    }

    private init(port: Int, channel: Channel, heads: NIOLockedValueBox<Int>) {
        self.port = port
        self.channel = channel
        self.heads = heads
    }

    /// Request heads received so far.
    public var requestCount: Int { heads.withLockedValue { $0 } }

    public func stop() async { try? await channel.close() }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let answer: [UInt8]
        let thenClose: Bool
        let heads: NIOLockedValueBox<Int>
        var seen: [UInt8] = []

        init(answer: [UInt8], thenClose: Bool, heads: NIOLockedValueBox<Int>) {
            self.answer = answer
            self.thenClose = thenClose
            self.heads = heads
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            seen += Array(unwrapInboundIn(data).readableBytesView)
            // Answer once per complete request head (bodies are not used by these tests).
            while let end = seen.firstRange(of: [13, 10, 13, 10]) {
                seen.removeSubrange(..<end.upperBound)
                heads.withLockedValue { $0 += 1 }
                let write = context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: answer)))
                if thenClose { write.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
            }
        }
    }
}
