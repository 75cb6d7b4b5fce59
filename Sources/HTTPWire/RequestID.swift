import CryptoCore

/// Request ids: what ties a request's access-log line, its login or refusal line, its audit
/// event, its page and the upstream's own logs (`X-Request-Id`) together.
///
/// One source per event loop: a random 64-bit start and key, then a counter mixed by
/// splitmix64's finalizer, a bijection, so a loop never repeats an id, and two loops or two
/// replicas share one only by a 64-bit coincidence. No lock, no system call per request.
/// Ids are labels, not secrets: nothing is granted on knowing one.
package struct RequestIDSource {
    private var counter: UInt64
    private let key: UInt64

    package init() {
        let seed = (try? SecureRandom().bytes(16)) ?? []
        var a: UInt64 = 0, b: UInt64 = 0
        for (i, byte) in seed.enumerated() {
            if i < 8 { a = a << 8 | UInt64(byte) } else { b = b << 8 | UInt64(byte) }
        }
        counter = a
        key = b
    }

    /// The next id: 16 lowercase hex digits.
    package mutating func next() -> String { Self.hex(nextValue()) }

    /// The next value of the sequence, as a number (the tracing's sampling draw).
    package mutating func nextValue() -> UInt64 {
        counter &+= 0x9E37_79B9_7F4A_7C15
        var z = counter ^ key
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { out in
            let digits: StaticString = "0123456789abcdef"
            for i in 0..<16 {
                out[i] = digits.utf8Start[Int((value >> UInt64(60 - 4 * i)) & 0xF)]
            }
            return 16
        }
    }

    /// Whether an id a trusted proxy sent is used as it is: 1 to 128 visible ASCII
    /// characters without `"` or `\` (it goes into log lines, JSON and pages unquoted in
    /// spirit). Anything else is replaced by one made here.
    package static func accepts(_ value: String) -> Bool {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        return bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }
}
