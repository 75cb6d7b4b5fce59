import Config
import CryptoCore
import Foundation
@testable import Gateway
import NIOHTTP1
import StateStore
import TestSupport
import Testing

/// The org admin's console pages over real sockets: who may open them (a one-time link, a
/// member with the admin role, nobody else), CSRF and cross-site refusals, a refused paste
/// that keeps what was pasted, and "Update and Test" leading into the test login.
@Suite("Organization console pages", .serialized)
struct ConsoleTests {
    typealias API = SettingsAPITests

    /// Follows a one-time link made as `ssogate admin-link` makes it; returns the console cookie pair.
    static func linkIn(_ g: SSOFlowTests.Gateway, organization: String = "initech") async throws -> String {
        let made = try AdminToken.make(organization: organization, now: Int64(SSOFlowTests.now.timeIntervalSince1970), lifetime: 900, prefix: "ssgl_")
        try await g.harness.server.storeForTests.storeAdminLink(made.token)
        let r = try await API.request(g, "GET /organizations/\(organization)/settings/sso/login?token=\(made.text) HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.status == 303 && r.header("location") == "/organizations/\(organization)/settings/sso")
        let cookie = try #require(r.values("set-cookie").first { $0.hasPrefix("ssogate_console=") })
        #expect(cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly") && cookie.contains("Path=/organizations/\(organization)/settings"))
        // The link works once.
        let again = try await API.request(g, "GET /organizations/\(organization)/settings/sso/login?token=\(made.text) HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(again.status == 401 && again.text.contains("no longer works"))
        return String(cookie.prefix { $0 != ";" })
    }

    static func page(_ g: SSOFlowTests.Gateway, _ path: String, cookie: String?) async throws -> RawHTTPClient.Response {
        try await API.request(g, "GET \(path) HTTP/1.1\r\nHost: hub.example.test\r\n\(cookie.map { "Cookie: \($0)\r\n" } ?? "")\r\n")
    }

    static func post(_ g: SSOFlowTests.Gateway, _ path: String, cookie: String, form: [String: String], origin: String? = nil) async throws -> RawHTTPClient.Response {
        let body = SSOFlowTests.formBody(form)
        return try await API.request(g, "POST \(path) HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n\(origin.map { "Origin: \($0)\r\n" } ?? "")"
                                         + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    static func csrf(_ page: RawHTTPClient.Response) throws -> String {
        let text = page.text
        let start = try #require(text.range(of: "name=\"ssogate-csrf\" content=\""))
        return String(text[start.upperBound...].prefix { $0 != "\"" })
    }

    @Test func nobodyIsAskedToSignInAndAMemberWithoutTheAdminRoleIsRefused() async throws {
        let g = try await API.start()
        let anonymous = try await Self.page(g, "/organizations/initech/settings/sso", cookie: nil)
        #expect(anonymous.status == 401 && anonymous.text.contains("ssogate admin-link --org initech"))
        #expect(anonymous.header("x-frame-options") == "DENY")
        // A member of acme (no role mapping there: no admin role) cannot open acme's console.
        let (_, session) = try SSOFlowTests.logIn(g)
        let member = try await Self.page(g, "/organizations/acme/settings/sso", cookie: session)
        #expect(member.status == 403 && member.text.contains("not admin"), "\(member)")
        // The application's own settings pages pass through.
        #expect(try await Self.page(g, "/organizations/initech/settings/billing", cookie: nil).status == 200)
        await SSOFlowTests().stop(g)
    }

    @Test func aMemberWithTheAdminRoleSeesAFileManagedOrganizationReadOnly() async throws {
        let g = try await SSOFlowTests.start()
        let (_, session) = try SSOFlowTests.logIn(g)      // groups engineering, hf-admins → admin
        let page = try await Self.page(g, "/organizations/acme/settings/sso", cookie: session)
        #expect(page.status == 200, "\(page)")
        #expect(page.text.contains("https://hub.example.test/organizations/acme/saml/consume"))
        #expect(page.text.contains("managed in the gateway&#39;s configuration file") || page.text.contains("managed in the gateway's configuration file"))
        #expect(!page.text.contains("ssogate-update-and-test"))
        let refused = try await Self.post(g, "/organizations/acme/settings/sso", cookie: session,
                                          form: ["csrf": try Self.csrf(page), "sign_on_url": "https://evil.example/sso"])
        #expect(refused.status == 409)
        await SSOFlowTests().stop(g)
    }

    @Test func formsNeedTheirCSRFTokenAndComeFromThisSite() async throws {
        let g = try await API.start()
        let cookie = try await Self.linkIn(g)
        let page = try await Self.page(g, "/organizations/initech/settings/sso", cookie: cookie)
        #expect(page.status == 200 && page.text.contains("64f0c2initech"))
        let form = ["sign_on_url": "https://idp.example.test/initech/sso", "certificate": try String(contentsOfFile: API.goodCertificate, encoding: .utf8)]
        #expect(try await Self.post(g, "/organizations/initech/settings/sso", cookie: cookie, form: form).status == 403)
        #expect(try await Self.post(g, "/organizations/initech/settings/sso", cookie: cookie, form: form.merging(["csrf": "forged"]) { $1 }).status == 403)
        let withToken = form.merging(["csrf": try Self.csrf(page)]) { $1 }
        #expect(try await Self.post(g, "/organizations/initech/settings/sso", cookie: cookie, form: withToken, origin: "https://evil.example").status == 403)
        // A token made for another organization's console does not work here.
        let acmeCookie = try await Self.linkIn(g, organization: "acme")
        let acmePage = try await Self.page(g, "/organizations/acme/settings/sso", cookie: acmeCookie)
        let crossed = form.merging(["csrf": try Self.csrf(acmePage)]) { $1 }
        #expect(try await Self.post(g, "/organizations/initech/settings/sso", cookie: cookie, form: crossed).status == 403)
        let saved = try await Self.post(g, "/organizations/initech/settings/sso", cookie: cookie, form: withToken, origin: "https://hub.example.test")
        #expect(saved.status == 303 && saved.header("location") == "/organizations/initech/sso?draft=1", "\(saved)")
        await SSOFlowTests().stop(g)
    }

    @Test func aRefusedPasteKeepsWhatWasPastedBesideWhatIsWrong() async throws {
        let g = try await API.start()
        let cookie = try await Self.linkIn(g)
        let page = try await Self.page(g, "/organizations/initech/settings/sso", cookie: cookie)
        let refused = try await Self.post(g, "/organizations/initech/settings/sso", cookie: cookie,
                                          form: ["csrf": try Self.csrf(page), "sign_on_url": "https://idp.example.test/typo<sso>",
                                                 "certificate": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"])
        #expect(refused.status == 422)
        #expect(refused.text.contains("Nothing was saved"))
        #expect(refused.text.contains("is not a PEM certificate"))
        #expect(refused.text.contains("https://idp.example.test/typo&lt;sso&gt;"), "the pasted URL is kept, escaped")
        #expect(refused.text.contains("not base64"))
        let settings = try await g.harness.server.storeForTests.loadSettings().settings["initech"]
        #expect(settings?.draft == nil)
        await SSOFlowTests().stop(g)
    }

    @Test func updateAndTestThenEnableFromThePages() async throws {
        let g = try await API.start()
        let cookie = try await Self.linkIn(g)
        let first = try await Self.page(g, "/organizations/initech/settings/sso", cookie: cookie)
        #expect(first.text.contains("id=\"ssogate-enable\" disabled"), "Enable is off until a test passed")
        let saved = try await Self.post(g, "/organizations/initech/settings/sso", cookie: cookie,
                                        form: ["csrf": try Self.csrf(first), "sign_on_url": "https://idp.example.test/initech/sso",
                                               "idp_entity_id": "http://www.okta.com/exk-test",
                                               "certificate": try String(contentsOfFile: API.goodCertificate, encoding: .utf8)])
        let testURL = try #require(saved.header("location"))
        let result = try await API.runTest(g, url: testURL, signer: (SSOFlowTests.fixture("rsa-2048.key"), API.goodCertificate), assertion: "c-1")
        #expect(result.status == 200 && result.text.contains("href=\"/organizations/initech/settings/sso\""), "the result links back")
        let tested = try await Self.page(g, "/organizations/initech/settings/sso", cookie: cookie)
        #expect(tested.text.contains("passed") && !tested.text.contains("id=\"ssogate-enable\" disabled"))
        let enabled = try await Self.post(g, "/organizations/initech/settings/sso/enable", cookie: cookie, form: ["csrf": try Self.csrf(tested)])
        #expect(enabled.status == 303 && enabled.header("location") == "/organizations/initech/settings/sso?done=enabled")
        let after = try await Self.page(g, "/organizations/initech/settings/sso?done=enabled", cookie: cookie)
        #expect(after.text.contains("SAML SSO is enabled"))
        // The audit page lists the steps and exports them.
        let audit = try await Self.page(g, "/organizations/initech/settings/audit", cookie: cookie)
        for action in ["admin.link", "sso.settings.update", "sso.test", "sso.enable"] { #expect(audit.text.contains(action), "\(action)") }
        let csv = try await Self.page(g, "/organizations/initech/settings/audit?action=sso.enable&format=csv", cookie: cookie)
        #expect(csv.header("content-type")?.hasPrefix("text/csv") == true && csv.text.contains("sso.enable,initech,admin-link:"))
        await SSOFlowTests().stop(g)
    }

    @Test func rolesSavedInTheConsoleApplyToTheNextLogin() async throws {
        let g = try await API.start()
        let cookie = try await Self.linkIn(g)
        // SSO set up through the pages: Update and Test, then Enable.
        let first = try await Self.page(g, "/organizations/initech/settings/sso", cookie: cookie)
        #expect(first.text.contains("hf-admins = admin"), "the file's mapping is shown")
        let saved = try await Self.post(g, "/organizations/initech/settings/sso", cookie: cookie,
                                        form: ["csrf": try Self.csrf(first), "sign_on_url": "https://idp.example.test/initech/sso",
                                               "certificate": try String(contentsOfFile: API.goodCertificate, encoding: .utf8)])
        _ = try await API.runTest(g, url: try #require(saved.header("location")), signer: (SSOFlowTests.fixture("rsa-2048.key"), API.goodCertificate),
                                  assertion: "roles-1")
        let tested = try await Self.page(g, "/organizations/initech/settings/sso", cookie: cookie)
        #expect(try await Self.post(g, "/organizations/initech/settings/sso/enable", cookie: cookie, form: ["csrf": try Self.csrf(tested)]).status == 303)

        // A row with an unknown role is refused, and what was sent stays in the form.
        let refused = try await Self.post(g, "/organizations/initech/settings/sso/roles", cookie: cookie,
                                          form: ["csrf": try Self.csrf(tested), "role_attribute": "groups",
                                                 "role_rules": "engineering = boss", "default_role": "read"])
        #expect(refused.status == 422 && refused.text.contains("engineering = boss") && refused.text.contains("is not a role"))
        let rows = try await Self.post(g, "/organizations/initech/settings/sso/roles", cookie: cookie,
                                       form: ["csrf": try Self.csrf(tested), "role_attribute": "groups",
                                              "role_rules": "engineering = contributor\nhf-admins = write", "default_role": "read"])
        #expect(rows.status == 303 && rows.header("location") == "/organizations/initech/settings/sso?done=roles")

        // The next login gets the most privileged match of the new rows: write, not admin.
        let login = try await API.logIn(g, signer: (SSOFlowTests.fixture("rsa-2048.key"), API.goodCertificate), assertion: "roles-2")
        let session = try #require(SSOFlowTests.cookie(login, "ssogate_session"))
        _ = try await API.request(g, "GET /initech/x HTTP/1.1\r\nHost: h\r\nCookie: ssogate_session=\(SSOFlowTests.value(session))\r\n\r\n")
        #expect(g.upstream.requests.last?.values("x-sso-role") == ["write"])
        let audit = try await Self.page(g, "/organizations/initech/settings/audit?action=sso.settings.update&format=csv", cookie: cookie)
        #expect(audit.text.contains(",success,role_mapping,") && audit.text.contains(",failure,invalid_role_mapping,"), "\(audit.text)")
        await SSOFlowTests().stop(g)
    }
}

/// "Fill in from IdP metadata": a file posted as multipart, or the document at a URL, read
/// into the settings form and not saved.
@Suite("Console metadata import", .serialized)
struct ConsoleMetadataTests {
    typealias API = SettingsAPITests

    static func upload(_ g: SSOFlowTests.Gateway, cookie: String, csrf: String?, file: String?, url: String = "") async throws -> RawHTTPClient.Response {
        let boundary = "----ssogateTest7MA4YWxkTrZu0gW"
        var body = ""
        if let csrf { body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n" }
        body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"metadata_file\"; filename=\"\(file == nil ? "" : "okta.xml")\"\r\n"
            + "Content-Type: text/xml\r\n\r\n\(file ?? "")\r\n"
        body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"metadata_url\"\r\n\r\n\(url)\r\n--\(boundary)--\r\n"
        return try await API.request(g, "POST /organizations/initech/settings/sso/metadata HTTP/1.1\r\nHost: hub.example.test\r\nCookie: \(cookie)\r\n"
                                         + "Content-Type: multipart/form-data; boundary=\(boundary)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    static let metadata = { try! MetadataRefreshTests.metadata(certificates: [API.goodCertificate]) }()

    @Test func aMetadataFileFillsTheFormAndSavesNothing() async throws {
        let g = try await API.start()
        let cookie = try await ConsoleTests.linkIn(g)
        let page = try await ConsoleTests.page(g, "/organizations/initech/settings/sso", cookie: cookie)
        #expect(page.text.contains("enctype=\"multipart/form-data\"") && page.text.contains("Fill in from IdP metadata"))
        let csrf = try ConsoleTests.csrf(page)

        let filled = try await Self.upload(g, cookie: cookie, csrf: csrf, file: Self.metadata)
        #expect(filled.status == 200, "\(filled)")
        #expect(filled.text.contains("value=\"https://idp.example.test/okta/sso\""), "the Sign-On URL comes from the metadata")
        #expect(filled.text.contains("value=\"http://www.okta.com/exk-test\""))
        let pem = try X509Certificate.parseAll(pem: String(contentsOfFile: API.goodCertificate, encoding: .utf8))[0]
        #expect(filled.text.contains(String(CertificateSummary.pem(pem.der).split(separator: "\n")[1])), "the certificate is in the box")
        #expect(filled.text.contains("Nothing is saved yet"))
        #expect(try await g.harness.server.storeForTests.loadSettings().settings["initech"]?.draft == nil)

        let garbage = try await Self.upload(g, cookie: cookie, csrf: csrf, file: "<html>not metadata</html>")
        #expect(garbage.status == 422 && garbage.text.contains("not IdP metadata ssogate can read"))
        #expect(!garbage.text.contains("The settings you sent were not saved"), "a metadata problem is said beside its own form")
        let nothing = try await Self.upload(g, cookie: cookie, csrf: csrf, file: nil)
        #expect(nothing.status == 422 && nothing.text.contains("Choose the metadata file"))
        // An https gateway fetches only https metadata, and never from inside its network.
        let plain = try await Self.upload(g, cookie: cookie, csrf: csrf, file: nil, url: "http://127.0.0.1:1/metadata")
        #expect(plain.status == 422 && plain.text.contains("must be an https:// URL"))
        for inside in ["https://127.0.0.1:1/metadata", "https://10.1.2.3/metadata", "https://[::1]/m", "https://169.254.169.254/latest",
                       "https://localhost/metadata"] {
            let refused = try await Self.upload(g, cookie: cookie, csrf: csrf, file: nil, url: inside)
            #expect(refused.status == 422 && refused.text.contains("points inside the gateway"), "\(inside)")
        }
        // The form needs its CSRF token like every other.
        #expect(try await Self.upload(g, cookie: cookie, csrf: nil, file: Self.metadata).status == 403)
        await SSOFlowTests().stop(g)
    }

    @Test func metadataAtAURLIsFetchedAndAFailedFetchIsNamed() async throws {
        let server = try await DocumentServer.start(body: Self.metadata)
        // A development gateway (served over http) may fetch http metadata.
        let g = try await API.start(publicURL: "http://hub.example.test")
        let cookie = try await ConsoleTests.linkIn(g)
        let csrf = try ConsoleTests.csrf(try await ConsoleTests.page(g, "/organizations/initech/settings/sso", cookie: cookie))
        let url = "http://127.0.0.1:\(server.port)/metadata"
        let filled = try await Self.upload(g, cookie: cookie, csrf: csrf, file: nil, url: url)
        #expect(filled.status == 200 && filled.text.contains("value=\"https://idp.example.test/okta/sso\""), "\(filled)")
        // Development allows loopback, not the rest of the network.
        let lan = try await Self.upload(g, cookie: cookie, csrf: csrf, file: nil, url: "http://10.1.2.3/metadata")
        #expect(lan.status == 422 && lan.text.contains("must be an https:// URL"))
        server.serve("gone", status: .notFound)
        let failed = try await Self.upload(g, cookie: cookie, csrf: csrf, file: nil, url: url)
        #expect(failed.status == 422 && failed.text.contains("could not be fetched") && failed.text.contains("HTTP 404"))
        await SSOFlowTests().stop(g)
        await server.stop()
    }
}
