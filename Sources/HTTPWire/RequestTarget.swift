import Foundation
import NIOHTTP1

/// Request targets (RFC 9112 §3.2). The gateway routes on the origin form only, so an
/// absolute-form target is rewritten to its path and query before anything looks at it,
/// and the Host field is replaced by the target's authority (§3.2.2: a server MUST accept
/// the absolute form and MUST then ignore the received Host).
package enum RequestTarget {
    package enum Rejection: String, Error {
        case notOriginForm = "request target must be a path"
        case badAbsoluteForm = "malformed absolute-form request target"
        case ambiguousPath = "encoded or backslash path separator"
        case badEscape = "malformed percent-escape in the path"
        case hostCount = "exactly one Host field is required"
        case badHost = "malformed Host field"
        case fragment = "a request target has no fragment (#)"
        case dotSegmentParameters = "dot segment with ; parameters in the path"
        case controlCharacter = "control character in the path"
        case notUTF8 = "request head bytes that are not UTF-8"
    }

    /// The request with its target in origin form and its path canonical
    /// (`PathCanonicalizer`), which is also what the upstream receives.
    package static func normalise(_ head: HTTPRequestHead) -> Result<HTTPRequestHead, Rejection> {
        // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; several would let the
        // gateway and the upstream disagree about which site is meant.
        var hosts = 0
        var host = ""
        for (name, value) in head.headers where name.utf8.count == 4 && HeaderName.classify(name).0 == .host {
            hosts += 1
            host = value
        }
        if hosts > 1 || (hosts == 0 && head.version >= .http1_1) { return .failure(.hostCount) }
        // The HTTP/1 decoder turns bytes that are not UTF-8 into U+FFFD; rewritten bytes would
        // reach the upstream as something the client never sent, so the request is refused.
        if containsReplacement(head.uri) || head.headers.contains(where: { containsReplacement($0.name) || containsReplacement($0.value) }) {
            return .failure(.notUTF8)
        }
        // The whole field: a list (`a.example, b.example`) is not one host.
        if hosts == 1, !isValidHost(host) { return .failure(.badHost) }
        // RFC 9112 §3.2's grammar has no `#`; Werkzeug and Node would route on the part before it.
        if UTF8Bytes.offset(of: UInt8(ascii: "#"), in: head.uri) != nil { return .failure(.fragment) }
        switch originForm(head) {
        case .failure(let rejection): return .failure(rejection)
        case .success(var normalised):
            let uri = normalised.uri
            guard uri.utf8.first == UInt8(ascii: "/") else { return .success(normalised) }  // OPTIONS *
            let queryStart = UTF8Bytes.offset(of: UInt8(ascii: "?"), in: uri).map { uri.utf8.index(uri.utf8.startIndex, offsetBy: $0) }
                ?? uri.endIndex
            switch PathCanonicalizer.canonical(uri[..<queryStart]) {
            case .failure(.ambiguousSeparator): return .failure(.ambiguousPath)
            case .failure(.badEscape): return .failure(.badEscape)
            case .failure(.dotSegmentParameters): return .failure(.dotSegmentParameters)
            case .failure(.controlCharacter): return .failure(.controlCharacter)
            case .success(let path):
                // Already canonical (the common case): the head is kept as it came.
                if !UTF8Bytes.equal(path, uri[..<queryStart]) { normalised.uri = path + uri[queryStart...] }
            }
            return .success(normalised)
        }
    }

    /// RFC 9110 §7.2: `uri-host [ ":" port ]`, where uri-host is an IP-literal in brackets
    /// or a reg-name (unreserved, percent-escapes and sub-delims); port is digits. Anything
    /// else (spaces, `/`, `@`, a second `:`) would let the gateway and the upstream, or the
    /// upstream and the URLs it builds, disagree about the site.
    package static func isValidHost(_ value: Substring) -> Bool {
        var value = value
        return value.withUTF8(isValidHost(bytes:))
    }

    private static func isValidHost(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = bytes.count
        var hostEnd = count
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let inside = bytes[1..<close]
            guard !inside.isEmpty, inside.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else { return false }
            hostEnd = close + 1
            guard hostEnd == count || bytes[hostEnd] == UInt8(ascii: ":") else { return false }
        } else {
            hostEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? count
            var i = 0
            while i < hostEnd {
                let b = bytes[i]
                if b == UInt8(ascii: "%") {
                    guard i + 2 < hostEnd, isHexDigit(bytes[i + 1]), isHexDigit(bytes[i + 2]) else { return false }
                    i += 3
                    continue
                }
                guard isRegNameByte(b) else { return false }
                i += 1
            }
        }
        guard hostEnd != count else { return true }
        let port = bytes[(hostEnd + 1)...]
        return port.count <= 5 && port.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// U+FFFD (EF BF BD) in the text: memchr finds each 0xEF (a Cookie field is hundreds
    /// of bytes and this runs for every field of every request).
    package static func containsReplacement(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            guard let base = bytes.baseAddress else { return false }
            var i = 0
            while i + 2 < bytes.count, let hit = memchr(base + i, 0xEF, bytes.count - 2 - i) {
                i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if bytes[i + 1] == 0xBF, bytes[i + 2] == 0xBD { return true }
                i += 1
            }
            return false
        } ?? text.unicodeScalars.contains("\u{FFFD}")
    }

    package static func isValidHost(_ value: String) -> Bool { isValidHost(Substring(value)) }

    private static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
    }

    /// unreserved / sub-delims (RFC 3986 §3.2.2).
    private static func isRegNameByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39: return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): return true
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="): return true
        default: return false
        }
    }

    private static func originForm(_ head: HTTPRequestHead) -> Result<HTTPRequestHead, Rejection> {
        let uri = head.uri
        if uri.utf8.first == UInt8(ascii: "/") { return .success(head) }
        if uri == "*" { return head.method == .OPTIONS ? .success(head) : .failure(.notOriginForm) }
        let lower = uri.lowercased()
        guard let schemeEnd = lower.hasPrefix("http://") ? uri.index(uri.startIndex, offsetBy: 7)
                : lower.hasPrefix("https://") ? uri.index(uri.startIndex, offsetBy: 8) : nil
        else { return .failure(.notOriginForm) }
        let rest = uri[schemeEnd...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.isEmpty, isValidHost(authority) else {
            return .failure(.badAbsoluteForm)
        }
        var path = String(rest[authorityEnd...])
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        var normalised = head
        normalised.uri = path
        normalised.headers.replaceOrAdd(name: "Host", value: String(authority))
        return .success(normalised)
    }
}

/// The path of a request target without its query, which may carry tokens.
package func pathOnly(_ uri: String) -> Substring {
    // On the UTF-8 view: a `Character` search would run grapheme breaking over the path.
    if let q = uri.utf8.firstIndex(of: UInt8(ascii: "?")) { return uri[..<q] }
    return Substring(uri)
}
