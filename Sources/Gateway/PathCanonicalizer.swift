/// One spelling per path, before anything routes on it: otherwise `/%61cme/x`, `//acme/x`
/// or `/x/../acme/x` would miss the `/{org}/` rule here and reach `acme` at an upstream
/// that decodes or normalises (Werkzeug, Starlette, Express all do).
///
/// - Percent-escapes of unreserved characters are decoded (RFC 3986 §6.2.2.2: they are
///   the same URI); other escapes stay as sent, with upper-case hex.
/// - Dot segments are removed (§5.2.4) and empty segments collapsed.
/// - An encoded `/` or `\`, or a raw `\`, is refused: upstream stacks disagree on whether
///   it separates segments, so no single reading is safe.
enum PathCanonicalizer {
    enum Rejection: Error { case ambiguousSeparator, badEscape }

    static func canonical(_ path: Substring) -> Result<String, Rejection> {
        let bytes = Array(path.utf8)
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\") { return .failure(.ambiguousSeparator) }
            guard b == UInt8(ascii: "%") else { decoded.append(b); i += 1; continue }
            guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { return .failure(.badEscape) }
            let value = hi << 4 | lo
            if value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") { return .failure(.ambiguousSeparator) }
            if isUnreserved(value) {
                decoded.append(value)
            } else {
                decoded += Array("%".utf8) + Array(String(format: "%02X", value).utf8)
            }
            i += 3
        }
        var segments: [Substring] = []
        let text = String(decoding: decoded, as: UTF8.self)
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        for part in parts {
            switch part {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(part)
            }
        }
        var result = "/" + segments.joined(separator: "/")
        let endsWithSlash = text.hasSuffix("/") || text.hasSuffix("/.") || text.hasSuffix("/..")
        if endsWithSlash && !segments.isEmpty { result += "/" }
        return .success(result)
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    private static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): return true
        default: return false
        }
    }
}
