import NIOHTTP1

/// Request targets (RFC 9112 §3.2). The gateway routes on the origin form only, so an
/// absolute-form target is rewritten to its path and query before anything looks at it,
/// and the Host field is replaced by the target's authority (§3.2.2: a server MUST accept
/// the absolute form and MUST then ignore the received Host).
enum RequestTarget {
    enum Rejection: String, Error {
        case notOriginForm = "request target must be a path"
        case badAbsoluteForm = "malformed absolute-form request target"
        case ambiguousPath = "encoded or backslash path separator"
        case badEscape = "malformed percent-escape in the path"
        case hostCount = "exactly one Host field is required"
    }

    /// The request with its target in origin form and its path canonical
    /// (`PathCanonicalizer`), which is also what the upstream receives.
    static func normalise(_ head: HTTPRequestHead) -> Result<HTTPRequestHead, Rejection> {
        // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; several would let the
        // gateway and the upstream disagree about which site is meant.
        let hosts = head.headers["host"].count
        if hosts > 1 || (hosts == 0 && head.version >= .http1_1) { return .failure(.hostCount) }
        switch originForm(head) {
        case .failure(let rejection): return .failure(rejection)
        case .success(var normalised):
            guard normalised.uri.hasPrefix("/") else { return .success(normalised) }  // OPTIONS *
            let uri = normalised.uri
            let queryStart = uri.firstIndex(of: "?") ?? uri.endIndex
            switch PathCanonicalizer.canonical(uri[..<queryStart]) {
            case .failure(.ambiguousSeparator): return .failure(.ambiguousPath)
            case .failure(.badEscape): return .failure(.badEscape)
            case .success(let path): normalised.uri = path + uri[queryStart...]
            }
            return .success(normalised)
        }
    }

    private static func originForm(_ head: HTTPRequestHead) -> Result<HTTPRequestHead, Rejection> {
        let uri = head.uri
        if uri.hasPrefix("/") { return .success(head) }
        if uri == "*" { return head.method == .OPTIONS ? .success(head) : .failure(.notOriginForm) }
        let lower = uri.lowercased()
        guard let schemeEnd = lower.hasPrefix("http://") ? uri.index(uri.startIndex, offsetBy: 7)
                : lower.hasPrefix("https://") ? uri.index(uri.startIndex, offsetBy: 8) : nil
        else { return .failure(.notOriginForm) }
        let rest = uri[schemeEnd...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains(where: { $0 == " " || $0 == "\\" }) else {
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
