import NIOCore

/// On a plain listener with HTTP/2 on, the first bytes choose the protocol: the HTTP/2
/// connection preface (RFC 9113 §3.4) means h2c with prior knowledge, anything else is
/// HTTP/1.x. Bytes are held only until they differ from the preface or complete it.
final class PrefaceSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let chosen: (Channel, Bool) throws -> Void
    private var held: ByteBuffer?

    init(chosen: @escaping (Channel, Bool) throws -> Void) {
        self.chosen = chosen
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var earlier = held {
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        let count = min(bytes.readableBytes, Self.preface.count)
        let matches = bytes.readableBytesView.prefix(count).elementsEqual(Self.preface.prefix(count))
        if matches && count < Self.preface.count {
            held = bytes
            return
        }
        held = nil
        do {
            // The chosen handlers go in after this one, get the bytes, and this one leaves.
            try chosen(context.channel, matches)
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
