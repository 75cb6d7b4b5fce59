import CryptoCore
import Foundation
import NIOHTTP1

/// The small parsers of the SSO endpoints: cookies, query strings, form bodies. Also used by
/// the development IdP.
public enum RequestFields {
    /// Cookie pairs of all Cookie fields; the first of a name wins.
    public static func cookies(_ headers: HTTPHeaders) -> [String: Substring] {
        var out: [String: Substring] = [:]
        for value in headers["cookie"] {
            for pair in value.split(separator: ";") {
                let trimmed = pair.trimmingASCIISpaces()
                guard let eq = trimmed.firstIndex(of: "=") else { continue }
                let name = String(trimmed[..<eq])
                if out[name] == nil { out[name] = trimmed[trimmed.index(after: eq)...] }
            }
        }
        return out
    }

    /// The value of the first cookie called `name` in the Cookie fields, as `cookies` would
    /// give it, found on the bytes without building the dictionary: this runs for every
    /// proxied request (the session cookie).
    public static func cookie(named name: String, in headers: HTTPHeaders) -> Substring? {
        for (field, value) in headers where field.utf8.count == 6 && HeaderName.classify(field).0 == .cookie {
            var found: Substring?
            forEachCookie(in: value) { nameRange, valueRange in
                guard UTF8Bytes.equal(value[nameRange], name) else { return true }
                found = value[valueRange]
                return false
            }
            if let found { return found }
        }
        return nil
    }

    /// Calls `body` with the name and value ranges of each `name=value` pair of one Cookie
    /// field (pairs split at `;`, ASCII spaces and tabs trimmed around each pair, pairs
    /// without `=` skipped) until it returns false.
    package static func forEachCookie(in field: String, _ body: (Range<String.Index>, Range<String.Index>) -> Bool) {
        forEachCookiePair(in: field) { pair, equals in
            guard let equals else { return true }
            return body(pair.lowerBound..<equals, field.utf8.index(after: equals)..<pair.upperBound)
        }
    }

    /// Each non-empty `;`-separated pair of a Cookie field, trimmed of ASCII spaces and
    /// tabs, with the position of its first `=` (nil when it has none), until `body` returns
    /// false. Scans the field's contiguous UTF-8 (offsets into a native string's UTF-8 view
    /// are O(1)).
    package static func forEachCookiePair(in field: String, _ body: (Range<String.Index>, String.Index?) -> Bool) {
        let utf8 = field.utf8
        func index(_ offset: Int) -> String.Index { utf8.index(utf8.startIndex, offsetBy: offset) }
        var contiguous = field
        contiguous.makeContiguousUTF8()     // no copy for the native strings the decoder makes
        _ = contiguous.utf8.withContiguousStorageIfAvailable { bytes in
            @inline(__always) func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
            // memchr finds the `;` and `=` (a session cookie is hundreds of bytes of base64).
            @inline(__always) func find(_ byte: UInt8, from: Int, to: Int) -> Int? {
                guard from < to, let base = bytes.baseAddress,
                      let hit = memchr(base + from, Int32(byte), to - from) else { return nil }
                return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            }
            var i = 0
            while i < bytes.count {
                while i < bytes.count, isSpace(bytes[i]) { i += 1 }
                let start = i
                i = find(UInt8(ascii: ";"), from: start, to: bytes.count) ?? bytes.count
                let equals = find(UInt8(ascii: "="), from: start, to: i) ?? -1
                var end = i
                while end > start, isSpace(bytes[end - 1]) { end -= 1 }
                i += 1
                guard end > start else { continue }
                if !body(index(start)..<index(end), equals < 0 ? nil : index(equals)) { return }
            }
        }
    }

    public static func query(_ uri: String) -> [String: String] {
        guard let q = uri.firstIndex(of: "?") else { return [:] }
        return form(String(uri[uri.index(after: q)...]))
    }

    /// application/x-www-form-urlencoded; the first of a name wins.
    public static func form(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = decode(kv[0]) else { continue }
            if out[key] == nil { out[key] = kv.count > 1 ? decode(kv[1]) ?? "" : "" }
        }
        return out
    }

    /// `+` as a space and `%XX` escapes, on the UTF-8 bytes; nil for a malformed escape or
    /// bytes that are not UTF-8 (as `removingPercentEncoding` would give). Done by hand:
    /// Foundation's string bridging cost most of an ACS login's CPU (a SAMLResponse field
    /// is 10-20 KB of escaped base64).
    package static func decode(_ text: Substring) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var bytes = text.utf8.makeIterator()
        func hex(_ byte: UInt8?) -> UInt8? {
            switch byte {
            case let b? where (0x30...0x39).contains(b): return b - 0x30
            case let b? where (0x41...0x46).contains(b): return b - 0x41 + 10
            case let b? where (0x61...0x66).contains(b): return b - 0x61 + 10
            default: return nil
            }
        }
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "+"): out.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = hex(bytes.next()), let low = hex(bytes.next()) else { return nil }
                out.append(high << 4 | low)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}
