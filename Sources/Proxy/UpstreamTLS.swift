import Config
import NIOCore
import NIOSSL
import NIOTLS

/// TLS to an `https://` upstream (`upstream_tls`): the context, made once per runtime, and
/// the name the certificate must carry (also sent as SNI); nil for an IP address, which must
/// then be one of the certificate's IP SANs.
package struct UpstreamTLSContext: Sendable {
    package let context: NIOSSLContext
    package let serverName: String?

    /// TLS 1.2 or 1.3, the certificate verified against `caPEM` (or the system's CA
    /// certificates) and its name, HTTP/1.1 by ALPN; a client certificate when configured.
    package init(_ settings: GatewayConfiguration.UpstreamTLS, host: String) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        configuration.applicationProtocols = ["http/1.1"]
        if let ca = settings.caPEM {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.utf8)))
        }
        if let certificate = settings.clientCertificatePEM, let key = settings.clientKeyPEM {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
        }
        context = try NIOSSLContext(configuration: configuration)
        serverName = settings.serverName ?? (IPAddressText.parse(host) == nil ? host : nil)
    }
}

/// Completes `ready` when the TLS handshake with the upstream is done, or fails it with why
/// not (a certificate that does not verify, a closed connection): the connection is only
/// handed to an exchange once it can carry a request. Removes itself after.
final class HandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let ready: EventLoopPromise<Void>

    init(ready: EventLoopPromise<Void>) { self.ready = ready }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            ready.succeed(())
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        ready.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}
