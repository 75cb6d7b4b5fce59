import Foundation
import Testing
import TestFixtures
@testable import XMLCore

/// What a document may hold before libxml2 reads it (issue: hostile input costs little).
@Suite("Document bounds, counted before parsing")
struct XMLLimitsTests {
    private func parse(_ text: String, _ limits: XMLLimits = .message) throws(XMLError) -> XMLDocument {
        XMLLibrary.initialize()
        return try XMLDocument.parse(Array(text.utf8), limits: limits)
    }

    private func element(attributes count: Int, prefix: String = "a") -> String {
        "<r" + (0..<count).map { " \(prefix)\($0)=\"v\"" }.joined() + "/>"
    }

    @Test func anAttributeFloodOnOneElementIsRefusedBeforeLibxml2CountsDuplicates() throws {
        let limit = XMLLimits.message.maxAttributesPerElement
        _ = try parse(element(attributes: limit))
        #expect(throws: XMLError.tooComplex) { try parse(element(attributes: limit + 1)) }
        // 27,000 attributes took libxml2 4.5 s; refused at the bound, whatever follows.
        #expect(throws: XMLError.tooComplex) { try parse(element(attributes: 27_000)) }
    }

    @Test func namespaceDeclarationsAreBoundedPerElementInScopeAndInAll() throws {
        let perElement = XMLLimits.message.maxNamespaceDeclarationsPerElement
        func declaring(_ n: Int, from: Int = 0) -> String { (from..<from + n).map { " xmlns:p\($0)=\"urn:\($0)\"" }.joined() }
        _ = try parse("<r\(declaring(perElement))/>")
        #expect(throws: XMLError.tooComplex) { try parse("<r\(declaring(perElement + 1))/>") }
        // In scope: 16 on each of four nested elements is 64, past the 48 allowed.
        let nested = (0..<4).map { "<e\(declaring(16, from: $0 * 16))>" }.joined() + (0..<4).map { _ in "</e>" }.joined()
        #expect(throws: XMLError.tooComplex) { try parse(nested) }
        // Siblings do not add up in scope: a thousand elements of 8 each are fine.
        _ = try parse("<r>" + String(repeating: "<e\(declaring(8))/>", count: 1_000) + "</r>")
        // ...but they do in the whole document.
        #expect(throws: XMLError.tooComplex) {
            try parse("<r>" + String(repeating: "<e\(declaring(16))/>", count: 513) + "</r>")
        }
    }

    @Test func elementsAreCounted() throws {
        let limit = XMLLimits.message.maxElements
        _ = try parse("<r>" + String(repeating: "<e/>", count: limit - 1) + "</r>")
        #expect(throws: XMLError.tooComplex) { try parse("<r>" + String(repeating: "<e/>", count: limit) + "</r>") }
    }

    @Test func depthIsCountedOnTheBytes() {
        let deep = String(repeating: "<a>", count: 20_000) + String(repeating: "</a>", count: 20_000)
        #expect(throws: XMLError.tooDeep) { try parse(deep) }
    }

    @Test func aNulByteAndAnythingAfterItIsRefused() throws {
        _ = try parse("<r>ok</r>")
        for bad in ["<r>ok</r>\0<evil/>", "<r>o\0k</r>", "<r a=\"\0\"/>", "<r><!-- \0 --></r>", "<r>ok</r>\0"] {
            #expect(throws: XMLError.malformed, "\(bad.debugDescription)") { try parse(bad) }
        }
    }

    @Test func onlyWhitespaceCommentsAndProcessingInstructionsMayFollowTheRoot() throws {
        _ = try parse("<?xml version=\"1.0\"?>\n<!-- before --><r/>\n<!-- after --><?pi x?>\n ")
        #expect(throws: XMLError.malformed) { try parse("<r/>junk") }
        #expect(throws: XMLError.malformed) { try parse("<r/><r/>") }
        #expect(throws: XMLError.malformed) { try parse("<r></r>x") }
    }

    @Test func markupInsideValuesCommentsAndCDATAIsNotCounted() throws {
        let doc = try parse("<r a=\"x>y&lt;\" b='c d=\"1\"/>'><![CDATA[<e f='1' g='2'/></r>]]><!-- <h/></r> --><?p <i/>?></r>")
        #expect(doc.root.attribute("a") == "x>y<")
        // A quoted '>' does not end a start tag early and hide attributes after it.
        let hidden = "<r z=\">\"" + (0..<40).map { " a\($0)=\"\"" }.joined() + "/>"
        #expect(throws: XMLError.tooComplex) { try parse(hidden) }
    }

    @Test func anyMarkupDeclarationIsADoctype() {
        #expect(throws: XMLError.dtdForbidden) { try parse("<!ENTITY x \"y\"><r/>") }
        #expect(throws: XMLError.dtdForbidden) { try parse("<r><!ELEMENT r ANY></r>") }
    }

    @Test func metadataGetsLargerBoundsThanMessages() throws {
        let wide = element(attributes: XMLLimits.message.maxAttributesPerElement + 1)
        #expect(throws: XMLError.tooComplex) { try parse(wide) }
        _ = try parse(wide, .metadata)
    }
}

