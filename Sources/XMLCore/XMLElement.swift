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

    /// Exclusive XML Canonicalization 1.0 of this element's subtree, without `excluding`
    /// (the enveloped signature, a direct child), as xmlsec1 computes it. `inclusivePrefixes`
    /// is the Transform's InclusiveNamespaces PrefixList (Okta sends `xs`).
    ///
    /// The subtree is canonicalized as a document of its own: a copy, with every namespace
    /// in scope at this element declared on the copy's root and the excluded child removed.
    /// libxml2 canonicalizes a subset by walking the whole document and processing the
    /// namespaces of every element, visible or not; so canonicalizing SignedInfo, or an
    /// Assertion, cost as much as the whole Response and everything an attacker put beside
    /// it. On the copy the cost follows the subtree alone. The output is the same: exclusive
    /// C14N reads from outside the subtree only the namespaces in scope (it inherits no
    /// `xml:` attributes), and the copy declares exactly those.
    public func exclusiveCanonicalization(excluding: XMLElement? = nil, withComments: Bool = false,
                                          inclusivePrefixes: [String] = []) throws(XMLError) -> [UInt8] {
        if let excluding, excluding.node.pointee.parent != node {
            throw .canonicalization("the excluded element is not a child of the canonicalized one")
        }
        if !inclusivePrefixes.isEmpty {
            // libxml2 searches the declarations in scope for every listed prefix at every
            // element: refuse a document that makes that search costly before it starts.
            let searches = inclusivePrefixes.count * namespaceDeclarationsInScopeSummed()
            guard searches <= Self.maxPrefixSearches else {
                throw .tooComplex("canonicalization would compare \(searches) namespace declarations")
            }
        }
        guard let copyDocument = xmlNewDoc(nil) else { throw .canonicalization("out of memory") }
        defer { xmlFreeDoc(copyDocument) }
        guard let copy = xmlDocCopyNode(node, copyDocument, 1) else { throw .canonicalization("out of memory") }
        xmlDocSetRootElement(copyDocument, copy)
        // Every namespace in scope here, nearest declaration first, one per prefix; those the
        // copy does not declare on its root already are declared there.
        if let inScope = xmlGetNsList(document.pointer, node) {
            defer { ssogate_xmlFree(inScope) }
            var index = 0
            while let ns = inScope[index] {
                index += 1
                // `xml` is bound in every document and never declared by C14N.
                if let prefix = ns.pointee.prefix, xmlStrEqual(prefix, "xml") != 0 { continue }
                var declared = copy.pointee.nsDef
                var present = false
                while let d = declared {
                    if xmlStrEqual(d.pointee.prefix, ns.pointee.prefix) != 0 { present = true; break }
                    declared = d.pointee.next
                }
                if !present && xmlNewNs(copy, ns.pointee.href, ns.pointee.prefix) == nil { throw .canonicalization("out of memory") }
            }
        }
        if let excluding {
            // The same child, found by position among the copy's children.
            var original = node.pointee.children
            var copied = copy.pointee.children
            while let o = original, let c = copied, o != excluding.node {
                original = o.pointee.next
                copied = c.pointee.next
            }
            guard let removed = copied, original == excluding.node else { throw .canonicalization("excluded element not found in the copy") }
            xmlUnlinkNode(removed)
            xmlFreeNode(removed)
        }
        return try Self.canonicalize(copyDocument, visibility: nil, scope: nil, withComments: withComments, inclusivePrefixes: inclusivePrefixes)
    }

    /// Namespace declarations compared per listed prefix, over the whole canonicalization:
    /// an Okta response compares about 300, one with 3,000 groups about 30,000; 2 million
    /// take about 8 ms here.
    static let maxPrefixSearches = 2_000_000

    /// For every element of this subtree, the declarations in scope there, summed.
    func namespaceDeclarationsInScopeSummed() -> Int {
        func declarations(_ n: xmlNodePtr) -> Int {
            var count = 0
            var ns = n.pointee.nsDef
            while let d = ns { count += 1; ns = d.pointee.next }
            return count
        }
        var above = 0
        var ancestor = node.pointee.parent
        while let a = ancestor, a.pointee.type == XML_ELEMENT_NODE { above += declarations(a); ancestor = a.pointee.parent }
        func walk(_ n: xmlNodePtr, _ inScope: Int) -> Int {
            let here = inScope + declarations(n)
            var total = here
            var child = n.pointee.children
            while let c = child {
                if c.pointee.type == XML_ELEMENT_NODE { total += walk(c, here) }
                child = c.pointee.next
            }
            return total
        }
        return walk(node, above)
    }

    /// The same canonical form computed the way libxml2 does for a document subset (a
    /// visibility callback over the whole document). Kept for the tests, which check that
    /// the copy gives identical bytes.
    func exclusiveCanonicalizationOfSubset(excluding: XMLElement? = nil, withComments: Bool = false,
                                           inclusivePrefixes: [String] = []) throws(XMLError) -> [UInt8] {
        var scope = C14NScope(root: node, excluded: excluding?.node)
        return try withUnsafeMutablePointer(to: &scope) { (pointer) throws(XMLError) in
            try Self.canonicalize(document.pointer, visibility: isVisibleInScope, scope: pointer,
                                  withComments: withComments, inclusivePrefixes: inclusivePrefixes)
        }
    }

    private static func canonicalize(_ document: xmlDocPtr, visibility: xmlC14NIsVisibleCallback?, scope: UnsafeMutablePointer<C14NScope>?,
                                     withComments: Bool, inclusivePrefixes: [String]) throws(XMLError) -> [UInt8] {
        guard let buffer = xmlAllocOutputBuffer(nil) else { throw .canonicalization("out of memory") }
        var prefixes: [UnsafeMutablePointer<xmlChar>?] = inclusivePrefixes.map { prefix in
            let copy = strdup(prefix)
            return UnsafeMutableRawPointer(copy)?.assumingMemoryBound(to: xmlChar.self)
        }
        prefixes.append(nil)
        defer { for p in prefixes { free(p) } }
        let result = prefixes.withUnsafeMutableBufferPointer { prefixList in
            xmlC14NExecute(document, visibility, scope, Int32(XML_C14N_EXCLUSIVE_1_0.rawValue),
                           inclusivePrefixes.isEmpty ? nil : prefixList.baseAddress, withComments ? 1 : 0, buffer)
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
/// owning element is the `parent` argument (docs/MEASURED.md).
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
