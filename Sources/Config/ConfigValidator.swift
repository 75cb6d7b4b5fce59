import Foundation

/// Where a secret or certificate comes from once `${ENV}` has been resolved.
enum MaterialSource: Equatable {
    case inline(String)
    case file(String)
}

/// Stage 2 of 4: every value checked and parsed, with no I/O. Secrets and certificates
/// are still sources (inline text or a file path) that provisioning reads.
struct ValidatedConfig {
    struct SAML {
        var enabled: Bool
        var signOnURL: String?
        var certificateSources: [(keyPath: String, source: MaterialSource)]
        var idpEntityID: String?
        var allowIdPInitiated: Bool
        var allowSHA1: Bool
        var spCertificateFile: String?
        var spPrivateKeyFile: String?
        var requireEncryptedAssertions: Bool
        var metadataURL: String?
        var metadataRefresh: Duration
        var sloURL: String?
        var sloRevokesTokens: Bool
    }
    struct Organization {
        var keyPath: String
        var name: String
        var id: String?
        var saml: SAML
        var unauthenticated: GatewayConfiguration.UnauthenticatedMode
        var sessionTTL: Duration
        var sessionIdleTimeout: Duration?
        var appCredentials: GatewayConfiguration.AppCredentials
        var roleMapping: GatewayConfiguration.RoleMapping?
        var access: AccessPolicy
        var managed: GatewayConfiguration.Management
    }

    var listen: GatewayConfiguration.Endpoint
    var adminListen: GatewayConfiguration.Endpoint?
    var workers: Int
    var publicURL: String
    var upstream: GatewayConfiguration.Endpoint
    var upstreamTimeout: Duration
    var headerTimeout: Duration
    var bodyTimeout: Duration
    var writeTimeout: Duration
    var idleTimeout: Duration
    var shutdownTimeout: Duration
    var logFormat: GatewayConfiguration.LogFormat
    var logLevel: String
    var accessLog: Bool
    var cookieName: String
    var secretSources: [(keyPath: String, source: MaterialSource)]
    var sessionTTL: Duration
    var clockSkew: Duration
    var protectedPaths: [GatewayConfiguration.PathPattern]
    var unauthenticated: GatewayConfiguration.UnauthenticatedMode
    var organizations: [Organization]
    var trustedProxies: [CIDR]
    var tlsFiles: (certificate: String, privateKey: String)?
    var hsts: GatewayConfiguration.HSTS?
    var http2: GatewayConfiguration.HTTP2
    var upstreamAssertion: (keyFiles: [String], audience: String, ttl: Duration)?
    var tracing: GatewayConfiguration.Tracing?
    var store: GatewayConfiguration.Store
    var logins: GatewayConfiguration.Logins
    var auditRetention: Duration
    var tokenMaxTTL: Duration
    /// Each route, with the files of its upstream's TLS (read by the loader).
    var routes: [(GatewayConfiguration.Route, UpstreamTLSFiles?)]
    var upstreamTLS: UpstreamTLSFiles?
}

/// `upstream_tls` as validated: paths the loader reads.
struct UpstreamTLSFiles {
    var caFile: String?
    var serverName: String?
    var clientCertificateFile: String?
    var clientKeyFile: String?
}

/// Pure validation: takes the decoded file and the process environment (for `${ENV}`),
/// returns the validated value or every problem found, each with its key path.
struct ConfigValidator {
    let environment: [String: String]
    /// Key paths the decoder already reported (present but malformed): not "required" again.
    let alreadyReported: Set<String>
    var issues: [ConfigIssue] = []

    init(environment: [String: String], alreadyReported: Set<String> = []) {
        self.environment = environment
        self.alreadyReported = alreadyReported
    }

