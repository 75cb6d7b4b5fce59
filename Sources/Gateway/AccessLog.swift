#if canImport(Glibc)
import Glibc
#endif
import Access
import Config
import HTTPWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Proxy

/// Whom a request was for and the id that ties its lines together: what the access log
/// names beside the method and path. Set by the planner: the request id first, the
/// organization, subject and token once the SSO decision is made.
struct RequestLabel {
    var id: String
    /// The organization whose content or endpoint the request concerned.
    var organization: String?
    /// The member it was served for (a session's or an access token's subject).
    var subject: String?
    /// The access token's id, when a token (not a session) let the request in.
    var token: String?
    /// Its spans, when tracing is on (ended with the access line).
    var trace: RequestTrace?

    init(id: String, organization: String? = nil, subject: String? = nil, token: String? = nil) {
        self.id = id
        self.organization = organization
        self.subject = subject
        self.token = token
    }
}

extension RequestLabel {
    /// Whom the SSO decision found the request is for.
    mutating func name(_ decision: AccessDecision) {
        switch decision {
        case .forward(_, _, let claims, _, let token):
            organization = claims?.organization
            subject = claims?.subject
            self.token = token
        case .banner(let org, _), .unauthorized(let org, _, _):
            organization = org
        case .refused(let refusal):
            organization = refusal.organization
            subject = refusal.subject
        case .redirect, .forbidden, .ambiguousPath:
            break
        }
    }
}

/// One access-log record, formatted once as text or JSON. The access log is the one
/// place where the line is the message: building a `Logger.Metadata` dictionary per
/// request cost about a tenth of the proxy's throughput.
struct AccessRecord {
    var method: String
    var path: Substring
    var status: Int
    var bytes: Int
    var durationMicros: Int64
    var upstreamMicros: Int64?
    var peer: String
    var label: RequestLabel

    func line(format: GatewayConfiguration.LogFormat, timestamp: String) -> String {
        var s = ""
        s.reserveCapacity(160 + path.utf8.count)
        switch format {
        case .text:
            // Same shape as GatewayLogHandler's text lines (keys in sorted order).
            s += timestamp; s += " info ssogate.access: request bytes="; s += String(bytes)
            s += " duration_ms="; s += Self.millis(durationMicros)
            s += " method="; s += method
            if let organization = label.organization { s += " organization="; s += Self.textValue(organization[...]) }
            s += " path="; s += Self.textValue(path)
            s += " peer="; s += peer
            s += " request_id="; s += Self.textValue(label.id[...])
            s += " status="; s += String(status)
            if let subject = label.subject { s += " subject="; s += Self.textValue(subject[...]) }
            if let token = label.token { s += " token="; s += token }
            if let upstreamMicros { s += " upstream_ms="; s += Self.millis(upstreamMicros) }
        case .json:
            s += "{\"ts\":\""; s += timestamp; s += "\",\"level\":\"info\",\"logger\":\"ssogate.access\",\"msg\":\"request\""
            s += ",\"bytes\":"; s += String(bytes)
            s += ",\"duration_ms\":"; s += Self.millis(durationMicros)
            s += ",\"method\":"; s += GatewayLogHandler.jsonString(method)
            if let organization = label.organization { s += ",\"organization\":"; s += GatewayLogHandler.jsonString(organization) }
            s += ",\"path\":"; s += GatewayLogHandler.jsonString(String(path))
            s += ",\"peer\":\""; s += peer; s += "\""
            s += ",\"request_id\":"; s += GatewayLogHandler.jsonString(label.id)
            s += ",\"status\":"; s += String(status)
            if let subject = label.subject { s += ",\"subject\":"; s += GatewayLogHandler.jsonString(subject) }
            if let token = label.token { s += ",\"token\":"; s += GatewayLogHandler.jsonString(token) }
            if let upstreamMicros { s += ",\"upstream_ms\":"; s += Self.millis(upstreamMicros) }
            s += "}"
        }
        return s
    }

    /// Microseconds as milliseconds with three decimals, without Double formatting.
    static func millis(_ micros: Int64) -> String {
        let fraction = micros % 1000
        return "\(micros / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + String(fraction)
    }

    /// Paths are quoted in text logs when they hold a space, quote or `=`, as other values are.
    static func textValue(_ value: Substring) -> String {
        if value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) {
            return GatewayLogHandler.jsonString(String(value))
        }
        return String(value)
    }
}

/// Where the default access log goes: standard output, written by the event loops in
/// batches. Each loop gathers its lines without a lock (`LoopContext.appendAccessLine`) and
/// hands them here at every sweep (100 ms) or when 32 KiB have gathered; the lock is taken
/// per batch, so that two loops' batches never interleave inside a line (a pipe keeps
/// writes whole only up to 4 KiB).
public final class AccessLogSink: Sendable {
    private let lock = NIOLock()
    private let fd: Int32
    static let flushThreshold = 32 * 1024

    public init(fileDescriptor: Int32 = STDOUT_FILENO) { self.fd = fileDescriptor }

    func write(_ bytes: [UInt8]) {
        lock.withLock {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

extension GatewayShared {
    /// The one error line of an exchange answered locally because of its upstream, counted.
    func logUpstreamFailure(_ failure: UpstreamFailure, uri: String) {
        if let counted = failure.counted { metrics.upstreamFailed(counted) }
        logger.error("upstream failure", metadata: [
            "reason": "\(failure.reason)", "detail": "\(failure.detail)", "status": "\(failure.status.code)", "path": "\(pathOnly(uri))",
        ])
    }

    /// An upstream that went away after its response head was relayed, counted.
    func logUpstreamCut(uri: String) {
        metrics.upstreamFailed(.closed)
        logger.warning("upstream closed mid-response", metadata: ["path": "\(pathOnly(uri))"])
    }

    /// Counts a finished request and writes its access record (when the access log is on).
    func logAccess(loop: LoopContext, method: HTTPMethod, uri: String, status: Int, bytes: Int, start: NIODeadline,
                   upstreamNanoseconds: Int64?, peer: String?, label: RequestLabel) {
        metrics.requestFinished(status: status)
        if let organization = label.organization { loop.organizationRequests.record(organization: organization, status: status) }
        label.trace?.end(status: status, label: label, upstreamAnswered: upstreamNanoseconds != nil)
        guard loop.accessSink != nil || accessLogger != nil else { return }
        let record = AccessRecord(method: method.rawValue, path: pathOnly(uri), status: status, bytes: bytes,
                                  durationMicros: (NIODeadline.now() - start).nanoseconds / 1000,
                                  upstreamMicros: upstreamNanoseconds.map { $0 / 1000 }, peer: peer ?? "-", label: label)
        let line = record.line(format: logFormat, timestamp: loop.clock.now())
        if loop.accessSink != nil {
            loop.appendAccessLine(line)
        } else {
            accessLogger?.info("\(line)")
        }
    }
}
