/// How an identity value (NameID, email, one group) is written into a header: as is when a
/// header carries it unchanged, percent-encoded (RFC 3986 style, `%XX` of each UTF-8 byte)
/// otherwise. Encoded: `%` itself (so decoding is exact), `,` (the list separator of
/// `X-Forwarded-Groups`: `eng,hf-admins` is one group, `eng%2Chf-admins`), every byte of a
/// non-ASCII character (header values are bytes; parsers disagree on anything but ASCII),
/// and spaces at either end (HTTP parsers strip them). Control characters never get here:
/// a login carrying one is refused (`invalid_identity_value`). An upstream reads a value
/// back with any percent-decoder (`urllib.parse.unquote`, `decodeURIComponent`); a value of
/// plain ASCII without `%` and `,` is its own encoding.
enum IdentityHeaderValue {
    static func encode(_ value: String) -> String {
        let bytes = Array(value.utf8)
        func plain(_ index: Int) -> Bool {
            let b = bytes[index]
            if b == 0x20 { return index != 0 && index != bytes.count - 1 }
            return b > 0x20 && b < 0x7F && b != UInt8(ascii: "%") && b != UInt8(ascii: ",")
        }
        guard !bytes.indices.allSatisfy(plain) else { return value }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for index in bytes.indices {
            if plain(index) {
                out.append(bytes[index])
            } else {
                out += [UInt8(ascii: "%"), hex[Int(bytes[index] >> 4)], hex[Int(bytes[index] & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
