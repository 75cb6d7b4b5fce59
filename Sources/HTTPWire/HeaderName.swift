/// What the gateway does with a header field, decided from the name's bytes without
/// allocating (`Transfer-Encoding` is hop-by-hop too, but framing needs to see it): ASCII case is ignored and `_` counts as `-` (the spelling games upstream
/// stacks fall for). This runs for every field of every request and response.
package enum HeaderName: Equatable {
    case hopByHop
    /// Set only by the gateway (`X-Forwarded-User`, ..., the `X-SSO-*` namespace).
    case identity
    case forwardedFor, forwardedProto, forwardedHost, forwarded, forwardedOther
    /// Names a path other than the request target's (`X-Original-URL`, `X-Rewrite-URL`...):
    /// an upstream that routes on it would serve a path the gateway never authorized.
    /// Never forwarded, whoever sends it.
    case urlOverride
    /// `X-Request-Id`, `traceparent`, `tracestate`: which request and which trace this is.
    /// The gateway sends its own upstream (a trusted proxy's values, kept by the planner,
    /// or ones made here); a client's never pass as sent.
    case requestContext
    case contentLength, transferEncoding, expect, host, connection, cookie, setCookie
    case contentType, contentEncoding, acceptEncoding
    case other

    /// Classifies a field name; `usesUnderscore` tells that a recognised name was spelled
    /// with `_` (a trusted proxy's forwarding fields are only believed when spelled with `-`).
    package static func classify(_ name: String) -> (HeaderName, usesUnderscore: Bool) {
        var utf8 = name.utf8
        if let result = utf8.withContiguousStorageIfAvailable({ classify(bytes: $0) }) { return result }
        var copy = name
        copy.makeContiguousUTF8()
        utf8 = copy.utf8
        return utf8.withContiguousStorageIfAvailable { classify(bytes: $0) } ?? (.other, false)
    }

    package static func classify(bytes: UnsafeBufferPointer<UInt8>) -> (HeaderName, usesUnderscore: Bool) {
        var underscore = false
        // Folds case and `_`; returns nil when the name cannot be one of ours.
        @inline(__always) func folded(_ i: Int) -> UInt8 {
            let b = bytes[i]
            if b == UInt8(ascii: "_") { underscore = true; return UInt8(ascii: "-") }
            return (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
        }
        @inline(__always) func equals(_ literal: StaticString) -> Bool {
            guard literal.utf8CodeUnitCount == bytes.count else { return false }
            let l = literal.utf8Start
            for i in 0..<bytes.count where folded(i) != l[i] { return false }
            return true
        }
        @inline(__always) func hasPrefix(_ literal: StaticString) -> Bool {
            guard literal.utf8CodeUnitCount <= bytes.count else { return false }
            let l = literal.utf8Start
            for i in 0..<literal.utf8CodeUnitCount where folded(i) != l[i] { return false }
            return true
        }
        let kind: HeaderName
        switch bytes.count {
        // Client-address and host claims other proxies and CDNs set (`X-Real-IP`,
        // `True-Client-IP`, `X-Original-Host`...) are forwarding fields: believed only from a
        // trusted proxy, like `X-Forwarded-For`.
        case 2: kind = equals("te") ? .hopByHop : .other
        case 4: kind = equals("host") ? .host : .other
        case 6: kind = equals("expect") ? .expect : equals("cookie") ? .cookie : equals("x-host") ? .forwardedOther : .other
        case 7: kind = equals("upgrade") ? .hopByHop : equals("trailer") ? .hopByHop : .other
        case 9: kind = equals("forwarded") ? .forwarded : equals("x-real-ip") ? .forwardedOther : .other
        case 10: kind = equals("connection") ? .connection : equals("keep-alive") ? .hopByHop
            : equals("set-cookie") ? .setCookie : equals("tracestate") ? .requestContext : .other
        case 11: kind = equals("x-client-ip") ? .forwardedOther : equals("traceparent") ? .requestContext : .other
        case 12: kind = equals("content-type") ? .contentType : equals("x-request-id") ? .requestContext : .other
        case 13: kind = equals("x-rewrite-url") ? .urlOverride : .other
        case 14:
            kind = equals("content-length") ? .contentLength : equals("true-client-ip") ? .forwardedOther
                : equals("x-original-url") || equals("x-original-uri") ? .urlOverride : .other
        case 15:
            kind = equals("x-forwarded-for") ? .forwardedFor : equals("accept-encoding") ? .acceptEncoding
                : equals("x-original-host") ? .forwardedOther : equals("x-forwarded-uri") ? .urlOverride : .other
        case 16:
            kind = equals("x-forwarded-user") ? .identity : equals("x-forwarded-host") ? .forwardedHost
                : equals("proxy-connection") ? .hopByHop : equals("content-encoding") ? .contentEncoding
                : equals("cf-connecting-ip") || equals("fastly-client-ip") ? .forwardedOther
                : equals("x-forwarded-path") ? .urlOverride : .other
        case 17:
            kind = equals("x-forwarded-email") ? .identity : equals("x-forwarded-proto") ? .forwardedProto
                : equals("transfer-encoding") ? .transferEncoding : .other
        case 18: kind = equals("x-forwarded-groups") ? .identity : .other
        case 19: kind = equals("x-cluster-client-ip") ? .forwardedOther : .other
        case 20: kind = equals("x-http-host-override") ? .forwardedOther : .other
        case 21: kind = equals("x-envoy-original-path") ? .urlOverride : .other
        case 24: kind = equals("x-original-forwarded-for") ? .forwardedOther : .other
        case 30: kind = equals("x-forwarded-preferred-username") ? .identity : .other
        default: kind = .other
        }
        if kind == .other && hasPrefix("x-sso-") { return (.identity, underscore) }
        // X-Forwarded-Port, -Prefix, -Ssl, -Server, -Scheme...: forwarding claims too, which
        // frameworks use to build URLs; believed only from a trusted proxy.
        if kind == .other && hasPrefix("x-forwarded-") { return (.forwardedOther, underscore) }
        if kind == .other { return (.other, false) }
        // `folded` saw every byte of a matching name, so `underscore` is complete here.
        return (kind, underscore)
    }
}
