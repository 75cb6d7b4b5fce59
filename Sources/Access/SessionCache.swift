import HTTPWire
import Sessions

/// Sessions one event loop opened recently, by cookie value, so that a member's next
/// requests skip the base64, the AES-GCM open and the JSON of the cookie. Loop-confined
/// (no lock): each `LoopContext` has one.
///
/// Only what a valid cookie opened to is kept (a forged or tampered cookie never gets in;
/// many valid ones only churn it, within its bound), keyed by the exact cookie value the
/// client sent. An
/// entry serves until its earliest grant expires; all entries go when the flow they were
/// opened for is replaced (a reload may change the secrets or disable an organization) or
/// when `removeAll` is called. At most `capacity` entries: past that, one is dropped per
/// entry added.
package final class SessionCache {
    /// Which flow the entries were opened and filtered for. Held strongly, so that a
    /// replaced flow cannot be freed and its address reused by the next one.
    package final class Owner: Sendable {}

    /// A session as opened, and the access decisions already made from it, by organization
    /// and resource group, and off protected paths: a decision depends only on the
    /// session, the flow and the method (checked after), and both are fixed for the entry's life.
    package final class Remembered {
        package let session: Session
        /// The earliest expiry among its grants (seconds since 1970).
        package let expires: Int64
        /// By organization, or `org/group` inside a resource group.
        package var decisions: [String: Granted] = [:]
        /// Off protected paths.
        package var unprotected: AccessDecision?

        package init(session: Session, expires: Int64) {
            self.session = session
            self.expires = expires
        }
    }

    /// A cookie value as the key: no copy of the value to look it up, and only its last
    /// bytes hashed. A sealed cookie ends in its AES-GCM tag, so those bytes differ between
    /// cookies; only valid cookies are stored, so nobody can line up entries that collide,
    /// and equality still compares every byte.
    private struct Key: Hashable {
        let value: Substring

        static func == (a: Key, b: Key) -> Bool { UTF8Bytes.equal(a.value, b.value) }

        func hash(into hasher: inout Hasher) {
            let utf8 = value.utf8
            hasher.combine(utf8.count)
            let hashed: Void? = utf8.withContiguousStorageIfAvailable { bytes in
                hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes.suffix(16))))
            }
            if hashed == nil { for byte in utf8.suffix(16) { hasher.combine(byte) } }
        }
    }

    package let capacity: Int
    private var entries: [Key: Remembered] = [:]
    private var owner: Owner?
    /// The `Revocations` generation the entries were checked at.
    private var generation: UInt64 = 0

    package init(capacity: Int = 1024) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    package var count: Int { entries.count }

    /// What was remembered for `value` under `owner`, while its session is still whole at
    /// `now` and no session was ended since it was checked (`generation`).
    package func remembered(for value: Substring, owner: Owner, generation: UInt64 = 0, now: Int64) -> Remembered? {
        guard self.owner === owner, self.generation == generation else {
            entries.removeAll(keepingCapacity: true)
            self.owner = owner
            self.generation = generation
            return nil
        }
        let key = Key(value: value)
        guard let entry = entries[key] else { return nil }
        guard now < entry.expires else {
            entries[key] = nil
            return nil
        }
        return entry
    }

    /// Keeps `session`, which `value` opened to under `owner` with nothing dropped from it,
    /// until `until` (its earliest grant expiry by default; sooner when a grant's activity
    /// time is due to move).
    @discardableResult
    package func remember(_ session: Session, for value: Substring, owner: Owner, generation: UInt64 = 0, until: Int64? = nil) -> Remembered? {
        guard let expires = until ?? session.grants.values.map(\.expires).min() else { return nil }
        if self.owner !== owner || self.generation != generation {
            entries.removeAll(keepingCapacity: true)
            self.owner = owner
            self.generation = generation
        }
        if entries.count >= capacity { entries.remove(at: entries.startIndex) }
        let entry = Remembered(session: session, expires: expires)
        // A copy: the Substring would keep the client's whole Cookie field alive.
        entries[Key(value: Substring(String(value)))] = entry
        return entry
    }

    package func removeAll() { entries.removeAll() }
}
