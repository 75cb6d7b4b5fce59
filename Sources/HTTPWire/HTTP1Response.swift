import NIOCore
import NIOHTTP1

/// HTTP/1.x responses as bytes: a relayed upstream head (the upstream's own field bytes,
/// never decoded and encoded again, see `ResponseParser`) and the gateway's own answers.
package enum HTTP1Response {
    /// Status line, the upstream's fields, then the gateway's fields and this hop's framing
    /// and connection fields.
    package static func relayedHead(_ head: UpstreamResponseHead, framing: ResponseFraming, clientVersion: HTTPVersion,
                                    sessionCookie: String?, hsts: String?, close: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: head.fields.readableBytes + head.statusText.readableBytes + 96)
        out.writeStaticString(clientVersion < .http1_1 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.writeImmutableBuffer(head.statusText)
        out.writeStaticString("\r\n")
        out.writeImmutableBuffer(head.fields)
        if let sessionCookie {
            out.writeStaticString("Set-Cookie: ")
            out.writeString(sessionCookie)
            out.writeStaticString("\r\n")
        }
        if let hsts {
            out.writeStaticString("Strict-Transport-Security: ")
            out.writeString(hsts)
            out.writeStaticString("\r\n")
        }
        switch framing {
        case .contentLength:
            out.writeStaticString("Content-Length: ")
            out.writeString(String(head.contentLength ?? 0))
            out.writeStaticString("\r\n")
        case .none:
            // HEAD and 304 keep the length a GET would have had (RFC 9110 §8.6); 1xx/204 have none.
            if let length = head.contentLength, head.status != 204 {
                out.writeStaticString("Content-Length: ")
                out.writeString(String(length))
                out.writeStaticString("\r\n")
            }
        case .chunked:
            out.writeStaticString("Transfer-Encoding: chunked\r\n")
        case .closeDelimited:
            break
        }
        if close {
            if clientVersion >= .http1_1 { out.writeStaticString("Connection: close\r\n") }
        } else if clientVersion < .http1_1 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        return out
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
