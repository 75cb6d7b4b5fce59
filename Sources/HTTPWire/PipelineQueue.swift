import NIOCore
import NIOHTTP1

/// The parts of pipelined HTTP/1.1 requests waiting for their turn, and how many requests
/// one connection may start per turn of the event loop. A plain value, tested without
/// sockets (docs/CODE-STYLE.md "Protocol logic as state machines"); the connection handler owns
/// one and carries out what it says.
package struct PipelineQueue {
    /// Heads and bodies waiting, counted by their bytes; past it the queue overflows.
    package static let maxBytes = 16 * 1024
    /// Requests one connection may start per turn of the loop: a pipelining client gets this
    /// many, then the other connections get theirs.
    package static let headsPerTick = 16

    package private(set) var parts = CircularBuffer<HTTPServerRequestPart>()
    package private(set) var bytes = 0
    private var headsThisTick = 0

    package init() {}

    package var isEmpty: Bool { parts.isEmpty }
    package var first: HTTPServerRequestPart? { parts.first }

    /// Whether another request may start in this turn of the loop.
    package var mayStartRequest: Bool { headsThisTick < Self.headsPerTick }

    /// Keeps `part`; false when that overflows the queue, which is then emptied (the caller
    /// ends the connection: RFC 9112 §9.3.2 lets the client send the unanswered ones again).
    package mutating func append(_ part: HTTPServerRequestPart) -> Bool {
        switch part {
        case .head(let head):
            bytes += head.uri.utf8.count + 64
            for (name, value) in head.headers { bytes += name.utf8.count + value.utf8.count + 4 }
        case .body(let buffer):
            bytes += buffer.readableBytes
        case .end:
            bytes += 8
        }
        guard bytes <= Self.maxBytes else {
            removeAll()
            return false
        }
        parts.append(part)
        return true
    }

    package mutating func removeFirst() -> HTTPServerRequestPart {
        let part = parts.removeFirst()
        if parts.isEmpty { bytes = 0 }
        return part
    }

    package mutating func removeAll() {
        parts.removeAll()
        bytes = 0
    }

    /// A request started (from the queue or straight from a read).
    package mutating func requestStarted() { headsThisTick += 1 }

    /// A new turn of the loop: a fresh allowance.
    package mutating func newTick() { headsThisTick = 0 }
}

extension HTTPServerRequestPart {
    package var isHead: Bool {
        if case .head = self { return true }
        return false
    }
}
