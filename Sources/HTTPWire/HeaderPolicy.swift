import CryptoCore
import Foundation
import NIOHTTP1

/// What crosses the gateway in request and response headers. Pure functions, tested
/// without sockets.
package enum HeaderPolicy {
    // Which fields are hop-by-hop (RFC 9110 §7.6.1, plus `Proxy-Connection`), which belong
    // to the gateway alone (identity, compared with `_` as `-`: CGI, PHP and some WSGI
    // servers map both to one name, so a client could otherwise smuggle one in) and which
    // are forwarding fields is decided by `HeaderName.classify`. `Transfer-Encoding` counts
    // as hop-by-hop because each hop frames its own body; the proxy re-adds it.

    /// Names listed in `Connection` (lower-cased), which are hop-by-hop for this message.
    /// `keep-alive` and `close` are the common values and name no field worth a set.
    package static func connectionListed(_ headers: HTTPHeaders) -> Set<String>? {
        var names: Set<String>?
        for (name, value) in headers where HeaderName.classify(name).0 == .connection {
            for token in value.split(separator: ",") {
                let trimmed = token.trimmingASCIISpaces().lowercased()
                if trimmed.isEmpty || trimmed == "keep-alive" || trimmed == "close" { continue }
                names = names ?? []
                names!.insert(trimmed)
            }
        }
        return names
    }

    /// The request head the upstream receives.
    /// - Parameters:
    ///   - peer: the client's IP address as text; `peerTrusted` when it is in `trusted_proxies`.
    ///   - scheme: the listener's scheme (`http` or `https`).
    package static func upstreamRequestHead(from head: HTTPRequestHead, peer: String?, peerTrusted: Bool,
                                            requestID: String? = nil, traceParent: String? = nil, traceState: String? = nil,
                                            scheme: String, bodyFraming: RequestFraming.Body, defaultHost: String = "localhost",
                                            dropCookies: [String] = [], identity: [(String, String)] = [],
                                            askIdentityEncoding: Bool = false, webSocket: Bool = false,
                                            dropAuthorization: Bool = false) -> HTTPRequestHead {
        let listed = connectionListed(head.headers)
        // Gathered as pairs and handed to HTTPHeaders once: its `add` scans every name
        // again (names here are the parser's tokens or the gateway's own).
        var headers: [(String, String)] = []
        headers.reserveCapacity(head.headers.count + 10)
        var clientXFF: [String] = []
        var clientProto: String?
        var clientHost: String?
        var host: String?
        for (name, value) in head.headers {
            let (kind, underscore) = HeaderName.classify(name)
            switch kind {
            case .hopByHop, .transferEncoding, .connection, .identity, .contentLength, .expect, .urlOverride, .requestContext:
                // Content-Length is re-emitted once below; Expect is answered by the gateway.
                continue
            case .forwardedFor, .forwardedProto, .forwardedHost, .forwarded, .forwardedOther:
                guard peerTrusted, !underscore else { continue }  // a trusted proxy spells them properly
                switch kind {
                case .forwardedFor: clientXFF.append(value)
                case .forwardedProto: clientProto = clientProto ?? value
                case .forwardedHost: clientHost = clientHost ?? value
                default: headers.append((name, value))  // Forwarded and the rest, kept as sent
                }
            case .host:
                host = host ?? value
                headers.append((name, value))
            case .cookie where !dropCookies.isEmpty:
                // The gateway's own cookies are not the application's business.
                if let kept = cookieField(value, dropping: dropCookies) { headers.append((name, kept)) }
            case .acceptEncoding where askIdentityEncoding:
                continue  // replaced below: the banner goes into an uncompressed page
            case .other, .cookie, .setCookie, .contentType, .contentEncoding, .acceptEncoding:
                if let listed, listed.contains(name.lowercased()) { continue }
                // The gateway's access token is its own credential, never the application's.
                if dropAuthorization, kind == .other, name.utf8.count == 13, name.lowercased() == "authorization" { continue }
                headers.append((name, value))
            }
        }
        // An HTTP/1.0 client may send no Host; the upstream request is HTTP/1.1, which must
        // have one (RFC 9112 §3.2): the public host the gateway serves.
        if host == nil { headers.append(("Host", defaultHost)) }
        var forwardedFor = clientXFF.joined(separator: ", ")
        if let peer {
            forwardedFor = forwardedFor.isEmpty ? peer : forwardedFor + ", " + peer
        }
        if !forwardedFor.isEmpty { headers.append(("X-Forwarded-For", forwardedFor)) }
        headers.append(("X-Forwarded-Proto", clientProto ?? scheme))
        if let forwardedHost = clientHost ?? host {
            headers.append(("X-Forwarded-Host", forwardedHost))
        }
        if let requestID { headers.append(("X-Request-Id", requestID)) }
        if let traceParent {
            headers.append(("traceparent", traceParent))
            if let traceState { headers.append(("tracestate", traceState)) }
        }
        for (name, value) in identity { headers.append((name, value)) }
        if askIdentityEncoding { headers.append(("Accept-Encoding", "identity")) }
        if webSocket {
            // The one hop-by-hop exchange that crosses the gateway: the upgrade it relays.
            headers.append(("Connection", "Upgrade"))
            headers.append(("Upgrade", "websocket"))
        }
        switch bodyFraming {
        case .none: break
        case .contentLength(let length): headers.append(("Content-Length", String(length)))
        case .chunked: headers.append(("Transfer-Encoding", "chunked"))
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: HTTPHeaders(headers))
    }
}

