import Atomics
import NIOConcurrencyHelpers
import Prometheus

/// The per-loop shards of one metric: added as loops start, added up at a scrape.
final class Shards<Shard: Sendable>: Sendable {
    private let list = NIOLockedValueBox<[Shard]>([])

    func add(_ shard: Shard) -> Shard {
        list.withLockedValue { $0.append(shard) }
        return shard
    }

    var all: [Shard] { list.withLockedValue { $0 } }
}

/// `ssogate_upstream_response_seconds` without a lock on the request path: each event loop
/// records into a shard of its own (relaxed atomic increments no other thread writes, on
/// its own cache lines), and a scrape adds the shards up. swift-prometheus's histogram
/// takes a lock per recorded value, which was the last lock a proxied request took.
final class LatencyHistogram: Sendable {
    static let name = "ssogate_upstream_response_seconds"
    static let bounds: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]
    private static let boundNanoseconds: [Int64] = bounds.map { $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }

    /// One event loop's counts: per bucket (not cumulative), how many, and their sum.
    final class Shard: Sendable {
        fileprivate let buckets = (0..<LatencyHistogram.bounds.count).map { _ in ManagedAtomic<UInt64>(0) }
        fileprivate let count = ManagedAtomic<UInt64>(0)
        fileprivate let sumNanoseconds = ManagedAtomic<UInt64>(0)

        func record(nanoseconds: Int64) {
            let value = max(0, nanoseconds)
            if let index = LatencyHistogram.boundNanoseconds.firstIndex(where: { value <= $0 }) {
                buckets[index].wrappingIncrement(ordering: .relaxed)
            }
            count.wrappingIncrement(ordering: .relaxed)
            sumNanoseconds.wrappingIncrement(by: UInt64(value), ordering: .relaxed)
        }
    }

    private let shards = Shards<Shard>()

    /// A shard for one event loop (made when the loop's context is).
    func makeShard() -> Shard { shards.add(Shard()) }

    /// The histogram in Prometheus text format: cumulative buckets, +Inf, sum, count.
    func emit(into out: inout [UInt8]) {
        var buckets = [UInt64](repeating: 0, count: Self.bounds.count)
        var count: UInt64 = 0
        var sum: UInt64 = 0
        for shard in shards.all {
            for index in buckets.indices { buckets[index] &+= shard.buckets[index].load(ordering: .relaxed) }
            count &+= shard.count.load(ordering: .relaxed)
            sum &+= shard.sumNanoseconds.load(ordering: .relaxed)
        }
        out.append(contentsOf: "# TYPE \(Self.name) histogram\n".utf8)
        var cumulative: UInt64 = 0
        for (index, bound) in Self.bounds.enumerated() {
            cumulative &+= buckets[index]
            out.append(contentsOf: "\(Self.name)_bucket{le=\"\(bound.bucketRepresentation)\"} \(cumulative)\n".utf8)
        }
        out.append(contentsOf: "\(Self.name)_bucket{le=\"+Inf\"} \(count)\n".utf8)
        let seconds = Duration.nanoseconds(Int64(clamping: sum))
        out.append(contentsOf: "\(Self.name)_sum \(seconds.bucketRepresentation)\n".utf8)
        out.append(contentsOf: "\(Self.name)_count \(count)\n".utf8)
    }
}
