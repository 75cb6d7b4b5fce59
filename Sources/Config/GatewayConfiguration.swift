import CryptoCore

/// Stage 4 of 4: the frozen configuration the gateway runs on. Only the loader in this
/// module can make one, so every value here has passed validation and provisioning.
public struct GatewayConfiguration: Sendable {
    public struct Endpoint: Sendable, Equatable {
        public let host: String
        public let port: Int
        /// An `https://` upstream: TLS to it (`UpstreamTLS`).
        public let secure: Bool

        public init(host: String, port: Int, secure: Bool = false) {
            self.host = host
            self.port = port
            self.secure = secure
        }
    }

    /// How the gateway speaks TLS to an `https://` upstream (`upstream_tls`,
    /// `routes[].upstream_tls`): the certificate must chain to `caPEM` (the system's CA
    /// certificates when nil) and name `serverName` (else the upstream's host; an IP address
    /// must be in the certificate's IP SANs), which SNI also sends; a client certificate when
    /// the upstream asks for one. Files are read at load (and so again at each reload).
    public struct UpstreamTLS: Sendable {
        public let caPEM: String?
        public let serverName: String?
        public let clientCertificatePEM: String?
        public let clientKeyPEM: String?

        public static let systemDefaults = UpstreamTLS(caPEM: nil, serverName: nil, clientCertificatePEM: nil, clientKeyPEM: nil)

        public init(caPEM: String?, serverName: String?, clientCertificatePEM: String?, clientKeyPEM: String?) {
            self.caPEM = caPEM
            self.serverName = serverName
            self.clientCertificatePEM = clientCertificatePEM
            self.clientKeyPEM = clientKeyPEM
        }
    }

    public enum LogFormat: String, Sendable { case text, json }
    public enum UnauthenticatedMode: String, Sendable { case banner, redirect }
    public enum Role: Int, Sendable, Comparable, CaseIterable {
        case read, contributor, write, admin
        public var name: String { String(describing: self) }
        public static func < (a: Role, b: Role) -> Bool { a.rawValue < b.rawValue }
    }

    public struct Session: Sendable {
        public let cookieName: String
        /// Raw secrets; the first seals new cookies, all of them open old ones.
        public let secrets: [[UInt8]]
        public let ttl: Duration
    }

    public struct SAML: Sendable {
        // `internal(set)`: the console's settings are applied over the file's (OrganizationSettings.swift).
        public internal(set) var enabled: Bool
        /// nil when only the metadata at `metadataURL` gives it.
        public internal(set) var signOnURL: String?
        public internal(set) var certificates: [X509Certificate]
        public internal(set) var idpEntityID: String?
        public internal(set) var allowIdPInitiated: Bool
        public let allowSHA1: Bool
        public let spCertificateFile: String?
        public let spPrivateKeyFile: String?
        /// The SP key pair from those files, read and checked at load: it signs
        /// AuthnRequests and decrypts EncryptedAssertions.
        public let spKeyPair: SPKeyPair?
        /// Plain (unencrypted) assertions are refused.
        public let requireEncryptedAssertions: Bool
        /// Where the IdP publishes its metadata, fetched at start and every `metadataRefresh`.
        public let metadataURL: String?
        public let metadataRefresh: Duration
        /// The IdP's Single Logout URL (HTTP-Redirect), when configured; else its metadata's.
        public let sloURL: String?
        /// An IdP's LogoutRequest also revokes the member's access tokens for the organization.
        public let sloRevokesTokens: Bool
    }

    public struct SPKeyPair: Sendable {
        public let certificate: X509Certificate
        public let key: PrivateKey
    }

    public struct RoleMapping: Sendable {
        /// `value → role`; with `resourceGroup`, the role holds inside that resource group only.
        public struct Rule: Sendable, Equatable {
            public let value: String
            public let role: Role
            public let resourceGroup: String?

            public init(value: String, role: Role, resourceGroup: String? = nil) {
                self.value = value
                self.role = role
                self.resourceGroup = resourceGroup
            }
        }

        public let attribute: String
        public let rules: [Rule]
        public let defaultRole: Role

        public init(attribute: String, rules: [Rule], defaultRole: Role) {
            self.attribute = attribute
            self.rules = rules
            self.defaultRole = defaultRole
        }
    }

