import CryptoCore
import Foundation
import TestFixtures
import TestSupport
import Testing

private func config(upstreamPort: Int, extra: String = "") -> String {
    """
    listen: "127.0.0.1:PORT"
    public_url: "http://127.0.0.1:PORT"
    upstream: "http://127.0.0.1:\(upstreamPort)"
    shutdown_timeout: "5s"
    session:
      secrets: ["0123456789abcdef0123456789abcdef-test"]
    \(extra)
    """
}

/// The real executable as a child process. Serialized: the 1 GiB streams want the CPU.
@Suite("The ssogate process: memory, signals, logs", .serialized)
struct ProcessTests {
    static let gibibyte = 1 << 30
    /// Resident memory the gateway may reach while a 1 GiB body passes (issue bound).
    static let rssLimit = 64 << 20

    /// `ssogate admin-token` writes into the store `serve` reads: the default SQLite file
    /// beside the configuration, shared by two processes.
    @Test func anAdminTokenFromTheCommandLineOpensTheSettingsAPIOfItsOrganization() async throws {
        let upstream = try await TestUpstream.start()
        let gw = try GatewayProcess(yaml: config(upstreamPort: upstream.port, extra: """
            protected_paths: ["/{org}/"]
            organizations:
              - name: initech
                managed: console
            """))
        let folder = (gw.configPath as NSString).deletingLastPathComponent
        #expect(FileManager.default.fileExists(atPath: folder + "/ssogate.db"), "the default store is a file beside the configuration")
        func adminToken(_ org: String) throws -> (status: Int32, output: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: GatewayProcess.executable)
            p.arguments = ["admin-token", "--config", gw.configPath, "--org", org, "--ttl", "10m"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = Pipe()
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let made = try adminToken("initech")
        #expect(made.status == 0 && made.output.hasPrefix("ssga_"), "\(made)")
        #expect(try adminToken("nobody").status == 2)
        let c = try RawHTTPClient(port: gw.port)
        try c.send("GET /api/organizations/initech/sso HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(made.output)\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 200 && r.text.contains("\"managed\":\"console\""), "\(r)")
        try c.send("GET /api/organizations/initech/sso HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(made.output)x\r\n\r\n")
        #expect(try c.readResponse().status == 401)
        await upstream.stop()
    }

    @Test func aGibibyteDownloadStreamsThroughInFlatMemory() async throws {
        let upstream = try await TestUpstream.start()
        let gw = try GatewayProcess(yaml: config(upstreamPort: upstream.port, extra: "access_log: false"))
        let c = try RawHTTPClient(port: gw.port, timeout: 60)
        try c.send("GET /stream?bytes=\(Self.gibibyte) HTTP/1.1\r\nHost: h\r\n\r\n")
        // The client reads nothing for two seconds: without backpressure the gateway would
        // take the upstream's whole body into memory meanwhile.
        try await Task.sleep(for: .seconds(2))
        let stalledRSS = gw.memory().rss
        #expect(stalledRSS < Self.rssLimit, "RSS while the client stalls: \(stalledRSS >> 20) MiB")
        let r = try c.readResponse(discardBody: true)
        #expect(r.status == 200)
        #expect(r.text == "\(Self.gibibyte)")
        let peak = gw.memory().peak
        #expect(peak > 0 && peak < Self.rssLimit, "peak RSS \(peak >> 20) MiB")
        await upstream.stop()
    }

