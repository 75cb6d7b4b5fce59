/// Durations as written in the configuration: one or more `<number><unit>` groups with
/// units ms, s, m, h, d (`90s`, `15m`, `1h30m`, `7d`).
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        var total: Int64 = 0
        var digits = ""
        var unit = ""
        var sawGroup = false
        func flush() -> Bool {
            guard let number = Int64(digits), !unit.isEmpty else { return false }
            let millisecondsPerUnit: Int64
            switch unit {
            case "ms": millisecondsPerUnit = 1
            case "s": millisecondsPerUnit = 1_000
            case "m": millisecondsPerUnit = 60_000
            case "h": millisecondsPerUnit = 3_600_000
            case "d": millisecondsPerUnit = 86_400_000
            default: return false
            }
            let (product, overflow) = number.multipliedReportingOverflow(by: millisecondsPerUnit)
            guard !overflow, product <= 3_650 * 86_400_000 else { return false }
            total += product
            digits = ""; unit = ""; sawGroup = true
            return true
        }
        for character in text {
            if character.isASCII, character.isNumber {
                if !unit.isEmpty { guard flush() else { return nil } }
                digits.append(character)
            } else if character.isASCII, character.isLetter {
                guard !digits.isEmpty else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard flush(), sawGroup else { return nil }
        return .milliseconds(total)
    }
}
