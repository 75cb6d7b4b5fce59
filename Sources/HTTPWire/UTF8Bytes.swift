import Foundation
import NIOCore

/// Byte-level comparisons for the request path. The generic `UTF8View.elementsEqual`
/// walks an iterator a byte at a time, about a hundred instructions per byte under
/// callgrind; this compares the contiguous UTF-8 that native strings already have.
package enum UTF8Bytes {
    /// Whether `a` and `b` hold the same UTF-8 bytes.
    package static func equal(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        let fast = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
            }
        }
        if let fast, let result = fast { return result }
        return a.utf8.elementsEqual(b.utf8)
    }

    /// The UTF-8 offset of the first `byte` in `text`, found by memchr.
    package static func offset(of byte: UInt8, in text: String) -> Int? {
        let found = text.utf8.withContiguousStorageIfAvailable { bytes -> Int? in
            guard let base = bytes.baseAddress, let hit = memchr(base, Int32(byte), bytes.count) else { return nil }
            return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
        if let found { return found }
        return text.utf8.firstIndex(of: byte).map { text.utf8.distance(from: text.utf8.startIndex, to: $0) }
    }
}

/// Lays out a message head in one ByteBuffer write. Each ByteBuffer write, and each
/// `Array.append`, pays checks (runtime exclusivity, capacity, uniqueness) that cost more
/// than copying a header's bytes. The writer copies into the buffer's storage while it
/// fits and only counts past that; `ByteBufferAllocator.head` then lays it out again at
/// the counted size.
package struct HeadWriter {
    private let base: UnsafeMutableRawPointer?
    private let capacity: Int
    /// The bytes put so far, copied or not.
    package private(set) var count = 0
    /// Whether a put did not fit (the bytes from there on were only counted).
    package private(set) var overflowed = false

    fileprivate init(_ storage: UnsafeMutableRawBufferPointer) {
        base = storage.baseAddress
        capacity = storage.count
    }

    private mutating func copy(_ source: UnsafeRawPointer?, _ length: Int) {
        if count + length > capacity { overflowed = true }
        if !overflowed, length > 0, let base, let source {
            (base + count).copyMemory(from: source, byteCount: length)
        }
        count += length
    }

    package mutating func put(_ text: String) {
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { copy($0.baseAddress, $0.count) }
        if copied == nil {
            var text = text
            text.withUTF8 { copy($0.baseAddress, $0.count) }
        }
    }

    package mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
        copy(bytes.baseAddress, bytes.count)
    }

    package mutating func put(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { copy($0.baseAddress, $0.count) }
    }

    /// `name: value` and CRLF.
    package mutating func field(_ name: String, _ value: String) {
        put(name)
        put(": ")
        put(value)
        put("\r\n")
    }
}

extension ByteBufferAllocator {
    /// The bytes `layout` puts, in one buffer. Storage for `estimate` bytes is tried first;
    /// if they do not fit, `layout` runs again with the size it counted, so it must put
    /// the same bytes each time.
    package func head(estimate: Int, _ layout: (inout HeadWriter) -> Void) -> ByteBuffer {
        var size = estimate
        while true {
            var out = buffer(capacity: size)
            var needed = 0
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { storage in
                var writer = HeadWriter(storage)
                layout(&writer)
                if writer.overflowed { needed = writer.count; return 0 }
                return writer.count
            }
            guard needed > 0 else { return out }
            precondition(needed > size, "head layout changed between runs")
            size = needed
        }
    }
}
