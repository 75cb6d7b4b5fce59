import CryptoCore
import Foundation

/// Runs the four stages: decode, validate, provision, freeze.
///
/// `ssogate check` runs all four, unlike docs/CODE-STYLE.md's "first two": an operator checking a
/// file wants to hear that `certificate_file` is missing before the reload, as `nginx -t`
/// opens the files it names.
public enum ConfigLoader {
    /// Reads a file's text; relative paths are resolved by the loader beforehand.
    public typealias FileReader = @Sendable (String) throws -> String

    /// Why a referenced file could not be used, in a few words.
    public struct FileError: Error {
        public let reason: String
        public init(_ reason: String) { self.reason = reason }
    }

    public static let diskReader: FileReader = { path in
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw FileError("no such file") }
        guard !isDirectory.boolValue else { throw FileError("is a directory") }
        guard let data = FileManager.default.contents(atPath: path) else { throw FileError("permission denied") }
        guard let text = String(data: data, encoding: .utf8) else { throw FileError("not UTF-8 text") }
        return text
    }

    /// Stages 1 and 2 only: no file besides the configuration itself is read.
    public static func check(yaml: String, environment: [String: String]) -> [ConfigIssue] {
        validate(yaml: yaml, environment: environment).1
    }

    private static func validate(yaml: String, environment: [String: String]) -> (ValidatedConfig?, [ConfigIssue]) {
        let (raw, decodeIssues, reported) = RawConfig.decode(yaml: yaml)
        guard let reported else { return (nil, decodeIssues) }
        var validator = ConfigValidator(environment: environment, alreadyReported: reported)
        let (validated, validateIssues) = validator.validate(raw)
        let issues = decodeIssues + validateIssues
        return (issues.isEmpty ? validated : nil, issues)
    }

    /// All four stages. `baseDirectory` anchors relative `*_file` paths (the config file's folder).
    public static func load(yaml: String, environment: [String: String], baseDirectory: String,
                            readFile: @escaping FileReader = diskReader) throws(ConfigError) -> GatewayConfiguration {
        let (validated, issues) = validate(yaml: yaml, environment: environment)
        guard let validated else { throw ConfigError(issues: issues) }
        var provisioner = Provisioner(baseDirectory: baseDirectory, readFile: readFile)
        let configuration = provisioner.provision(validated)
        guard provisioner.issues.isEmpty, let configuration else { throw ConfigError(issues: provisioner.issues) }
        return configuration
    }

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> GatewayConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(issues: [ConfigIssue("", "cannot read \(path): \(error.localizedDescription)")])
        }
        let base = (path as NSString).deletingLastPathComponent
        return try load(yaml: text, environment: environment, baseDirectory: base.isEmpty ? "." : base)
    }
}

/// Stage 3: reads `*_file` material and parses certificates, reporting with key paths.
struct Provisioner {
    let baseDirectory: String
    let readFile: ConfigLoader.FileReader
    private(set) var issues: [ConfigIssue] = []

    init(baseDirectory: String, readFile: @escaping ConfigLoader.FileReader) {
        self.baseDirectory = baseDirectory
        self.readFile = readFile
    }

