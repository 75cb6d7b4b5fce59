#if canImport(Glibc)
import CoreFoundation   // where Swift finds `timespec`'s members on Linux
import Glibc
#endif
import Access
import HTTPWire
import NIOCore
import Proxy

/// Everything one event loop owns: its upstream pool, its client connections' deadlines
/// and a cached access-log timestamp. Only ever touched on `eventLoop`.
///
/// Timeouts are deadlines stored on each connection and checked by one sweep per loop
/// every `sweepInterval`, instead of a timer scheduled and cancelled per request: NIO
/// cancels a scheduled task by searching its timer heap, which with thousands of
/// keep-alive connections costs more than the request itself.
/// A connection with deadlines for the loop's sweep to check.
protocol DeadlineOwner: AnyObject {
    func checkDeadlines(now: NIODeadline)
    /// What waits to be written to the client, and since when it stopped reading (nil
    /// while it reads). Every connection's bytes count toward the loop's budget; only the
    /// stalled ones are closed for it.
    func stall() -> (since: NIODeadline?, bytes: Int)?
    /// Ends a stalled connection before its `write_timeout`: the loop's stalled total is over budget.
    func abortStalled()
}

/// Closes a connection with a reset (SO_LINGER 0) rather than a FIN: a peer that stopped
/// reading would never take the FIN queued behind the unsent bytes, and the kernel would
/// hold those bytes for it. Used for clients past `write_timeout`.
func abort(_ channel: Channel) {
    guard let socket = channel as? SocketOptionProvider else {
        channel.close(promise: nil)
        return
    }
    socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
}

final class LoopContext: FlushScheduler {
    static let sweepInterval = TimeAmount.milliseconds(100)
    /// What answers waiting for their clients may hold in the whole process, shared evenly
    /// by the loops: past a loop's share, its clients stalled longest are closed at the next
    /// sweep, before their `write_timeout`. Sized for the shipped 512 MiB container limit.
    static let stalledBudgetTotal = 128 << 20

    let eventLoop: EventLoop
    let pool: UpstreamPool
    let clock = LogClock()
    private var connections: [ObjectIdentifier: DeadlineOwner] = [:]
    private var sweeper: RepeatedTask?
    /// Where this loop's access-log lines go (nil: the access log is off, or a test's
    /// logger takes the records), and the lines gathered since the last batch.
    let accessSink: AccessLogSink?
    private var accessLines: [UInt8] = []
    private var stopped = false
    private var pendingFlushes: [ChannelHandlerContext] = []
    private var pendingUpstreamFlushes: [ChannelHandlerContext] = []
    private var flushScheduled = false

    /// This loop's share of `stalledBudgetTotal`.
    let stalledBudget: Int
    /// Sessions opened on this loop, by cookie value.
    let sessions = SessionCache()
    /// Access tokens this loop looked up, by their text.
    let tokens = TokenCache()
    /// This loop's shard of the upstream latency histogram.
    let upstreamLatency: LatencyHistogram.Shard
    /// This loop's shard of the per-organization request counts.
    let organizationRequests: OrganizationRequests.Shard
    /// Ids for the requests this loop serves (a trusted proxy's are used instead when sent).
    var requestIDs = RequestIDSource()
    /// This loop's copy of the running runtime, and the swap generation it was taken at:
    /// requests read it without a lock (GatewayShared.runtime(on:)).
    private var runtimeCopy: (generation: UInt64, runtime: GatewayRuntime)?

    init(eventLoop: EventLoop, loops: Int = 1, accessSink: AccessLogSink? = nil, latency: LatencyHistogram = LatencyHistogram(),
         organizationRequests: OrganizationRequests = OrganizationRequests()) {
        self.eventLoop = eventLoop
        self.upstreamLatency = latency.makeShard()
        self.organizationRequests = organizationRequests.makeShard()
        self.stalledBudget = Self.stalledBudgetTotal / max(1, loops)
        self.pool = UpstreamPool(eventLoop: eventLoop)
        self.accessSink = accessSink
    }

    /// Adds one access-log line to this loop's batch; written at the next sweep, at 32 KiB,
    /// or at once after `stop`.
    func appendAccessLine(_ line: String) {
        accessLines.append(contentsOf: line.utf8)
        accessLines.append(0x0A)
        if stopped || accessLines.count >= AccessLogSink.flushThreshold { flushAccessLines() }
    }

