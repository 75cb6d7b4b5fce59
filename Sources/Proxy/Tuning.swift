import Access
import Config
import NIOCore
import NIOPosix

/// Socket read and write sizes, shared by the client listener and the upstream pool.
package enum SocketTuning {
    /// Upstream reads grow up to 256 KiB while a body streams (fewer syscalls per byte: with
    /// 64 KiB reads streaming ran at half the speed) and shrink back for small answers. The
    /// reads of one readiness (two) may land after a client stopped reading, on top of the
    /// send buffer's high mark: that is what a stalled client can hold.
    package static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 256 * 1024)
    /// Upstream reads while the loop's waiting answers are over half its budget.
    package static let pressureReceiveAllocator = FixedSizeRecvByteBufferAllocator(capacity: 16 * 1024)
    /// Client reads stop at 64 KiB, two per readiness: what one client can make the loop
    /// parse before others get their turn (a pipelining flood costs the loop ~128 KiB of
    /// parsing at a time, not megabytes).
    package static let clientReceiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 64 * 1024)
    /// Backpressure engages when 64 KiB wait to be written to a peer (resumes under 16 KiB):
    /// the kernel's socket buffer keeps the pipe full while streaming, so this only bounds
    /// what a peer that stopped reading holds in the gateway.
    package static let writeWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 16 * 1024, high: 64 * 1024)
}

/// Whether a loop's waiting answers are over half its budget (set by the loop's sweep, read
/// by the upstream handlers of that loop).
package final class LoopPressure {
    package var high = false
    package init() {}
}

/// Flushes a channel once the loop has handled every I/O event of this tick (the event
/// loop's context does it for the whole loop).
package protocol FlushScheduler: AnyObject {
    func deferFlush(_ context: ChannelHandlerContext, upstream: Bool)
}

/// Where an exchange goes and with what: fixed when it is planned (from the runtime of the
/// time), so a retry goes where the first try went, whatever a reload does meanwhile.
package struct UpstreamRoute {
    package let endpoint: GatewayConfiguration.Endpoint
    package let timeout: TimeAmount
    /// Signs `X-SSO-Assertion` when `upstream_assertion` is on.
    package let minter: AssertionMinter?
    /// TLS to an `https://` upstream.
    package let tls: UpstreamTLSContext?

    package init(endpoint: GatewayConfiguration.Endpoint, timeout: TimeAmount, minter: AssertionMinter?, tls: UpstreamTLSContext? = nil) {
        self.endpoint = endpoint
        self.timeout = timeout
        self.minter = minter
        self.tls = tls
    }
}

/// The kinds of upstream failure the metrics count (`ssogate_upstream_failures_total{reason}`).
public enum UpstreamFailureKind: String, CaseIterable, Sendable {
    case connect, timeout, closed
}
