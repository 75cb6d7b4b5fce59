import NIOCore
import NIOHTTP1
import NIOPosix

/// The built-in application behind `ssogate demo`: a small page that shows which request
/// headers reached it, so a person can see what the gateway forwards (and what it strips).
public enum DemoUpstream {
    /// Starts the demo app on `host:port` (0 picks a port) and returns its channel.
    public static func start(group: EventLoopGroup, host: String = "127.0.0.1", port: Int = 0) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(PageHandler())
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func page(for head: HTTPRequestHead) -> String {
        let rows = head.headers.map { "<tr><td>\(escape($0.name))</td><td>\(escape($0.value))</td></tr>" }.joined(separator: "\n")
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>ssogate demo app</title>
        <style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}td{padding:.2rem .6rem;border-bottom:1px solid #ddd;font-family:monospace}</style>
        </head><body>
        <h1>Demo application</h1>
        <p>This page is served by the demo upstream behind ssogate. Path: <code>\(escape(head.uri))</code></p>
        <h2>Request headers that reached the app</h2>
        <table>\(rows)</table>
        </body></html>
        """
    }

    final class PageHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private var head: HTTPRequestHead?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let head else { return }
                let body = DemoUpstream.page(for: head)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                self.head = nil
            }
        }
    }
}
