import NIOCore

/// Chunked transfer coding on the wire (RFC 9112 §7.1).
package enum ChunkFraming {
    package static let crlf = ByteBuffer(staticString: "\r\n")
    package static let last = ByteBuffer(staticString: "0\r\n\r\n")

    package static func header(_ size: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: 18)
        out.writeString(String(size, radix: 16))
        out.writeStaticString("\r\n")
        return out
    }
}
