import NIOConcurrencyHelpers

/// `ssogate_organization_requests_total{organization, class}`: the requests that concerned an
/// organization (its protected content, its SSO endpoints, its refusals), by status class.
/// Each event loop counts into a shard of its own behind a lock no other loop takes (a
/// scrape takes it for a moment), so a request never waits on another loop; a scrape adds
/// the shards up. Organization names come from the configuration, never from a request.
final class OrganizationRequests: Sendable {
    static let name = "ssogate_organization_requests_total"

    final class Shard: Sendable {
        fileprivate let counts = NIOLockedValueBox<[String: [UInt64]]>([:])

        func record(organization: String, status: Int) {
            let index = status / 100 - 1
            guard (0..<5).contains(index) else { return }
            counts.withLockedValue { counts in
                counts[organization, default: [0, 0, 0, 0, 0]][index] &+= 1
            }
        }
    }

    private let shards = Shards<Shard>()

    /// A shard for one event loop (made when the loop's context is).
    func makeShard() -> Shard { shards.add(Shard()) }

    /// The counter in Prometheus text format, one line per organization and class seen.
    func emit(into out: inout [UInt8]) {
        var total: [String: [UInt64]] = [:]
        for shard in shards.all {
            for (organization, counts) in shard.counts.withLockedValue({ $0 }) {
                var sum = total[organization, default: [0, 0, 0, 0, 0]]
                for index in sum.indices { sum[index] &+= counts[index] }
                total[organization] = sum
            }
        }
        out.append(contentsOf: "# TYPE \(Self.name) counter\n".utf8)
        for organization in total.keys.sorted() {
            for (index, count) in total[organization]!.enumerated() where count > 0 {
                out.append(contentsOf: "\(Self.name){organization=\"\(organization)\",class=\"\(index + 1)xx\"} \(count)\n".utf8)
            }
        }
    }
}
