import Config
import Foundation
import HTTPWire
import NIOCore
import NIOHTTP1
import NIOPosix
import StateStore

/// What an orchestrator asks (`admin_listen`, or the public port without it):
/// - `/_ssogate/healthz`: `200` while the process serves (liveness);
/// - `/_ssogate/ready`: `200` when the gateway can do its work, else `503` with each reason
///   (readiness): the state store answers within 2 s, and every organization that takes its
///   IdP from `metadata_url` has had its metadata loaded at least once;
/// - `/_ssogate/metrics`: the Prometheus text.
/// With `admin_listen` set, the public port answers only `healthz` of these: metrics (which
/// name organizations and counts) and readiness stay on the operator's side.
enum AdminEndpoints {
    static func answer(_ method: HTTPMethod, _ path: Substring, shared: GatewayShared, on loop: EventLoop) -> EventLoopFuture<LocalResponse> {
        switch (method, path) {
        case (.GET, "/_ssogate/healthz"), (.HEAD, "/_ssogate/healthz"):
            return loop.makeSucceededFuture(.plain(.ok, "ok"))
        case (.GET, "/_ssogate/metrics"):
            return loop.makeSucceededFuture(LocalResponse(status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                                                                                ("Cache-Control", "no-store")], body: shared.metrics.exposition()))
        case (.GET, "/_ssogate/ready"), (.HEAD, "/_ssogate/ready"):
            return loop.makeFutureWithTask { await ready(shared) }
        default:
            return loop.makeSucceededFuture(.plain(.notFound, "not found"))
        }
    }

    /// `200 ready`, or `503` with one line per reason.
    static func ready(_ shared: GatewayShared) async -> LocalResponse {
        var reasons: [String] = []
        do {
            _ = try await withTimeout(.seconds(2)) { try await shared.store.settingsVersion() }
        } catch {
            reasons.append("state store: no answer within 2 s (\(error))")
        }
        let loaded = shared.metadataLoaded
        for org in shared.runtime.configuration.organizations where org.saml.metadataURL != nil && !loaded.contains(org.name) {
            reasons.append("organization \(org.name): its IdP metadata has not been loaded yet")
        }
        return reasons.isEmpty ? .plain(.ok, "ready") : .plain(.serviceUnavailable, "not ready\n" + reasons.joined(separator: "\n"))
    }
}

/// The `admin_listen` listener: plain HTTP/1.1, the three endpoints above and nothing else.
final class AdminHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let shared: GatewayShared
    private var head: HTTPRequestHead?

    init(shared: GatewayShared) { self.shared = shared }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let received): head = received
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let keepAlive = head.isKeepAlive
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            AdminEndpoints.answer(head.method, pathOnly(head.uri), shared: shared, on: context.eventLoop).whenSuccess { response in
                let context = loopBound.value
                var fields = HTTPHeaders(response.headers)
                fields.replaceOrAdd(name: "Content-Length", value: String(head.method == .HEAD ? 0 : response.body.count))
                if !keepAlive { fields.replaceOrAdd(name: "Connection", value: "close") }
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: fields))), promise: nil)
                if head.method != .HEAD, !response.body.isEmpty {
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
                }
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                    if !keepAlive { context.close(promise: nil) }
                }
            }
        }
    }

    static func bind(_ endpoint: GatewayConfiguration.Endpoint, group: EventLoopGroup, shared: GatewayShared) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(shared: shared))
                }
            }
            .bind(host: endpoint.host, port: endpoint.port)
            .get()
    }
}
