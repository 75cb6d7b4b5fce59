import CBrotli
import CZlib

/// HTTP content codings the gateway can undo and redo while streaming (RFC 9110 §8.4.1):
/// the banner goes into a compressed page without holding the page.
public enum ContentCoding: String, Sendable, CaseIterable {
    case gzip, deflate, br

    public init?(header: String) {
        switch String(header.lowercased().filter { $0 != " " && $0 != "\t" }) {
        case "gzip", "x-gzip": self = .gzip
        case "deflate": self = .deflate
        case "br": self = .br
        default: return nil
        }
    }
}

public struct CompressionError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// Decodes a content-coded stream piece by piece. Owns its zlib or Brotli state.
public final class StreamDecoder {
    private let coding: ContentCoding
    private var zlib = z_stream()
    private var brotli: OpaquePointer?

    public init(_ coding: ContentCoding) throws {
        self.coding = coding
        switch coding {
        case .gzip, .deflate:
            // 15 window bits; +16 for the gzip wrapper, +32 to detect zlib or gzip for
            // "deflate" (which in HTTP means the zlib format).
            let bits: Int32 = coding == .gzip ? 15 + 16 : 15 + 32
            guard inflateInit2_(&zlib, bits, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw CompressionError(description: "inflateInit failed")
            }
        case .br:
            guard let state = BrotliDecoderCreateInstance(nil, nil, nil) else { throw CompressionError(description: "Brotli decoder failed") }
            brotli = state
        }
    }

    deinit {
        if coding == .br { BrotliDecoderDestroyInstance(brotli) } else { inflateEnd(&zlib) }
    }

    /// Output per call is bounded by `limit`: a few KiB of deflate or Brotli can expand a
    /// thousandfold (a decompression bomb), and the caller streams, so it never needs more.
    public func decode(_ input: [UInt8], limit: Int = 8 << 20) throws -> [UInt8] {
        let output = coding == .br ? try brotliDecode(input, limit: limit) : try zlibDecode(input, limit: limit)
        return output
    }

    private func zlibDecode(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        var output: [UInt8] = []
        var input = input
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        try input.withUnsafeMutableBufferPointer { inBuffer in
            zlib.next_in = inBuffer.baseAddress
            zlib.avail_in = UInt32(inBuffer.count)
            repeat {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    zlib.next_out = out.baseAddress
                    zlib.avail_out = UInt32(out.count)
                    let status = inflate(&zlib, Z_NO_FLUSH)
                    return (status, out.count - Int(zlib.avail_out))
                }
                output += chunk[0..<produced]
                guard output.count <= limit else { throw CompressionError(description: "\(coding.rawValue) expands past \(limit) bytes per piece") }
                if status == Z_STREAM_END { break }
                guard status == Z_OK || status == Z_BUF_ERROR else { throw CompressionError(description: "corrupt \(coding.rawValue) stream") }
                if produced == 0 && zlib.avail_in == 0 { break }
            } while zlib.avail_in > 0 || zlib.avail_out == 0
            zlib.next_in = nil
        }
        return output
    }

    private func brotliDecode(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        try input.withUnsafeBufferPointer { inBuffer in
            var availableIn = inBuffer.count
            var nextIn = inBuffer.baseAddress
            while true {
                var result = BROTLI_DECODER_RESULT_ERROR
                let produced = chunk.withUnsafeMutableBufferPointer { out -> Int in
                    var availableOut = out.count
                    var nextOut = out.baseAddress
                    result = BrotliDecoderDecompressStream(brotli, &availableIn, &nextIn, &availableOut, &nextOut, nil)
                    return out.count - availableOut
                }
                output += chunk[0..<produced]
                guard output.count <= limit else { throw CompressionError(description: "br expands past \(limit) bytes per piece") }
                switch result {
                case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: continue
                case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT, BROTLI_DECODER_RESULT_SUCCESS: return
                default: throw CompressionError(description: "corrupt br stream")
                }
            }
        }
        return output
    }
}

/// Encodes a stream piece by piece, flushing after each piece so a browser can render
/// what it has (sync flush), and finishing the stream at the end.
public final class StreamEncoder {
    private let coding: ContentCoding
    private var zlib = z_stream()
    private var brotli: OpaquePointer?

    public init(_ coding: ContentCoding) throws {
        self.coding = coding
        switch coding {
        case .gzip, .deflate:
            let bits: Int32 = coding == .gzip ? 15 + 16 : 15
            guard deflateInit2_(&zlib, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw CompressionError(description: "deflateInit failed")
            }
        case .br:
            guard let state = BrotliEncoderCreateInstance(nil, nil, nil) else { throw CompressionError(description: "Brotli encoder failed") }
            BrotliEncoderSetParameter(state, BROTLI_PARAM_QUALITY, 5)
            brotli = state
        }
    }

    deinit {
        if coding == .br { BrotliEncoderDestroyInstance(brotli) } else { deflateEnd(&zlib) }
    }

    public func encode(_ input: [UInt8]) -> [UInt8] { run(input, finish: false) }
    public func finish() -> [UInt8] { run([], finish: true) }

    private func run(_ input: [UInt8], finish: Bool) -> [UInt8] {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        input.withUnsafeMutableBufferPointer { inBuffer in
            if coding == .br {
                var availableIn = inBuffer.count
                var nextIn = UnsafePointer(inBuffer.baseAddress)
                let operation = finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH
                repeat {
                    let produced = chunk.withUnsafeMutableBufferPointer { out -> Int in
                        var availableOut = out.count
                        var nextOut = out.baseAddress
                        _ = BrotliEncoderCompressStream(brotli, operation, &availableIn, &nextIn, &availableOut, &nextOut, nil)
                        return out.count - availableOut
                    }
                    output += chunk[0..<produced]
                } while availableIn > 0 || BrotliEncoderHasMoreOutput(brotli) != 0
            } else {
                zlib.next_in = inBuffer.baseAddress
                zlib.avail_in = UInt32(inBuffer.count)
                repeat {
                    let produced = chunk.withUnsafeMutableBufferPointer { out -> Int in
                        zlib.next_out = out.baseAddress
                        zlib.avail_out = UInt32(out.count)
                        _ = deflate(&zlib, finish ? Z_FINISH : Z_SYNC_FLUSH)
                        return out.count - Int(zlib.avail_out)
                    }
                    output += chunk[0..<produced]
                } while zlib.avail_out == 0
                zlib.next_in = nil
            }
        }
        return output
    }
}

/// Raw DEFLATE (RFC 1951, no wrapper), as the SAML HTTP-Redirect binding carries requests.
public enum RawDeflate {
    public static func inflate(_ input: [UInt8], limit: Int = 1 << 20) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw CompressionError(description: "inflateInit failed")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        try input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = UInt32(inBuffer.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return (status, out.count - Int(stream.avail_out))
                }
                output += chunk[0..<produced]
                guard output.count <= limit else { throw CompressionError(description: "inflates past \(limit) bytes") }
                if status == Z_STREAM_END { return }
                guard status == Z_OK, produced > 0 || stream.avail_in > 0 else { throw CompressionError(description: "corrupt raw deflate") }
            }
        }
        return output
    }
}
