import Config

/// Which organization a request path belongs to (docs/SPEC.md "A request for protected content"):
/// a `protected_paths` pattern whose `{org}` segment names a configured organization with
/// SAML enabled. Pure; tested without sockets.
enum Protection {
    enum Match: Equatable {
        case unprotected
        case organization(GatewayConfiguration.Organization)
        /// The path names different organizations as sent and with its `;` parameters
        /// removed: whichever the upstream reads, one of them is wrong (answered `400`).
        case ambiguous

        static func == (a: Match, b: Match) -> Bool {
            switch (a, b) {
            case (.unprotected, .unprotected), (.ambiguous, .ambiguous): return true
            case (.organization(let x), .organization(let y)): return x.name == y.name
            default: return false
            }
        }
    }

    /// Matches the path as sent and, when it carries `;` parameters (raw or `%3B`), also as a
    /// servlet container reads it (Jetty, Tomcat, Spring: each segment cut at its first `;`):
    /// protected when either form is, so `/acme;/private` is acme's content whatever the
    /// upstream. Fixed pattern segments and organization names are matched without ASCII case.
    static func match(_ path: Substring, patterns: [GatewayConfiguration.PathPattern],
                      organizations: [String: GatewayConfiguration.Organization]) -> Match {
        var path = path
        return path.withUTF8 { bytes in
            let literal = organization(of: bytes, patterns: patterns, organizations: organizations)
            guard hasParameters(bytes) else { return literal.map(Match.organization) ?? .unprotected }
            let stripped = parameterFree(bytes)
            let servlet = stripped.withUnsafeBufferPointer { organization(of: $0, patterns: patterns, organizations: organizations) }
            switch (literal, servlet) {
            case (nil, nil): return .unprotected
            case (let one?, nil), (nil, let one?): return .organization(one)
            case (let a?, let b?): return a.name == b.name ? .organization(a) : .ambiguous
            }
        }
    }

    /// The organization of a path without `;` parameters (tests and callers that know).
    static func organization(of path: Substring, patterns: [GatewayConfiguration.PathPattern],
                             organizations: [String: GatewayConfiguration.Organization]) -> GatewayConfiguration.Organization? {
        if case .organization(let org) = match(path, patterns: patterns, organizations: organizations) { return org }
        return nil
    }

    private static func organization(of path: UnsafeBufferPointer<UInt8>, patterns: [GatewayConfiguration.PathPattern],
                                     organizations: [String: GatewayConfiguration.Organization]) -> GatewayConfiguration.Organization? {
        // Segment ranges after the leading `/`, split on the byte `/` alone.
        var segments: [Range<Int>] = []
        var start = path.first == UInt8(ascii: "/") ? 1 : 0
        var i = start
        while i <= path.count {
            if i == path.count || path[i] == UInt8(ascii: "/") {
                segments.append(start..<i)
                start = i + 1
            }
            i += 1
        }
        for pattern in patterns {
            let count = pattern.segments.count
            // `/a/{org}/` covers `/a/acme`, `/a/acme/` and below; `/a/{org}` only `/a/acme`.
            guard segments.count >= count else { continue }
            if !pattern.coversSubtree {
                guard segments.count == count else { continue }
            }
            var org: Range<Int>?
            var matched = true
            for (index, expected) in pattern.segments.enumerated() {
                let actual = segments[index]
                if let expected {
                    if !equalsIgnoringASCIICase(path[actual], expected.utf8) { matched = false; break }
                } else {
                    org = actual
                }
            }
            // Names are matched without case (configuration refuses names that differ only in
            // case), so `/ACME/x` is acme's content for an upstream that ignores case.
            guard matched, let range = org, !range.isEmpty else { continue }
            let name = String(decoding: UnsafeBufferPointer(rebasing: path[range]), as: UTF8.self)
            guard let organization = organizations[name]
                    ?? organizations.values.first(where: { equalsIgnoringASCIICase($0.name.utf8, name.utf8) }),
                  organization.saml.enabled else { continue }
            return organization
        }
        return nil
    }

    private static func equalsIgnoringASCIICase<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) {
            let fx = (x >= 0x41 && x <= 0x5A) ? x | 0x20 : x
            let fy = (y >= 0x41 && y <= 0x5A) ? y | 0x20 : y
            if fx != fy { return false }
        }
        return true
    }

    /// A `;` or `%3B` (any case) in the path.
    static func hasParameters<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var percent = 0
        for b in bytes {
            if b == UInt8(ascii: ";") { return true }
            switch (percent, b) {
            case (_, UInt8(ascii: "%")): percent = 1
            case (1, UInt8(ascii: "3")): percent = 2
            case (2, UInt8(ascii: "B")), (2, UInt8(ascii: "b")): return true
            default: percent = 0
            }
        }
        return false
    }

    /// One segment up to its first `;` or `%3B`.
    static func withoutParameters<C: Collection>(_ segment: C) -> C.SubSequence where C.Element == UInt8 {
        var index = segment.startIndex
        while index != segment.endIndex {
            let b = segment[index]
            if b == UInt8(ascii: ";") { return segment[..<index] }
            if b == UInt8(ascii: "%") {
                let next = segment.index(after: index)
                if next != segment.endIndex, segment[next] == UInt8(ascii: "3") {
                    let last = segment.index(after: next)
                    if last != segment.endIndex, segment[last] == UInt8(ascii: "B") || segment[last] == UInt8(ascii: "b") {
                        return segment[..<index]
                    }
                }
            }
            index = segment.index(after: index)
        }
        return segment[...]
    }

    /// The path as a servlet container routes it: every segment cut at its first `;`, then
    /// dot segments resolved and empty ones collapsed again.
    static func parameterFree(_ path: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var segments: [ArraySlice<UInt8>] = []
        let bytes = Array(path)
        for part in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            let base = withoutParameters(part)
            if base.isEmpty || base.elementsEqual([UInt8(ascii: ".")]) { continue }
            if base.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) { _ = segments.popLast(); continue }
            segments.append(base)
        }
        var out: [UInt8] = []
        for segment in segments { out.append(UInt8(ascii: "/")); out.append(contentsOf: segment) }
        if out.isEmpty || bytes.last == UInt8(ascii: "/") { out.append(UInt8(ascii: "/")) }
        return out
    }

    /// A browser navigation: GET or HEAD whose Accept includes text/html. Everything else
    /// (API clients, git, XHR, any other method) gets the 401 JSON, never an HTML redirect.
    static func isBrowserNavigation(method: String, accept: String?) -> Bool {
        guard method == "GET" || method == "HEAD", let accept else { return false }
        return accept.lowercased().contains("text/html")
    }

    /// `return_to` must be a path on this host; anything else becomes `/`. Refused: absolute
    /// and scheme-relative URLs (`//evil`, `/\evil`, which browsers treat alike), and control
    /// characters that could split a header.
    static func safeReturnTo(_ value: String?) -> String {
        guard let value, value.hasPrefix("/"), !value.hasPrefix("//"), !value.hasPrefix("/\\"),
              value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }), !value.contains("\\") else { return "/" }
        return value
    }

    /// The role of Hugging Face's SSO role mapping: the most privileged matching rule wins;
    /// `default_role` when none matches.
    static func role(for attributes: [String: [String]], mapping: GatewayConfiguration.RoleMapping) -> GatewayConfiguration.Role {
        let values = Set(attributes[mapping.attribute] ?? [])
        return mapping.rules.filter { values.contains($0.value) }.map(\.role).max() ?? mapping.defaultRole
    }
}
