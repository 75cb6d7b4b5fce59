import CLibXML2

/// A parsed XML document, hardened for untrusted input. Owns its `xmlDoc`.
///
/// - No network access (`XML_PARSE_NONET`), no entity substitution, no DTD loading or
///   attribute defaulting: the parse options never include NOENT, DTDLOAD, DTDATTR or
///   HUGE (NOTES.md).
/// - A document with a DOCTYPE is refused before parsing and again after (an internal or
///   external subset is never used): rule 1 of the ACS.
/// - Size and element depth are bounded.
/// - Whitespace is kept (never NOBLANKS): it is part of what a signature covers.
public final class XMLDocument: @unchecked Sendable {
    // Immutable after parsing; only read afterwards.
    let pointer: xmlDocPtr

    public static let maxBytes = 1 << 20
    public static let maxDepth = 64

    private init(pointer: xmlDocPtr) { self.pointer = pointer }

    deinit { xmlFreeDoc(pointer) }

    public static func parse(_ bytes: [UInt8]) throws(XMLError) -> XMLDocument {
        guard bytes.count <= maxBytes else { throw .tooLarge("document over \(maxBytes) bytes") }
        // Refuse a DOCTYPE before libxml2 reads any of it (billion laughs, external
        // entities); the subset check after parsing catches any spelling this misses.
        if contains(bytes, Array("<!DOCTYPE".utf8)) { throw .dtdForbidden("document has a DOCTYPE") }
        guard let context = xmlNewParserCtxt() else { throw .malformed("out of memory") }
        defer { xmlFreeParserCtxt(context) }
        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)
        let document = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.flatMap { base in
                base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    xmlCtxtReadMemory(context, $0, Int32(buffer.count), nil, "UTF-8", options)
                }
            }
        }
        guard let document else {
            let message = xmlCtxtGetLastError(context).flatMap { $0.pointee.message }.map { String(cString: $0) } ?? "not well-formed"
            throw .malformed(message.trimmingWhitespace())
        }
        let parsed = XMLDocument(pointer: document)
        guard document.pointee.intSubset == nil, document.pointee.extSubset == nil else {
            throw .dtdForbidden("document has a DTD")
        }
        guard let root = xmlDocGetRootElement(document) else { throw .malformed("no root element") }
        try checkDepth(root, depth: 1)
        return parsed
    }

    public var root: XMLElement { XMLElement(document: self, node: xmlDocGetRootElement(pointer)!) }

    /// Every element whose `ID` attribute (no namespace) equals `id`, in document order.
    /// Without a DTD libxml2 does not know SAML's ID attributes, so this walks the tree;
    /// callers require exactly one match (a duplicate ID is a wrapping attack).
    public func elements(withID id: String) -> [XMLElement] {
        var found: [XMLElement] = []
        func walk(_ node: xmlNodePtr?) {
            var current = node
            while let n = current {
                if n.pointee.type == XML_ELEMENT_NODE {
                    let element = XMLElement(document: self, node: n)
                    if element.attribute("ID") == id { found.append(element) }
                    walk(n.pointee.children)
                }
                current = n.pointee.next
            }
        }
        walk(xmlDocGetRootElement(pointer))
        return found
    }

    private static func checkDepth(_ node: xmlNodePtr, depth: Int) throws(XMLError) {
        guard depth <= maxDepth else { throw .tooDeep("elements nested deeper than \(maxDepth)") }
        var child = node.pointee.children
        while let c = child {
            if c.pointee.type == XML_ELEMENT_NODE { try checkDepth(c, depth: depth + 1) }
            child = c.pointee.next
        }
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<start + needle.count]) == needle { return true }
        }
        return false
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