    mutating func provision(_ v: ValidatedConfig) -> GatewayConfiguration? {
        var secrets: [[UInt8]] = []
        for (keyPath, source) in v.secretSources {
            switch source {
            case .inline(let text):
                secrets.append(Array(text.utf8))
            case .file(let path):
                guard let text = read(path, at: keyPath) else { continue }
                // One secret per non-empty line, so a rotation is one added line.
                let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                if lines.isEmpty { issues.append(ConfigIssue(keyPath, "the file holds no secret")) }
                for (index, line) in lines.enumerated() {
                    if line.utf8.count < 32 {
                        issues.append(ConfigIssue(keyPath, "line \(index + 1): a secret must be at least 32 bytes"))
                    } else {
                        secrets.append(Array(line.utf8))
                    }
                }
            }
        }
        var organizations: [GatewayConfiguration.Organization] = []
        for org in v.organizations {
            var certificates: [X509Certificate] = []
            for (keyPath, source) in org.saml.certificateSources {
                let text: String?
                switch source {
                case .inline(let pem): text = pem
                case .file(let path): text = read(path, at: keyPath)
                }
                guard let text else { continue }
                do {
                    let parsed = try X509Certificate.parseAll(pem: text)
                    // A key that cannot verify (or is too weak to trust) fails now, not at login.
                    for certificate in parsed { _ = try certificate.publicKey() }
                    certificates += parsed
                } catch {
                    issues.append(ConfigIssue(keyPath, (error as? CryptoError)?.reason ?? "not a PEM certificate"))
                }
            }
            let s = org.saml
            var keyPair: GatewayConfiguration.SPKeyPair?
            if let certificateFile = s.spCertificateFile, let keyFile = s.spPrivateKeyFile {
                keyPair = spKeyPair(certificateFile: certificateFile, keyFile: keyFile, at: "\(org.keyPath).saml")
            }
            organizations.append(.init(
                name: org.name, id: org.id,
                saml: .init(enabled: s.enabled, signOnURL: s.signOnURL, certificates: certificates,
                            idpEntityID: s.idpEntityID, allowIdPInitiated: s.allowIdPInitiated, allowSHA1: s.allowSHA1,
                            spCertificateFile: s.spCertificateFile.map(absolute), spPrivateKeyFile: s.spPrivateKeyFile.map(absolute),
                            spKeyPair: keyPair, requireEncryptedAssertions: s.requireEncryptedAssertions,
                            metadataURL: s.metadataURL, metadataRefresh: s.metadataRefresh, sloURL: s.sloURL,
                            sloRevokesTokens: s.sloRevokesTokens),
                unauthenticated: org.unauthenticated, sessionTTL: org.sessionTTL, sessionIdleTimeout: org.sessionIdleTimeout,
                appCredentials: org.appCredentials, roleMapping: org.roleMapping, access: org.access,
                managed: org.managed))
        }
        var tls: GatewayConfiguration.TLS?
        if let files = v.tlsFiles {
            let chain = read(files.certificate, at: "tls.certificate_file")
            let key = read(files.privateKey, at: "tls.private_key_file")
            if let chain, let key {
                tls = checkTLS(certificateFile: files.certificate, chain: chain, privateKeyFile: files.privateKey, key: key)
            }
        }
        var upstreamAssertion: GatewayConfiguration.UpstreamAssertion?
        if let settings = v.upstreamAssertion {
            var pems: [String] = []
            for (index, file) in settings.keyFiles.enumerated() {
                let path = "upstream_assertion.signing_key_files[\(index)]"
                guard let text = read(file, at: path) else { continue }
                guard let key = try? PrivateKey(pem: text), !key.isRSA, key.bits == 256 else {
                    issues.append(ConfigIssue(path, "must be a PEM P-256 (prime256v1) private key: the token is signed with ES256"))
                    continue
                }
                pems.append(text)
            }
            upstreamAssertion = GatewayConfiguration.UpstreamAssertion(signingKeyPEMs: pems, audience: settings.audience, ttl: settings.ttl)
        }
        let upstreamTLS = v.upstreamTLS.flatMap { provision($0, at: "upstream_tls") }
        let routes = v.routes.enumerated().map { index, pair -> GatewayConfiguration.Route in
            let (route, files) = pair
            return .init(host: route.host, pathPrefix: route.pathPrefix, upstream: route.upstream,
                         upstreamTLS: files.flatMap { provision($0, at: "routes[\(index)].upstream_tls") },
                         protectedPaths: route.protectedPaths, organizations: route.organizations, organization: route.organization)
        }
        guard issues.isEmpty else { return nil }
        return GatewayConfiguration(
            listen: v.listen, adminListen: v.adminListen, workers: v.workers, publicURL: v.publicURL, publicURLIsHTTPS: v.publicURL.lowercased().hasPrefix("https:"),
            upstream: v.upstream, upstreamTLS: upstreamTLS, upstreamTimeout: v.upstreamTimeout, headerTimeout: v.headerTimeout,
            bodyTimeout: v.bodyTimeout, writeTimeout: v.writeTimeout,
            idleTimeout: v.idleTimeout, shutdownTimeout: v.shutdownTimeout, logFormat: v.logFormat,
            logLevel: v.logLevel, accessLog: v.accessLog,
            session: .init(cookieName: v.cookieName, secrets: secrets, ttl: v.sessionTTL),
            clockSkew: v.clockSkew, protectedPaths: v.protectedPaths, unauthenticated: v.unauthenticated,
            organizations: organizations, trustedProxies: v.trustedProxies, tls: tls, hsts: v.hsts, http2: v.http2,
            upstreamAssertion: upstreamAssertion, tracing: v.tracing, store: resolved(v.store), logins: v.logins,
            auditRetention: v.auditRetention, tokenMaxTTL: v.tokenMaxTTL, routes: routes)
    }

    /// The store with its file paths made absolute against the configuration's folder (and
    /// the working directory when that folder was given relative), so logs and `check` name
    /// the file itself.
    private func resolved(_ store: GatewayConfiguration.Store) -> GatewayConfiguration.Store {
        func rooted(_ path: String) -> String {
            let joined = absolute(path)
            let full = joined.hasPrefix("/") ? joined : FileManager.default.currentDirectoryPath + "/" + joined
            return (full as NSString).standardizingPath
        }
        switch store {
        case .memory: return .memory
        case .sqlite(let path): return .sqlite(path: rooted(path))
        case .postgres(let p):
            let tls: GatewayConfiguration.PostgresTLS
            switch p.tls {
            case .verifyCA(.file(let path)): tls = .verifyCA(roots: .file(rooted(path)))
            case .verifyFull(.file(let path)): tls = .verifyFull(roots: .file(rooted(path)))
            default: tls = p.tls
            }
            return .postgres(.init(host: p.host, port: p.port, user: p.user, password: p.password, database: p.database, tls: tls))
        }
    }