/// The copy-based exclusive C14N must give exactly what libxml2 gives for the subset of the
/// whole document (which matched xmlsec1 byte for byte).
@Suite("Exclusive C14N of a copy equals C14N of the subset")
struct C14NCopyTests {
    static let documents: [String] = [
        // Namespaces declared above, used below, shadowed, undeclared, on attributes.
        "<r xmlns='urn:d' xmlns:a='urn:a' xmlns:b='urn:b'><a:s ID='1'><x a:k='v'/><b:y/><z xmlns=''/></a:s></r>",
        "<r xmlns:a='urn:a'><s xmlns:a='urn:other'><a:x/></s></r>",
        "<r xmlns='urn:d'><s><t xmlns='urn:e'><u xmlns=''/></t></s></r>",
        "<r xml:lang='en' xmlns:xs='urn:xs' xmlns:xsi='urn:xsi'><s><v xsi:type='xs:string'>t</v></s></r>",
        "<r xmlns:a='urn:a'><s a:attr='1' b='2' xmlns:c='urn:c'>text &amp; <!--c--> <?pi d?>\n<c:k/></s></r>",
        "<r xmlns:xml='http://www.w3.org/XML/1998/namespace' xmlns:a='urn:a'><a:s xml:space='preserve'> x </a:s></r>",
    ]

    @Test(arguments: documents) func subsetsOfHandWrittenDocuments(_ text: String) throws {
        XMLLibrary.initialize()
        let document = try XMLDocument.parse(Array(text.utf8))
        let subject = document.root.children[0]
        for prefixes in [[], ["a"], ["xs", "#default"], ["a", "b", "c", "xsi"]] {
            for comments in [false, true] {
                let copy = try subject.exclusiveCanonicalization(withComments: comments, inclusivePrefixes: prefixes)
                let subset = try subject.exclusiveCanonicalizationOfSubset(withComments: comments, inclusivePrefixes: prefixes)
                #expect(copy == subset, "\(prefixes) \(comments): \(String(decoding: copy, as: UTF8.self)) vs \(String(decoding: subset, as: UTF8.self))")
                if let child = subject.children.first {
                    let a = try subject.exclusiveCanonicalization(excluding: child, withComments: comments, inclusivePrefixes: prefixes)
                    let b = try subject.exclusiveCanonicalizationOfSubset(excluding: child, withComments: comments, inclusivePrefixes: prefixes)
                    #expect(a == b)
                }
            }
        }
    }

    /// Every element of every SAML fixture and real IdP capture that holds a Signature:
    /// SignedInfo and the element minus its Signature, both ways.
    @Test func everySignedElementOfEveryFixture() throws {
        XMLLibrary.initialize()
        let fixtures = Fixture.root
        var checked = 0
        for folder in ["saml", "real-idp"] {
            let base = fixtures.appendingPathComponent(folder)
            for name in try FileManager.default.contentsOfDirectory(atPath: base.path).sorted() {
                guard name.hasSuffix(".xml") || name.hasSuffix("_response") else { continue }
                var bytes = Array(try Data(contentsOf: base.appendingPathComponent(name)))
                if name.hasSuffix("_response"), let decoded = Data(base64Encoded: String(decoding: bytes, as: UTF8.self),
                                                                   options: .ignoreUnknownCharacters) { bytes = Array(decoded) }
                guard let document = try? XMLDocument.parse(bytes) else { continue }
                var stack = [document.root]
                while let element = stack.popLast() {
                    stack += element.children
                    guard element.localName == "Signature", let owner = element.parent,
                          let signedInfo = element.children.first else { continue }
                    for prefixes in [[], ["xs"], ["xs", "xsi", "saml2"]] {
                        #expect(try signedInfo.exclusiveCanonicalization(inclusivePrefixes: prefixes)
                            == signedInfo.exclusiveCanonicalizationOfSubset(inclusivePrefixes: prefixes), "\(name) SignedInfo")
                        #expect(try owner.exclusiveCanonicalization(excluding: element, inclusivePrefixes: prefixes)
                            == owner.exclusiveCanonicalizationOfSubset(excluding: element, inclusivePrefixes: prefixes), "\(name) \(owner.localName)")
                    }
                    checked += 1
                }
            }
        }
        #expect(checked > 30)
    }

    @Test func aPrefixListThatWouldMakeTheSearchCostlyIsRefused() throws {
        XMLLibrary.initialize()
        let declarations = (0..<16).map { " xmlns:p\($0)=\"urn:\($0)\"" }.joined()
        let text = "<r\(declarations)><s\(declarations.replacingOccurrences(of: "xmlns:p", with: "xmlns:q"))>"
            + String(repeating: "<e/>", count: 8_000) + "</s></r>"
        let document = try XMLDocument.parse(Array(text.utf8))
        let eight = (0..<8).map { "p\($0)" }
        // 8,001 elements with 32 declarations in scope, searched for 8 prefixes: over 2 million.
        #expect(throws: XMLError.tooComplex) { try document.root.exclusiveCanonicalization(inclusivePrefixes: eight) }
        _ = try document.root.exclusiveCanonicalization(inclusivePrefixes: ["p0"])
        _ = try document.root.exclusiveCanonicalization()
    }
}
