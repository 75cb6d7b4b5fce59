import ArgumentParser
import Config
import CryptoCore
import Demo
import DevIdP
import Foundation
import Gateway
import HTTP2Session
import Logging
import NIOCore
import NIOPosix
import SAML
import ServiceLifecycle
import StateStore
import UnixSignals
import XMLCore

@main
struct SSOGateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssogate",
        abstract: "An authenticating reverse proxy that puts SAML single sign-on in front of a web application.",
        version: versionText,
        subcommands: [Serve.self, Check.self, Metadata.self, ImportIdPMetadata.self, AdminLinkCommand.self, AdminTokenCommand.self, Demo.self, DevIdPCommand.self])
}

/// `ssogate --version`: the build's `git describe` (stamped by the VersionStamp plugin) and
/// the C libraries this process runs against, which decide much of what it trusts.
let versionText = "ssogate \(buildVersion)\nlibxml2 \(XMLLibrary.runtimeVersion)\n\(CryptoLibrary.runtimeVersion)\nnghttp2 \(HTTP2Library.runtimeVersion)"

/// Reads and loads a configuration file, printing every problem with its key path.
func loadOrExit(_ path: String) throws -> GatewayConfiguration {
    do {
        return try ConfigLoader.load(path: path)
    } catch {
        for issue in error.issues { FileHandle.standardError.write(Data("\(path): \(issue)\n".utf8)) }
        throw ExitCode(2)
    }
}

/// The application logger; access records have their own buffered handler in the server.
func makeLogger(_ configuration: GatewayConfiguration) -> Logger {
    let level = Logger.Level(configName: configuration.logLevel) ?? .info
    let format = configuration.logFormat
    LoggingSystem.bootstrap { label in GatewayLogHandler(label: label, format: format, level: level) }
    return Logger(label: "ssogate")
}

func runGateway(configuration: GatewayConfiguration, reload: @escaping @Sendable () throws(ConfigError) -> GatewayConfiguration,
                logger: Logger, prepare: (GatewayServer) async throws -> Void = { _ in }) async throws {
    XMLLibrary.initialize()
    let threads = configuration.workers == 0 ? System.coreCount : configuration.workers
    let server = GatewayServer(configuration: configuration, group: MultiThreadedEventLoopGroup(numberOfThreads: threads),
                               logger: logger)
    try await prepare(server)
    let service = GatewayService(server: server, logger: logger, loadConfiguration: reload)
    let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint],
                                                  logger: logger))
    try await group.run()
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")
    @Option(help: "Path of the YAML configuration.") var config: String

    func run() async throws {
        let configuration = try loadOrExit(config)
        let logger = makeLogger(configuration)
        let path = config
        try await runGateway(configuration: configuration, reload: { () throws(ConfigError) in try ConfigLoader.load(path: path) },
                             logger: logger)
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a configuration: exit 0 with a summary, or exit 2 with one line per problem.")
    @Option(help: "Path of the YAML configuration.") var config: String

    func run() async throws {
        let configuration = try loadOrExit(config)
        let enabled = configuration.organizations.filter(\.saml.enabled).count
        func hostPort(_ e: GatewayConfiguration.Endpoint) -> String { e.host.contains(":") ? "[\(e.host)]:\(e.port)" : "\(e.host):\(e.port)" }
        print("\(config): ok (\(configuration.organizations.count) organizations, \(enabled) with SSO enabled; listen \(hostPort(configuration.listen)); upstream \(hostPort(configuration.upstream)); store \(storeSummary(configuration.store)))")
        // Valid, but worth knowing before it stops logins: certificates near their end.
        var warnings = CertificateWatch(configuration).warnings(now: Date())
        if let problem = sqliteFolderProblem(configuration.store) { warnings.append(problem) }
        if let problem = plainPublicURLProblem(configuration.publicURL) { warnings.append(problem) }
        for warning in warnings {
            FileHandle.standardError.write(Data("\(config): warning: \(warning)\n".utf8))
        }
    }
}

/// A plain-http `public_url` on a host other than loopback: browsers drop the `Secure`
/// login-state cookie there (it must survive the IdP's cross-site POST as `SameSite=None;
/// Secure`), so every SP-initiated login would end in `login_state_missing`.
func plainPublicURLProblem(_ publicURL: String) -> String? {
    guard publicURL.lowercased().hasPrefix("http://"), let host = URLComponents(string: publicURL)?.host?.lowercased() else { return nil }
    let loopback = host == "localhost" || host.hasSuffix(".localhost") || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    guard !loopback else { return nil }
    return "public_url: \(publicURL) is plain http on a host that is not this machine: browsers refuse the login's Secure cookie there, "
        + "so every login started here would end in login_state_missing; serve ssogate over https (tls, or a TLS proxy in front)"
}

