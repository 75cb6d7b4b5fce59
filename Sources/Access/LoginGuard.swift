#if canImport(Glibc)
import CoreFoundation   // where Swift finds `timespec`'s members on Linux
import Glibc
#endif
import Config
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded

/// The ACS and login starts are where an unauthenticated client makes the gateway work.
/// `LoginGuard` bounds that work: SAML validation runs on its own threads (LoginWorkers, so
/// the event loops keep proxying while it is busy) behind a bounded queue, and each client
/// address and all clients together are held to a rate.
package final class LoginGuard: Sendable {
    package enum Refusal: Equatable {
        /// Every worker is busy and the queue is full: 503 `login_busy`.
        case busy
        /// Over a rate: 429 `login_rate_limited`, retry after that many seconds.
        case rateLimited(retryAfter: Int)

        package var code: String {
            switch self {
            case .busy: "login_busy"
            case .rateLimited: "login_rate_limited"
            }
        }

        package var retryAfter: Int {
            switch self {
            case .busy: 1
            case .rateLimited(let seconds): max(1, seconds)
            }
        }
    }

    private let workers: LoginWorkers
    private let perClient: RateLimiter?
    private let total: RateLimiter?

    package init(_ settings: GatewayConfiguration.Logins) {
        workers = LoginWorkers(threads: settings.workers, capacity: settings.workers + settings.queue)
        perClient = settings.perClient.map { RateLimiter($0, maxClients: 100_000) }
        total = settings.total.map { RateLimiter($0, maxClients: 1) }
    }

    /// Counts one login event (a start or an ACS post) from `client` at `now` (seconds).
    package func admit(client: [UInt8]?, now: Double) -> Refusal? {
        if let perClient, let wait = perClient.take(client ?? [], now: now) { return .rateLimited(retryAfter: wait) }
        if let total, let wait = total.take([], now: now) { return .rateLimited(retryAfter: wait) }
        return nil
    }

    /// Runs `work` on a login worker; nil when the workers and the queue are full. `work`
    /// may run twice (LoginWorkers rescues a login a starved worker holds); the first
    /// result answers.
    package func run<T: Sendable>(on loop: EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T>? {
        // An embedded loop (the wire fuzz targets) takes no completion from another thread.
        if loop is EmbeddedEventLoop { return loop.makeSucceededFuture(work()) }
        let promise = loop.makePromise(of: T.self)
        let answered = NIOLockedValueBox(false)
        let accepted = workers.submit {
            let value = work()
            let first = answered.withLockedValue { done in
                defer { done = true }
                return !done
            }
            if first { promise.succeed(value) }
        }
        guard accepted else {
            promise.fail(ChannelError.ioOnClosedChannel)  // never seen: the caller answers login_busy
            return nil
        }
        return promise.futureResult
    }

    package func shutdown() async {
        workers.stop()
    }
}

/// The login workers' threads and their bounded queue.
///
/// The workers run with SCHED_IDLE (Linux; per thread): an event loop that wakes preempts a
/// validation at once. Measured under a flood of hostile POSTs (benchmarks/RESULTS.md),
/// proxied p99 rose 1.2x with SCHED_IDLE against 3x at nice 19 and 5x at nice 10: a niced
/// thread keeps the core for its slice. But an idle-class thread does not run while
/// anything else keeps the core busy, so one more thread, at the normal priority, rescues
/// one login per `rescueAfter`: the oldest that has waited that long in the queue, else one
/// a starved worker has held that long, which it then runs too (validation has no side
/// effects; the first result answers). An unprivileged process cannot move a thread back
/// out of SCHED_IDLE, hence a second run rather than a boost. Logins slow to one every two seconds
/// instead of stopping, and those few intrusions stay out of the proxied p99.
package final class LoginWorkers: @unchecked Sendable {
    package static let rescueAfter = 2.0
    private static let schedIdle: Int32 = 5  // <sched.h>, a GNU extension Glibc does not import

    private final class Job {
        package let enqueued: Double
        package let work: @Sendable () -> Void
        /// When a worker took it; whether the rescuer runs it too. Guarded by `condition`.
        package var started: Double?
        package var rescued = false

        package init(enqueued: Double, work: @escaping @Sendable () -> Void) {
            self.enqueued = enqueued
            self.work = work
        }
    }

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var held: [ObjectIdentifier: Job] = [:]
    private var stopped = false
    private let capacity: Int

    package init(threads: Int, capacity: Int) {
        self.capacity = capacity
        for index in 0..<threads {
            let thread = Thread { [self] in
                var parameters = sched_param(sched_priority: 0)
                _ = sched_setscheduler(0, Self.schedIdle, &parameters)
                self.work()
            }
            thread.name = "ssogate-login-\(index)"
            thread.start()
        }
        // At the normal priority: at nice 19 it would weigh 15 against every busy thread's
        // 1,024, and starve nearly as surely on a host busy with other work. Its rate bounds it.
        let rescuer = Thread { [self] in self.rescue() }
        rescuer.name = "ssogate-login-rescue"
        rescuer.start()
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Queues `work`; false when `capacity` logins are already queued or running.
    package func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped, queue.count + held.count < capacity else { return false }
        queue.append(Job(enqueued: Self.now(), work: work))
        condition.signal()
        return true
    }

    package func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopped { condition.wait() }
            guard !queue.isEmpty else { condition.unlock(); return }
            let job = queue.removeFirst()
            job.started = Self.now()
            held[ObjectIdentifier(job)] = job
            condition.unlock()
            job.work()
            condition.lock()
            held[ObjectIdentifier(job)] = nil
            condition.unlock()
        }
    }

    private func rescue() {
        while true {
            Thread.sleep(forTimeInterval: Self.rescueAfter / 2)
            condition.lock()
            if stopped && queue.isEmpty { condition.unlock(); return }
            let now = Self.now()
            var job: Job?
            var taken = false
            if let first = queue.first, now - first.enqueued >= Self.rescueAfter {
                job = queue.removeFirst()
                taken = true
                held[ObjectIdentifier(job!)] = job
            } else if let stuck = held.values.filter({ !$0.rescued && now - ($0.started ?? now) >= Self.rescueAfter })
                .min(by: { $0.enqueued < $1.enqueued }) {
                stuck.rescued = true
                job = stuck
            }
            condition.unlock()
            guard let job else { continue }
            job.work()
            if taken {
                condition.lock()
                held[ObjectIdentifier(job)] = nil
                condition.unlock()
            }
            // One login per interval: enough that none waits forever, too little to take the
            // core from the loops for long.
            Thread.sleep(forTimeInterval: Self.rescueAfter / 2)
        }
    }
}

/// Token buckets per key (a client address): `rate.count` in a burst, refilled at
/// `rate.count` per `rate.seconds`. At most `maxClients` buckets are kept; when full, full
/// (idle) buckets are dropped first, and if none is, the table starts over.
package final class RateLimiter: Sendable {
    private struct Bucket {
        package var tokens: Double
        package var updated: Double
    }

    private let capacity: Double
    private let perSecond: Double
    private let maxClients: Int
    private let buckets = NIOLockedValueBox<[[UInt8]: Bucket]>([:])

    package init(_ rate: GatewayConfiguration.Rate, maxClients: Int) {
        capacity = Double(rate.count)
        perSecond = Double(rate.count) / Double(rate.seconds)
        self.maxClients = maxClients
    }

    /// nil when a token was taken; else the whole seconds until one is there.
    package func take(_ key: [UInt8], now: Double) -> Int? {
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