    /// The SP's certificate and key: a matching pair, RSA of at least 2048 bits (it
    /// decrypts RSA-OAEP key transport and signs with RSA-SHA256).
    private mutating func spKeyPair(certificateFile: String, keyFile: String, at path: String) -> GatewayConfiguration.SPKeyPair? {
        let certificateText = read(certificateFile, at: "\(path).sp_certificate_file")
        let keyText = read(keyFile, at: "\(path).sp_private_key_file")
        guard let certificateText, let keyText,
              let (certificate, key) = matchedPair(certificateText, keyText, certificatePath: "\(path).sp_certificate_file",
                                                   keyPath: "\(path).sp_private_key_file") else { return nil }
        guard key.isRSA, key.bits >= 2048 else {
            issues.append(ConfigIssue("\(path).sp_private_key_file", "must be an RSA key of at least 2048 bits (RSA-OAEP and RSA-SHA256)"))
            return nil
        }
        return GatewayConfiguration.SPKeyPair(certificate: certificate, key: key)
    }

    /// The listener's certificate chain and key: a matching pair.
    /// An https upstream's TLS files read: the CA certificates must parse, the client pair match.
    private mutating func provision(_ files: UpstreamTLSFiles, at path: String) -> GatewayConfiguration.UpstreamTLS? {
        let before = issues.count
        var ca: String?
        if let file = files.caFile, let text = read(file, at: "\(path).ca_file") {
            if (try? X509Certificate.parseAll(pem: text)) == nil {
                issues.append(ConfigIssue("\(path).ca_file", "holds no PEM certificate (the CA that signed the upstream's certificate)"))
            }
            ca = text
        }
        var pair: (String, String)?
        if let certificateFile = files.clientCertificateFile, let keyFile = files.clientKeyFile,
           let certificate = read(certificateFile, at: "\(path).client_certificate_file"), let key = read(keyFile, at: "\(path).client_key_file"),
           matchedPair(certificate, key, certificatePath: "\(path).client_certificate_file", keyPath: "\(path).client_key_file") != nil {
            pair = (certificate, key)
        }
        guard issues.count == before else { return nil }
        return GatewayConfiguration.UpstreamTLS(caPEM: ca, serverName: files.serverName, clientCertificatePEM: pair?.0, clientKeyPEM: pair?.1)
    }

    private mutating func checkTLS(certificateFile: String, chain: String, privateKeyFile: String, key: String) -> GatewayConfiguration.TLS? {
        guard matchedPair(chain, key, certificatePath: "tls.certificate_file", keyPath: "tls.private_key_file") != nil else { return nil }
        return GatewayConfiguration.TLS(certificateFile: absolute(certificateFile), privateKeyFile: absolute(privateKeyFile),
                                        certificateChainPEM: chain, privateKeyPEM: key)
    }

    /// The first certificate of a PEM file and a PEM private key, when both parse and the key
    /// is that certificate's; otherwise an issue at the path concerned.
    private mutating func matchedPair(_ certificateText: String, _ keyText: String, certificatePath: String,
                                      keyPath: String) -> (X509Certificate, PrivateKey)? {
        let certificates: [X509Certificate]
        do {
            certificates = try X509Certificate.parseAll(pem: certificateText)
        } catch {
            issues.append(ConfigIssue(certificatePath, (error as? CryptoError)?.reason ?? "not a PEM certificate"))
            return nil
        }
        guard let first = certificates.first else {
            issues.append(ConfigIssue(certificatePath, "holds no certificate"))
            return nil
        }
        let key: PrivateKey
        do {
            key = try PrivateKey(pem: keyText)
        } catch {
            issues.append(ConfigIssue(keyPath, error.reason))
            return nil
        }
        guard key.matches(first) else {
            issues.append(ConfigIssue(keyPath, "is not the key of the first certificate in \(certificatePath)"))
            return nil
        }
        return (first, key)
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : baseDirectory + "/" + path
    }

    private mutating func read(_ path: String, at keyPath: String) -> String? {
        let resolved = absolute(path)
        do {
            return try readFile(resolved)
        } catch {
            let cause = (error as? ConfigLoader.FileError)?.reason ?? "\(error)"
            let note = path.hasPrefix("/") ? "" : "; relative paths are read from the configuration file's folder"
            issues.append(ConfigIssue(keyPath, "cannot read \"\(path)\" (\(cause)\(note))"))
            return nil
        }
    }
}
