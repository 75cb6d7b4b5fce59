import CryptoCore
import Foundation
import NIOHTTP1

/// The small parsers of the SSO endpoints: cookies, query strings, form bodies, and the
/// request id that ties a refusal page to its log line. Also used by the development IdP.
public enum RequestFields {
    public static func requestID() -> String {
        ((try? SecureRandom().bytes(8)) ?? []).map { String(format: "%02x", $0) }.joined()
    }

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
    static func decode(_ text: Substring) -> String? {
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