    /// Organization names the gateway's own URLs use; `/{org}/` would otherwise cover them.
    static let reservedNames: Set<String> = ["organizations", "_ssogate"]
    /// Larger skews accept long-expired assertions; ten minutes is already generous.
    static let maxClockSkew = Duration.seconds(600)

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    mutating func validate(_ raw: RawConfig) -> (ValidatedConfig?, [ConfigIssue]) {
        let listen = endpoint(raw.listen ?? "127.0.0.1:8080", at: "listen")
        let adminListen = raw.adminListen.flatMap { endpoint($0, at: "admin_listen") }
        if let adminListen, let listen, adminListen == listen, listen.port != 0 {
            report("admin_listen", "must differ from listen: it keeps metrics and readiness off the public port")
        }
        let workers = raw.workers ?? 0
        if !(0...256).contains(workers) { report("workers", "must be between 0 (one per CPU core) and 256") }
        let publicURL = self.publicURL(raw.publicURL)
        let upstream = upstreamEndpoint(raw.upstream)
        let upstreamTLSFiles = upstreamTLS(raw.upstreamTLS, for: upstream, at: "upstream_tls")
        let upstreamTimeout = duration(raw.upstreamTimeout, default: .seconds(60), at: "upstream_timeout")
        let headerTimeout = duration(raw.headerTimeout, default: .seconds(15), at: "header_timeout")
        let bodyTimeout = duration(raw.bodyTimeout, default: .seconds(60), at: "body_timeout")
        let writeTimeout = duration(raw.writeTimeout, default: .seconds(60), at: "write_timeout")
        let idleTimeout = duration(raw.idleTimeout, default: .seconds(75), at: "idle_timeout")
        let shutdownTimeout = duration(raw.shutdownTimeout, default: .seconds(30), at: "shutdown_timeout")
        let logFormat = oneOf(raw.logFormat, default: .text, at: "log_format", GatewayConfiguration.LogFormat.init(rawValue:), "text, json")
        let logLevel = raw.logLevel ?? "info"
        if !Self.logLevels.contains(logLevel) {
            report("log_level", "must be one of \(Self.logLevels.joined(separator: ", "))")
        }
        let cookieName = raw.session.cookieName ?? "ssogate_session"
        if cookieName.isEmpty || !cookieName.utf8.allSatisfy(Self.isTokenByte) {
            report("session.cookie_name", "must be a cookie-name token (letters, digits, !#$%&'*+-.^_`|~)")
        }
        if (cookieName.hasPrefix("__Host-") || cookieName.hasPrefix("__Secure-")),
           let url = publicURL, !url.lowercased().hasPrefix("https:") {
            report("session.cookie_name", "a __Host- or __Secure- cookie needs an https public_url; browsers refuse it otherwise")
        }
        let secretSources = secrets(raw.session)
        let sessionTTL = duration(raw.session.ttl, default: .seconds(8 * 3600), at: "session.ttl")
        let sessionIdle = idle(raw.session.idleTimeout, default: nil, at: "session.idle_timeout")
        var clockSkew = duration(raw.clockSkew, default: .seconds(60), at: "clock_skew", allowZero: true)
        if let skew = clockSkew, skew > Self.maxClockSkew {
            report("clock_skew", "must be at most 10m (a larger skew accepts long-expired assertions)")
            clockSkew = nil
        }
        var patterns: [GatewayConfiguration.PathPattern] = []
        for (index, text) in (raw.protectedPaths ?? []).enumerated() {
            guard let pattern = pathPattern(text, at: "protected_paths[\(index)]") else { continue }
            if patterns.contains(pattern) {
                report("protected_paths[\(index)]", "duplicate pattern")
            } else {
                patterns.append(pattern)
            }
        }
        let unauthenticated = oneOf(raw.unauthenticated, default: .banner, at: "unauthenticated",
                                    GatewayConfiguration.UnauthenticatedMode.init(rawValue:), "banner, redirect")
        var organizations: [ValidatedConfig.Organization] = []
        var seen: [String: Int] = [:]
        for (index, org) in raw.organizations.enumerated() {
            let path = "organizations[\(index)]"
            if let name = org.name {
                // Compared without case: `Acme` and `acme` would be one organization to a person.
                if let first = seen[name.lowercased()] {
                    report("\(path).name", "duplicate organization name (also organizations[\(first)])")
                } else {
                    seen[name.lowercased()] = index
                }
            }
            if let validated = organization(org, at: path, defaultMode: unauthenticated, defaultTTL: sessionTTL, defaultIdle: sessionIdle ?? nil) {
                organizations.append(validated)
            }
        }
        let proxies = (raw.trustedProxies ?? []).enumerated().compactMap { index, text -> CIDR? in
            let path = "trusted_proxies[\(index)]"
            guard let cidr = CIDR(text) else {
                report(path, "not an IP address or network (\"10.0.0.0/8\", \"192.0.2.7\", \"fd00::/8\")")
                return nil
            }
            guard cidr.prefixLength > 0 else {
                report(path, "trusts every client, which lets anyone forge X-Forwarded-*; list your proxies' networks")
                return nil
            }
            guard cidr.hostBitsWereZero else {
                report(path, "has host bits set; the network is \(cidr.networkText)/\(cidr.prefixLength)")
                return nil
            }
            return cidr
        }
        // Policies refer to other organizations and to the protected paths: checked once all are read.
        let domains = Dictionary(organizations.map { ($0.name, $0.access.allowedEmailDomains) }, uniquingKeysWith: { a, _ in a })
        for org in organizations {
            let context = AccessPolicy.Context(organization: org.name, roleMapping: org.roleMapping, protectedPaths: patterns,
                                               domainsByOrganization: domains)
            for problem in org.access.problems(in: context) { report("\(org.keyPath).access.\(problem.field)", problem.message) }
        }
        if (raw.protectedPaths ?? []).isEmpty, raw.routes.isEmpty, let index = organizations.firstIndex(where: { $0.saml.enabled }) {
            report("protected_paths", "is empty while organizations[\(index)] has SSO enabled: nothing would be protected")
        }

        let tlsFiles = tls(raw.tls, publicURL: publicURL)
        let hsts = hsts(raw.hsts, publicURL: publicURL)
        let http2 = http2(raw.http2)
        let upstreamAssertion = upstreamAssertion(raw.upstreamAssertion, upstream: raw.upstream)
        let tracing = tracing(raw.tracing)
        let store = store(raw.store)
        let logins = logins(raw.logins)
        let auditRetention = duration(raw.auditRetention, default: .seconds(365 * 86400), at: "audit_retention")
        if let auditRetention, auditRetention < .seconds(86400) { report("audit_retention", "must be at least 1d (the audit log is kept that long at least)") }
        let routes = self.routes(raw.routes, organizations: organizations, defaultPatterns: patterns)
        let tokenMaxTTL = duration(raw.tokenMaxTTL, default: .seconds(90 * 86400), at: "token_max_ttl")
        if let tokenMaxTTL, tokenMaxTTL < .seconds(3600) { report("token_max_ttl", "must be at least 1h") }

        guard issues.isEmpty, let listen, let auditRetention, let tokenMaxTTL, let publicURL, let upstream, let upstreamTimeout, let headerTimeout, let bodyTimeout, let writeTimeout,
              let idleTimeout, let shutdownTimeout, let logFormat, let sessionTTL, let clockSkew, let unauthenticated
        else { return (nil, issues) }
        return (ValidatedConfig(
            listen: listen, adminListen: adminListen, workers: workers, publicURL: publicURL, upstream: upstream, upstreamTimeout: upstreamTimeout,
            headerTimeout: headerTimeout, bodyTimeout: bodyTimeout, writeTimeout: writeTimeout, idleTimeout: idleTimeout, shutdownTimeout: shutdownTimeout,
            logFormat: logFormat, logLevel: logLevel, accessLog: raw.accessLog ?? true, cookieName: cookieName,
            secretSources: secretSources, sessionTTL: sessionTTL, clockSkew: clockSkew, protectedPaths: patterns,
            unauthenticated: unauthenticated, organizations: organizations, trustedProxies: proxies,
            tlsFiles: tlsFiles, hsts: hsts, http2: http2, upstreamAssertion: upstreamAssertion, tracing: tracing, store: store, logins: logins,
            auditRetention: auditRetention, tokenMaxTTL: tokenMaxTTL, routes: routes, upstreamTLS: upstreamTLSFiles), [])
    }

