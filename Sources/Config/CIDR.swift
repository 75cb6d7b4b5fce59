import Foundation

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `::1/128`; a bare address means a single host).
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    /// Network address, 4 or 16 bytes, host bits cleared.
    public let network: [UInt8]
    public let prefixLength: Int
    public let description: String
    /// False when the text had bits set past the prefix (`10.0.0.1/8`), usually a typo.
    public let hostBitsWereZero: Bool

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddressText.parse(String(parts[0])) else { return nil }
        let maxPrefix = address.count * 8
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...maxPrefix).contains(p), parts[1].allSatisfy(\.isNumber) else { return nil }
            prefix = p
        }
        network = Self.mask(address, prefix)
        hostBitsWereZero = network == address
        prefixLength = prefix
        description = text
    }

    /// The network address as text (dotted quad or grouped hex).
    public var networkText: String {
        if network.count == 4 { return network.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(network[$0]) << 8 | UInt16(network[$0 + 1]), radix: 16) }.joined(separator: ":")
    }

    /// Whether the 4- or 16-byte address lies in this network. IPv4-mapped IPv6 addresses
    /// (`::ffff:a.b.c.d`) count as IPv4.
    public func contains(_ address: [UInt8]) -> Bool {
        var candidate = address
        if candidate.count == 16, network.count == 4, candidate[0..<10].allSatisfy({ $0 == 0 }),
           candidate[10] == 0xff, candidate[11] == 0xff {
            candidate = Array(candidate[12..<16])
        }
        guard candidate.count == network.count else { return false }
        return Self.mask(candidate, prefixLength) == network
    }

    private static func mask(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bitsHere = max(0, min(8, prefix - index * 8))
            return bitsHere == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
    }
}

/// Textual IP addresses to bytes, without touching the resolver.
public enum IPAddressText {
    public static func parse(_ text: String) -> [UInt8]? {
        if text.contains(":") { return parseIPv6(text) }
        return parseIPv4(text)
    }

    static func parseIPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isNumber), let v = UInt8(part) else { return nil }
            out.append(v)
        }
        return out
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        var body = Substring(text)
        var tail: [UInt8] = []
        // An embedded IPv4 suffix (::ffff:1.2.3.4).
        if let lastColon = body.lastIndex(of: ":"), body[body.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(String(body[body.index(after: lastColon)...])) else { return nil }
            tail = v4
            body = body[...lastColon]
            if body.hasSuffix(":") && !body.hasSuffix("::") { body = body.dropLast() }
        }
        let halves = body.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        let rest = halves.count == 2 ? groups(halves[1]) : []
        guard let rest else { return nil }
        let wanted = (16 - tail.count) / 2
        var all: [UInt16]
        if halves.count == 2 {
            guard head.count + rest.count < wanted else { return nil }
            all = head + Array(repeating: 0, count: wanted - head.count - rest.count) + rest
        } else {
            guard head.count == wanted else { return nil }
            all = head
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] } + tail
    }
}
