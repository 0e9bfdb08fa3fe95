import Dispatch
import Foundation
import Synchronization
import Testing
import ThreadExecutors

/// An actor whose methods run on a dedicated thread, as RedisConnection does.
private actor ThreadBound {
    let executor: DedicatedThreadExecutor
    private(set) var count = 0

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    init(executor: DedicatedThreadExecutor) {
        self.executor = executor
    }

    /// Increments the counter; returns whether it ran on the executor's thread, and the
    /// OS-level name of the thread it ran on.
    func increment() -> (onExecutorThread: Bool, threadName: String) {
        count += 1
        #if os(Linux)
        let osName = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
        return (executor.isCurrentThread, osName.trimmingCharacters(in: .newlines))
        #else
        return (executor.isCurrentThread, Thread.current.name ?? "")
        #endif
    }
}

private struct Boom: Error, Equatable {}

/// A shareable value behind a Mutex (a local `Mutex` cannot be captured by escaping closures).
private final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R {
        mutex.withLock { body(&$0) }
    }
}

@Suite("DedicatedThreadExecutor", .timeLimit(.minutes(1)))
struct DedicatedThreadExecutorTests {
    /// Suspends until `condition` holds (polling), or fails after 10 seconds.
    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not reached within 10 s")
                return
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Occupies the executor's thread with a closure that waits on the returned gate; returns
    /// once the closure runs. Signal the gate and await the task to let it go.
    private func holdThread(of executor: DedicatedThreadExecutor) async throws -> (gate: DispatchSemaphore, blocker: Task<Void, any Error>) {
        let gate = DispatchSemaphore(value: 0)
        let blocked = Locked(false)
        let blocker = Task {
            try await executor.run {
                blocked.withLock { $0 = true }
                gate.wait()
            }
        }
        try await waitUntil { blocked.withLock { $0 } }
        return (gate, blocker)
    }

    @Test("actor methods run on the dedicated thread, serially")
    func actorIsolation() async throws {
        let executor = DedicatedThreadExecutor(name: "actor-thread-with-a-long-name")
        defer { executor.shutdown() }
        let bound = ThreadBound(executor: executor)

        let results = await withTaskGroup(of: (Bool, String).self) { group in
            for _ in 0..<1000 {
                group.addTask { await bound.increment() }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 1000)
        #expect(results.allSatisfy { $0.0 })
        #expect(results.allSatisfy { $0.1 == "actor-thread-wi" }, "\(Set(results.map(\.1)))")
        #expect(await bound.count == 1000)
        #expect(!executor.isCurrentThread)
    }

    @Test("run(_:) returns the closure's value on the dedicated thread and rethrows its error")
    func runValuesAndErrors() async throws {
        let executor = DedicatedThreadExecutor(name: "test-run")
        defer { executor.shutdown() }
        let (value, onThread) = try await executor.run { (21 * 2, executor.isCurrentThread) }
        #expect(value == 42)
        #expect(onThread)
        await #expect(throws: Boom.self) { try await executor.run { throw Boom() } }
        // The thread survives a throwing closure.
        #expect(try await executor.run { "still alive" } == "still alive")
    }

    @Test("jobs run in FIFO order")
    func fifoOrder() async throws {
        let executor = DedicatedThreadExecutor(name: "test-fifo")
        defer { executor.shutdown() }
        let order = Locked<[Int]>([])

        // Hold the thread so that the following closures queue up behind it.
        let (gate, blocker) = try await holdThread(of: executor)
        var tasks: [Task<Void, any Error>] = []
        for index in 0..<200 {
            tasks.append(Task { try await executor.run { order.withLock { $0.append(index) } } })
            try await waitUntil { executor.pendingJobCount == index + 1 }
        }
        gate.signal()
        try await blocker.value
        for task in tasks { try await task.value }
        #expect(order.withLock { $0 } == Array(0..<200))
    }

    @Test("blocking closures do not occupy Swift's cooperative thread pool")
    func noCooperativePoolStarvation() async throws {
        // More blocked executors than the pool has threads (2 on a 2-core machine): if the
        // closures ran on the pool, this task could not run to release them.
        let executors = (0..<6).map { DedicatedThreadExecutor(name: "test-blocking-\($0)") }
        defer { executors.forEach { $0.shutdown() } }
        let released = Locked(false)
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for executor in executors {
                group.addTask {
                    try await executor.run {
                        let deadline = ContinuousClock.now + .seconds(10)
                        while !released.withLock({ $0 }) && ContinuousClock.now < deadline {
                            usleep(1000)
                        }
                        return released.withLock { $0 }
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            await Task.yield()
            released.withLock { $0 = true }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes == Array(repeating: true, count: 6))
    }

    @Test("shutdown() drains the queue first; run(_:) afterwards throws")
    func shutdownDrains() async throws {
        let executor = DedicatedThreadExecutor(name: "test-shutdown")
        let done = Locked(0)
        let (gate, blocker) = try await holdThread(of: executor)
        var tasks: [Task<Void, any Error>] = []
        for _ in 0..<50 {
            tasks.append(Task { try await executor.run { done.withLock { $0 += 1 } } })
        }
        try await waitUntil { executor.pendingJobCount == 50 }

        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) { gate.signal() }
        await Task.detached { executor.shutdown() }.value
        // shutdown() returned only after all 50 queued closures ran.
        #expect(done.withLock { $0 } == 50)
        try await blocker.value
        for task in tasks { try await task.value }

        let error = await #expect(throws: ExecutorShutdownError.self) { try await executor.run { 1 } }
        #expect(error?.executorName == "test-shutdown")
    }

    @Test("an actor used after shutdown still runs, on a restarted dedicated thread")
    func actorAfterShutdown() async throws {
        let executor = DedicatedThreadExecutor(name: "test-restart")
        let bound = ThreadBound(executor: executor)
        #expect(await bound.increment().onExecutorThread)
        executor.shutdown()
        #expect(await bound.increment().onExecutorThread)
        #expect(await bound.count == 2)
        executor.shutdown()
    }
}
