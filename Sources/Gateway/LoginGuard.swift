#if canImport(Glibc)
import Glibc
#endif
import Config
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The ACS and login starts are where an unauthenticated client makes the gateway work.
/// `LoginGuard` bounds that work: SAML validation runs on its own threads (niced, so the
/// event loops keep proxying while it is busy) behind a bounded queue, and each client
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

    private let pool: NIOThreadPool
    /// Validations waiting or running, at most `capacity`.
    private let admitted = NIOLockedValueBox(0)
    private let capacity: Int
    private let perClient: RateLimiter?
    private let total: RateLimiter?

    init(_ settings: GatewayConfiguration.Logins) {
        pool = NIOThreadPool(numberOfThreads: settings.workers)
        pool.start()
        capacity = settings.workers + settings.queue
        perClient = settings.perClient.map { RateLimiter($0, maxClients: 100_000) }
        total = settings.total.map { RateLimiter($0, maxClients: 1) }
    }

    /// Counts one login event (a start or an ACS post) from `client` at `now` (seconds).
    func admit(client: [UInt8]?, now: Double) -> Refusal? {
        if let perClient, let wait = perClient.take(client ?? [], now: now) { return .rateLimited(retryAfter: wait) }
        if let total, let wait = total.take([], now: now) { return .rateLimited(retryAfter: wait) }
        return nil
    }

    /// Runs `work` on a login worker; nil when `capacity` validations are already admitted.
    func run<T: Sendable>(on loop: EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T>? {
        let taken = admitted.withLockedValue { count -> Bool in
            guard count < capacity else { return false }
            count += 1
            return true
        }
        guard taken else { return nil }
        let promise = loop.makePromise(of: T.self)
        pool.submit { state in
            defer { self.admitted.withLockedValue { $0 -= 1 } }
            guard case .active = state else {
                promise.fail(ChannelError.ioOnClosedChannel)
                return
            }
            // Below the event loops: a burst of logins slows logins, not proxied requests.
            // (On Linux the nice value is per thread; 0 names the calling one.)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
            promise.succeed(work())
        }
        return promise.futureResult
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
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