    public struct Organization: Sendable {
        public let name: String
        public let id: String?
        public internal(set) var saml: SAML
        public let unauthenticated: UnauthenticatedMode
        public let sessionTTL: Duration
        /// A grant unused this long ends (`session.idle_timeout`, `session_idle_timeout`); nil: never.
        public let sessionIdleTimeout: Duration?
        /// A request with an `Authorization` the gateway did not issue, for this
        /// organization's content: refused as unauthenticated, or passed to the application.
        public let appCredentials: AppCredentials
        public internal(set) var roleMapping: RoleMapping?
        /// Who gets in and with which role (docs/CONTRACT.md "Access policy"); `.open` when unset.
        public internal(set) var access: AccessPolicy
        /// Who changes the IdP settings: the configuration file, or org admins in the console
        /// (then the file's values only seed the store).
        public let managed: Management
    }

    public enum Management: String, Sendable { case file, console }

    public enum AppCredentials: String, Sendable { case refuse, pass }

    /// One application behind the gateway (`routes[]`): the requests for `host` (any host
    /// when nil; `*.example.com` covers its subdomains) whose path starts with `pathPrefix`,
    /// the longest prefix winning, go to `upstream`, protected by this route's own
    /// `protectedPaths` for `organizations`, or wholly by `organization`.
    public struct Route: Sendable {
        public let host: String?
        public let pathPrefix: String
        public let upstream: Endpoint
        /// For an `https://` upstream.
        public let upstreamTLS: UpstreamTLS?
        public let protectedPaths: [PathPattern]
        /// The configured organizations whose `{org}` this route's paths may name.
        public let organizations: [String]
        /// A whole-host route: every path belongs to this organization (no `{org}` segment).
        public let organization: String?
    }

    /// A `protected_paths` entry, split into segments; exactly one is `{org}`.
    public struct PathPattern: Sendable, Equatable {
        public let text: String
        /// Literal segments, with `nil` at the `{org}` position.
        public let segments: [String?]
        /// A pattern ending in `/` also covers everything below it.
        public let coversSubtree: Bool
    }

    /// TLS on the listener: the files as configured and their contents, read at load (and
    /// so again at each reload, which is how a renewed certificate is picked up).
    public struct TLS: Sendable {
        public let certificateFile: String
        public let privateKeyFile: String
        public let certificateChainPEM: String
        public let privateKeyPEM: String
    }

    /// Strict-Transport-Security, sent on every answer when `public_url` is https.
    public struct HSTS: Sendable, Equatable {
        public let maxAge: Duration
        public let includeSubdomains: Bool

        public var headerValue: String {
            "max-age=\(maxAge.components.seconds)" + (includeSubdomains ? "; includeSubDomains" : "")
        }
    }

    public struct HTTP2: Sendable, Equatable {
        /// `h2` through ALPN on a TLS listener, `h2c` with prior knowledge on a plain one.
        public let enabled: Bool
        public let maxConcurrentStreams: Int
    }

    /// OpenTelemetry spans, exported over OTLP/HTTP (README "Observability").
    public struct Tracing: Sendable, Equatable {
        public enum WireFormat: String, Sendable { case protobuf = "http/protobuf", json = "http/json" }
        /// The collector's traces URL, path included (`http://127.0.0.1:4318/v1/traces`).
        public let endpoint: String
        public let format: WireFormat
        public let serviceName: String
        /// The share of new traces recorded (a trusted proxy's sampled flag decides for its own).
        public let sampleRatio: Double
    }

    /// A signed identity for the upstream (`X-SSO-Assertion`, an ES256 JWT), so the app can
    /// verify who is calling instead of trusting a network boundary.
    public struct UpstreamAssertion: Sendable {
        /// PEM P-256 private keys: the first signs, every one is published in the JWKS
        /// (rotation with overlap).
        public let signingKeyPEMs: [String]
        public let audience: String
        public let ttl: Duration
    }

    /// How many logins the gateway takes on, and from whom (the ACS and login starts are
    /// the only endpoints where an unauthenticated client makes the gateway work).
    public struct Logins: Sendable, Equatable {
        /// Threads that validate SAML responses, off the event loops.
        public let workers: Int
        /// Responses waiting for a worker; past it the ACS answers 503 `login_busy`.
        public let queue: Int
        /// ACS posts and login starts per client address; nil: no limit.
        public let perClient: Rate?
        /// The same, all clients together.
        public let total: Rate?

