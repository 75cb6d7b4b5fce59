/// Base64 (RFC 4648) decoded from bytes, without Foundation: on Linux, Foundation's
/// decoder and any `String` filtering before it go through UTF-16 bridging, which made the
/// whitespace filter alone a quarter of the cost of validating a 256 KiB SAMLResponse.
public enum Base64 {
    public enum Alphabet: Sendable {
        /// `+` and `/`; padding required (SAML fields, XML-DSig values).
        case standard
        /// `-` and `_`; padding optional (cookies).
        case url
    }

    private static let invalid: UInt8 = 0xFF
    private static let skip: UInt8 = 0xFE

    private static func table(_ alphabet: Alphabet, skippingWhitespace: Bool) -> [UInt8] {
        var table = [UInt8](repeating: invalid, count: 256)
        for (index, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8.enumerated() {
            table[Int(byte)] = UInt8(index)
        }
        table[Int(alphabet == .standard ? UInt8(ascii: "+") : UInt8(ascii: "-"))] = 62
        table[Int(alphabet == .standard ? UInt8(ascii: "/") : UInt8(ascii: "_"))] = 63
        if skippingWhitespace {
            for byte in [0x20, 0x09, 0x0A, 0x0D] { table[byte] = skip }
        }
        return table
    }

    private static let tables: [[UInt8]] = [
        table(.standard, skippingWhitespace: false), table(.standard, skippingWhitespace: true),
        table(.url, skippingWhitespace: false), table(.url, skippingWhitespace: true),
    ]

    /// `bytes` in base64 of `alphabet`: with `=` padding for `.standard`, without for `.url`
    /// (cookie values, where `=` would need quoting).
    public static func encode(_ bytes: [UInt8], alphabet: Alphabet = .standard) -> String {
        let symbols: StaticString = alphabet == .standard
            ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        let padded = alphabet == .standard
        let length = padded ? (bytes.count + 2) / 3 * 4 : (bytes.count * 4 + 2) / 3
        return String(unsafeUninitializedCapacity: length) { out in
            let table = symbols.utf8Start
            var o = 0
            var i = 0
            while i + 3 <= bytes.count {
                let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                out[o] = table[Int(n >> 18)]; out[o + 1] = table[Int(n >> 12 & 63)]
                out[o + 2] = table[Int(n >> 6 & 63)]; out[o + 3] = table[Int(n & 63)]
                o += 4
                i += 3
            }
            let rest = bytes.count - i
            if rest > 0 {
                let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
                out[o] = table[Int(n >> 18)]; out[o + 1] = table[Int(n >> 12 & 63)]
                o += 2
                if rest == 2 { out[o] = table[Int(n >> 6 & 63)]; o += 1 }
                if padded {
                    for _ in rest..<3 { out[o] = UInt8(ascii: "="); o += 1 }
                }
            }
            return o
        }
    }

    /// The decoded bytes, or nil for anything that is not base64 of `alphabet`. With
    /// `skippingXMLWhitespace`, space, tab, CR and LF are ignored wherever they occur (IdPs
    /// wrap SignatureValue and certificates at 64 or 76 columns).
    public static func decode(_ text: String, alphabet: Alphabet = .standard, skippingXMLWhitespace: Bool = false) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode($0, alphabet: alphabet, skippingXMLWhitespace: skippingXMLWhitespace) }
    }

    public static func decode(_ bytes: [UInt8], alphabet: Alphabet = .standard, skippingXMLWhitespace: Bool = false) -> [UInt8]? {
        bytes.withUnsafeBufferPointer { decode($0, alphabet: alphabet, skippingXMLWhitespace: skippingXMLWhitespace) }
    }

    public static func decode(_ input: UnsafeBufferPointer<UInt8>, alphabet: Alphabet = .standard,
                              skippingXMLWhitespace: Bool = false) -> [UInt8]? {
        let table = tables[(alphabet == .url ? 2 : 0) + (skippingXMLWhitespace ? 1 : 0)]
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3 + 3)
        var accumulator: UInt32 = 0
        var pending = 0
        var padding = 0
        for byte in input {
            let value = table[Int(byte)]
            if value == skip { continue }
            if byte == UInt8(ascii: "=") {
                padding += 1
                guard padding <= 2 else { return nil }
                continue
            }
            // Nothing but padding (and whitespace) may follow padding.
            guard value != invalid, padding == 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            pending += 1
            if pending == 4 {
                out.append(UInt8(truncatingIfNeeded: accumulator >> 16))
                out.append(UInt8(truncatingIfNeeded: accumulator >> 8))
                out.append(UInt8(truncatingIfNeeded: accumulator))
                accumulator = 0
                pending = 0
            }
        }
        switch (pending, padding) {
        case (0, 0): break
        case (2, _):
            guard padding == 2 || (alphabet == .url && padding == 0) else { return nil }
            out.append(UInt8(truncatingIfNeeded: accumulator >> 4))
        case (3, _):
            guard padding == 1 || (alphabet == .url && padding == 0) else { return nil }
            out.append(UInt8(truncatingIfNeeded: accumulator >> 10))
            out.append(UInt8(truncatingIfNeeded: accumulator >> 2))
        default:
            return nil
        }
        return out
    }
}
