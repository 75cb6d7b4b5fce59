import Yams

/// Walks a YAML node tree strictly: every mapping must be read through `mapping(_:keys:)`,
/// which reports keys it was not told about, and every type mismatch becomes an issue at
/// the key path where it happened. Nothing here stops at the first problem.
struct YAMLReader {
    private(set) var issues: [ConfigIssue] = []

    mutating func report(_ path: String, _ message: String) {
        issues.append(ConfigIssue(path, message))
    }

    /// The entries of a mapping; unknown and duplicate keys are reported.
    mutating func mapping(_ node: Node?, at path: String, keys allowed: Set<String>) -> [String: Node]? {
        guard let node else { return nil }
        guard case .mapping(let mapping) = node else {
            report(path, path.isEmpty ? "the file must be a YAML mapping of keys" : "must be a mapping")
            return nil
        }
        var entries: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                report(path, "keys must be strings")
                continue
            }
            let keyPath = Self.join(path, key)
            // Duplicate keys never get here: the YAML composer refuses them first.
            if !allowed.contains(key) {
                report(keyPath, "unknown key")
            } else {
                entries[key] = value
            }
        }
        return entries
    }

    mutating func sequence(_ node: Node?, at path: String) -> [Node]? {
        guard let node else { return nil }
        guard case .sequence(let sequence) = node else {
            report(path, "must be a list")
            return nil
        }
        return Array(sequence)
    }

    mutating func string(_ node: Node?, at path: String) -> String? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node else {
            report(path, "must be a string")
            return nil
        }
        if scalar.tag.description == Tag.Name.null.rawValue || (scalar.style == .plain && ["", "~", "null"].contains(scalar.string)) {
            report(path, "must not be empty")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node?, at path: String) -> Bool? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node, scalar.style == .plain, ["true", "false"].contains(scalar.string) else {
            report(path, "must be true or false (unquoted, lower case)")
            return nil
        }
        return scalar.string == "true"
    }

    mutating func int(_ node: Node?, at path: String) -> Int? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            report(path, "must be a whole number")
            return nil
        }
        return value
    }

    mutating func strings(_ node: Node?, at path: String) -> [String]? {
        guard let items = sequence(node, at: path) else { return nil }
        var out: [String] = []
        for (index, item) in items.enumerated() {
            if let value = string(item, at: "\(path)[\(index)]") { out.append(value) }
        }
        return out
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }
}
