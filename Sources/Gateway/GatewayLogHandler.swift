#if canImport(Glibc)
import Glibc
#endif
import Config
import Foundation
import Logging

/// Writes one line per log record to standard output, as `key=value` text or as JSON
/// (`log_format`). Messages are constant strings; what varies is metadata (docs/CODE-STYLE.md).
public struct GatewayLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let json: Bool

    public init(label: String, format: GatewayConfiguration.LogFormat, level: Logger.Level) {
        self.label = label
        self.json = format == .json
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let line = json ? Self.jsonLine(event, all, label) : Self.textLine(event, all, label)
        // One write(2) per record: a line reaches a pipe or file whole (atomic under
        // PIPE_BUF on pipes) and nothing sits in a stdio buffer when the process dies.
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            offset += n
        }
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        let millis = now.tv_nsec / 1_000_000
        func pad(_ v: Int32, _ width: Int = 2) -> String {
            let s = String(v); return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(millis), 3))Z"
    }

    static func textLine(_ event: LogEvent, _ metadata: Logger.Metadata, _ label: String) -> String {
        var line = "\(timestamp()) \(event.level) \(label): \(event.message)"
        for key in metadata.keys.sorted() {
            let value = "\(metadata[key]!)"
            let needsQuotes = value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" })
            line += " \(key)=" + (needsQuotes ? jsonString(value) : value)
        }
        return line + "\n"
    }

    static func jsonLine(_ event: LogEvent, _ metadata: Logger.Metadata, _ label: String) -> String {
        var line = "{\"ts\":\"\(timestamp())\",\"level\":\"\(event.level)\",\"logger\":\(jsonString(label)),\"msg\":\(jsonString("\(event.message)"))"
        for key in metadata.keys.sorted() {
            line += ",\(jsonString(key)):\(jsonValue(metadata[key]!))"
        }
        return line + "}\n"
    }

    private static func jsonValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): return jsonString(s)
        case .stringConvertible(let c):
            if let n = c as? any BinaryInteger { return "\(n)" }
            if let d = c as? Double, d.isFinite { return "\(d)" }
            return jsonString(c.description)
        case .array(let items): return "[" + items.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let dict):
            return "{" + dict.keys.sorted().map { "\(jsonString($0)):\(jsonValue(dict[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension Logger.Level {
    public init?(configName: String) {
        self.init(rawValue: configName)
    }
}
