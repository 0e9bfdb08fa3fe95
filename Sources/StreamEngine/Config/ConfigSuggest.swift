/// "Did you mean" suggestions for the configuration loader.
public enum ConfigSuggest {
    /// Levenshtein edit distance between two strings, counted in Unicode scalars.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// The closest candidate to `input`, case-insensitively:
    /// - a candidate that starts with the input (at least 3 characters, e.g. `int` -> `integer`), else
    /// - the candidate with the smallest edit distance, if that distance is at most 2 (at most 1
    ///   for candidates of 3 characters or fewer) or at most a third of the candidate's length,
    ///   and is not a complete rewrite.
    ///
    /// Ties go to the earlier candidate.
    static func closest(to input: String, in candidates: [String]) -> String? {
        let needle = input.lowercased()
        if needle.unicodeScalars.count >= 3,
           let prefixed = candidates.first(where: { $0.lowercased().hasPrefix(needle) && $0.lowercased() != needle }) {
            return prefixed
        }
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let length = candidate.unicodeScalars.count
            let d = distance(needle, candidate.lowercased())
            let allowed = length <= 3 ? 1 : max(2, length / 3)
            guard d <= allowed, d < max(length, needle.unicodeScalars.count) else { continue }
            if best == nil || d < best!.distance { best = (candidate, d) }
        }
        return best?.name
    }

    /// ` (did you mean 'x'?)` or the empty string.
    public static func hint(for input: String, in candidates: [String]) -> String {
        closest(to: input, in: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }

    /// `a, b, c`.
    public static func list(_ names: [String]) -> String {
        names.joined(separator: ", ")
    }
}
