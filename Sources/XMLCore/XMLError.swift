/// The one error type of XMLCore: a stable code plus a human reason. Equality compares
/// the code only (docs/CODE-STYLE.md "Errors").
public struct XMLError: Error, Equatable, Sendable, CustomStringConvertible {
    private enum Code: Sendable { case dtdForbidden, malformed, tooDeep, tooLarge, tooComplex, canonicalization }
    private let code: Code
    public let reason: String

    private init(_ code: Code, _ reason: String) { self.code = code; self.reason = reason }
    public static func == (lhs: XMLError, rhs: XMLError) -> Bool { lhs.code == rhs.code }

    /// The document has a DOCTYPE: DTDs and entities are refused, never processed.
    public static let dtdForbidden = XMLError(.dtdForbidden, "")
    public static let malformed = XMLError(.malformed, "")
    public static let tooDeep = XMLError(.tooDeep, "")
    public static let tooLarge = XMLError(.tooLarge, "")
    /// Past one of `XMLLimits`' bounds on elements, attributes or namespace declarations.
    public static let tooComplex = XMLError(.tooComplex, "")
    public static let canonicalization = XMLError(.canonicalization, "")

    static func dtdForbidden(_ reason: String) -> XMLError { .init(.dtdForbidden, reason) }
    static func malformed(_ reason: String) -> XMLError { .init(.malformed, reason) }
    static func tooDeep(_ reason: String) -> XMLError { .init(.tooDeep, reason) }
    static func tooLarge(_ reason: String) -> XMLError { .init(.tooLarge, reason) }
    static func tooComplex(_ reason: String) -> XMLError { .init(.tooComplex, reason) }
    static func canonicalization(_ reason: String) -> XMLError { .init(.canonicalization, reason) }

    public var description: String { reason }
}
