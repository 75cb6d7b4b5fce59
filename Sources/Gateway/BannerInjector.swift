import NIOCore
import XMLCore

/// Streams an HTML body through, inserting `banner` right after the opening `<body ...>`
/// tag. A plain state machine over bytes (no parser, no whole-body buffering): only a
/// partly seen tag is held back, at most `maxHeldBytes`; a page whose `<body` is not found
/// within `maxSearchBytes` passes through unchanged.
struct BannerInjector {
    static let maxHeldBytes = 8 * 1024
    static let maxSearchBytes = 1 << 20

    private enum State {
        /// Looking for `<body` followed by whitespace, `/` or `>`.
        case searching
        /// Inside the body tag, up to its closing `>`; `quote` is the open attribute quote.
        case inTag(quote: UInt8?)
        case done
    }

    private let banner: [UInt8]
    private var state: State = .searching
    /// Bytes seen but not yet released (a possible `<body` prefix, or the tag so far).
    private var held: [UInt8] = []
    private var searched = 0
    private(set) var injected = false

    init(banner: String) { self.banner = Array(banner.utf8) }

    /// The bytes to send for `input`, in order.
    mutating func feed(_ input: ByteBuffer) -> [UInt8] { feed(Array(input.readableBytesView)) }

    mutating func feed(_ input: [UInt8]) -> [UInt8] {
        guard case .done = state else { return process(input) }
        return input
    }

    /// What is still held when the body ends.
    mutating func finish() -> [UInt8] {
        defer { held = []; state = .done }
        return held
    }

    private mutating func process(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + banner.count)
        let data = held + bytes
        held = []
        var i = 0
        let marker = Array("<body".utf8)
        while i < data.count {
            switch state {
            case .done:
                out += data[i...]
                return out
            case .searching:
                guard let lt = data[i...].firstIndex(of: UInt8(ascii: "<")) else {
                    out += data[i...]
                    searched += data.count - i
                    i = data.count
                    continue
                }
                out += data[i..<lt]
                searched += lt - i
                let available = data.count - lt
                if available < marker.count + 1 {
                    // Maybe `<bo` at the end of this chunk: hold it for the next one.
                    if zip(data[lt...], marker).allSatisfy({ Self.lower($0) == $1 }) {
                        held = Array(data[lt...])
                        if searched > Self.maxSearchBytes { out += held; held = []; state = .done }
                        return out
                    }
                    out.append(data[lt])
                    i = lt + 1
                    continue
                }
                let matches = zip(data[lt..<(lt + marker.count)], marker).allSatisfy { Self.lower($0) == $1 }
                let after = data[lt + marker.count]
                if matches && (after == UInt8(ascii: ">") || after == UInt8(ascii: "/") || Self.isSpace(after)) {
                    state = .inTag(quote: nil)
                    out += data[lt..<(lt + marker.count)]
                    i = lt + marker.count
                } else {
                    out.append(data[lt])
                    i = lt + 1
                }
                if case .searching = state, searched > Self.maxSearchBytes {
                    out += data[i...]
                    state = .done
                    return out
                }
            case .inTag(let quote):
                let byte = data[i]
                out.append(byte)
                i += 1
                if let quote {
                    if byte == quote { state = .inTag(quote: nil) }
                } else if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                    state = .inTag(quote: byte)
                } else if byte == UInt8(ascii: ">") {
                    out += banner
                    injected = true
                    state = .done
                }
            }
        }
        return out
    }

    private static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0C }

    /// The banner: plain, accessible markup with inline styles that reset what the page
    /// may inherit (`all: initial`), so neither side breaks the other's layout.
    static func html(organization: String, loginURL: String) -> String {
        let org = Markup.escape(organization)
        let url = Markup.escape(loginURL)
        return """
        <div id="ssogate-banner" role="region" aria-label="Single sign-on" style="all:initial;display:block;box-sizing:border-box;\
        width:100%;padding:10px 16px;background:#fff8e1;border-bottom:1px solid #e0c068;font:14px/1.4 system-ui,sans-serif;\
        color:#222">Content of <strong style="all:unset;font-weight:700">\(org)</strong> is restricted to its members. \
        <a href="\(url)" style="all:unset;color:#0b57d0;font-weight:600;text-decoration:underline;cursor:pointer">Login with SSO</a></div>
        """
    }
}