extension HeaderPolicy {
    /// A Cookie field without the cookies named in `dropped`: unchanged when it has none of
    /// them, the other pairs joined by `; ` when it has, nil when nothing is left. Pairs
    /// without `=` are kept (they are the application's). Works on the bytes: this runs for
    /// every request that carries the session cookie.
    package static func cookieField(_ value: String, dropping dropped: [String]) -> String? {
        var kept: [Substring] = []
        var droppedAny = false
        var pairs = 0
        RequestFields.forEachCookiePair(in: value) { pair, equals in
            pairs += 1
            let name = value[pair.lowerBound..<(equals ?? pair.upperBound)]
            if dropped.contains(where: { UTF8Bytes.equal(name, $0) }) {
                droppedAny = true
            } else {
                kept.append(value[pair])
            }
            return true
        }
        if !droppedAny { return pairs == 0 ? nil : value }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// Whether the request asks to switch protocols (`Connection: upgrade` with an
    /// `Upgrade` field): the HTTP/1 decoder stops reading the connection after such a head.
    package static func asksUpgrade(_ head: HTTPRequestHead) -> Bool {
        guard head.headers.contains(name: "upgrade") else { return false }
        return head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }

    /// The `Sec-WebSocket-Accept` an upstream must answer a handshake with (RFC 6455
    /// §4.2.2): base64 of SHA-1 over the key and the protocol's GUID. Nil unless there is
    /// exactly one key, the base64 of 16 bytes.
    package static func webSocketAccept(forKey keys: [Substring]) -> [UInt8]? {
        guard keys.count == 1 else { return nil }
        let key = keys[0].trimmingASCIISpaces()
        guard key.utf8.count == 24, let decoded = Data(base64Encoded: String(key)), decoded.count == 16,
              let digest = try? Digest.compute(.insecureSHA1, Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        else { return nil }
        return Array(Data(digest).base64EncodedString().utf8)
    }

    /// A WebSocket opening handshake (RFC 6455 §4.1): GET over HTTP/1.1 asking to upgrade
    /// to `websocket`, with no body. The only upgrade the gateway relays.
    package static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        guard head.method == .GET, head.version == .http1_1, asksUpgrade(head) else { return false }
        return head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }
}

/// How the gateway frames a response body toward the client.
package enum ResponseFraming: Equatable {
    /// No body at all (HEAD, 1xx, 204, 304): `Content-Length` kept as metadata, nothing written.
    case none
    case contentLength
    case chunked
    /// An HTTP/1.0 client and no length: the body ends when the connection closes.
    case closeDelimited

    package static func choose(requestMethod: HTTPMethod, clientVersion: HTTPVersion, upstream: ResponseParser.BodyFraming) -> ResponseFraming {
        if requestMethod == .HEAD { return .none }
        switch upstream {
        case .none: return .none
        case .contentLength: return .contentLength
        case .chunked, .untilClose: return clientVersion >= .http1_1 ? .chunked : .closeDelimited
        }
    }
}

extension HTTPVersion: @retroactive Comparable {
    public static func < (a: HTTPVersion, b: HTTPVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }
}
