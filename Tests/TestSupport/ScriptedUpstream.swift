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

    /// - Parameter echoAfterAnswer: after the first answer, send every received byte back
    ///   (a protocol switched by a `101` answer, such as a WebSocket).
    public static func start(answer: String, thenClose: Bool, echoAfterAnswer: Bool = false,
                             group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ScriptedUpstream {
        let heads = NIOLockedValueBox(0)
        let bytes = Array(answer.utf8)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(answer: bytes, thenClose: thenClose, echo: echoAfterAnswer, heads: heads))
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
        let echo: Bool
        let heads: NIOLockedValueBox<Int>
        var seen: [UInt8] = []
        var echoing = false

        init(answer: [UInt8], thenClose: Bool, echo: Bool, heads: NIOLockedValueBox<Int>) {
            self.answer = answer
            self.thenClose = thenClose
            self.echo = echo
            self.heads = heads
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if echoing {
                context.writeAndFlush(data, promise: nil)
                return
            }
            seen += Array(unwrapInboundIn(data).readableBytesView)
            // Answer once per complete request head (bodies are not used by these tests).
            while let end = seen.firstRange(of: [13, 10, 13, 10]) {
                seen.removeSubrange(..<end.upperBound)
                heads.withLockedValue { $0 += 1 }
                let write = context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: answer)))
                if thenClose { write.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
                if echo {
                    echoing = true
                    if !seen.isEmpty { context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: seen)), promise: nil) }
                    seen = []
                    return
                }
            }
        }
    }
}
