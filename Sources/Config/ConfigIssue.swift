/// One problem in a configuration, named by its key path
/// (`organizations[1].saml.certificate: not a PEM certificate`). Indexes count from 0.
public struct ConfigIssue: Equatable, Sendable, CustomStringConvertible {
    public let keyPath: String
    public let message: String

    public init(_ keyPath: String, _ message: String) {
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String { keyPath.isEmpty ? message : "\(keyPath): \(message)" }
}

/// Thrown by the loader when any stage found problems; carries all of them.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public let issues: [ConfigIssue]
    public init(issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
