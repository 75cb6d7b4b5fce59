import CLibXML2

/// A parsed XML document, hardened for untrusted input. Owns its `xmlDoc`.
///
/// - No network access (`XML_PARSE_NONET`), no entity substitution, no DTD loading or
///   attribute defaulting: the parse options never include NOENT, DTDLOAD, DTDATTR or
///   HUGE (docs/MEASURED.md).
/// - A document with a DOCTYPE is refused before parsing and again after (an internal or
///   external subset is never used): rule 1 of the ACS.
/// - Size, depth, elements, attributes and namespace declarations are bounded
///   (`XMLLimits`) before libxml2 reads anything.
/// - Whitespace is kept (never NOBLANKS): it is part of what a signature covers.
public final class XMLDocument: @unchecked Sendable {
    // Immutable after parsing; only read afterwards.
    let pointer: xmlDocPtr

    public static let maxBytes = XMLLimits.message.maxBytes

    private init(pointer: xmlDocPtr) { self.pointer = pointer }

    deinit { xmlFreeDoc(pointer) }

    /// Parses `bytes` once they passed `limits` (`XMLLimits.message` unless told otherwise).
    public static func parse(_ bytes: [UInt8], limits: XMLLimits = .message) throws(XMLError) -> XMLDocument {
        guard bytes.count <= limits.maxBytes else { throw .tooLarge("document over \(limits.maxBytes) bytes") }
        // Counted before libxml2 reads anything: what it would spend quadratic time on, a
        // DOCTYPE (billion laughs, external entities; any `<!` markup declaration outside
        // comments and CDATA), a NUL byte and trailing content. The parser reads the same
        // bytes as UTF-8, and the subset check after parsing stays as a second line.
        try bytes.withUnsafeBufferPointer { (buffer) throws(XMLError) in try XMLShapeScanner(limits: limits).scan(buffer) }
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
        guard xmlDocGetRootElement(document) != nil else { throw .malformed("no root element") }
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
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
