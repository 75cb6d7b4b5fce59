import NIOHTTP1

/// Request-smuggling defence (RFC 9112 §6.1, §6.3): the gateway forwards a request only
/// when there is exactly one way to read where its body ends. The HTTP decoder already
/// refuses most of these; the gateway checks again before forwarding so that the rule
/// does not depend on a parser's leniency settings.
package enum RequestFraming {
    package enum Body: Equatable {
        case none
        case contentLength(UInt64)
        case chunked
    }

    package enum Rejection: String, Error {
        case contentLengthAndTransferEncoding = "both Content-Length and Transfer-Encoding"
        case conflictingContentLength = "differing Content-Length values"
        case invalidContentLength = "Content-Length is not a number"
        case unsupportedTransferEncoding = "Transfer-Encoding other than chunked"
    }

    package static func body(of head: HTTPRequestHead) -> Result<Body, Rejection> {
        // Most requests have neither field: no lists to build.
        guard head.headers.contains(where: { HeaderName.classify($0.name).0 == .transferEncoding || HeaderName.classify($0.name).0 == .contentLength })
        else { return .success(.none) }
        let te = head.headers[canonicalForm: "transfer-encoding"]
        let cl = head.headers["content-length"]
        if !te.isEmpty && !cl.isEmpty { return .failure(.contentLengthAndTransferEncoding) }
        if !te.isEmpty {
            // Only a single `chunked` coding is accepted; gzip etc. as transfer codings are
            // unused in practice and a classic smuggling lever.
            guard te.count == 1, te[0].lowercased() == "chunked" else { return .failure(.unsupportedTransferEncoding) }
            return .success(.chunked)
        }
        guard !cl.isEmpty else { return .success(.none) }
        var length: UInt64?
        for field in cl {
            for item in field.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = item.trimmingASCIISpaces()
                guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                      let value = UInt64(trimmed) else { return .failure(.invalidContentLength) }
                if let length, length != value { return .failure(.conflictingContentLength) }
                length = value
            }
        }
        return .success(.contentLength(length!))
    }
}

extension Substring {
    package func trimmingASCIISpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
