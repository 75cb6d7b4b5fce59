import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain-HTTP GET for `ssogate dev-idp --sp-metadata http://...`: SP metadata on a
/// development machine. Kept on NIO so the binary does not link FoundationNetworking
/// (and libcurl); https metadata is read from a file instead.
public enum HTTPFetch {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func get(_ urlText: String, group: EventLoopGroup, limit: Int = 1 << 20,
                           timeout: TimeAmount = .seconds(10)) async throws -> [UInt8] {
        guard let url = URL(string: urlText), url.scheme == "http", let host = url.host else {
            throw Failure(description: "only http:// URLs are fetched; save https metadata to a file and give its path")
        }
        let port = url.port ?? 80
        let target = url.path.isEmpty ? "/" : url.path + (url.query.map { "?" + $0 } ?? "")
        let promise = group.next().makePromise(of: [UInt8].self)
        let connecting = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(Collector(promise: promise, limit: limit))
                }
            }
            .connect(host: host, port: port)
        let channel: Channel
        do {
            channel = try await connecting.get()
        } catch {
            promise.fail(error)  // never left pending: NIO traps on a dropped promise in debug builds
            throw Failure(description: "cannot connect to \(host):\(port): \(error)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        headers.add(name: "Accept", value: "application/samlmetadata+xml, application/xml, text/xml")
        headers.add(name: "Connection", value: "close")
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: headers)),
                      promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        // Closing ends the exchange: the collector then fails it, once.
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        return try await promise.futureResult.get()
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        private let promise: EventLoopPromise<[UInt8]>
        private let limit: Int
        private var status = 0
        private var body: [UInt8] = []
        private var done = false

        init(promise: EventLoopPromise<[UInt8]>, limit: Int) {
            self.promise = promise
            self.limit = limit
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
            case .body(let buffer):
                body += buffer.readableBytesView
                if body.count > limit {
                    finish(.failure(Failure(description: "answer larger than \(limit) bytes")))
                    context.close(promise: nil)
                }
            case .end:
                finish(status == 200 ? .success(body) : .failure(Failure(description: "HTTP \(status)")))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(.failure(Failure(description: "no complete answer (closed, or nothing within the timeout)")))
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            finish(.failure(error))
            context.close(promise: nil)
        }

        private func finish(_ result: Result<[UInt8], Error>) {
            guard !done else { return }
            done = true
            promise.completeWith(result)
        }
    }
}
