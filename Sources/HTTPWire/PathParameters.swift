/// Path parameters (`;x` and its escaped form `%3B`), which servlet containers strip from
/// each segment before routing while other stacks keep them: the gateway checks both
/// readings of a path (Protection) and refuses dot segments hidden behind them.
package enum PathParameters {
    /// A `;` or `%3B` (any case) in the path.
    /// Not generic: called from another module, a generic would run unspecialized.
    package static func present(in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var percent = 0
        for b in bytes {
            if b == UInt8(ascii: ";") { return true }
            switch (percent, b) {
            case (_, UInt8(ascii: "%")): percent = 1
            case (1, UInt8(ascii: "3")): percent = 2
            case (2, UInt8(ascii: "B")), (2, UInt8(ascii: "b")): return true
            default: percent = 0
            }
        }
        return false
    }

    /// One segment up to its first `;` or `%3B`.
    package static func cut<C: Collection>(_ segment: C) -> C.SubSequence where C.Element == UInt8 {
        var index = segment.startIndex
        while index != segment.endIndex {
            let b = segment[index]
            if b == UInt8(ascii: ";") { return segment[..<index] }
            if b == UInt8(ascii: "%") {
                let next = segment.index(after: index)
                if next != segment.endIndex, segment[next] == UInt8(ascii: "3") {
                    let last = segment.index(after: next)
                    if last != segment.endIndex, segment[last] == UInt8(ascii: "B") || segment[last] == UInt8(ascii: "b") {
                        return segment[..<index]
                    }
                }
            }
            index = segment.index(after: index)
        }
        return segment[...]
    }

    /// The path as a servlet container routes it: every segment cut at its first `;`, then
    /// dot segments resolved and empty ones collapsed again.
    package static func removed(from path: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var segments: [ArraySlice<UInt8>] = []
        let bytes = Array(path)
        for part in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            let base = cut(part)
            if base.isEmpty || base.elementsEqual([UInt8(ascii: ".")]) { continue }
            if base.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) { _ = segments.popLast(); continue }
            segments.append(base)
        }
        var out: [UInt8] = []
        for segment in segments { out.append(UInt8(ascii: "/")); out.append(contentsOf: segment) }
        if out.isEmpty || bytes.last == UInt8(ascii: "/") { out.append(UInt8(ascii: "/")) }
        return out
    }
}
