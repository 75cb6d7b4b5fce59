import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix
import XMLCore

/// The built-in application behind `ssogate demo`: a tiny model hub that shows which identity
/// reached it, so a person can see what the gateway forwards (and what it strips).
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

    /// The identity headers the gateway sets; the app trusts them because only the gateway
    /// can reach it.
    static let identityHeaders = ["X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-SSO-Organization", "X-SSO-Role"]

    /// A small model hub: a public home page, the organization `acme` whose repositories are
    /// restricted to its members, and `/whoami` listing every header that arrived.
    static func page(for head: HTTPRequestHead) -> (status: Int, html: String) {
        let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        let identity = identityHeaders.compactMap { name in head.headers.first(name: name).map { (name, $0) } }
        let who = head.headers.first(name: "X-Forwarded-Email") ?? head.headers.first(name: "X-Forwarded-User")
        let role = head.headers.first(name: "X-SSO-Role")
        let signedIn = who.map { "Signed in as <b id=\"user\">\(Markup.escape($0))</b>" + (role.map { " · role <b id=\"role\">\(Markup.escape($0))</b>" } ?? "") }
            ?? "Not signed in"
        let content: String
        var status = 200
        switch path {
        case "/":
            content = """
            <h1>Demo Hub</h1><p>Public models: <a href="/openlab/tiny-model">openlab/tiny-model</a></p>
            <p>Organization <a href="/acme/private-model">acme</a> (restricted to its members, SSO with the development IdP).</p>
            <p><a href="/whoami">What reached the app</a></p>
            """
        case "/openlab/tiny-model":
            content = "<h1>openlab/tiny-model</h1><p>A public model. Anyone can read it.</p>"
        case "/acme/private-model", "/acme/private-model/":
            if head.headers.first(name: "X-SSO-Organization") == "acme" {
                content = """
                <h1>acme/private-model</h1><p id="repo">Private repository of acme: weights, model card and files.</p>
                <table>\(identity.map { "<tr><td>\(Markup.escape($0.0))</td><td>\(Markup.escape($0.1))</td></tr>" }.joined())</table>
                <h2>From git and scripts</h2><p>Make an <a id="tokens" href="/organizations/acme/settings/tokens">access token</a>, then
                give it as the password: <code>git clone http://\(Markup.escape(who?.split(separator: "@").first.map(String.init) ?? "me")):TOKEN@\(
                    Markup.escape(head.headers.first(name: "Host") ?? "localhost"))/acme/private-model.git</code>,
                or send <code>Authorization: Bearer TOKEN</code>.</p>
                """
            } else {
                status = 403
                content = "<h1>acme/private-model</h1><p id=\"restricted\">This repository is restricted to members of acme.</p>"
            }
        case "/whoami":
            let rows = head.headers.map { "<tr><td>\(Markup.escape($0.name))</td><td>\(Markup.escape($0.value))</td></tr>" }.joined(separator: "\n")
            content = "<h1>Request headers that reached the app</h1><table>\(rows)</table>"
        default:
            status = 404
            content = "<h1>Not found</h1><p><code>\(Markup.escape(path))</code></p>"
        }
        return (status, """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Demo Hub</title>
        <style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}td{padding:.2rem .6rem;border-bottom:1px solid #ddd;font-family:monospace}header{color:#555;border-bottom:1px solid #ddd;padding-bottom:.4rem}</style>
        </head><body>
        <header><a href="/">Demo Hub</a> · \(signedIn)</header>
        \(content)
        </body></html>
        """)
    }

    final class PageHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = []
            case .body(var part):
                // Only git's requests carry bodies here; a demo bounds them anyway.
                if body.count < 16 << 20 { body += part.readBytes(length: part.readableBytes) ?? [] }
            case .end:
                guard let head else { return }
                self.head = nil
                if head.uri.hasPrefix(DemoGit.path + "/"), head.headers.first(name: "X-SSO-Organization") == "acme" {
                    // git http-backend blocks: run it off the event loop, answer on it.
                    let loop = context.eventLoop
                    let bound = NIOLoopBound(context, eventLoop: loop)
                    let request = body
                    DispatchQueue.global().async {
                        let answer = DemoGit.serve(head, body: request)
                        loop.execute {
                            let context = bound.value
                            var headers = HTTPHeaders(answer.headers)
                            headers.replaceOrAdd(name: "Content-Length", value: String(answer.body.count))
                            context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1,
                                                                                               status: HTTPResponseStatus(statusCode: answer.status),
                                                                                               headers: headers))), promise: nil)
                            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
                            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
                        }
                    }
                    return
                }
                let (status, body) = DemoUpstream.page(for: head)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
