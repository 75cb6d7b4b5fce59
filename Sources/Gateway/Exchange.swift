import Compression
import NIOCore
import NIOHTTP1

/// One request/response pair in flight through the proxy.
final class Exchange {
    let method: HTTPMethod
    let uri: String
    let clientVersion: HTTPVersion
    let clientKeepAlive: Bool
    let upstreamHead: HTTPRequestHead
    let requestBody: RequestFraming.Body
    let start: NIODeadline

    /// Body parts that arrived before an upstream connection was ready. An array, not a
    /// CircularBuffer: an empty array allocates nothing, and most requests have no body.
    var buffered: [ByteBuffer] = []
    var requestEndReceived = false
    var requestFullySent = false
    var bodyBytesSent: UInt64 = 0

    /// Banner mode: the markup to insert into an HTML answer, and the injector once the
    /// answer turned out to be uncompressed HTML.
    var bannerHTML: String?
    var injector: BannerInjector?
    /// For a compressed page: undo the coding, insert, redo it.
    var decoder: StreamDecoder?
    var encoder: StreamEncoder?
    /// Set-Cookie that clears a session cookie which no longer opens.
    var clearCookie: String?
    /// The gateway's cookie names: an upstream Set-Cookie for them is dropped.
    var reservedCookies: [String] = []
    var upstream: UpstreamConnection?
    var reusedConnection = false
    var retried = false
    var upstreamSentAt: NIODeadline?
    /// When the response head must have arrived (`upstream_timeout`), checked by the loop sweep.
    var upstreamDeadline: NIODeadline?
    var upstreamTimeout: TimeAmount = .zero

    var responseFraming: ResponseFraming = .none
    var upstreamKeepAlive = false
    /// The upstream's status once its response head arrived; 0 before.
    var status = 0
    var responseBytes = 0
    var upstreamNanoseconds: Int64?
    var wroteUpstreamInThisRead = false

    init(method: HTTPMethod, uri: String, clientVersion: HTTPVersion, clientKeepAlive: Bool,
         upstreamHead: HTTPRequestHead, requestBody: RequestFraming.Body, start: NIODeadline) {
        self.method = method
        self.uri = uri
        self.clientVersion = clientVersion
        self.clientKeepAlive = clientKeepAlive
        self.upstreamHead = upstreamHead
        self.requestBody = requestBody
        self.start = start
    }

    /// Whether a failure on a reused keep-alive connection may be retried on a fresh one:
    /// the upstream may have closed the idle connection just as the request went out. Only
    /// for body-less requests of safe methods, so nothing can happen twice.
    var mayRetry: Bool {
        reusedConnection && !retried && status == 0 && requestBody == .none
            && [.GET, .HEAD, .OPTIONS].contains(method)
    }
}