    @Test func aGibibyteUploadStreamsThroughInFlatMemory() async throws {
        let upstream = try await TestUpstream.start()
        let gw = try GatewayProcess(yaml: config(upstreamPort: upstream.port, extra: "access_log: false"))
        let c = try RawHTTPClient(port: gw.port, timeout: 60)
        // The upstream reads nothing for two seconds: without backpressure the gateway would
        // take the client's whole body into memory meanwhile.
        try c.send("POST /sink?stall_ms=2000 HTTP/1.1\r\nHost: h\r\nContent-Length: \(Self.gibibyte)\r\n\r\n")
        let piece = [UInt8](repeating: 0x62, count: 1 << 20)
        for _ in 0..<(Self.gibibyte / piece.count) { try c.send(piece) }
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.text == "\(Self.gibibyte)")
        let peak = gw.memory().peak
        #expect(peak > 0 && peak < Self.rssLimit, "peak RSS \(peak >> 20) MiB")
        await upstream.stop()
    }

    @Test func aHundredMegabyteHTMLPageGetsItsBannerWithoutBeingBuffered() async throws {
        let upstream = try await TestUpstream.start()
        let cert = Fixture.path("crypto/rsa-2048.crt")
        let gw = try GatewayProcess(yaml: config(upstreamPort: upstream.port, extra: """
        access_log: false
        protected_paths: ["/{org}/"]
        organizations:
          - name: acme
            saml: {enabled: true, sign_on_url: "https://idp.example/sso", certificate_file: "\(cert)"}
        """))
        let size = 100_000_000
        let c = try RawHTTPClient(port: gw.port, timeout: 60)
        try c.send("GET /acme/bightml?bytes=\(size) HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n")
        // The client stalls first: the page must wait upstream, not pile up in the gateway.
        try await Task.sleep(for: .seconds(1))
        let stalled = gw.memory().rss
        let r = try c.readResponse(discardBody: true)
        #expect(r.status == 200 && r.header("transfer-encoding") == "chunked")
        let banner = Array("<div id=\"ssogate-banner\"".utf8).count
        #expect(Int(r.text)! > size + 1000 + banner)
        #expect(stalled < Self.rssLimit && gw.memory().peak < Self.rssLimit, "RSS \(stalled >> 20) / peak \(gw.memory().peak >> 20) MiB")
        await upstream.stop()
    }

    /// Runs a system command (openssl, curl), returning its standard output and error together.
    private func tool(_ arguments: [String], input: String = "") throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = stdin
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// A self-signed certificate for localhost named `name`, written into `folder`.
    private func makeCertificate(_ name: String, in folder: String) throws {
        _ = try tool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=\(name)",
                     "-addext", "subjectAltName=DNS:localhost", "-keyout", "\(folder)/\(name).key", "-out", "\(folder)/\(name).crt"])
    }

    /// What `openssl s_client` learns from a handshake: the certificate's subject, ALPN.
    private func handshake(port: Int, _ extra: [String] = []) throws -> String {
        try tool(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost"] + extra)
    }

    @Test func tlsOffersH2AndRefusesOldVersionsAndSIGHUPSwapsTheCertificate() async throws {
        let upstream = try await TestUpstream.start()
        let folder = NSTemporaryDirectory() + "ssogate-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try makeCertificate("first", in: folder)
        try makeCertificate("second", in: folder)
        let yaml = config(upstreamPort: upstream.port).replacingOccurrences(of: "http://127.0.0.1:PORT", with: "https://localhost:PORT")
            + "\ntls: {certificate_file: first.crt, private_key_file: first.key}\nhsts: {max_age: 1d}\n"
        let gw = try GatewayProcess(yaml: yaml, directory: folder, readyLog: "listening")

        let h2 = try handshake(port: gw.port, ["-alpn", "h2,http/1.1"])
        #expect(h2.contains("ALPN protocol: h2"), "\(h2.suffix(600))")
        #expect(h2.contains("subject=CN = first"))
        let h1 = try handshake(port: gw.port, ["-alpn", "http/1.1"])
        #expect(h1.contains("ALPN protocol: http/1.1"))
        // The client's security level would refuse TLS 1.1 itself; lowered, the offer
        // reaches the gateway, which must answer with a protocol_version alert.
        let old = try handshake(port: gw.port, ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"])
        #expect(old.contains("alert protocol version") && !old.contains("subject=CN = first"), "\(old.suffix(400))")
        #expect(try handshake(port: gw.port, ["-tls1_2"]).contains("subject=CN = first"))
        // HTTP/1.1 over TLS answers with HSTS.
        let answer = try tool(["curl", "-s", "-i", "--http1.1", "--cacert", "\(folder)/first.crt", "https://localhost:\(gw.port)/echo"])
        #expect(answer.hasPrefix("HTTP/1.1 200"))
        #expect(answer.contains("Strict-Transport-Security: max-age=86400"))

        // A renewed certificate: the files change and SIGHUP applies them to new handshakes.
        let text = try String(contentsOfFile: gw.configPath, encoding: .utf8)
        try text.replacingOccurrences(of: "first.", with: "second.").write(toFile: gw.configPath, atomically: true, encoding: .utf8)
        gw.signal(SIGHUP)
        #expect(gw.waitForLog("configuration reloaded", within: 5))
        #expect(try handshake(port: gw.port).contains("subject=CN = second"))

        // A key that is not the certificate's: the reload is refused, the running one stays.
        try text.replacingOccurrences(of: "first.key", with: "second.key").write(toFile: gw.configPath, atomically: true, encoding: .utf8)
        gw.signal(SIGHUP)
        #expect(gw.waitForLog("tls.private_key_file: is not the key of the first certificate", within: 5))
        #expect(try handshake(port: gw.port).contains("subject=CN = second"))
        await upstream.stop()
    }

    @Test func sighupWithABrokenFileKeepsTheRunningConfigurationAndAGoodOneIsApplied() async throws {
        let first = try await TestUpstream.start()
        let second = try await TestUpstream.start()
        let gw = try GatewayProcess(yaml: config(upstreamPort: first.port))
        let good = try String(contentsOfFile: gw.configPath, encoding: .utf8)

        try (good + "\nunknown_key: 1\nupstream_timeout: \"soon\"\n").write(toFile: gw.configPath, atomically: true, encoding: .utf8)
        gw.signal(SIGHUP)
        #expect(gw.waitForLog("configuration reload rejected", within: 5))
        #expect(gw.log.contains("unknown_key: unknown key"))
        #expect(gw.log.contains("upstream_timeout: not a duration"))
        var r = try RawHTTPClient(port: gw.port).roundTrip("GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.status == 200)
        #expect(first.requests.count == 1)

        try good.replacingOccurrences(of: "127.0.0.1:\(first.port)", with: "127.0.0.1:\(second.port)")
            .write(toFile: gw.configPath, atomically: true, encoding: .utf8)
        gw.signal(SIGHUP)
        #expect(gw.waitForLog("configuration reloaded", within: 5))
        r = try RawHTTPClient(port: gw.port).roundTrip("GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.status == 200)
        #expect(second.requests.count == 1)
        #expect(first.requests.count == 1)
        await first.stop()
        await second.stop()
    }

    @Test func sigtermFinishesTheRequestInFlightThenExitsZero() async throws {
        let upstream = try await TestUpstream.start()
        let gw = try GatewayProcess(yaml: config(upstreamPort: upstream.port))
        let c = try RawHTTPClient(port: gw.port, timeout: 10)
        try c.send("GET /slow?ms=800 HTTP/1.1\r\nHost: h\r\n\r\n")
        usleep(200_000)
        gw.signal(SIGTERM)
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.text == "slow")
        #expect(r.header("connection") == "close")
        #expect(gw.waitForExit(within: 8) == 0)
        #expect((try? RawHTTPClient(port: gw.port, timeout: 1)) == nil, "still accepting after shutdown")
        await upstream.stop()
    }

    @Test func sigtermForceClosesWhatOutlastsTheDrainPeriod() async throws {
        let upstream = try await TestUpstream.start()
        let gw = try GatewayProcess(yaml: config(upstreamPort: upstream.port).replacingOccurrences(of: "shutdown_timeout: \"5s\"", with: "shutdown_timeout: \"500ms\""))
        let c = try RawHTTPClient(port: gw.port, timeout: 10)
        try c.send("GET /slow?ms=5000 HTTP/1.1\r\nHost: h\r\n\r\n")
        usleep(200_000)
        let started = Date()
        gw.signal(SIGTERM)
        #expect(gw.waitForExit(within: 5) == 0)
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(gw.log.contains("drain period over"))
        await upstream.stop()
    }

    @Test func theAccessLogIsOneJSONLinePerRequestWithoutTheQuery() async throws {
        let upstream = try await TestUpstream.start()
        let gw = try GatewayProcess(yaml: config(upstreamPort: upstream.port, extra: "log_format: json"))
        _ = try RawHTTPClient(port: gw.port).roundTrip("GET /echo?token=secret HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(gw.waitForLog("\"path\":\"/echo\"", within: 5))
        let line = try #require(gw.log.split(separator: "\n").first { $0.contains("\"path\":\"/echo\"") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["msg"] as? String == "request")
        #expect(object["method"] as? String == "GET")
        #expect(object["status"] as? Int == 200)
        #expect(object["bytes"] != nil && object["duration_ms"] != nil && object["upstream_ms"] != nil)
        #expect(!gw.log.contains("secret"))
        await upstream.stop()
    }

    @Test(arguments: ["ssogate.example.yaml", "minimal.yaml"])
    func checkAcceptsTheShippedConfigurations(file: String) throws {
        let (status, output) = try runCheck(Fixture.repository.appendingPathComponent("Config/" + file).path)
        #expect(status == 0, "\(output)")
        #expect(output.contains(": ok ("))
    }

    @Test func checkNamesEveryProblemWithItsKeyPathAndExitsTwo() throws {
        let path = NSTemporaryDirectory() + "ssogate-check-\(UUID().uuidString).yaml"
        try """
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:9000"
        session: {secrets: ["short"]}
        organizations:
          - name: acme
            saml: {sign_on_url: "https://idp.example/sso", certificate: "hello"}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try runCheck(path)
        #expect(status == 2)
        #expect(output.contains("session.secrets[0]: must be at least 32 bytes (got 5)"))
        let (status2, output2) = try runCheck(path.replacingOccurrences(of: ".yaml", with: ".missing.yaml"))
        #expect(status2 == 2)
        #expect(output2.contains("cannot read"))
    }

    @Test func checkPassesButWarnsAboutACertificateNearItsEnd() throws {
        let path = NSTemporaryDirectory() + "ssogate-check-\(UUID().uuidString).yaml"
        let (yaml, soon, _) = try CertificateWatchTests.yaml(soonDays: 3)
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try runCheck(path)
        #expect(status == 0, "\(output)")
        #expect(output.contains(": ok ("))
        #expect(output.contains("warning: organization acme: idp certificate") && output.contains(soon.sha256Fingerprint), "\(output)")
    }

    @Test(arguments: [("http://hub.example.com", true), ("https://hub.example.com", false), ("http://127.0.0.1:8080", false),
                      ("http://localhost:8080", false), ("http://10.1.2.3", true)])
    func checkWarnsAboutAPlainHTTPPublicURLOffThisMachine(url: String, warned: Bool) throws {
        let path = NSTemporaryDirectory() + "ssogate-check-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
        public_url: "\(url)"
        upstream: "http://127.0.0.1:9000"
        session: {secrets: ["0123456789abcdef0123456789abcdef"]}
        store: memory
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try runCheck(path)
        #expect(status == 0, "\(output)")
        #expect(output.contains("warning: public_url:") == warned && (!warned || output.contains("login_state_missing")), "\(output)")
    }

    @Test func checkParsesTheCertificate() throws {
        let path = NSTemporaryDirectory() + "ssogate-check-\(UUID().uuidString).yaml"
        try """
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:9000"
        session: {secrets: ["0123456789abcdef0123456789abcdef"]}
        organizations:
          - name: acme
            saml: {sign_on_url: "https://idp.example/sso", certificate: "hello"}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try runCheck(path)
        #expect(status == 2)
        #expect(output.contains("organizations[0].saml.certificate: not a PEM certificate"))
    }

    @Test(arguments: [
        ("Tests/Fixtures/real-idp/TestSPCanHandleOktaSignedResponseEncryptedAssertion_IDPMetadata", "http://www.okta.com/exkppsa1qwuFV4D7z0h7"),
        ("Config/okta-idp-metadata.example.xml", "http://www.okta.com/exk1a2b3c4d5e6f7g8h9"),
    ])
    func importedIdPMetadataMakesAConfigurationThatChecks(file: String, entityID: String) throws {
        let metadata = Fixture.repository.appendingPathComponent(file).path
        let (status, block) = try run(["import-idp-metadata", metadata, "--org", "acme"])
        #expect(status == 0, "\(block)")
        #expect(block.contains("idp_entity_id: \"\(entityID)\""))
        let path = NSTemporaryDirectory() + "ssogate-import-\(UUID().uuidString).yaml"
        let base = """
        public_url: "https://hub.example.test"
        upstream: "http://127.0.0.1:9000"
        session: {secrets: ["0123456789abcdef0123456789abcdef"]}
        protected_paths: ["/{org}/"]
        organizations:

        """
        try (base + block).write(toFile: path, atomically: true, encoding: .utf8)
        let (checked, output) = try runCheck(path)
        #expect(checked == 0, "\(output)")
        #expect(output.contains("1 organizations"))
    }

    @Test func metadataPrintsTheOrganizationsEntityAndACS() throws {
        let example = Fixture.repository.appendingPathComponent("Config/ssogate.example.yaml").path
        let (status, xml) = try run(["metadata", "--config", example, "--org", "acme"])
        #expect(status == 0)
        #expect(xml.contains("entityID=\"https://hub.example.com/organizations/acme/saml/metadata\""))
        #expect(xml.contains("Location=\"https://hub.example.com/organizations/acme/saml/consume\""))
        #expect(xml.contains("SingleLogoutService") && xml.contains("Location=\"https://hub.example.com/organizations/acme/saml/slo\""),
                "the printed metadata is the served one: Single Logout included")
        #expect(try run(["metadata", "--config", example, "--org", "nope"]).0 == 2)
    }

    @Test func versionNamesTheBuildAndTheLibrariesItRunsOn() throws {
        let (status, output) = try run(["--version"])
        let lines = output.split(separator: "\n").map(String.init)
        #expect(status == 0 && lines.count == 4, "\(output)")
        // The build's git describe, as the VersionStamp plugin read it.
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        git.arguments = ["-C", Fixture.repository.path, "describe", "--tags", "--always", "--dirty"]
        let pipe = Pipe()
        git.standardOutput = pipe
        try git.run()
        let described = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        git.waitUntilExit()
        #expect(lines.first == "ssogate \(described)", "\(output)")
        #expect(lines.count == 4 && lines[1].hasPrefix("libxml2 2.") && lines[2].hasPrefix("OpenSSL 3.") && lines[3].hasPrefix("nghttp2 1."), "\(output)")
    }

    private func runCheck(_ path: String) throws -> (Int32, String) { try run(["check", "--config", path]) }

    private func run(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: GatewayProcess.executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

@Suite("Health and metrics endpoints")
struct ObservabilityTests {
    @Test func healthzAnswers200() async throws {
        try await withGateway { gw, _ in
            let r = try gw.request("GET /_ssogate/healthz HTTP/1.1\r\nHost: h\r\n\r\n")
            #expect(r.status == 200)
            #expect(r.text == "ok\n")
        }
    }

    @Test func metricsCountRequestsByClassUpstreamLatencyAndConnections() async throws {
        try await withGateway { gw, _ in
            let c = try gw.client()
            for _ in 0..<3 {
                try c.send("GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
                #expect(try c.readResponse().status == 200)
            }
            try c.send("GET /close HTTP/1.1\r\nHost: h\r\n\r\n")
            #expect(try c.readResponse().status == 502)
            let text = try gw.request("GET /_ssogate/metrics HTTP/1.1\r\nHost: h\r\n\r\n").text
            #expect(text.contains("ssogate_http_requests_total{class=\"2xx\"} 3"))
            #expect(text.contains("ssogate_http_requests_total{class=\"5xx\"} 1"))
            #expect(text.contains("ssogate_upstream_response_seconds_count 3"))
            #expect(text.contains("ssogate_upstream_failures_total{reason=\"closed\"} 1"))
            #expect(text.contains("ssogate_open_connections 2"))
        }
    }

    @Test func everyRequestGetsOneAccessLogLine() async throws {
        try await withGateway { gw, _ in
            _ = try gw.request("GET /echo?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
            _ = try gw.request("GET /_ssogate/healthz HTTP/1.1\r\nHost: h\r\n\r\n")
            try await Task.sleep(for: .milliseconds(50))
            let lines = gw.accessLogs.all
            #expect(lines.count == 2)
            #expect(lines[0].contains("path=/echo ") && lines[0].contains("status=200") && lines[0].contains("upstream_ms="))
            #expect(!lines[0].contains("q=1"))
        }
    }
}

extension RawHTTPClient {
    func roundTrip(_ raw: String) throws -> Response {
        try send(raw)
        return try readResponse()
    }
}
