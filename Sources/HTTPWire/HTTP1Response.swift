import NIOCore
import NIOHTTP1

/// HTTP/1.x responses as bytes: a relayed upstream head (the upstream's own field bytes,
/// never decoded and encoded again, see `ResponseParser`) and the gateway's own answers.
package enum HTTP1Response {
    /// Status line, the upstream's fields, then the gateway's fields and this hop's framing
    /// and connection fields.
    package static func relayedHead(_ head: UpstreamResponseHead, framing: ResponseFraming, clientVersion: HTTPVersion,
                                    sessionCookie: String?, hsts: String?, close: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        // Written in one go (see `HeadWriter`).
        let length: String?
        switch framing {
        case .contentLength: length = String(head.contentLength ?? 0)
        // HEAD and 304 keep the length a GET would have had (RFC 9110 §8.6); 1xx/204 have none.
        case .none: length = head.status == 204 ? nil : head.contentLength.map { String($0) }
        case .chunked, .closeDelimited: length = nil
        }
        let estimate = head.statusText.readableBytes + head.fields.readableBytes + (sessionCookie?.utf8.count ?? 0) + 160
        return allocator.head(estimate: estimate) { out in
            out.put(clientVersion < .http1_1 ? "HTTP/1.0 " : "HTTP/1.1 ")
            out.put(head.statusText)
            out.put("\r\n")
            out.put(head.fields)
            if let sessionCookie { out.field("Set-Cookie", sessionCookie) }
            if let hsts { out.field("Strict-Transport-Security", hsts) }
            if let length { out.field("Content-Length", length) }
            if framing == .chunked { out.field("Transfer-Encoding", "chunked") }
            if close {
                if clientVersion >= .http1_1 { out.field("Connection", "close") }
            } else if clientVersion < .http1_1 {
                out.field("Connection", "keep-alive")
            }
            out.put("\r\n")
        }
    }

    /// An answer made here, head and body (no body for HEAD).
    package static func local(_ local: LocalResponse, method: HTTPMethod, hsts: String?, close: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: 256 + local.body.count)
        out.writeString("HTTP/1.1 \(local.status.code) \(local.status.reasonPhrase)\r\n")
        for (name, value) in local.headers { out.writeString("\(name): \(value)\r\n") }
        if let hsts { out.writeString("Strict-Transport-Security: \(hsts)\r\n") }
        out.writeString("Content-Length: \(local.body.count)\r\n")
        if close { out.writeStaticString("Connection: close\r\n") }
        out.writeStaticString("\r\n")
        if method != .HEAD { out.writeBytes(local.body) }
        return out
    }
}

/// A buffer that may wait to be written, without the unused storage of a partly filled read
/// (a slice of 8 KiB out of a 128 KiB receive buffer pins all 128 KiB while a client does
/// not read). Full reads, the streaming case, pass as they are.
package func compacted(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
    guard buffer.storageCapacity > 16 * 1024, buffer.storageCapacity > 2 * buffer.readableBytes else { return buffer }
    var copy = allocator.buffer(capacity: buffer.readableBytes)
    copy.writeImmutableBuffer(buffer)
    return copy
}