/// Whether `serve`, run as this user, could open the SQLite store: its folder must exist
/// and be writable (SQLite adds -wal and -shm files beside the database).
func sqliteFolderProblem(_ store: GatewayConfiguration.Store) -> String? {
    guard case .sqlite(let path) = store else { return nil }
    let folder = (path as NSString).deletingLastPathComponent
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
        return "store: the folder \(folder) does not exist; logins would fail with 503 state_store_unavailable"
    }
    guard FileManager.default.isWritableFile(atPath: folder) else {
        return "store: the folder \(folder) is not writable by this user; logins would fail with 503 state_store_unavailable (give store: \"sqlite:/var/lib/ssogate/ssogate.db\" with a writable /var/lib/ssogate)"
    }
    return nil
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway, a demo app and a development IdP on loopback, with no set-up.")
    @Option(help: "Port of the gateway on 127.0.0.1.") var port: Int = 8080
    @Option(name: .customLong("idp-port"), help: "Port of the development IdP (0 picks one).") var idpPort: Int = 0

    func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let app = try await DemoUpstream.start(group: group)
        let gateway = "http://127.0.0.1:\(port)"
        let sp = DevServiceProvider(entityID: gateway + "/organizations/acme/saml/metadata",
                                    acsURL: gateway + "/organizations/acme/saml/consume", landing: "/acme/private-model")
        // The IdP answers on `localhost`, the gateway on `127.0.0.1`: two sites, so the IdP's
        // POST back is cross-site as it is with Okta, and the login-state cookie is exercised.
        let (_, idp) = try await DevIdPServer.start(group: group, host: "127.0.0.1", port: idpPort) { bound in
            try DevIdP(baseURL: "http://localhost:\(bound)", serviceProviders: [sp])
        }
        let secret = try SecureRandom().bytes(32).map { String(format: "%02x", $0) }.joined()
        let pem = idp.identity.certificatePEM.split(separator: "\n").map { "          " + $0 }.joined(separator: "\n")
        let yaml = """
        listen: "127.0.0.1:\(port)"
        public_url: "\(gateway)"
        upstream: "http://127.0.0.1:\(app.localAddress!.port!)"
        session:
          secrets: ["\(secret)"]
        store: memory
        protected_paths: ["/{org}/"]
        organizations:
          - name: acme
            id: "64f0c2acme"
            managed: console
            unauthenticated: banner
            saml:
              enabled: true
              sign_on_url: "\(idp.ssoURL)"
              idp_entity_id: "\(idp.entityID)"
              allow_idp_initiated: true
              certificate: |
        \(pem)
            role_mapping:
              attribute: groups
              rules: [{value: hf-admins, role: admin}, {value: engineering, role: write}]
              default_role: read
            access:
              allowed_email_domains: [example.test]
              enforce_roles: true
              contact: "alice@example.test"
        """
        let configuration: GatewayConfiguration
        do {
            configuration = try ConfigLoader.load(yaml: yaml, environment: [:], baseDirectory: FileManager.default.temporaryDirectory.path)
        } catch {
            FileHandle.standardError.write(Data("demo configuration: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let logger = makeLogger(configuration)
        let users = idp.users.map { "\($0.id) (\($0.description))" }.joined(separator: ", ")
        try await runGateway(configuration: configuration, reload: { () throws(ConfigError) in configuration }, logger: logger) { server in
            // The org admin's way in, as `ssogate admin-link` gives it (the demo's store is
            // its memory, so the link is made here).
            let link = try await server.makeAdminLink(organization: "acme")
            FileHandle.standardOutput.write(Data("""
            ssogate demo: open \(gateway)/acme/private-model (Ctrl-C to stop)
              development IdP: \(idp.baseURL)/ (users: \(users))
              acme's SSO console (one-time link, 15 minutes): \(link)

            """.utf8))
        }
    }
}

struct DevIdPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-idp",
        abstract: "Run the development IdP (demo users, fresh key pair) for integration work. Not for production.")
    @Option(help: "host:port to listen on; loopback only unless --insecure-public.") var listen: String = "127.0.0.1:8081"
    @Option(name: .customLong("sp-metadata"), parsing: .singleValue,
            help: "http:// URL or file of a service provider's metadata, e.g. http://127.0.0.1:8080/organizations/acme/saml/metadata. Repeatable.")
    var spMetadata: [String]
    @Option(name: .customLong("base-url"), help: "The IdP's URL as browsers reach it (default http://<listen>).") var baseURL: String?
    @Option(help: "Where IdP-initiated (tile) logins land on the service provider.") var landing: String = "/"
    @Flag(name: .customLong("insecure-public"), help: "Allow a non-loopback address: anyone who reaches it can sign in as any demo user.")
    var insecurePublic = false

    func validate() throws {
        guard !spMetadata.isEmpty else { throw ValidationError("give at least one --sp-metadata") }
        guard let (host, _) = Self.split(listen) else { throw ValidationError("--listen must be host:port, got \(listen)") }
        if !Self.isLoopback(host) && !insecurePublic {
            throw ValidationError("refusing to listen on \(host): the development IdP signs in anyone as any demo user; use a loopback address or --insecure-public")
        }
    }

    static func split(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
    }

    func run() async throws {
        XMLLibrary.initialize()
        var providers: [DevServiceProvider] = []
        for source in spMetadata {
            do {
                let bytes: [UInt8]
                if source.hasPrefix("http://") || source.hasPrefix("https://") {
                    bytes = try await HTTPFetch.get(source, group: MultiThreadedEventLoopGroup.singleton)
                } else {
                    bytes = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
                }
                providers.append(try DevServiceProvider.fromMetadata(bytes, landing: landing))
            } catch {
                FileHandle.standardError.write(Data("--sp-metadata \(source): \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
        let (host, port) = Self.split(listen)!
        let (channel, idp) = try await DevIdPServer.start(group: MultiThreadedEventLoopGroup.singleton, host: host, port: port) { bound in
            try DevIdP(baseURL: baseURL ?? "http://\(host.contains(":") ? "[\(host)]" : host):\(bound)", serviceProviders: providers)
        }
        // Written unbuffered: a supervisor or test reads it while the IdP runs.
        FileHandle.standardOutput.write(Data("""
        ssogate dev-idp: \(idp.baseURL)/ (tiles), metadata \(idp.entityID), SSO \(idp.ssoURL)
          users: \(idp.users.map { "\($0.email) [\($0.groups.joined(separator: ", "))]" }.joined(separator: "; "))
          serving: \(providers.map(\.entityID).joined(separator: ", "))
        # The organization's saml block for this IdP:
              sign_on_url: "\(idp.ssoURL)"
              idp_entity_id: "\(idp.entityID)"
              certificate: |
        \(idp.identity.certificatePEM.split(separator: "\n").map { "          " + $0 }.joined(separator: "\n"))

        """.utf8))
        try await channel.closeFuture.get()
    }
}

struct Metadata: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the SP metadata XML of an organization.")
    @Option(help: "Path of the YAML configuration.") var config: String
    @Option(help: "Organization name.") var org: String

    func run() async throws {
        let configuration = try loadOrExit(config)
        guard let organization = configuration.organization(named: org) else {
            FileHandle.standardError.write(Data("no organization named \(org) in \(config)\n".utf8))
            throw ExitCode(2)
        }
        print(SPMetadata.xml(publicURL: configuration.publicURL, organization: organization.name, certificate: organization.saml.spKeyPair?.certificate),
              terminator: "")
    }
}

struct ImportIdPMetadata: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-idp-metadata",
        abstract: "Read an IdP's metadata XML (Okta, Azure AD, SimpleSAMLphp) and print the organization's configuration block.")
    @Argument(help: "The IdP metadata file.") var file: String
    @Option(help: "Organization name.") var org: String

    func run() async throws {
        XMLLibrary.initialize()
        let metadata: IdPMetadata
        do {
            metadata = try IdPMetadata.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        } catch let error as SAMLError {
            FileHandle.standardError.write(Data("\(file): \(error.detail)\n".utf8))
            throw ExitCode(2)
        }
        guard let sso = metadata.redirectSSOURL else {
            FileHandle.standardError.write(Data("\(file): the IdP lists no HTTP-Redirect SingleSignOnService; ssogate needs one\n".utf8))
            throw ExitCode(2)
        }
        var out = """
        # From \(file). Paste under `organizations:`; turn `enabled` on after testing with
        # /organizations/\(org)/sso?test=1.
          - name: "\(org)"
            saml:
              enabled: false
              sign_on_url: "\(sso)"
              idp_entity_id: "\(metadata.entityID)"
              certificates:

        """
        for certificate in metadata.signingCertificates {
            out += "        - |\n          -----BEGIN CERTIFICATE-----\n"
            for line in Data(certificate.der).base64EncodedString(options: .lineLength64Characters).split(separator: "\r\n") {
                out += "          \(line)\n"
            }
            out += "          -----END CERTIFICATE-----\n"
        }
        print(out, terminator: "")
    }
}

