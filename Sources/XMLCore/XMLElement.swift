#if canImport(Glibc)
import Glibc
#endif
import CLibXML2

/// An element of a parsed document. Holds the document, so the node stays valid.
public struct XMLElement: @unchecked Sendable {
    public let document: XMLDocument
    let node: xmlNodePtr

    init(document: XMLDocument, node: xmlNodePtr) {
        self.document = document
        self.node = node
    }

    public var localName: String { String(cString: node.pointee.name) }

    public var namespaceURI: String? {
        node.pointee.ns.flatMap { $0.pointee.href }.map { String(cString: $0) }
    }

    public func isNamed(_ localName: String, in namespace: String) -> Bool {
        self.localName == localName && namespaceURI == namespace
    }

    /// Element children, in order (text, comments and processing instructions skipped).
    public var children: [XMLElement] {
        var out: [XMLElement] = []
        var child = node.pointee.children
        while let c = child {
            if c.pointee.type == XML_ELEMENT_NODE { out.append(XMLElement(document: document, node: c)) }
            child = c.pointee.next
        }
        return out
    }

    public func children(named localName: String, in namespace: String) -> [XMLElement] {
        children.filter { $0.isNamed(localName, in: namespace) }
    }

    public var parent: XMLElement? {
        guard let p = node.pointee.parent, p.pointee.type == XML_ELEMENT_NODE else { return nil }
        return XMLElement(document: document, node: p)
    }

    /// An attribute without namespace (SAML's own attributes: ID, Destination, ...).
    public func attribute(_ name: String) -> String? {
        guard let value = xmlGetNoNsProp(node, name) else { return nil }
        defer { ssogate_xmlFree(value) }
        return String(cString: value)
    }

    public func attribute(_ name: String, in namespace: String) -> String? {
        guard let value = xmlGetNsProp(node, name, namespace) else { return nil }
        defer { ssogate_xmlFree(value) }
        return String(cString: value)
    }

    /// All text below this element, comments skipped and never a boundary: the text of
    /// `a<!---->b` is `ab` (the comment-truncation attack reads only `a`).
    public var textContent: String {
        guard let content = xmlNodeGetContent(node) else { return "" }
        defer { ssogate_xmlFree(content) }
        return String(cString: content)
    }

    public func isSame(as other: XMLElement) -> Bool { node == other.node }

    /// Exclusive XML Canonicalization 1.0 of this element's subtree, without the subtree of
    /// `excluding` (the enveloped signature), as xmlsec1 computes it. `inclusivePrefixes`
    /// is the Transform's InclusiveNamespaces PrefixList (Okta sends `xs`).
    public func exclusiveCanonicalization(excluding: XMLElement? = nil, withComments: Bool = false,
                                          inclusivePrefixes: [String] = []) throws(XMLError) -> [UInt8] {
        guard let buffer = xmlAllocOutputBuffer(nil) else { throw .canonicalization("out of memory") }
        var scope = C14NScope(root: node, excluded: excluding?.node)
        var prefixes: [UnsafeMutablePointer<xmlChar>?] = inclusivePrefixes.map { prefix in
            let copy = strdup(prefix)
            return UnsafeMutableRawPointer(copy)?.assumingMemoryBound(to: xmlChar.self)
        }
        prefixes.append(nil)
        defer { for p in prefixes { free(p) } }
        let result = withUnsafeMutablePointer(to: &scope) { scopePointer in
            prefixes.withUnsafeMutableBufferPointer { prefixList in
                xmlC14NExecute(document.pointer, isVisibleInScope, scopePointer,
                               Int32(XML_C14N_EXCLUSIVE_1_0.rawValue),
                               inclusivePrefixes.isEmpty ? nil : prefixList.baseAddress,
                               withComments ? 1 : 0, buffer)
            }
        }
        defer { xmlOutputBufferClose(buffer) }
        guard result >= 0 else { throw .canonicalization("exclusive canonicalization failed") }
        let size = Int(xmlOutputBufferGetSize(buffer))
        guard size > 0, let content = xmlOutputBufferGetContent(buffer) else { return [] }
        return Array(UnsafeBufferPointer(start: content, count: size))
    }
}

struct C14NScope {
    let root: xmlNodePtr
    let excluded: xmlNodePtr?
}

/// libxml2's is-visible callback: a node is output when it lies in the subtree of
/// `root` and not in that of `excluded`. Namespace nodes arrive as `xmlNs*`, whose
/// fields do not line up with `xmlNode` beyond `type`: for them, and for attributes, the
/// owning element is the `parent` argument (NOTES.md).
private func isVisibleInScope(_ userData: UnsafeMutableRawPointer?, _ node: xmlNodePtr?, _ parent: xmlNodePtr?) -> Int32 {
    guard let userData, let node else { return 0 }
    let scope = userData.assumingMemoryBound(to: C14NScope.self).pointee
    let type = node.pointee.type
    var current: xmlNodePtr? = (type == XML_NAMESPACE_DECL || type == XML_ATTRIBUTE_NODE) ? parent : node
    while let n = current {
        if let excluded = scope.excluded, n == excluded { return 0 }
        if n == scope.root { return 1 }
        current = n.pointee.parent
    }
    return 0
}
