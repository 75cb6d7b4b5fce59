/// One spelling per path, before anything routes on it: otherwise `/%61cme/x`, `//acme/x`
/// or `/x/../acme/x` would miss the `/{org}/` rule here and reach `acme` at an upstream
/// that decodes or normalises (Werkzeug, Starlette, Express all do).
///
/// Works on bytes: a path is split at `/` bytes only, so a combining mark after a `/` (one
/// grapheme cluster with it, for `String`) cannot hide a segment boundary.
///
/// - Percent-escapes of unreserved characters are decoded (RFC 3986 §6.2.2.2: they are
///   the same URI); other escapes stay as sent, with upper-case hex.
/// - Dot segments are removed (§5.2.4) and empty segments collapsed.
/// - Refused, because upstream stacks disagree on what they mean, so no single reading is
///   safe: an encoded `/` or `\`, a raw `\` (WHATWG URL parsers read it as `/`); a dot
///   segment carrying `;` parameters (`..;`, which servlet containers read as `..`);
///   control bytes, raw or encoded (some stacks drop them, some cut the path there).
///
/// `;` parameters themselves are kept: what they mean for protection is `Protection`'s
/// business (`PathParameters.removed`).
package enum PathCanonicalizer {
    package enum Rejection: Error { case ambiguousSeparator, badEscape, dotSegmentParameters, controlCharacter }

    package static func canonical(_ path: Substring) -> Result<String, Rejection> {
        var copy = path
        return copy.withUTF8 { canonical(bytes: $0) }
    }

    package static func canonical(bytes: UnsafeBufferPointer<UInt8>) -> Result<String, Rejection> {
        // Already canonical (the common case): nothing to copy.
        if case .some(let clean) = scan(bytes) {
            if clean { return .success(String(decoding: bytes, as: UTF8.self)) }
        } else {
            return .failure(rejection(bytes))
        }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b == UInt8(ascii: "%") else { decoded.append(b); i += 1; continue }
            let value = hex(bytes[i + 1])! << 4 | hex(bytes[i + 2])!  // `scan` checked the escape
            if isUnreserved(value) {
                decoded.append(value)
            } else {
                decoded.append(UInt8(ascii: "%"))
                decoded.append(upperHex(value >> 4))
                decoded.append(upperHex(value & 0xF))
            }
            i += 3
        }
        // Segments as ranges of `decoded`, dot segments resolved.
        var segments: [Range<Int>] = []
        var start = 0
        var lastWasDot = false
        while start <= decoded.count {
            let end = decoded[start...].firstIndex(of: UInt8(ascii: "/")) ?? decoded.count
            let segment = decoded[start..<end]
            lastWasDot = false
            if segment.isEmpty {
                // collapsed
            } else if segment.elementsEqual([UInt8(ascii: ".")]) {
                lastWasDot = true
            } else if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                _ = segments.popLast()
                lastWasDot = true
            } else if isDotWithParameters(segment) {
                return .failure(.dotSegmentParameters)
            } else {
                segments.append(start..<end)
            }
            start = end + 1
        }
        var out: [UInt8] = [UInt8(ascii: "/")]
        out.reserveCapacity(decoded.count + 1)
        for (index, range) in segments.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: decoded[range])
        }
        let endsWithSlash = decoded.last == UInt8(ascii: "/") || lastWasDot
        if endsWithSlash && !segments.isEmpty { out.append(UInt8(ascii: "/")) }
        return .success(String(decoding: out, as: UTF8.self))
    }

    /// One pass: `true` when the path is already canonical, `false` when it needs work, nil
    /// when it is refused (`rejection` then says why).
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        var clean = true
        var i = 0
        var segmentStart = 0
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case 0x00...0x20, 0x7F, UInt8(ascii: "\\"):
                return nil
            case UInt8(ascii: "%"):
                guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { return nil }
                let value = hi << 4 | lo
                if value < 0x20 || value == 0x7F || value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") { return nil }
                if isUnreserved(value) || bytes[i + 1] >= 0x61 || bytes[i + 2] >= 0x61 { clean = false }
                i += 3
                continue
            case UInt8(ascii: "/"):
                if i > 0 {
                    let length = i - segmentStart
                    // An empty segment, or a `.`/`..` one.
                    if length == 0 || (length <= 2 && bytes[segmentStart..<i].allSatisfy { $0 == UInt8(ascii: ".") }) { clean = false }
                    if length >= 2, bytes[segmentStart] == UInt8(ascii: "."), isDotWithParameters(bytes[segmentStart..<i]) { clean = false }
                }
                segmentStart = i + 1
            default:
                break
            }
            i += 1
        }
        let tail = bytes[segmentStart...]
        if !tail.isEmpty, tail.count <= 2, tail.allSatisfy({ $0 == UInt8(ascii: ".") }) { clean = false }
        if tail.first == UInt8(ascii: "."), isDotWithParameters(tail) { clean = false }
        if bytes.first != UInt8(ascii: "/") { clean = false }
        return clean
    }

    private static func rejection(_ bytes: UnsafeBufferPointer<UInt8>) -> Rejection {
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "\\"): return .ambiguousSeparator
            case 0x00...0x20, 0x7F: return .controlCharacter
            case UInt8(ascii: "%"):
                guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { return .badEscape }
                let value = hi << 4 | lo
                if value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") { return .ambiguousSeparator }
                if value < 0x20 || value == 0x7F { return .controlCharacter }
                i += 3
                continue
            default: break
            }
            i += 1
        }
        return .badEscape
    }

    /// `.;x`, `..;x`, `.%3Bx`: a dot segment once its parameters are removed.
    private static func isDotWithParameters<C: Collection>(_ segment: C) -> Bool where C.Element == UInt8 {
        let base = PathParameters.cut(segment)
        guard base.count < segment.count, (1...2).contains(base.count) else { return false }
        return base.allSatisfy { $0 == UInt8(ascii: ".") }
    }

    package static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    private static func upperHex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x41 + nibble - 10
    }

    private static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): return true
        default: return false
        }
    }
}
