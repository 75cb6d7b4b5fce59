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

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
