import Foundation
import NIOCore
@testable import Gateway
import TestSupport
import Testing

/// `https://` upstreams (`upstream_tls`) over real sockets: a test CA made here with
/// openssl signs the upstream's certificate (IP SAN 127.0.0.1, DNS upstream.internal); the
/// gateway verifies it against `ca_file`, by address or by `server_name`; another CA is a
/// `502` with a log line that names the verification failure; a client certificate when
/// the upstream asks for one.
@Suite("TLS to upstreams", .serialized)
struct UpstreamTLSTests {
    typealias API = SettingsAPITests

    /// A CA, a server certificate it signed, a client certificate it signed, and another CA.
    struct Material {
        let folder: TemporaryFolder
        var path: String { folder.path }
        func text(_ name: String) throws -> String { try String(contentsOfFile: "\(path)/\(name)", encoding: .utf8) }
    }

    static func material() throws -> Material {
        let folder = try TemporaryFolder()
        let script = """
        set -e
        cd '\(folder.path)'
        for ca in ca other-ca; do
          openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=ssogate test $ca" \\
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -keyout $ca.key -out $ca.crt 2>/dev/null
        done
        issue() {
          openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" -keyout $1.key -out $1.csr 2>/dev/null
          printf '%s\\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature "extendedKeyUsage=$2" "$3" > $1.ext
          openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 -extfile $1.ext -out $1.crt 2>/dev/null
        }
        issue server serverAuth subjectAltName=IP:127.0.0.1,DNS:upstream.internal
        issue named serverAuth subjectAltName=DNS:upstream.internal
        issue client clientAuth subjectAltName=DNS:gateway.internal
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "openssl made the test CA")
        return Material(folder: folder)
    }

    static func start(_ m: Material, upstreamPort: Int, tls: String) async throws -> SSOFlowTests.Gateway {
        try await API.start { _ in
            """
            listen: "127.0.0.1:0"
            public_url: "https://hub.example.test"
            upstream: "https://127.0.0.1:\(upstreamPort)"
            \(tls)
            session: {secrets: ["0123456789abcdef0123456789abcdef-test"]}
            store: memory
            """
        }
    }

    static func get(_ g: SSOFlowTests.Gateway) async throws -> RawHTTPClient.Response {
        try await API.request(g, "GET /public/page HTTP/1.1\r\nHost: hub.example.test\r\n\r\n")
    }

    @Test func theUpstreamsCertificateIsVerifiedByAddressOrByName() async throws {
        let m = try Self.material()
        defer { m.folder.remove() }
        // By address: the certificate's IP SAN is the upstream's address.
        let byAddress = try await TestUpstream.start(tls: .init(certificateChainPEM: try m.text("server.crt"), keyPEM: try m.text("server.key")))
        // By name: a certificate naming upstream.internal only.
        let byName = try await TestUpstream.start(tls: .init(certificateChainPEM: try m.text("named.crt"), keyPEM: try m.text("named.key")))
        for (upstream, tls) in [(byAddress, "upstream_tls: {ca_file: \"\(m.path)/ca.crt\"}"),
                                (byName, "upstream_tls: {ca_file: \"\(m.path)/ca.crt\", server_name: upstream.internal}")] {
            let g = try await Self.start(m, upstreamPort: upstream.port, tls: tls)
            let r = try await Self.get(g)
            #expect(r.status == 200, "\(tls): \(r)")
            for _ in 0..<5 { #expect(try await Self.get(g).status == 200) }
            await SSOFlowTests().stop(g)
            // Kept connections are used again: at most one per event loop for six requests.
            #expect(upstream.requests.count == 6 && upstream.connectionCount <= System.coreCount, "\(upstream.connectionCount) handshakes")
        }
        await byAddress.stop()
        await byName.stop()
    }

    @Test func aCertificateThatDoesNotVerifyIsA502ThatSaysWhy() async throws {
        let m = try Self.material()
        defer { m.folder.remove() }
        let byAddress = try await TestUpstream.start(tls: .init(certificateChainPEM: try m.text("server.crt"), keyPEM: try m.text("server.key")))
        let byName = try await TestUpstream.start(tls: .init(certificateChainPEM: try m.text("named.crt"), keyPEM: try m.text("named.key")))
        let cases = [(byAddress, "upstream_tls: {ca_file: \"\(m.path)/other-ca.crt\"}"),                                   // another CA
                     (byAddress, ""),                                                                                    // the system's CAs
                     (byName, "upstream_tls: {ca_file: \"\(m.path)/ca.crt\", server_name: elsewhere.internal}"),           // another name
                     (byName, "upstream_tls: {ca_file: \"\(m.path)/ca.crt\"}")]                                           // no name, no IP SAN
        for (upstream, tls) in cases {
            let g = try await Self.start(m, upstreamPort: upstream.port, tls: tls)
            let r = try await Self.get(g)
            #expect(r.status == 502, "\(tls): \(r)")
            #expect(g.harness.logs.all.contains { $0.contains("upstream failure") && ($0.contains("CERTIFICATE_VERIFY_FAILED") || $0.contains("ailedToValidateHostname")) },
                    "\(tls): \(g.harness.logs.all.suffix(3))")
            await SSOFlowTests().stop(g)
        }
        #expect(byAddress.requests.isEmpty && byName.requests.isEmpty, "nothing reached an upstream whose certificate did not verify")
        await byAddress.stop()
        await byName.stop()
    }

    @Test func aClientCertificateWhenTheUpstreamAsksForOne() async throws {
        let m = try Self.material()
        defer { m.folder.remove() }
        let upstream = try await TestUpstream.start(tls: .init(certificateChainPEM: try m.text("server.crt"), keyPEM: try m.text("server.key"),
                                                                clientCAPEM: try m.text("ca.crt")))
        let without = try await Self.start(m, upstreamPort: upstream.port, tls: "upstream_tls: {ca_file: \"\(m.path)/ca.crt\"}")
        #expect(try await Self.get(without).status == 502)
        await SSOFlowTests().stop(without)
        let with = try await Self.start(m, upstreamPort: upstream.port, tls: """
            upstream_tls: {ca_file: "\(m.path)/ca.crt", client_certificate_file: "\(m.path)/client.crt", client_key_file: "\(m.path)/client.key"}
            """)
        #expect(try await Self.get(with).status == 200)
        await SSOFlowTests().stop(with)
        await upstream.stop()
    }
}
