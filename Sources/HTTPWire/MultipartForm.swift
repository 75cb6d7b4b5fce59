#if canImport(Glibc)
import Glibc
#endif

/// A `multipart/form-data` body (RFC 7578), as a browser sends a form with a file input:
/// each part's name and bytes (and the file name when it is a file). Bounded by the body it
/// is given; a malformed body is nil, never a partial answer.
public struct MultipartForm: Sendable {
    public struct Part: Sendable, Equatable {
        public let name: String
        public let fileName: String?
        public let content: [UInt8]
    }

    public let parts: [Part]

    /// The first part called `name`.
    public subscript(name: String) -> Part? { parts.first { $0.name == name } }

    /// The text fields (parts that are not files), first of a name wins: what `form` gives
    /// for an URL-encoded body.
    public var fields: [String: String] {
        parts.reversed().reduce(into: [:]) { out, part in
            if part.fileName == nil { out[part.name] = String(decoding: part.content, as: UTF8.self) }
        }
    }

    /// The boundary of a `Content-Type: multipart/form-data; boundary=...` value, or nil.
    public static func boundary(contentType: String) -> String? {
        let parameters = contentType.split(separator: ";").map { $0.trimmingASCIISpaces() }
        guard let type = parameters.first, type.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parameters.dropFirst() {
            guard let eq = parameter.firstIndex(of: "="), parameter[..<eq].lowercased() == "boundary" else { continue }
            var value = parameter[parameter.index(after: eq)...]
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            // RFC 2046 §5.1.1: 1 to 70 characters.
            return (1...70).contains(value.utf8.count) ? String(value) : nil
        }
        return nil
    }

    public init?(_ body: [UInt8], boundary: String) {
        let delimiter = Array("--\(boundary)".utf8)
        guard var at = Self.find(delimiter, in: body, from: 0) else { return nil }
        var parts: [Part] = []
        while true {
            at += delimiter.count
            // `--` after a delimiter ends the body.
            if body.count >= at + 2, body[at] == UInt8(ascii: "-"), body[at + 1] == UInt8(ascii: "-") { break }
            // Anything else after a delimiter but its line end is not a delimiter line.
            guard body.count >= at + 2, body[at] == 13, body[at + 1] == 10 else { return nil }
            let headersStart = at + 2
            guard let headersEnd = Self.find([13, 10, 13, 10], in: body, from: headersStart) else { return nil }
            let contentStart = headersEnd + 4
            guard let next = Self.find([13, 10] + delimiter, in: body, from: contentStart) else { return nil }
            let headers = String(decoding: body[headersStart..<headersEnd], as: UTF8.self)
            guard let disposition = Self.disposition(headers), let name = disposition["name"] else { return nil }
            parts.append(Part(name: name, fileName: disposition["filename"], content: Array(body[contentStart..<next])))
            at = next + 2
        }
        self.parts = parts
    }

    /// The parameters of a part's `Content-Disposition: form-data; name="..."; filename="..."`.
    static func disposition(_ headers: String) -> [String: String]? {
        for line in headers.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == "content-disposition" else { continue }
            var out: [String: String] = [:]
            var rest = line[line.index(after: colon)...].trimmingASCIISpaces()
            guard rest.lowercased().hasPrefix("form-data") else { return nil }
            rest = rest.dropFirst("form-data".count)
            while let semicolon = rest.firstIndex(of: ";") {
                rest = rest[rest.index(after: semicolon)...].trimmingASCIISpaces()
                guard let eq = rest.firstIndex(of: "=") else { return nil }
                let key = rest[..<eq].lowercased()
                rest = rest[rest.index(after: eq)...]
                if rest.hasPrefix("\"") {
                    // A quoted value; browsers escape `"` in it as %22.
                    rest = rest.dropFirst()
                    guard let close = rest.firstIndex(of: "\"") else { return nil }
                    out[key] = String(rest[..<close])
                    rest = rest[rest.index(after: close)...]
                } else {
                    let end = rest.firstIndex(of: ";") ?? rest.endIndex
                    out[key] = String(rest[..<end].trimmingASCIISpaces())
                    rest = rest[end...]
                }
            }
            return out
        }
        return nil
    }

    /// The first `needle` at or after `start`: memchr to each candidate first byte, memcmp
    /// for the rest.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, start >= 0, start <= haystack.count - needle.count else { return nil }
        return haystack.withUnsafeBytes { hay in
            needle.withUnsafeBytes { pin in
                let base = hay.baseAddress!
                let last = hay.count - pin.count
                var at = start
                while at <= last {
                    guard let hit = memchr(base + at, Int32(first), last - at + 1) else { return nil }
                    let index = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + index, pin.baseAddress!, pin.count) == 0 { return index }
                    at = index + 1
                }
                return nil
            }
        }
    }
}
