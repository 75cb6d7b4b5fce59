#if canImport(Glibc)
import Glibc
#endif
import Config
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The ACS and login starts are where an unauthenticated client makes the gateway work.
/// `LoginGuard` bounds that work: SAML validation runs on its own threads (LoginWorkers, so
/// the event loops keep proxying while it is busy) behind a bounded queue, and each client
/// address and all clients together are held to a rate.
final class LoginGuard: Sendable {
    enum Refusal: Equatable {
        /// Every worker is busy and the queue is full: 503 `login_busy`.
        case busy
        /// Over a rate: 429 `login_rate_limited`, retry after that many seconds.
        case rateLimited(retryAfter: Int)

        var code: String {
            switch self {
            case .busy: "login_busy"
            case .rateLimited: "login_rate_limited"
            }
        }

        var retryAfter: Int {
            switch self {
            case .busy: 1
            case .rateLimited(let seconds): max(1, seconds)
            }
        }
    }

    private let workers: LoginWorkers
    private let perClient: RateLimiter?
    private let total: RateLimiter?

    init(_ settings: GatewayConfiguration.Logins) {
        workers = LoginWorkers(threads: settings.workers, capacity: settings.workers + settings.queue)
        perClient = settings.perClient.map { RateLimiter($0, maxClients: 100_000) }
        total = settings.total.map { RateLimiter($0, maxClients: 1) }
    }

    /// Counts one login event (a start or an ACS post) from `client` at `now` (seconds).
    func admit(client: [UInt8]?, now: Double) -> Refusal? {
        if let perClient, let wait = perClient.take(client ?? [], now: now) { return .rateLimited(retryAfter: wait) }
        if let total, let wait = total.take([], now: now) { return .rateLimited(retryAfter: wait) }
        return nil
    }

    /// Runs `work` on a login worker; nil when the workers and the queue are full.
    func run<T: Sendable>(on loop: EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T>? {
        let promise = loop.makePromise(of: T.self)
        guard workers.submit({ promise.succeed(work()) }) else {
            promise.fail(ChannelError.ioOnClosedChannel)  // never seen: the caller answers login_busy
            return nil
        }
        return promise.futureResult
    }

    func shutdown() async {
        workers.stop()
    }
}

/// The login workers' threads and their bounded queue.
///
/// The workers run with SCHED_IDLE (Linux; per thread): an event loop that wakes preempts a
/// validation at once. Measured under a flood of hostile POSTs (benchmarks/RESULTS.md),
/// proxied p99 rose 1.2x with SCHED_IDLE against 3x at nice 19 and 5x at nice 10: a niced
/// thread keeps the core for its slice. But an idle-class thread never runs while anything
/// else keeps the core busy, so one more thread, at the normal priority, takes a login that
/// has waited `rescueAfter`, at most one per interval: logins slow to one a second instead
/// of stopping, and those few intrusions stay out of the proxied p99.
final class LoginWorkers: @unchecked Sendable {
    static let rescueAfter = 1.0
    private static let schedIdle: Int32 = 5  // <sched.h>, a GNU extension Glibc does not import

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [(enqueued: Double, work: @Sendable () -> Void)] = []
    private var running = 0
    private var stopped = false
    private let capacity: Int

    init(threads: Int, capacity: Int) {
        self.capacity = capacity
        for index in 0..<threads {
            let thread = Thread { [self] in
                var parameters = sched_param(sched_priority: 0)
                _ = sched_setscheduler(0, Self.schedIdle, &parameters)
                self.serve(rescue: false)
            }
            thread.name = "ssogate-login-\(index)"
            thread.start()
        }
        // At the normal priority: a niced thread starves as surely as an idle one on a host
        // busy with other work (seen: a CI run with other test threads). Its rate bounds it.
        let rescuer = Thread { [self] in self.serve(rescue: true) }
        rescuer.name = "ssogate-login-rescue"
        rescuer.start()
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Queues `work`; false when `capacity` logins are already queued or running.
    func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped, queue.count + running < capacity else { return false }
        queue.append((Self.now(), work))
        // Every waiter: a signal could wake only the rescuer, which leaves young work alone.
        condition.broadcast()
        return true
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func serve(rescue: Bool) {
        while true {
            condition.lock()
            var item: (@Sendable () -> Void)?
            while item == nil {
                if stopped && queue.isEmpty { condition.unlock(); return }
                if let first = queue.first, !rescue || Self.now() - first.enqueued >= Self.rescueAfter {
                    item = queue.removeFirst().work
                } else if rescue {
                    _ = condition.wait(until: Date(timeIntervalSinceNow: Self.rescueAfter / 2))
                } else {
                    condition.wait()
                }
            }
            running += 1
            condition.unlock()
            item?()
            condition.lock()
            running -= 1
            condition.unlock()
            // The rescuer takes one login per interval: enough that none waits forever, too
            // little to take the core from the loops for long.
            if rescue { Thread.sleep(forTimeInterval: Self.rescueAfter) }
        }
    }
}

/// Token buckets per key (a client address): `rate.count` in a burst, refilled at
/// `rate.count` per `rate.seconds`. At most `maxClients` buckets are kept; when full, full
/// (idle) buckets are dropped first, and if none is, the table starts over.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    private let capacity: Double
    private let perSecond: Double
    private let maxClients: Int
    private let buckets = NIOLockedValueBox<[[UInt8]: Bucket]>([:])

    init(_ rate: GatewayConfiguration.Rate, maxClients: Int) {
        capacity = Double(rate.count)
        perSecond = Double(rate.count) / Double(rate.seconds)
        self.maxClients = maxClients
    }

    /// nil when a token was taken; else the whole seconds until one is there.
    func take(_ key: [UInt8], now: Double) -> Int? {
        buckets.withLockedValue { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            bucket.tokens = min(capacity, bucket.tokens + max(0, now - bucket.updated) * perSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return Int(((1 - bucket.tokens) / perSecond).rounded(.up))
            }
            bucket.tokens -= 1
            if buckets[key] == nil && buckets.count >= maxClients {
                buckets = buckets.filter { $0.value.tokens + (now - $0.value.updated) * perSecond < capacity }
                if buckets.count >= maxClients { buckets.removeAll(keepingCapacity: true) }
            }
            buckets[key] = bucket
            return nil
        }
    }
}
