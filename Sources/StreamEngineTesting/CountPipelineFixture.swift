import Foundation

/// The count-per-key pipeline the engine's, the CLI's and the driver's tests share: clicks
/// keyed by user, counted into a store and written to Redis hashes `clicks:<user>`.
public enum CountPipelineFixture {
    public static let applicationId = "count-app"
    public static let store = "clicks-per-user"
    public static let topic = "clicks"

    public static let yaml = """
        application.id: count-app
        defaults:
          commit.interval.ms: 50
        topologies:
          - name: clicks
            source:
              topics: [clicks]
              key: user
              timestamp: ts
              required: { user: string, ts: string }
            steps:
              - aggregate: { store: clicks-per-user, aggregator: count }
              - redis: { key: "clicks:{key}", mode: hash, fields: { count: count } }
        """

    /// `count` click records over `users` users (spread by a fixed stride, so every user gets
    /// some), with `"n"` the record's index when `numbered`, and the count each user must end with.
    public static func clicks(count: Int, users: Int, numbered: Bool = false) -> (records: [(key: String, value: String)], expected: [String: Int]) {
        var expected: [String: Int] = [:]
        var records: [(key: String, value: String)] = []
        for i in 0..<count {
            let user = "u\((i * 7919) % users)"
            expected[user, default: 0] += 1
            let ts = "2024-12-14T12:00:\(String(format: "%02d", i % 60))Z"
            let n = numbered ? #","n":\#(i)"# : ""
            records.append((user, #"{"user":"\#(user)","ts":"\#(ts)"\#(n)}"#))
        }
        return (records, expected)
    }
}
