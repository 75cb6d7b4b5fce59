import Testing
import XMLCore

@Suite("Hardened parsing")
struct XMLParsingTests {
    private func parse(_ text: String) throws(XMLError) -> XMLDocument {
        XMLLibrary.initialize()
        return try XMLDocument.parse(Array(text.utf8))
    }

    @Test func aDocumentWithInternalEntitiesIsRefusedNeverExpanded() {
        let laughs = """
        <?xml version="1.0"?>
        <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
        <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
        <lolz>&lol3;</lolz>
        """
        #expect(throws: XMLError.dtdForbidden) { try parse(laughs) }
    }

    @Test func anExternalEntityIsRefused() {
        #expect(throws: XMLError.dtdForbidden) {
            try parse("<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>")
        }
    }

    @Test func evenAHarmlessDoctypeIsRefused() {
        #expect(throws: XMLError.dtdForbidden) { try parse("<!DOCTYPE r><r/>") }
    }

    @Test func anUndeclaredEntityIsMalformed() {
        #expect(throws: XMLError.malformed) { try parse("<r>&x;</r>") }
    }

    @Test func malformedDocumentsAreRefused() {
        #expect(throws: XMLError.malformed) { try parse("<r><a></r>") }
        #expect(throws: XMLError.malformed) { try parse("not xml") }
        #expect(throws: XMLError.malformed) { try parse("") }
    }

    @Test func nestingIsBounded() throws {
        let limit = XMLLimits.message.maxDepth
        let deep = String(repeating: "<a>", count: limit + 1) + String(repeating: "</a>", count: limit + 1)
        #expect(throws: XMLError.tooDeep) { try parse(deep) }
        let ok = String(repeating: "<a>", count: limit) + String(repeating: "</a>", count: limit)
        _ = try parse(ok)
    }

    @Test func sizeIsBounded() {
        #expect(throws: XMLError.tooLarge) { try parse("<a>" + String(repeating: "x", count: XMLDocument.maxBytes) + "</a>") }
    }

    @Test func aCommentNeverTruncatesText() throws {
        let doc = try parse("<r><n>alice@example.test<!---->.evil.test</n></r>")
        #expect(doc.root.children[0].textContent == "alice@example.test.evil.test")
    }

    @Test func lookupIsNamespaceAware() throws {
        let doc = try parse("<r xmlns='urn:a' xmlns:b='urn:b'><b:x ID='1'/><x ID='2'/></r>")
        #expect(doc.root.children(named: "x", in: "urn:a").map { $0.attribute("ID") } == ["2"])
        #expect(doc.root.children(named: "x", in: "urn:b").map { $0.attribute("ID") } == ["1"])
    }

    @Test func everyElementWithAnIDIsFoundSoDuplicatesShow() throws {
        let doc = try parse("<r><a ID='dup'/><b><c ID='dup'/></b><d ID='other'/></r>")
        #expect(doc.elements(withID: "dup").map(\.localName) == ["a", "c"])
    }
}

@Suite("Exclusive canonicalization")
struct ExclusiveC14NTests {
    private func c14n(_ text: String, path: [Int], excluding: [Int]? = nil, comments: Bool = false, prefixes: [String] = []) throws -> String {
        XMLLibrary.initialize()
        let doc = try XMLDocument.parse(Array(text.utf8))
        func find(_ path: [Int]) -> XMLElement { path.reduce(doc.root) { $0.children[$1] } }
        let bytes = try find(path).exclusiveCanonicalization(excluding: excluding.map(find), withComments: comments, inclusivePrefixes: prefixes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func onlyVisiblyUsedNamespacesAreOutput() throws {
        let out = try c14n("<root xmlns:a='urn:a' xmlns:b='urn:b'><a:child z='2' attr=\"1\">t</a:child></root>", path: [0])
        #expect(out == #"<a:child xmlns:a="urn:a" attr="1" z="2">t</a:child>"#)
    }

    @Test func anInclusivePrefixIsOutputEvenWhenUnused() throws {
        let out = try c14n("<root xmlns:a='urn:a' xmlns:xs='urn:xs'><a:child>t</a:child></root>", path: [0], prefixes: ["xs"])
        #expect(out == #"<a:child xmlns:a="urn:a" xmlns:xs="urn:xs">t</a:child>"#)
    }

    @Test func theExcludedSubtreeIsLeftOutAndWhitespaceKept() throws {
        let out = try c14n("<r><s ID='x'>\n  <sig><v>1</v></sig>\n  <k>v</k>\n</s></r>", path: [0], excluding: [0, 0])
        #expect(out == "<s ID=\"x\">\n  \n  <k>v</k>\n</s>")
    }

    @Test func commentsAreDroppedUnlessAsked() throws {
        let doc = "<r><n>a<!--c-->b</n></r>"
        #expect(try c14n(doc, path: [0]) == "<n>ab</n>")
        #expect(try c14n(doc, path: [0], comments: true) == "<n>a<!--c-->b</n>")
    }

    @Test func emptyElementsAndEntitiesAreNormalised() throws {
        #expect(try c14n("<r><e a='&lt;&quot;'/></r>", path: [0]) == #"<e a="&lt;&quot;"></e>"#)
    }
}
