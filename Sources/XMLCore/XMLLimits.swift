/// What one document may hold before libxml2 reads it. Each bound caps a cost that grows
/// faster than the document's size: libxml2's duplicate-attribute check is quadratic in the
/// attributes of one element (27,000 attributes: 4.5 s), and exclusive C14N walks the
/// InclusiveNamespaces PrefixList and the namespaces in scope for every element it passes.
/// A SAML message from a real IdP stays far inside all of them (an Okta response: depth 8,
/// about 40 elements, at most 6 attributes on one element).
public struct XMLLimits: Sendable, Equatable {
    public var maxBytes: Int
    /// Elements nested inside one another (the root is depth 1).
    public var maxDepth: Int
    public var maxElements: Int
    /// Attributes of one element, namespace declarations included.
    public var maxAttributesPerElement: Int
    /// `xmlns`/`xmlns:p` declarations on one element.
    public var maxNamespaceDeclarationsPerElement: Int
    /// `xmlns` declarations in the whole document (Okta repeats two on every AttributeValue).
    public var maxNamespaceDeclarations: Int
    /// Declarations on one element and its ancestors together: libxml2 searches them for
    /// each prefix of the PrefixList at every element it canonicalizes.
    public var maxNamespaceDeclarationsInScope: Int

    public init(maxBytes: Int, maxDepth: Int, maxElements: Int, maxAttributesPerElement: Int,
                maxNamespaceDeclarationsPerElement: Int, maxNamespaceDeclarations: Int, maxNamespaceDeclarationsInScope: Int) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxElements = maxElements
        self.maxAttributesPerElement = maxAttributesPerElement
        self.maxNamespaceDeclarationsPerElement = maxNamespaceDeclarationsPerElement
        self.maxNamespaceDeclarations = maxNamespaceDeclarations
        self.maxNamespaceDeclarationsInScope = maxNamespaceDeclarationsInScope
    }

    /// SAML protocol messages (responses, AuthnRequests, logout messages) and signed bytes.
    public static let message = XMLLimits(maxBytes: 1 << 20, maxDepth: 32, maxElements: 16_384, maxAttributesPerElement: 32,
                                          maxNamespaceDeclarationsPerElement: 16, maxNamespaceDeclarations: 8_192,
                                          maxNamespaceDeclarationsInScope: 48)
    /// IdP metadata: fetched from a configured URL or read from a configured file; larger
    /// (several certificates, many endpoints) but no more deeply nested.
    public static let metadata = XMLLimits(maxBytes: 1 << 20, maxDepth: 32, maxElements: 65_536, maxAttributesPerElement: 64,
                                           maxNamespaceDeclarationsPerElement: 32, maxNamespaceDeclarations: 16_384,
                                           maxNamespaceDeclarationsInScope: 128)
}

/// One pass over the bytes, before libxml2 sees them: counts what `XMLLimits` bounds, and
/// refuses what XML 1.0 forbids that libxml2 lets through or reads too late: a NUL byte
/// (libxml2 stops reading there and accepts whatever came before), anything but
/// whitespace, comments and processing instructions after the root element, and a
/// DOCTYPE. It does not check well-formedness beyond what counting needs: libxml2 does.
struct XMLShapeScanner {
    let limits: XMLLimits

    func scan(_ bytes: UnsafeBufferPointer<UInt8>) throws(XMLError) {
        let n = bytes.count
        var i = 0
        var depth = 0
        var elements = 0
        var declarations = 0
        // Declarations of each open element, and their sum (what is in scope).
        var openDeclarations: [Int] = []
        var inScope = 0
        var rootClosed = false

        @inline(__always) func starts(_ literal: StaticString, at index: Int) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard index + count <= n else { return false }
            let l = literal.utf8Start
            for k in 0..<count where bytes[index + k] != l[k] { return false }
            return true
        }
        /// The index just past `literal` searched from `index`, or nil.
        func skip(past literal: StaticString, from index: Int) -> Int? {
            var j = index
            let count = literal.utf8CodeUnitCount
            let first = literal.utf8Start[0]
            while j + count <= n {
                if bytes[j] == first && starts(literal, at: j) { return j + count }
                j += 1
            }
            return nil
        }
        @inline(__always) func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

