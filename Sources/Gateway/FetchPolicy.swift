#if canImport(Glibc)
import Glibc
#endif
import Config
import Foundation

/// Where the console may make the gateway fetch IdP metadata for an org admin: an org
/// admin is not the operator, so the gateway must not become their way into the networks
/// it can reach. `https` to public addresses only; a development gateway (served over
/// `http`) may also fetch from loopback, over `http` or `https`. Every address a name
/// resolves to is checked (a name that also resolves inside is refused).
///
/// What stays: the HTTP client resolves the name again when it connects, so a DNS server
/// that answers differently a moment later (rebinding) is not excluded; the answer is
/// parsed as metadata and never shown, and a failed fetch says only that it failed.
enum FetchPolicy {
    static let inside = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                         "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/3",
                         "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8"].compactMap(CIDR.init)
    static let loopback = ["127.0.0.0/8", "::1/128"].compactMap(CIDR.init)

    /// Nil when `url` may be fetched; else what to tell the admin. The name is resolved on a
    /// thread of its own (getaddrinfo blocks).
    static func problem(_ url: URL, developing: Bool) async -> String? {
        guard let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            return "The metadata address must be a full https:// URL."
        }
        let addresses = await withCheckedContinuation { done in
            DispatchQueue.global().async { done.resume(returning: resolve(host)) }
        }
        guard !addresses.isEmpty else { return "The metadata address's host \(host) does not resolve." }
        let allLoopback = addresses.allSatisfy { address in loopback.contains { $0.contains(address) } }
        if developing && allLoopback { return nil }
        guard scheme == "https" else { return "The metadata address must be an https:// URL." }
        if addresses.contains(where: { address in inside.contains { $0.contains(address) } }) {
            return "The metadata address points inside the gateway's network (\(host)); give your IdP's public metadata URL, or upload the file."
        }
        return nil
    }

    /// The host's addresses (an IP literal is its own), as bytes.
    static func resolve(_ host: String) -> [[UInt8]] {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let literal = IPAddressText.parse(bare) { return [literal] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(bare, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(list) }
        var out: [[UInt8]] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            if let address = current.pointee.ai_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                        out.append(withUnsafeBytes(of: v4.pointee.sin_addr.s_addr) { Array($0) })
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                        out.append(withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) })
                    }
                default: break
                }
            }
            node = current.pointee.ai_next
        }
        return out
    }
}