/// The store as `check` names it: where, never the password.
func storeSummary(_ store: GatewayConfiguration.Store) -> String {
    switch store {
    case .memory: return "memory"
    case .sqlite(let path): return "sqlite:\(path)"
    case .postgres(let p):
        let tls: String
        switch p.tls {
        case .disable: tls = "disable"
        case .prefer: tls = "prefer"
        case .require: tls = "require"
        case .verifyCA: tls = "verify-ca"
        case .verifyFull: tls = "verify-full"
        }
        return "postgres \(p.user)@\(p.host):\(p.port)/\(p.database), sslmode \(tls)"
    }
}

struct AdminTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-token",
        abstract: "Print a bearer token for one organization's settings API (shown once, stored hashed in the state store).")
    @Option(help: "Path of the YAML configuration.") var config: String
    @Option(help: "The organization the token may administer.") var org: String
    @Option(help: "How long the token lives (90s, 15m, 1h, 7d).") var ttl: String = "1h"

    func run() async throws {
        guard let lifetime = DurationText.parse(ttl), lifetime >= .seconds(60), lifetime <= .seconds(366 * 86400) else {
            throw ValidationError("--ttl must be a duration from 60s to 366d (90s, 15m, 1h, 7d)")
        }
        let (_, organization, made) = try await issueCredential(config: config, org: org, lifetime: lifetime.components.seconds, prefix: "ssga_",
                                                                action: "token.create", kind: "admin-token") { store, token in
            try await store.storeAdminToken(token)
        }
        FileHandle.standardError.write(Data("admin token \(made.token.id) for \(organization), valid for \(ttl); shown once:\n".utf8))
        print(made.text)
    }
}

