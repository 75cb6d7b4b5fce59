import CLibXML2

/// Tree changes for documents the gateway builds and signs itself (the development IdP,
/// AuthnRequests, tests). Never used on received documents, which stay as parsed.
extension XMLDocument {
    /// Parses `fragment` in the context of `parent` and inserts it as a child, right after
    /// `sibling` when given, else as the first child. Returns the inserted element.
    @discardableResult
    public func insert(fragment: String, into parent: XMLElement, after sibling: XMLElement?) throws(XMLError) -> XMLElement {
        var list: xmlNodePtr? = nil
        let bytes = Array(fragment.utf8)
        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                xmlParseInNodeContext(parent.node, $0, Int32(buffer.count), options, &list)
            }
        }
        guard status.rawValue == 0, let node = list, node.pointee.next == nil, node.pointee.type == XML_ELEMENT_NODE else {
            if let list { xmlFreeNodeList(list) }
            throw .malformed("fragment is not a single well-formed element")
        }
        let inserted: xmlNodePtr?
        if let sibling {
            inserted = xmlAddNextSibling(sibling.node, node)
        } else if let first = parent.node.pointee.children {
            inserted = xmlAddPrevSibling(first, node)
        } else {
            inserted = xmlAddChild(parent.node, node)
        }
        guard let inserted else { throw .malformed("could not insert the fragment") }
        return XMLElement(document: self, node: inserted)
    }

    /// Replaces an element's content with `text` (escaped as needed).
    public func setText(_ text: String, of element: XMLElement) {
        guard let escaped = xmlEncodeSpecialChars(pointer, text) else { return }
        defer { ssogate_xmlFree(escaped) }
        xmlNodeSetContent(element.node, escaped)
    }

    /// The document as UTF-8 bytes.
    public func serialized() -> [UInt8] {
        var memory: UnsafeMutablePointer<xmlChar>? = nil
        var size: Int32 = 0
        xmlDocDumpMemoryEnc(pointer, &memory, &size, "UTF-8")
        guard let memory, size > 0 else { return [] }
        defer { ssogate_xmlFree(memory) }
        return Array(UnsafeBufferPointer(start: memory, count: Int(size)))
    }
}
