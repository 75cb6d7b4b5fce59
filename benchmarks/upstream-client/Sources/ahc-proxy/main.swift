// ahc-proxy LISTEN_PORT UPSTREAM_URL: forwards every request to the upstream through
// AsyncHTTPClient's delegate API on the connection's own event loop (AHC's fastest path:
// no Task hop, streaming response parts), with a keep-alive pool of 64 per host.
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix

let port = Int(CommandLine.arguments[1])!
let upstream = CommandLine.arguments[2]
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
var configuration = HTTPClient.Configuration()
configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)

final class Relay: HTTPClientResponseDelegate {
    typealias Response = Void
    let context: ChannelHandlerContext
    init(context: ChannelHandlerContext) { self.context = context }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        var headers = HTTPHeaders()
        for (name, value) in head.headers where !["connection", "keep-alive", "transfer-encoding"].contains(name.lowercased()) {
            headers.add(name: name, value: value)
        }
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))), promise: nil)
        return context.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))))
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: Error) {
        context.close(promise: nil)
    }
}

final class Front: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        var headers = head.headers
        headers.add(name: "X-Forwarded-For", value: context.channel.remoteAddress?.ipAddress ?? "-")
        guard let request = try? HTTPClient.Request(url: upstream + head.uri, method: head.method, headers: headers) else {
            context.close(promise: nil)
            return
        }
        _ = client.execute(request: request, delegate: Relay(context: context), eventLoop: .delegateAndChannel(on: context.eventLoop))
    }
}

let server = try ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(Front())
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("ahc-proxy listening on \(port)")
try server.closeFuture.wait()
