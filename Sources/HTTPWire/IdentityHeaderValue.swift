/// How an identity value (NameID, email, one group) is written into a header: as is when a
/// header carries it unchanged, percent-encoded (RFC 3986 style, `%XX` of each UTF-8 byte)
/// otherwise. Encoded: `%` itself (so decoding is exact), `,` (the list separator of
/// `X-Forwarded-Groups`: `eng,hf-admins` is one group, `eng%2Chf-admins`), every byte of a
/// non-ASCII character (header values are bytes; parsers disagree on anything but ASCII),
/// and spaces at either end (HTTP parsers strip them). Control characters never get here:
/// a login carrying one is refused (`invalid_identity_value`). An upstream reads a value
/// back with any percent-decoder (`urllib.parse.unquote`, `decodeURIComponent`); a value of
/// plain ASCII without `%` and `,` is its own encoding.
package enum IdentityHeaderValue {
    /// This runs for every identity value of every proxied request: the common case, a
    /// value that is its own encoding, is answered from the bytes without allocating.
    package static func encode(_ value: String) -> String {
        let utf8 = value.utf8
        let last = utf8.count - 1
        @inline(__always) func plain(_ b: UInt8, at index: Int) -> Bool {
            if b == 0x20 { return index != 0 && index != last }
            return b > 0x20 && b < 0x7F && b != UInt8(ascii: "%") && b != UInt8(ascii: ",")
        }
        var index = 0
        var allPlain = true
        for b in utf8 {
            if !plain(b, at: index) { allPlain = false; break }
            index += 1
        }
        if allPlain { return value }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count * 2)
        for (index, b) in utf8.enumerated() {
            if plain(b, at: index) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