struct AdminLinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-link",
        abstract: "Print a one-time link (15 minutes) that opens one organization's SSO console for whoever follows it first.")
    @Option(help: "Path of the YAML configuration.") var config: String
    @Option(help: "The organization whose console the link opens.") var org: String

    func run() async throws {
        let (configuration, organization, made) = try await issueCredential(config: config, org: org, lifetime: 15 * 60, prefix: "ssgl_",
                                                                            action: "admin.link", kind: "admin-link") { store, link in
            try await store.storeAdminLink(link)
        }
        FileHandle.standardError.write(Data("one-time console link for \(organization), valid for 15 minutes:\n".utf8))
        print("\(configuration.publicURL)/organizations/\(organization)/settings/sso/login?token=\(made.text)")
    }
}

/// A new admin token or console link for `org`, stored (hashed) in the configured store
/// with its audit event; exits 2 for an unknown organization.
func issueCredential(config: String, org: String, lifetime: Int64, prefix: String, action: String, kind: String,
                     store keep: @escaping @Sendable (GatewayStore, StateStore.AdminToken) async throws -> Void)
    async throws -> (GatewayConfiguration, String, (text: String, token: StateStore.AdminToken)) {
    let configuration = try loadOrExit(config)
    guard let organization = configuration.organization(named: org) else {
        FileHandle.standardError.write(Data("\(config): no organization named \(org)\n".utf8))
        throw ExitCode(2)
    }
    let now = Int64(Date().timeIntervalSince1970)
    let made = try StateStore.AdminToken.make(organization: organization.name, now: now, lifetime: lifetime, prefix: prefix)
    let token = made.token
    try await withStore(configuration) { store in
        try await keep(store, token)
        try await store.record(AuditEvent(time: now, action: action, organization: organization.name, actor: "cli",
                                          result: "success", reason: "created", subject: "\(kind):\(token.id)", ip: nil, requestID: nil))
    }
    return (configuration, organization.name, made)
}

/// Runs `body` with the configured state store opened in this process: the SQLite file, or
/// a PostgreSQL pool. `store: memory` lives inside one running gateway only.
func withStore<T: Sendable>(_ configuration: GatewayConfiguration, _ body: @escaping @Sendable (GatewayStore) async throws -> T) async throws -> T {
    let logger = Logger(label: "ssogate")
    switch configuration.store {
    case .memory:
        throw ValidationError("store: memory is inside one running gateway only; use sqlite: or postgres:// (README \"The state store\")")
    case .sqlite(let path):
        let store = try SQLiteStore(path: path, logger: logger)
        defer { try? store.close() }
        return try await body(store)
    case .postgres(let settings):
        let store = PostgresStore(settings, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let running = Task { await store.run() }
        defer { running.cancel() }
        var lastError: Error?
        for _ in 0..<10 {
            do {
                try await store.migrate()
                return try await body(store)
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        throw ValidationError("the PostgreSQL store did not answer: \(lastError.map { "\($0)" } ?? "?")")
    }
}

