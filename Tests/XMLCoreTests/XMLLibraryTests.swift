import Testing
import XMLCore

@Suite("XMLCore")
struct XMLLibraryTests {
    @Test func theLinkedLibxml2ReportsItsVersion() {
        XMLLibrary.initialize()
        let parts = XMLLibrary.runtimeVersion.split(separator: ".")
        #expect(parts.count == 3)
        #expect(Int(parts[0]) == 2)
    }
}