        while i < n {
            let b = bytes[i]
            if b == 0 { throw .malformed("NUL byte at offset \(i)") }
            guard b == UInt8(ascii: "<") else {
                if rootClosed && !isSpace(b) { throw .malformed("content after the root element at offset \(i)") }
                i += 1
                continue
            }
            if starts("<!--", at: i) {
                guard let end = skip(past: "-->", from: i + 4) else { throw .malformed("unterminated comment") }
                if bytes[i..<end].contains(0) { throw .malformed("NUL byte in a comment") }
                i = end
            } else if starts("<?", at: i) {
                guard let end = skip(past: "?>", from: i + 2) else { throw .malformed("unterminated processing instruction") }
                if bytes[i..<end].contains(0) { throw .malformed("NUL byte in a processing instruction") }
                i = end
            } else if starts("<![CDATA[", at: i) {
                guard depth > 0 else { throw .malformed("CDATA outside the root element") }
                guard let end = skip(past: "]]>", from: i + 9) else { throw .malformed("unterminated CDATA section") }
                if bytes[i..<end].contains(0) { throw .malformed("NUL byte in a CDATA section") }
                i = end
            } else if starts("<!", at: i) {
                throw .dtdForbidden("document has a markup declaration")
            } else if starts("</", at: i) {
                guard let end = skip(past: ">", from: i + 2) else { throw .malformed("unterminated end tag") }
                depth -= 1
                guard depth >= 0, let closed = openDeclarations.popLast() else { throw .malformed("end tag without a start tag") }
                inScope -= closed
                if depth == 0 { rootClosed = true }
                i = end
            } else {
                if rootClosed { throw .malformed("a second root element at offset \(i)") }
                elements += 1
                guard elements <= limits.maxElements else { throw .tooComplex("more than \(limits.maxElements) elements") }
                // The start tag: its name, then `name="value"` pairs; quotes may hold `>`.
                var j = i + 1
                while j < n, !isSpace(bytes[j]), bytes[j] != UInt8(ascii: ">"), bytes[j] != UInt8(ascii: "/") { j += 1 }
                var attributes = 0
                var local = 0
                var selfClosing = false
                tag: while true {
                    while j < n, isSpace(bytes[j]) { j += 1 }
                    guard j < n else { throw .malformed("unterminated start tag") }
                    switch bytes[j] {
                    case UInt8(ascii: ">"):
                        j += 1
                        break tag
                    case UInt8(ascii: "/"):
                        guard j + 1 < n, bytes[j + 1] == UInt8(ascii: ">") else { throw .malformed("stray / in a start tag") }
                        selfClosing = true
                        j += 2
                        break tag
                    default:
                        let nameStart = j
                        while j < n, !isSpace(bytes[j]), bytes[j] != UInt8(ascii: "="), bytes[j] != UInt8(ascii: ">") { j += 1 }
                        let isDeclaration = starts("xmlns", at: nameStart)
                            && (j == nameStart + 5 || bytes[nameStart + 5] == UInt8(ascii: ":"))
                        while j < n, isSpace(bytes[j]) { j += 1 }
                        guard j < n, bytes[j] == UInt8(ascii: "=") else { throw .malformed("attribute without a value") }
                        j += 1
                        while j < n, isSpace(bytes[j]) { j += 1 }
                        guard j < n, bytes[j] == UInt8(ascii: "\"") || bytes[j] == UInt8(ascii: "'") else {
                            throw .malformed("attribute value without quotes")
                        }
                        let quote = bytes[j]
                        j += 1
                        while j < n, bytes[j] != quote {
                            if bytes[j] == 0 { throw .malformed("NUL byte in an attribute value") }
                            j += 1
                        }
                        guard j < n else { throw .malformed("unterminated attribute value") }
                        j += 1
                        attributes += 1
                        guard attributes <= limits.maxAttributesPerElement else {
                            throw .tooComplex("an element with more than \(limits.maxAttributesPerElement) attributes")
                        }
                        if isDeclaration {
                            local += 1
                            declarations += 1
                            guard local <= limits.maxNamespaceDeclarationsPerElement else {
                                throw .tooComplex("an element with more than \(limits.maxNamespaceDeclarationsPerElement) namespace declarations")
                            }
                            guard declarations <= limits.maxNamespaceDeclarations else {
                                throw .tooComplex("more than \(limits.maxNamespaceDeclarations) namespace declarations")
                            }
                        }
                    }
                }
                guard inScope + local <= limits.maxNamespaceDeclarationsInScope else {
                    throw .tooComplex("more than \(limits.maxNamespaceDeclarationsInScope) namespace declarations in scope")
                }
                if selfClosing {
                    if depth == 0 { rootClosed = true }
                } else {
                    depth += 1
                    guard depth <= limits.maxDepth else { throw .tooDeep("elements nested deeper than \(limits.maxDepth)") }
                    openDeclarations.append(local)
                    inScope += local
                }
                i = j
            }
        }
    }
}
