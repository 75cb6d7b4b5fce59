import CLibXML2

/// Process-wide libxml2 set-up.
///
/// `xmlInitParser()` must run once before event-loop threads exist (libxml2 keeps
/// per-thread state that it initialises lazily and not thread-safely); the executable
/// calls `initialize()` first thing. `xmlCleanupParser()` is never called: other
/// threads may still hold parser state at exit.
public enum XMLLibrary {
    public static func initialize() {
        xmlInitParser()
    }

    /// The libxml2 version the process runs against, e.g. "2.9.14" (for `--version`).
    public static var runtimeVersion: String {
        // xmlParserVersion is a per-thread macro that does not import; the accessor does.
        guard let slot = __xmlParserVersion(), let digits = slot.pointee else { return "unknown" }
        let number = Int(String(cString: digits)) ?? 0
        return "\(number / 10000).\(number / 100 % 100).\(number % 100)"
    }
}