    mutating func tls(_ raw: RawConfig.RawTLS?, publicURL: String?) -> (certificate: String, privateKey: String)? {
        guard let raw else { return nil }
        if raw.certificateFile == nil { required("tls.certificate_file", "is required (a PEM file: the certificate, then its chain)") }
        if raw.privateKeyFile == nil { required("tls.private_key_file", "is required (the certificate's PEM private key)") }
        if let publicURL, !publicURL.lowercased().hasPrefix("https:") {
            report("public_url", "must be https when the listener serves TLS (tls is set)")
        }
        guard let certificate = raw.certificateFile, let key = raw.privateKeyFile else { return nil }
        return (certificate, key)
    }

    mutating func hsts(_ raw: RawConfig.RawHSTS?, publicURL: String?) -> GatewayConfiguration.HSTS? {
        guard let raw else { return nil }
        if let publicURL, !publicURL.lowercased().hasPrefix("https:") {
            report("hsts", "needs an https public_url; browsers ignore the header over http")
        }
        guard let maxAge = duration(raw.maxAge, default: .seconds(365 * 86_400), at: "hsts.max_age", allowZero: true) else { return nil }
        return GatewayConfiguration.HSTS(maxAge: maxAge, includeSubdomains: raw.includeSubdomains ?? false)
    }

