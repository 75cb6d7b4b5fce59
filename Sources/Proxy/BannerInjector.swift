import HTTPWire
import NIOCore
import XMLCore

/// Streams an HTML body through, inserting `banner` right after the opening `<body ...>`
/// tag. A byte-at-a-time state machine after the HTML tokenizer's (WHATWG HTML §13.2.5),
/// reduced to what finding that tag needs: comments, `<!...>` and `<?...>` declarations,
/// quoted attribute values of other tags, and the text of `script`, `style`, `title`,
/// `textarea` and the other raw-text elements are skipped, so a `<body` inside any of them
/// is not the body. Nothing is buffered: bytes go out as they come, so a chunk boundary can
/// fall anywhere. A page whose body tag is not found within `maxSearchBytes` passes
/// through unchanged.
package struct BannerInjector {
    package static let maxSearchBytes = 1 << 20
    /// Elements whose content is text up to their end tag, never markup.
    private static let rawTextElements: [[UInt8]] = ["script", "style", "title", "textarea", "xmp", "iframe", "noembed",
                                                     "noframes", "noscript", "plaintext"].map { Array($0.utf8) }
    private static let maxNameBytes = 16

    private enum TagKind { case body, rawText(Int), other }

    private enum State {
        case data
        /// After `<`.
        case tagOpen
        /// After `<!`; `dashes` of `--` seen so far.
        case markupDeclaration(dashes: Int)
        /// Inside `<!-- ... -->`; `dashes` is the run of `-` just seen.
        case comment(dashes: Int)
        /// `<!...>` or `<?...>` that is not a comment: up to `>`.
        case bogus
        /// After `</`.
        case endTagOpen
        case tagName(isEnd: Bool)
        /// Attributes, up to the `>` outside quotes.
        case inTag(TagKind, quote: UInt8?)
        /// The text of a raw-text element; `matched` counts bytes of `</name` seen.
        case rawText(Int, matched: Int)
        case done
    }

    private let banner: [UInt8]
    private var state: State = .data
    /// The tag name so far (lower case, at most `maxNameBytes`; longer names match nothing).
    private var name: [UInt8] = []
    private var searched = 0
    private(set) var injected = false

    package init(banner: String) { self.banner = Array(banner.utf8) }

    /// The bytes to send for `input`, in order.
    package mutating func feed(_ input: ByteBuffer) -> [UInt8] { feed(Array(input.readableBytesView)) }

    package mutating func feed(_ input: [UInt8]) -> [UInt8] {
        if case .done = state { return input }
        for (index, byte) in input.enumerated() {
            step(byte)
            if injected {
                var out = Array(input[...index])
                out.reserveCapacity(input.count + banner.count)
                out += banner
                out += input[(index + 1)...]
                return out
            }
            if case .done = state { break }
        }
        searched += input.count
        if searched > Self.maxSearchBytes { state = .done }
        return input
    }

    /// Nothing is ever held back; kept for the callers' end-of-body step.
    package mutating func finish() -> [UInt8] {
        state = .done
        return []
    }

    private mutating func step(_ b: UInt8) {
        switch state {
        case .done:
            return
        case .data:
            if b == UInt8(ascii: "<") { state = .tagOpen }
        case .tagOpen:
            if b == UInt8(ascii: "!") {
                state = .markupDeclaration(dashes: 0)
            } else if b == UInt8(ascii: "/") {
                state = .endTagOpen
            } else if b == UInt8(ascii: "?") {
                state = .bogus
            } else if Self.isLetter(b) {
                name = [Self.lower(b)]
                state = .tagName(isEnd: false)
            } else if b != UInt8(ascii: "<") {
                state = .data
            }
        case .markupDeclaration(let dashes):
            if b == UInt8(ascii: "-") {
                state = dashes == 0 ? .markupDeclaration(dashes: 1) : .comment(dashes: 0)
            } else {
                state = b == UInt8(ascii: ">") ? .data : .bogus
            }
        case .comment(let dashes):
            if b == UInt8(ascii: "-") {
                state = .comment(dashes: min(dashes + 1, 2))
            } else if b == UInt8(ascii: ">") && dashes >= 2 {
                state = .data
            } else {
                state = .comment(dashes: 0)
            }
        case .bogus:
            if b == UInt8(ascii: ">") { state = .data }
        case .endTagOpen:
            if Self.isLetter(b) {
                name = [Self.lower(b)]
                state = .tagName(isEnd: true)
            } else {
                state = b == UInt8(ascii: ">") ? .data : .bogus
            }
        case .tagName(let isEnd):
            if Self.isSpace(b) || b == UInt8(ascii: "/") || b == UInt8(ascii: ">") {
                let kind = isEnd ? TagKind.other : kind(of: name)
                state = .inTag(kind, quote: nil)
                if b == UInt8(ascii: ">") { tagEnded(kind) }
            } else if name.count <= Self.maxNameBytes {
                name.append(Self.lower(b))
            }
        case .inTag(let kind, let quote):
            if let quote {
                if b == quote { state = .inTag(kind, quote: nil) }
            } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                state = .inTag(kind, quote: b)
            } else if b == UInt8(ascii: ">") {
                tagEnded(kind)
            }
        case .rawText(let element, let matched):
            let end = Self.rawTextElements[element]
            switch matched {
            case 0:
                if b == UInt8(ascii: "<") { state = .rawText(element, matched: 1) }
            case 1:
                state = .rawText(element, matched: b == UInt8(ascii: "/") ? 2 : b == UInt8(ascii: "<") ? 1 : 0)
            case let m where m - 2 < end.count:
                state = .rawText(element, matched: Self.lower(b) == end[m - 2] ? m + 1 : b == UInt8(ascii: "<") ? 1 : 0)
            default:
                // `</name` seen: it ends the element only when the name ends here.
                if Self.isSpace(b) || b == UInt8(ascii: "/") {
                    state = .inTag(.other, quote: nil)
                } else if b == UInt8(ascii: ">") {
                    state = .data
                } else {
                    state = .rawText(element, matched: b == UInt8(ascii: "<") ? 1 : 0)
                }
            }
        }
    }

    private func kind(of name: [UInt8]) -> TagKind {
        if name == Array("body".utf8) { return .body }
        if let element = Self.rawTextElements.firstIndex(of: name) { return .rawText(element) }
        return .other
    }

    private mutating func tagEnded(_ kind: TagKind) {
        switch kind {
        case .body:
            injected = true
            state = .done
        case .rawText(let element):
            state = .rawText(element, matched: 0)
        case .other:
            state = .data
        }
    }

    private static func isLetter(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
    private static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0C }

    /// The banner: plain, accessible markup with inline styles that reset what the page
    /// may inherit (`all: initial`), so neither side breaks the other's layout.
    package static func html(organization: String, loginURL: String) -> String {
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
