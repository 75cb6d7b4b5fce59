@testable import Gateway
import Testing

/// The upstream latency histogram recorded per event loop without a lock: a scrape adds the
/// loops' shards up into one Prometheus histogram.
@Suite("Latency histogram")
struct LatencyHistogramTests {
    @Test func shardsAddUpIntoCumulativeBucketsSumAndCount() {
        let histogram = LatencyHistogram()
        let one = histogram.makeShard(), two = histogram.makeShard()
        one.record(nanoseconds: 300_000)          // 0.3 ms: le=0.0005
        two.record(nanoseconds: 1_000_000)        // exactly 1 ms: le=0.001 (bounds are inclusive)
        two.record(nanoseconds: 7_000_000)        // 7 ms: le=0.01
        one.record(nanoseconds: 120_000_000_000)  // 2 minutes: past every bound, +Inf only
        var out: [UInt8] = []
        histogram.emit(into: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("# TYPE ssogate_upstream_response_seconds histogram\n"))
        #expect(text.contains("ssogate_upstream_response_seconds_bucket{le=\"0.0005\"} 1\n"))
        #expect(text.contains("ssogate_upstream_response_seconds_bucket{le=\"0.001\"} 2\n"))
        #expect(text.contains("ssogate_upstream_response_seconds_bucket{le=\"0.005\"} 2\n"))
        #expect(text.contains("ssogate_upstream_response_seconds_bucket{le=\"0.01\"} 3\n"))
        #expect(text.contains("ssogate_upstream_response_seconds_bucket{le=\"60.0\"} 3\n"))
        #expect(text.contains("ssogate_upstream_response_seconds_bucket{le=\"+Inf\"} 4\n"))
        #expect(text.contains("ssogate_upstream_response_seconds_count 4\n"))
        #expect(text.contains("ssogate_upstream_response_seconds_sum 120.0083\n"))
    }
}