    /// Off unless the section is there; then a collector URL (OTLP/HTTP: gRPC is not built in).
    mutating func tracing(_ raw: RawConfig.RawTracing?) -> GatewayConfiguration.Tracing? {
        guard let raw else { return nil }
        guard let endpoint = raw.otlpEndpoint else {
            required("tracing.otlp_endpoint", "is required: the collector's OTLP/HTTP traces URL (http://127.0.0.1:4318/v1/traces)")
            return nil
        }
        let lower = endpoint.lowercased()
        let url = URLComponents(string: endpoint)
        if !(lower.hasPrefix("http://") || lower.hasPrefix("https://")) || url?.host?.isEmpty != false {
            report("tracing.otlp_endpoint", "must be an http:// or https:// URL with a host (OTLP/HTTP; gRPC is not supported)")
        } else if (url?.path ?? "").isEmpty || url?.path == "/" {
            report("tracing.otlp_endpoint", "needs its path: a collector takes traces at /v1/traces")
        }
        var format = GatewayConfiguration.Tracing.WireFormat.protobuf
        if let name = raw.protocolName {
            if let known = GatewayConfiguration.Tracing.WireFormat(rawValue: name) {
                format = known
            } else {
                report("tracing.protocol", "must be http/protobuf or http/json (got \(name))")
            }
        }
        var ratio = 1.0
        if let text = raw.sampleRatio {
            if let value = Double(text), value >= 0, value <= 1 { ratio = value } else { report("tracing.sample_ratio", "must be a number from 0 to 1") }
        }
        return GatewayConfiguration.Tracing(endpoint: endpoint, format: format, serviceName: raw.serviceName ?? "ssogate", sampleRatio: ratio)
    }