    private func flushAccessLines() {
        guard let accessSink, !accessLines.isEmpty else { return }
        accessSink.write(accessLines)
        accessLines.removeAll(keepingCapacity: true)
    }

    /// The runtime of `generation`: this loop's copy when it is that generation's, else
    /// `load()`'s, kept for the next request.
    func runtime(generation: UInt64, load: () -> GatewayRuntime) -> GatewayRuntime {
        if let copy = runtimeCopy, copy.generation == generation { return copy.runtime }
        let runtime = load()
        runtimeCopy = (generation, runtime)
        return runtime
    }

    func register(_ connection: DeadlineOwner) {
        eventLoop.preconditionInEventLoop()
        connections[ObjectIdentifier(connection)] = connection
        if sweeper == nil {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            sweeper = eventLoop.scheduleRepeatedTask(initialDelay: Self.sweepInterval, delay: Self.sweepInterval) { _ in
                bound.value.sweep()
            }
        }
    }

    func unregister(_ connection: DeadlineOwner) {
        connections.removeValue(forKey: ObjectIdentifier(connection))
    }

    private func sweep() {
        let now = NIODeadline.now()
        var stalled: [(since: NIODeadline, bytes: Int, owner: DeadlineOwner)] = []
        var stalledTotal = 0
        for connection in Array(connections.values) {
            connection.checkDeadlines(now: now)
            if let stall = connection.stall() {
                if let since = stall.since { stalled.append((since, stall.bytes, connection)) }
                stalledTotal += stall.bytes
            }
        }
        pool.pressure.high = stalledTotal > stalledBudget / 2
        if stalledTotal > stalledBudget {
            for victim in stalled.sorted(by: { $0.since < $1.since }) {
                victim.owner.abortStalled()
                stalledTotal -= victim.bytes
                if stalledTotal <= stalledBudget { break }
            }
        }
        pool.evictIdle(now: now)
        flushAccessLines()
    }

    /// Flushes `context` once the loop has handled every I/O event of this tick. Writes
    /// made while a burst of ready connections is served then leave together, so the peers
    /// they wake (an upstream on the same core, say) do not preempt the loop per request:
    /// measured, that preemption cost more CPU than the proxying itself.
    /// Upstream-bound flushes go last: waking the upstream is what can take the core away,
    /// so every client-bound byte of the tick is handed to the kernel before that.
    func deferFlush(_ context: ChannelHandlerContext, upstream: Bool = false) {
        if upstream { pendingUpstreamFlushes.append(context) } else { pendingFlushes.append(context) }
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute { bound.value.runDeferredFlushes() }
    }

    private func runDeferredFlushes() {
        flushScheduled = false
        let contexts = pendingFlushes
        let upstreams = pendingUpstreamFlushes
        pendingFlushes.removeAll(keepingCapacity: true)
        pendingUpstreamFlushes.removeAll(keepingCapacity: true)
        // Flushing a channel that closed meanwhile does nothing.
        for context in contexts { context.flush() }
        for context in upstreams { context.flush() }
    }

    /// Stops the sweep and writes the access lines gathered; lines after this are written at once.
    func stop() {
        sweeper?.cancel()
        sweeper = nil
        stopped = true
        flushAccessLines()
    }
}

/// The wall-clock time as log text, with the formatted second cached (one `gmtime_r`
/// per second instead of per line).
final class LogClock {
    private var cachedSecond = -1
    private var cachedPrefix = ""

    func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let second = spec.tv_sec
        if second != cachedSecond {
            var parts = tm()
            var t = second
            gmtime_r(&t, &parts)
            cachedSecond = second
            cachedPrefix = "\(parts.tm_year + 1900)-\(pad2(parts.tm_mon + 1))-\(pad2(parts.tm_mday))T\(pad2(parts.tm_hour)):\(pad2(parts.tm_min)):\(pad2(parts.tm_sec))."
        }
        let millis = Int(spec.tv_nsec / 1_000_000)
        return cachedPrefix + (millis < 10 ? "00" : millis < 100 ? "0" : "") + String(millis) + "Z"
    }

    private func pad2(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
