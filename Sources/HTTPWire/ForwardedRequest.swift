import Foundation
import NIOHTTP1

/// The request an ingress asks the forward-auth endpoint about (docs/CONTRACT.md "Forward-auth"),
/// read from how each ingress describes it:
/// - Traefik ForwardAuth and Caddy `forward_auth`: `X-Forwarded-Method`, `-Proto`, `-Host`,
///   `-Uri` on a `GET` of the endpoint.
/// - nginx `auth_request` (a `GET` subrequest): `X-Original-URL` (and `X-Original-Method`),
///   as the documented snippet sets them.
/// - Envoy `ext_authz` (HTTP service): the original method, and the original path after
///   the endpoint's path (`path_prefix: /_ssogate/auth`).
/// The cookies, `Authorization` and `Accept` are the client's, which every ingress passes on.
package struct ForwardedRequest: Sendable {
    /// The described request, as the gateway's own proxy would have received it; its target
    /// still has to pass `RequestTarget.normalise`.
    package let head: HTTPRequestHead
    /// The ingress can relay only a `2xx`, `401` or `403` (nginx `auth_request`): a login
    /// redirect is then a `401` whose `Location` the snippet follows.
    package let onlyStatusCodes: Bool

    package enum Problem: String, Error {
        case noTarget = "forward-auth request without X-Forwarded-Uri, X-Original-URL or a path after /_ssogate/auth"
        case badTarget = "X-Original-URL is not a URL or a path"
        case badMethod = "the described method is not a method"
    }

    /// Fields that describe the request to the endpoint; never part of the described request.
    static let describing: Set<String> = ["x-forwarded-method", "x-forwarded-uri", "x-original-url", "x-original-method", "x-original-uri"]

    /// - Parameters:
    ///   - head: the request to the endpoint (`/_ssogate/auth` or below it).
    ///   - endpoint: the endpoint's path.
    package static func read(_ head: HTTPRequestHead, endpoint: String) -> Result<ForwardedRequest, Problem> {
        let fields = head.headers
        var nginx = false
        var target: String
        var host = fields.first(name: "x-forwarded-host")
        if let uri = fields.first(name: "x-forwarded-uri") {
            target = uri
        } else if let original = fields.first(name: "x-original-url") ?? fields.first(name: "x-original-uri") {
            nginx = true
            guard let (authority, path) = split(original) else { return .failure(.badTarget) }
            target = path
            if host == nil { host = authority }
        } else {
            // Envoy: the original path follows the endpoint's.
            let rest = head.uri.dropFirst(endpoint.count)
            guard rest.hasPrefix("/") else { return .failure(.noTarget) }
            target = String(rest)
        }
        if target.isEmpty { target = "/" }
        let methodName = fields.first(name: "x-forwarded-method") ?? fields.first(name: "x-original-method")
        let method: HTTPMethod
        if let methodName {
            guard !methodName.isEmpty, methodName.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A || $0 == UInt8(ascii: "-") }) else {
                return .failure(.badMethod)
            }
            method = HTTPMethod(rawValue: methodName)
        } else {
            method = head.method
        }
        var described = HTTPHeaders()
        for (name, value) in fields where !describing.contains(name.lowercased()) && name.lowercased() != "host" {
            described.add(name: name, value: value)
        }
        if let host = host ?? fields.first(name: "host") { described.replaceOrAdd(name: "Host", value: host) }
        return .success(ForwardedRequest(head: HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: described),
                                         onlyStatusCodes: nginx))
    }

    /// `https://host/path?q` → (`host`, `/path?q`); a bare `/path?q` → (nil, itself).
    static func split(_ url: String) -> (String?, String)? {
        if url.hasPrefix("/") { return (nil, url) }
        guard let scheme = url.range(of: "://") else { return nil }
        let rest = url[scheme.upperBound...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        guard !authority.isEmpty else { return nil }
        return (authority, slash == rest.endIndex ? "/" : String(rest[slash...]))
    }
}