    /// Off unless `enabled: true`; then at least one key file, and a lifetime of at most
    /// five minutes (the token is a bearer credential to the upstream).
    mutating func upstreamAssertion(_ raw: RawConfig.RawUpstreamAssertion?, upstream: String?)
        -> (keyFiles: [String], audience: String, ttl: Duration)? {
        guard let raw, raw.enabled == true else { return nil }
        let files = raw.signingKeyFiles ?? []
        if files.isEmpty {
            required("upstream_assertion.signing_key_files",
                     "needs at least one P-256 key file (openssl ecparam -name prime256v1 -genkey -noout -out key.pem)")
        }
        let checked = files.enumerated().compactMap { filePath($1, at: "upstream_assertion.signing_key_files[\($0)]") }
        guard let ttl = duration(raw.ttl, default: .seconds(300), at: "upstream_assertion.ttl") else { return nil }
        if ttl > .seconds(300) { report("upstream_assertion.ttl", "must be at most 5m (the token is a bearer credential to the upstream)") }
        if ttl < .seconds(10) { report("upstream_assertion.ttl", "must be at least 10s") }
        return (checked, raw.audience ?? upstream ?? "", ttl)
    }

    /// `sqlite:PATH` (the default, `sqlite:ssogate.db`), `memory`, or a PostgreSQL URL,
    /// usually given whole as `${ENV}` (it holds the password); the URL never appears in a
    /// message. Relative paths are resolved by provisioning, against the file's folder.
    mutating func store(_ raw: String?) -> GatewayConfiguration.Store {
        let usage = "must be sqlite:PATH, memory or postgres://user[:password]@host[:port]/database[?sslmode=...&sslrootcert=...]"
        guard let raw else { return .sqlite(path: "ssogate.db") }
        guard let text = resolveEnv(raw, at: "store") else { return .memory }
        if text == "memory" { return .memory }
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty, !path.hasSuffix("/"), !path.contains("${") else {
                report("store", "sqlite: needs a file path (sqlite:ssogate.db, sqlite:/var/lib/ssogate/state.db)")
                return .memory
            }
            return .sqlite(path: path)
        }
        let c = URLComponents(string: text)
        let scheme = c?.scheme?.lowercased()
        guard scheme == "postgres" || scheme == "postgresql", let host = c?.host, !host.isEmpty, let user = c?.user, !user.isEmpty,
              let database = c?.path.split(separator: "/").first, c?.path.split(separator: "/").count == 1 else {
            report("store", usage)
            return .memory
        }
        var mode = "prefer", rootCertificate: String?
        for item in c?.queryItems ?? [] {
            switch item.name {
            case "sslmode": mode = item.value ?? ""
            case "sslrootcert": rootCertificate = item.value
            default: report("store", "unknown URL parameter \(item.name) (sslmode and sslrootcert are read)")
            }
        }
        let roots: GatewayConfiguration.TrustRoots? = rootCertificate.map { $0 == "system" ? .system : .file($0) }
        let tls: GatewayConfiguration.PostgresTLS
        switch mode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer
        // libpq checks the chain under `require` too when a root certificate is given.
        case "require": tls = roots.map { .verifyCA(roots: $0) } ?? .require
        case "verify-ca", "verify-full":
            guard let roots else {
                report("store", "sslmode=\(mode) needs sslrootcert (a PEM file of the CA certificates, or system)")
                return .memory
            }
            tls = mode == "verify-ca" ? .verifyCA(roots: roots) : .verifyFull(roots: roots)
        default:
            report("store", "sslmode must be disable, prefer, require, verify-ca or verify-full")
            return .memory
        }
        return .postgres(.init(host: host, port: c?.port ?? 5432, user: user, password: c?.password, database: String(database), tls: tls))
    }

    /// Defaults no real user reaches: a member logs in a few times an hour, an office behind
    /// one address a few times a second at nine o'clock.
    mutating func logins(_ raw: RawConfig.RawLogins?) -> GatewayConfiguration.Logins {
        let workers = raw?.workers ?? 2
        if !(1...64).contains(workers) { report("logins.workers", "must be between 1 and 64") }
        let queue = raw?.queue ?? 64
        if !(1...10_000).contains(queue) { report("logins.queue", "must be between 1 and 10000") }
        return GatewayConfiguration.Logins(workers: workers, queue: queue,
                                           perClient: rate(raw?.perClient, default: "300/m", at: "logins.per_client"),
                                           total: rate(raw?.total, default: "6000/m", at: "logins.total"))
    }

    /// `N/s`, `N/m` or `N/h`; `off` for no limit.
    mutating func rate(_ text: String?, default value: String, at path: String) -> GatewayConfiguration.Rate? {
        let text = text ?? value
        if text == "off" { return nil }
        let parts = text.split(separator: "/")
        let seconds = parts.count == 2 ? ["s": 1, "m": 60, "h": 3600][String(parts[1])] : nil
        guard let seconds, let count = Int(parts[0]), count >= 1, count <= 1_000_000 else {
            report(path, "must be N/s, N/m or N/h (N from 1 to 1000000), or off")
            return nil
        }
        return GatewayConfiguration.Rate(count: count, seconds: seconds)
    }

    mutating func http2(_ raw: RawConfig.RawHTTP2?) -> GatewayConfiguration.HTTP2 {
        let streams = raw?.maxConcurrentStreams ?? 100
        if !(1...1000).contains(streams) { report("http2.max_concurrent_streams", "must be between 1 and 1000") }
        return GatewayConfiguration.HTTP2(enabled: raw?.enabled ?? true, maxConcurrentStreams: streams)
    }

    // MARK: - Pieces

    mutating func report(_ path: String, _ message: String) {
        issues.append(ConfigIssue(path, message))
    }

    /// Reports a missing key, unless it (or a mapping above it) was present but malformed.
    mutating func required(_ path: String, _ message: String) {
        let covered = alreadyReported.contains { $0.isEmpty || path == $0 || path.hasPrefix($0 + ".") || path.hasPrefix($0 + "[") }
        if !covered { report(path, message) }
    }

    /// An idle timeout: a duration of at least 2m (the cookie's activity time moves once a
    /// minute), or `off`. The outer optional is nil when the text is wrong.
    mutating func idle(_ text: String?, default value: Duration?, at path: String) -> Duration?? {
        guard let text else { return .some(value) }
        if text == "off" { return .some(nil) }
        guard let parsed = duration(text, default: .zero, at: path) else { return nil }
        guard parsed >= .seconds(120) else {
            report(path, "must be at least 2m (activity is recorded once a minute), or off")
            return nil
        }
        return .some(parsed)
    }

    mutating func duration(_ text: String?, default value: Duration, at path: String, allowZero: Bool = false) -> Duration? {
        guard let text else { return value }
        guard let parsed = DurationText.parse(text) else {
            report(path, "not a duration (\"500ms\", \"90s\", \"15m\", \"8h\", \"7d\", \"1h30m\")")
            return nil
        }
        if parsed == .zero && !allowZero {
            report(path, "must be greater than zero")
            return nil
        }
        return parsed
    }

    mutating func oneOf<T>(_ text: String?, default value: T, at path: String,
                                   _ make: (String) -> T?, _ allowed: String) -> T? {
        guard let text else { return value }
        guard let parsed = make(text) else {
            report(path, "must be one of \(allowed)")
            return nil
        }
        return parsed
    }

    mutating func endpoint(_ text: String, at path: String) -> GatewayConfiguration.Endpoint? {
        guard let (host, port) = Self.splitHostPort(text), !host.isEmpty, let port else {
            report(path, "must be host:port (\"127.0.0.1:8080\", \"[::1]:8080\")")
            return nil
        }
        // Port 0 binds an ephemeral port (tests); the bound port is logged at start.
        guard (0...65535).contains(port) else {
            report(path, "port \(port) is out of range (0-65535)")
            return nil
        }
        return .init(host: host, port: port)
    }

    /// Splits `host:port` or `[v6]:port`; the port is nil when absent.
    static func splitHostPort(_ text: String) -> (String, Int?)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), rest.dropFirst().allSatisfy(\.isNumber) else { return nil }
            return (host, port)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 1 { return (text, nil) }
        guard parts.count == 2, let port = Int(parts[1]), parts[1].allSatisfy(\.isNumber) else { return nil }
        return (String(parts[0]), port)
    }

    mutating func publicURL(_ text: String?) -> String? {
        guard let text else {
            required("public_url", "is required (how browsers reach the gateway, \"https://hub.example.com\")")
            return nil
        }
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty,
              url.query == nil, url.fragment == nil, url.user == nil, url.path.isEmpty || url.path == "/"
        else {
            report("public_url", "must be an absolute http(s) URL with no path, query or user (\"https://hub.example.com\")")
            return nil
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// `${NAME}` as a whole value reads the environment; anything else is literal.
    mutating func resolveEnv(_ text: String, at path: String) -> String? {
        guard text.hasPrefix("${"), text.hasSuffix("}") else { return text }
        let name = String(text.dropFirst(2).dropLast())
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }) else {
            report(path, "malformed ${ENV} reference (names use A-Z, a-z, 0-9 and _)")
            return nil
        }
        guard let value = environment[name], !value.isEmpty else {
            report(path, "environment variable \(name) is not set or empty")
            return nil
        }
        return value
    }

    /// `*_file` values are paths, never `${ENV}` references (a file named `${X}` is a mistake).
    mutating func filePath(_ text: String, at path: String) -> String? {
        guard !text.contains("${") else {
            report(path, "a file path cannot hold a ${ENV} reference; give the value itself as ${ENV} instead")
            return nil
        }
        return text
    }

    mutating func secrets(_ session: RawConfig.RawSession) -> [(keyPath: String, source: MaterialSource)] {
        var out: [(keyPath: String, source: MaterialSource)] = []
        switch (session.secrets, session.secretsFile) {
        case (nil, nil):
            required("session.secrets", "is required (at least one secret of 32 bytes or more)")
        case (.some, .some):
            report("session", "give secrets or secrets_file, not both")
        case (let list?, nil):
            if list.isEmpty { report("session.secrets", "must hold at least one secret") }
            for (index, text) in list.enumerated() {
                let path = "session.secrets[\(index)]"
                guard let value = resolveEnv(text, at: path) else { continue }
                if value.utf8.count < 32 {
                    report(path, "must be at least 32 bytes (got \(value.utf8.count))")
                } else {
                    out.append((path, .inline(value)))
                }
            }
        case (nil, let file?):
            if let file = filePath(file, at: "session.secrets_file") { out.append(("session.secrets_file", .file(file))) }
        }
        return out
    }

    mutating func pathPattern(_ text: String, at path: String) -> GatewayConfiguration.PathPattern? {
        guard text.hasPrefix("/") else {
            report(path, "must start with /")
            return nil
        }
        let coversSubtree = text.hasSuffix("/")
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let body = coversSubtree ? parts.dropLast() : parts
        var segments: [String?] = []
        for part in body {
            if part == "{org}" {
                segments.append(nil)
            } else if part.isEmpty || part.contains(where: { "{}*%?#;\\".contains($0) }) || part == "." || part == ".." {
                report(path, "segments must be literal names (no {, }, *, %, ?, #, ;, backslash, . or ..) or {org}, with no empty segment")
                return nil
            } else {
                segments.append(String(part))
            }
        }
        guard segments.filter({ $0 == nil }).count == 1 else {
            report(path, "must contain {org} exactly once, as a whole segment")
            return nil
        }
        return .init(text: text, segments: segments, coversSubtree: coversSubtree)
    }

    // RFC 9110 token characters, for cookie names.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }

    static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a, UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."): return true
        default: return false
        }
    }
}
