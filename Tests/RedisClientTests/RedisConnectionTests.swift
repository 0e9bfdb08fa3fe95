import Foundation
import Logging
import RedisClient
import Testing

/// Every test starts its own real redis-server and stops it at the end.
@Suite("RedisConnection against a real redis-server", .timeLimit(.minutes(2)))
struct RedisConnectionTests {
    private func connect(_ url: RedisURL, reconnect: RedisConnection.ReconnectPolicy = .init()) -> RedisConnection {
        var logger = Logger(label: "RedisClientTests")
        logger.logLevel = .error
        return RedisConnection(url: url, commandTimeout: .seconds(10), reconnect: reconnect, logger: logger)
    }

    @Test("10,000 pipelined SETs then GETs round-trip")
    func pipelineOf10000Commands() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(server.url)

        let count = 10_000
        let sets = (0..<count).map { ["SET", "key:\($0)", "value-\($0)"] }
        let setReplies = try await redis.pipeline(sets)
        #expect(setReplies.count == count)
        #expect(setReplies.allSatisfy { $0 == .status("OK") })

        let gets = (0..<count).map { ["GET", "key:\($0)"] }
        let values = try await redis.pipeline(gets).map(\.string)
        #expect(values == (0..<count).map { "value-\($0)" })
        #expect(try await redis.command(["DBSIZE"]).int == Int64(count))
        await redis.close()
    }

    @Test("error replies: command() throws them, pipeline() returns them in place")
    func serverErrors() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(server.url)

        try await redis.command(["SET", "text", "hello"])
        let error = await #expect(throws: RedisError.self) { try await redis.command(["INCR", "text"]) }
        #expect(error?.kind == .server)
        #expect(error?.message.hasPrefix("ERR value is not an integer") == true)

        let replies = try await redis.pipeline([
            ["INCR", "n"], ["LPUSH", "text", "x"], ["GET", "missing"], ["INCR", "n"],
        ])
        #expect(replies[0] == .integer(1))
        #expect(replies[1].errorMessage?.hasPrefix("WRONGTYPE") == true)
        #expect(replies[2] == .null)
        #expect(replies[3] == .integer(2))
        // The connection is still usable after error replies.
        #expect(try await redis.command(["GET", "text"]).string == "hello")
        await redis.close()
    }

    @Test("MULTI/EXEC returns the EXEC results and is applied atomically")
    func transaction() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let writer = connect(server.url)
        let reader = connect(server.url)

        let results = try await writer.transaction([["INCR", "counter"], ["SET", "flag", "on"], ["INCR", "counter"]])
        #expect(results == [.integer(1), .status("OK"), .integer(2)])
        let seen = try await reader.command(["MGET", "counter", "flag"]).array?.map(\.string)
        #expect(seen == ["2", "on"])

        // Another connection never observes half of a transaction.
        let observer = Task {
            var torn: [[String?]] = []
            for _ in 0..<300 {
                let pair = try await reader.command(["MGET", "a", "b"]).array?.map(\.string) ?? []
                if pair.count != 2 || pair[0] != pair[1] { torn.append(pair) }
            }
            return torn
        }
        for _ in 0..<300 {
            _ = try await writer.transaction([["INCR", "a"], ["INCR", "b"]])
        }
        #expect(try await observer.value.isEmpty)
        #expect(try await reader.command(["MGET", "a", "b"]).array?.map(\.string) == ["300", "300"])

        await writer.close()
        await reader.close()
    }

    @Test("a failing command inside EXEC is an error element; a queueing error aborts everything")
    func transactionErrors() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(server.url)

        try await redis.command(["SET", "text", "hello"])
        let results = try await redis.transaction([["INCR", "text"], ["SET", "after", "1"]])
        #expect(results.count == 2)
        #expect(results[0].errorMessage?.contains("not an integer") == true)
        #expect(results[1] == .status("OK"))
        #expect(try await redis.command(["GET", "after"]).string == "1")

        // Wrong arity is rejected while queueing: EXECABORT, nothing runs.
        let error = await #expect(throws: RedisError.self) {
            try await redis.transaction([["SET", "never", "1"], ["INCRBY", "x"]])
        }
        #expect(error?.kind == .server)
        #expect(error?.message.contains("EXECABORT") == true)
        #expect(try await redis.command(["EXISTS", "never"]) == .integer(0))
        // The connection is not left inside MULTI.
        #expect(try await redis.command(["PING"]) == .status("PONG"))
        await redis.close()
    }

    @Test("EVALSHA runs a script and reloads it after SCRIPT FLUSH")
    func evalScript() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(server.url)
        let script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"

        #expect(try await redis.evalScript(script, keys: ["total"], args: ["5"]) == .integer(5))
        #expect(try await redis.evalScript(script, keys: ["total"], args: ["7"]) == .integer(12))

        try await redis.command(["SCRIPT", "FLUSH"])
        #expect(try await redis.evalScript(script, keys: ["total"], args: ["3"]) == .integer(15))
        // It was loaded again under its SHA1.
        let sha = try await redis.command(["SCRIPT", "LOAD", script]).string ?? ""
        #expect(try await redis.command(["SCRIPT", "EXISTS", sha]) == .array([.integer(1)]))

        // The call is encoded straight from its strings: every length prefix (one to four
        // digits, 12 arguments and more) and multi-byte UTF-8 come back as they were sent.
        let args = ["", "1", "123456789", "0123456789", String(repeating: "x", count: 99), String(repeating: "y", count: 100),
                    "grüße 日本", String(repeating: "z", count: 1234)] + (0..<5000).map { "a\($0)" }
        let echoed = try await redis.evalScript("return {KEYS[1], unpack(ARGV, 1, 4000)}", keys: ["k:ü"], args: args)
        #expect(echoed == .array((["k:ü"] + args.prefix(4000)).map { .bulk(Array($0.utf8)) }))
        let last = try await redis.evalScript("return ARGV[#ARGV]", keys: [], args: args)
        #expect(last == .bulk(Array("a4999".utf8)), "all \(args.count) arguments arrived")

        let error = await #expect(throws: RedisError.self) {
            try await redis.evalScript("return redis.error_reply('boom')", keys: [], args: [])
        }
        #expect(error?.kind == .server)
        #expect(error?.message.contains("boom") == true)
        await redis.close()
    }

    @Test("Arguments encoded ahead (RedisArguments) arrive after the plain ones, in order and byte for byte")
    func encodedArguments() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(server.url)
        // Built in pieces, as a commit builds its writes key by key, then joined.
        var first = RedisArguments(["", "grüße 日本", String(repeating: "x", count: 1234)])
        first.append(0)
        first.append(1_000_000_007)
        first.append(-42)
        var second = RedisArguments()
        for i in 0..<3000 { second.append("a\(i)") }
        var joined = first
        joined.append(contentsOf: second)
        let expected = ["", "grüße 日本", String(repeating: "x", count: 1234), "0", "1000000007", "-42"] + (0..<3000).map { "a\($0)" }
        #expect(joined.count == expected.count)
        #expect(joined.strings == expected, "decoded as they were appended")

        let echoed = try await redis.evalScript("return ARGV", calls: [RedisScriptCall(keys: [], args: ["p1", "p2"], encodedArgs: joined)])
        #expect(echoed == [.array((["p1", "p2"] + expected).map { .bulk(Array($0.utf8)) })])
        await redis.close()
    }

    @Test("several script calls go in one batch, in order; after SCRIPT FLUSH every call runs once")
    func evalScriptBatch() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(server.url)
        let script = "redis.call('RPUSH', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], ARGV[2])"
        let calls = (1...5).map { RedisScriptCall(keys: ["order", "sum"], args: ["c\($0)", String($0)]) }

        #expect(try await redis.evalScript(script, calls: calls) == [1, 3, 6, 10, 15].map { .integer($0) })
        #expect(try await redis.command(["LRANGE", "order", "0", "-1"]) == .array((1...5).map { .bulk(Array("c\($0)".utf8)) }))

        // Unknown to the server: every call is answered NOSCRIPT, the script is loaded again
        // and the batch sent once more; each call is applied exactly once.
        try await redis.command(["SCRIPT", "FLUSH"])
        #expect(try await redis.evalScript(script, calls: Array(calls.prefix(2))) == [.integer(16), .integer(18)])
        #expect(try await redis.command(["LLEN", "order"]) == .integer(7))
        #expect(try await redis.evalScript(script, calls: []) == [])

        // A call that fails throws its error once the batch is answered; the others ran.
        let failing = [RedisScriptCall(keys: ["order", "sum"], args: ["ok", "1"]), RedisScriptCall(keys: ["order", "sum"], args: ["bad", "x"]),
                       RedisScriptCall(keys: ["order", "sum"], args: ["after", "1"])]
        let error = await #expect(throws: RedisError.self) { try await redis.evalScript(script, calls: failing) }
        #expect(error?.kind == .server)
        #expect(try await redis.command(["GET", "sum"]) == .bulk(Array("20".utf8)))
        #expect(try await redis.command(["LRANGE", "order", "-3", "-1"]) == .array(["ok", "bad", "after"].map { .bulk(Array($0.utf8)) }))
        await redis.close()
    }

    @Test("binary values with NUL, CR/LF and 0xFF bytes round-trip")
    func binarySafe() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(server.url)

        let key: [UInt8] = Array("bin\u{0}key".utf8)
        var value: [UInt8] = [0, 1, 2, 0, 13, 10, 0xFF, 0xFE, 0]
        value += (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await redis.command([Array("SET".utf8), key, value])
        #expect(try await redis.command([Array("GET".utf8), key]) == .bulk(value))
        #expect(try await redis.command([Array("STRLEN".utf8), key]) == .integer(Int64(value.count)))
        // The key with a NUL is distinct from its prefix.
        #expect(try await redis.command(["EXISTS", "bin"]) == .integer(0))

        let empty: [UInt8] = []
        let replies = try await redis.pipeline([
            [Array("SET".utf8), Array("empty".utf8), empty], [Array("GET".utf8), Array("empty".utf8)],
        ])
        #expect(replies == [.status("OK"), .bulk([])])
        await redis.close()
    }

    @Test("AUTH with --requirepass, ACL users and SELECT db")
    func auth() async throws {
        let server = try LocalRedisServer(
            password: "s3cret", extraArguments: ["--user", "alice", "on", ">alicepw", "~*", "&*", "+@all"])
        defer { server.stop() }

        let authed = connect(server.url)
        #expect(try await authed.command(["PING"]) == .status("PONG"))

        let noPassword = connect(RedisURL(host: "127.0.0.1", port: server.port))
        let noAuth = await #expect(throws: RedisError.self) { try await noPassword.command(["GET", "k"]) }
        #expect(noAuth?.kind == .server)
        #expect(noAuth?.message.hasPrefix("NOAUTH") == true)

        let wrong = connect(RedisURL(host: "127.0.0.1", port: server.port, password: "nope"))
        let wrongError = await #expect(throws: RedisError.self) { try await wrong.command(["PING"]) }
        #expect(wrongError?.kind == .server)
        #expect(wrongError?.message.contains("AUTH") == true)

        let alice = connect(try RedisURL("redis://alice:alicepw@127.0.0.1:\(server.port)/3"))
        #expect(try await alice.command(["ACL", "WHOAMI"]).string == "alice")
        try await alice.command(["SET", "in-db-3", "yes"])
        #expect(try await authed.command(["GET", "in-db-3"]) == .null)
        #expect(try await authed.pipeline([["SELECT", "3"], ["GET", "in-db-3"]])[1].string == "yes")

        for connection in [authed, noPassword, wrong, alice] { await connection.close() }
    }

    @Test("a stopped Redis yields thrown errors, and the same connection recovers after restart")
    func outageAndRecovery() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(
            server.url, reconnect: .init(maxAttempts: 3, initialDelay: .milliseconds(20), maxDelay: .milliseconds(100)))
        try await redis.command(["SET", "k", "before"])

        server.stop()
        // The idle connection is detected as closed; reconnecting is refused.
        let down = await #expect(throws: RedisError.self) { try await redis.command(["GET", "k"]) }
        #expect(down?.kind == .connectionRefused)
        #expect(down?.message.contains("redis at 127.0.0.1:\(server.port): Connection refused") == true)
        await #expect(throws: RedisError.self) { try await redis.pipeline([["PING"], ["PING"]]) }
        #expect(await redis.isConnected == false)

        try server.start()
        #expect(try await redis.command(["PING"]) == .status("PONG"))
        try await redis.command(["SET", "k", "after"])
        #expect(try await redis.command(["GET", "k"]).string == "after")

        // Restart while the connection is idle: the next call notices and reconnects.
        server.stop()
        try server.start()
        #expect(try await redis.command(["GET", "k"]) == .null)  // no persistence
        await redis.close()
    }

    @Test("the server dropping the connection in the middle of a write is a thrown error, then the connection recovers")
    func connectionDroppedDuringWrite() async throws {
        // Redis answers an over-long bulk string with a protocol error and closes the
        // connection while this client is still writing the value.
        let server = try LocalRedisServer(extraArguments: ["--proto-max-bulk-len", "1mb"])
        defer { server.stop() }
        let redis = connect(server.url)
        try await redis.command(["SET", "small", "1"])

        let huge = [UInt8](repeating: 0x61, count: 32 << 20)
        let error = await #expect(throws: RedisError.self) {
            try await redis.command([Array("SET".utf8), Array("huge".utf8), huge])
        }
        #expect(error?.kind == .io || error?.kind == .server)
        // The same connection reconnects for the next call.
        #expect(try await redis.command(["GET", "small"]).string == "1")
        await redis.close()
    }

    @Test("a connection that never reached Redis gives up with a clear error")
    func neverReachable() async throws {
        let server = try LocalRedisServer()
        let port = server.port
        server.stop()
        let redis = connect(
            RedisURL(host: "127.0.0.1", port: port),
            reconnect: .init(maxAttempts: 4, initialDelay: .milliseconds(10), maxDelay: .milliseconds(40)))
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: RedisError.self) { try await redis.command(["PING"]) }
        #expect(error?.kind == .connectionRefused)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        #expect(error?.message.contains("4 attempts") == true)
        // 10 + 20 + 40 ms of backoff between the attempts.
        #expect(clock.now - start >= .milliseconds(70))
        await redis.close()
    }

    @Test("close() makes later calls throw .closed")
    func close() async throws {
        let server = try LocalRedisServer()
        defer { server.stop() }
        let redis = connect(server.url)
        #expect(try await redis.command(["PING"]) == .status("PONG"))
        await redis.close()
        let error = await #expect(throws: RedisError.self) { try await redis.command(["PING"]) }
        #expect(error?.kind == .closed)
        // Closing twice is harmless.
        await redis.close()
    }

    @Test("LocalRedisServer restarts on the same port and reports whether it runs")
    func localServerLifecycle() throws {
        let server = try LocalRedisServer()
        #expect(server.isRunning)
        #expect(server.url.port == server.port)
        let port = server.port
        server.stop()
        #expect(!server.isRunning)
        try server.start()
        #expect(server.isRunning)
        #expect(server.port == port)
        server.stop()
    }
}
