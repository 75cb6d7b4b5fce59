import DevIdP
import Gateway
import Foundation
import HTTPWire
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves a `DevIdP` over HTTP/1.1 (`ssogate demo`, `ssogate dev-idp`).
public enum DevIdPServer {
    /// Binds `host:port` (0 picks a port), then builds the IdP from the bound port so its
    /// URLs are right; requests that arrive before it exists get a 503.
    public static func start(group: EventLoopGroup, host: String, port: Int,
                             make: (Int) throws -> DevIdP) async throws -> (Channel, DevIdP) {
        let slot = NIOLockedValueBox<DevIdP?>(nil)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(slot: slot))
                }
            }
            .bind(host: host, port: port)
            .get()
        let idp = try make(channel.localAddress?.port ?? port)
        slot.withLockedValue { $0 = idp }
        return (channel, idp)
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private let slot: NIOLockedValueBox<DevIdP?>
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(slot: NIOLockedValueBox<DevIdP?>) { self.slot = slot }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = []
            case .body(let buffer):
                // Forms here are a user choice or a SAMLRequest: small. Larger bodies are cut off.
                if body.count < 64 * 1024 { body += buffer.readableBytesView.prefix(64 * 1024 - body.count) }
            case .end:
                guard let head else { return }
                self.head = nil
                let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
                let reply = slot.withLockedValue { $0 }?.handle(method: head.method.rawValue, path: String(path),
                                                                 query: RequestFields.query(head.uri),
                                                                 form: RequestFields.form(String(decoding: body, as: UTF8.self)))
                    ?? DevIdP.Reply(status: 503, contentType: "text/plain; charset=utf-8", body: "starting\n")
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: reply.contentType)
                headers.add(name: "Content-Length", value: String(reply.body.utf8.count))
                headers.add(name: "Cache-Control", value: "no-store")
                let status = HTTPResponseStatus(statusCode: reply.status)
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: reply.body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
