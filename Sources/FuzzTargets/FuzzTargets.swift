import CryptoCore
import Foundation
import SAML
import XMLCore
import XMLDSig

/// Entry points for coverage-guided fuzzing of the parsers that read hostile input. Each
/// must return for every input: an error is fine, a crash, hang or sanitizer report is not.
public enum FuzzTargets {
    /// A fixed trust setting: the fuzzer cannot forge a signature, but it reaches every
    /// parser and check on the way to finding out.
    static let validator: ResponseValidator = {
        XMLLibrary.initialize()
        let pem = """
        -----BEGIN CERTIFICATE-----
        MIIDCzCCAfOgAwIBAgIUBjPHvxyEYQfiw1OVe8gG5ulcqfUwDQYJKoZIhvcNAQEL
        BQAwFTETMBEGA1UEAwwKZ29sZGVuLWlkcDAeFw0yNjExMjkwNjA5MzlaFw0zNjEx
        MjYwNjA5MzlaMBUxEzARBgNVBAMMCmdvbGRlbi1pZHAwggEiMA0GCSqGSIb3DQEB
        AQUAA4IBDwAwggEKAoIBAQDVcz98xFSqZn5MdDijTeqXYqXSle3kZEHXWwBYfiKA
        3psJ+S3L6xGn5tYj5vUw3dsQyEq65evdlyMmLkJOnryZdcGjf3yPq56PN99MhT2A
        o+ysDukvJ9wqrJ46kQfcXtI849L96E/sajLiopMLKzxT/wQ1nUez5tDur+Qvp/Gk
        ZpPowVd0/rn+MmUqG8NjyQXQgwtD6ayBmd37rbhpcx0q3bRu8R7zu6EFR4kvM7b3
        s4b8HRtQ0Bv28bsiIyWk63sVu8Ayc+LsmyG+G2cRvTAfOxyt5O/Y/3EYo+WsAmSI
        6gHZpVSFNVWqvAGU40CWvI/KWolhhxeucZUKDOc/pfy1AgMBAAGjUzBRMB0GA1Ud
        DgQWBBTKT63Bj0nd4xhM3Knkna96yAnYOTAfBgNVHSMEGDAWgBTKT63Bj0nd4xhM
        3Knkna96yAnYOTAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQA8
        RhNhxmgbc7d22SeM3U4nwfZCmOxZmokmUBuXIcNZ4bBniExOa01VrLWyNreshzRB
        TP9zBeEK+1qBBPHew00ZqUF32rVM9ybAB91g8CpUxAdmcBjYA5PL4yH8PR3ye8IY
        zDD5U9pf8/2ucbp4jkOKac2df+4TLMqSlCjBGMTZjOuH+zuwlRCjPcPv5XhMb8kV
        iPGDSjxNvedbdZfaJS/UV+Jp/u1qb+LLK2J3q8v6IUuYc9T7O6/JAIleu8xuiBlB
        11toF0IAIGQzcHhN5Dr+QMC7diO9IXY7SAwem3H5UKoNdVASZTzm3GMGl4cNzB0s
        5ux677O3w/0NBEcOSHPA
        -----END CERTIFICATE-----
        """
        let certificate = try! X509Certificate.parseAll(pem: pem)[0]
        let settings = ServiceProviderSettings(
            entityID: "https://hub.example.test/organizations/acme/saml/metadata",
            acsURL: "https://hub.example.test/organizations/acme/saml/consume",
            idpEntityID: nil, trusted: [try! TrustedKey(certificate: certificate)],
            allowInsecureSHA1: true, allowIdPInitiated: true, clockSkew: 60)
        return ResponseValidator(settings: settings, replayCache: MemoryReplayCache(capacity: 1024),
                                 clock: { Date(timeIntervalSince1970: 1_767_261_660) })
    }()

    /// SAMLResponse decode and validation: the bytes as XML, and as the base64 form field.
    public static func samlResponse(_ bytes: [UInt8]) {
        _ = try? validator.validate(xml: bytes, expectedRequestID: "id-request-1")
        _ = try? validator.validate(samlResponse: String(decoding: bytes, as: UTF8.self), expectedRequestID: nil)
        _ = try? IdPMetadata.parse(bytes)
    }
}
