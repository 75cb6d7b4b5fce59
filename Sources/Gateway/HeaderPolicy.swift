import Config
import NIOHTTP1

/// What crosses the gateway in request and response headers. Pure functions, tested
/// without sockets.
enum HeaderPolicy {
    /// RFC 9110 §7.6.1 connection-specific fields, plus the de-facto `Proxy-Connection`.
    /// `Transfer-Encoding` is here because each hop frames its own body; the proxy re-adds it.
    static let hopByHop: Set<String> = [
        "connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade", "trailer",
    ]

    /// Fields only the gateway may set. Compared after `canonical(_:)`, so `X-Forwarded_User`
    /// and `x-forwarded-user` are the same field: upstream stacks (CGI, PHP, some WSGI
    /// servers) map `-` and `_` to one name, so a client could otherwise smuggle one in.
    static let identity: Set<String> = [
        "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username",
    ]
    /// The whole `X-SSO-*` namespace belongs to the gateway.
    static let identityPrefix = "x-sso-"
    /// Client-sent forwarding fields; kept only from trusted proxies.
    static let forwarding: Set<String> = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"]

    /// Lower case with `_` folded to `-`.
    static func canonical(_ name: String) -> String {
        var out = ""
        out.reserveCapacity(name.utf8.count)
        for scalar in name.unicodeScalars {
            switch scalar {
            case "A"..."Z": out.unicodeScalars.append(Unicode.Scalar(scalar.value + 32)!)
            case "_": out.unicodeScalars.append("-")
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Names listed in `Connection` (lower-cased), which are hop-by-hop for this message.
    static func connectionListed(_ headers: HTTPHeaders) -> Set<String> {
        var names: Set<String> = []
        for value in headers[canonicalForm: "connection"] {
            let name = String(value).lowercased()
            if !name.isEmpty { names.insert(name) }
        }
        return names
    }

    /// The request head the upstream receives.
    /// - Parameters:
    ///   - peer: the client's IP address as text; `peerTrusted` when it is in `trusted_proxies`.
    ///   - scheme: the listener's scheme (`http` or `https`).
    static func upstreamRequestHead(from head: HTTPRequestHead, peer: String?, peerTrusted: Bool,
                                    scheme: String, bodyFraming: RequestFraming.Body) -> HTTPRequestHead {
        let listed = connectionListed(head.headers)
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 4)
        var clientXFF: [String] = []
        var clientProto: String?
        var clientHost: String?
        for (name, value) in head.headers {
            let lower = name.lowercased()
            // Content-Length is re-emitted once below; Expect is answered by the gateway itself.
            if hopByHop.contains(lower) || listed.contains(lower) || lower == "expect" || lower == "content-length" { continue }
            let canon = lower.contains("_") ? canonical(lower) : lower
            if identity.contains(canon) || canon.hasPrefix(identityPrefix) { continue }
            if forwarding.contains(canon) {
                guard peerTrusted, canon == lower else { continue }  // a trusted proxy spells them properly
                switch lower {
                case "x-forwarded-for": clientXFF.append(value)
                case "x-forwarded-proto": clientProto = clientProto ?? value
                case "x-forwarded-host": clientHost = clientHost ?? value
                default: headers.add(name: name, value: value)  // Forwarded, kept as sent
                }
                continue
            }
            headers.add(name: name, value: value)
        }
        var forwardedFor = clientXFF.joined(separator: ", ")
        if let peer {
            forwardedFor = forwardedFor.isEmpty ? peer : forwardedFor + ", " + peer
        }
        if !forwardedFor.isEmpty { headers.add(name: "X-Forwarded-For", value: forwardedFor) }
        headers.add(name: "X-Forwarded-Proto", value: clientProto ?? scheme)
        if let host = clientHost ?? head.headers.first(name: "host") {
            headers.add(name: "X-Forwarded-Host", value: host)
        }
        switch bodyFraming {
        case .none: break
        case .contentLength(let length): headers.add(name: "Content-Length", value: String(length))
        case .chunked: headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    /// The response head the client receives: hop-by-hop fields removed and the body framing
    /// chosen for this hop.
    static func clientResponseHead(from head: HTTPResponseHead, framing: ResponseFraming) -> HTTPResponseHead {
        let listed = connectionListed(head.headers)
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 1)
        for (name, value) in head.headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || listed.contains(lower) { continue }
            // A body this hop frames itself must not also carry the upstream's length; HEAD,
            // 204 and 304 responses keep it as the size a GET would have had.
            if lower == "content-length" && (framing == .chunked || framing == .closeDelimited) { continue }
            headers.add(name: name, value: value)
        }
        switch framing {
        case .chunked: headers.add(name: "Transfer-Encoding", value: "chunked")
        case .closeDelimited, .none, .contentLength: break
        }
        return HTTPResponseHead(version: .http1_1, status: head.status, headers: headers)
    }
}

/// How the gateway frames a response body toward the client.
enum ResponseFraming: Equatable {
    /// No body at all (HEAD, 1xx, 204, 304): `Content-Length` kept as metadata, nothing written.
    case none
    case contentLength
    case chunked
    /// An HTTP/1.0 client and no length: the body ends when the connection closes.
    case closeDelimited

    static func choose(requestMethod: HTTPMethod, clientVersion: HTTPVersion, upstream: HTTPResponseHead) -> ResponseFraming {
        let code = upstream.status.code
        if requestMethod == .HEAD || (100..<200).contains(code) || code == 204 || code == 304 {
            return .none
        }
        if upstream.headers.contains(name: "content-length"), !upstream.headers.contains(name: "transfer-encoding") {
            return .contentLength
        }
        return clientVersion >= .http1_1 ? .chunked : .closeDelimited
    }
}

extension HTTPVersion: @retroactive Comparable {
    public static func < (a: HTTPVersion, b: HTTPVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }
}