        public init(workers: Int, queue: Int, perClient: Rate?, total: Rate?) {
            self.workers = workers
            self.queue = queue
            self.perClient = perClient
            self.total = total
        }
    }

    /// `count` events per `seconds`, allowed in a burst of `count`.
    public struct Rate: Sendable, Equatable {
        public let count: Int
        public let seconds: Int

        public init(count: Int, seconds: Int) {
            self.count = count
            self.seconds = seconds
        }
    }

    /// Where the gateway keeps what it must remember (docs/CONTRACT.md "State store").
    public enum Store: Sendable, Equatable {
        /// This process's memory: nothing survives it (`ssogate demo`, tests).
        case memory
        /// An SQLite file, the default (`sqlite:ssogate.db` beside the configuration file).
        /// The path is absolute once loaded.
        case sqlite(path: String)
        /// A PostgreSQL database every replica shares (`postgres://user:password@host:port/db`).
        case postgres(Postgres)
    }

    public struct Postgres: Sendable, Equatable {
        public let host: String
        public let port: Int
        public let user: String
        public let password: String?
        public let database: String
        public let tls: PostgresTLS

        public init(host: String, port: Int, user: String, password: String?, database: String, tls: PostgresTLS) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.database = database
            self.tls = tls
        }
    }

    /// libpq's `sslmode` and `sslrootcert`, as the URL spells them.
    public enum PostgresTLS: Sendable, Equatable {
        case disable
        /// TLS when the server offers it, its certificate unchecked (libpq's default).
        case prefer
        /// TLS always, the certificate unchecked.
        case require
        /// TLS, the certificate chained to `roots`; the host name unchecked.
        case verifyCA(roots: TrustRoots)
        /// TLS, the certificate chained to `roots` and naming the host.
        case verifyFull(roots: TrustRoots)
    }

    public enum TrustRoots: Sendable, Equatable {
        /// The operating system's CA certificates (`sslrootcert=system`).
        case system
        /// A PEM file of CA certificates; absolute once loaded.
        case file(String)
    }

    public let listen: Endpoint
    /// Where metrics, health and readiness are served instead of the public port; nil: on it.
    public let adminListen: Endpoint?
    /// Event-loop threads; 0 means one per CPU core. Fixed at start.
    public let workers: Int
    /// Scheme, host and port browsers use, no trailing slash (`https://hub.example.com`).
    public let publicURL: String
    public let publicURLIsHTTPS: Bool
    public let upstream: Endpoint
    /// For an `https://` upstream.
    public let upstreamTLS: UpstreamTLS?
    public let upstreamTimeout: Duration
    public let headerTimeout: Duration
    /// Longest wait for the next bytes of a request body the gateway is ready to read.
    public let bodyTimeout: Duration
    /// Longest time a client may leave the gateway's answer unread (the connection's send
    /// buffer full, or an HTTP/2 stream's window shut) before it is closed or reset.
    public let writeTimeout: Duration
    public let idleTimeout: Duration
    public let shutdownTimeout: Duration
    public let logFormat: LogFormat
    public let logLevel: String
    public let accessLog: Bool
    public let session: Session
    public let clockSkew: Duration
    public let protectedPaths: [PathPattern]
    public let unauthenticated: UnauthenticatedMode
    public internal(set) var organizations: [Organization]
    public let trustedProxies: [CIDR]
    public let tls: TLS?
    public let hsts: HSTS?
    public let http2: HTTP2
    public let upstreamAssertion: UpstreamAssertion?
    /// Off unless configured; fixed at start (a reload keeps the exporter it started with).
    public let tracing: Tracing?
    public let store: Store
    public let logins: Logins
    /// How long audit events are kept in the state store.
    public let auditRetention: Duration
    /// The longest lifetime a member may give an access token.
    public let tokenMaxTTL: Duration
    /// Applications besides `upstream` (which takes the requests no route matches).
    public let routes: [Route]

    public func organization(named name: some StringProtocol) -> Organization? {
        organizations.first { $0.name == name }
    }
}
