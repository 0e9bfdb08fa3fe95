import Testing
@testable import StreamEngine

@Suite("Merged input: the bounded wait for an upstream task")
struct MergeWaitTests {
    @Test("rounds 100 ms apart count in full: the 30 s bound is reached after 30 s of rounds, with a log line every 10 s")
    func steadyRounds() {
        var wait = MergeWait()
        let t0 = ContinuousClock.now
        var logs: [Duration] = []
        var reachedAt: Duration?
        for i in 0...310 {
            let t = Duration.milliseconds(100 * i)
            if wait.note(now: t0 + t) { logs.append(t) }
            if reachedAt == nil, wait.waited >= StreamTask.mergeWaitBound { reachedAt = t }
        }
        #expect(logs == [.seconds(10), .seconds(20), .seconds(30)])
        #expect(reachedAt == .seconds(30))
    }

    @Test("a stall of the whole instance (40 s without a round) counts 1 s, so the input does not give up right after it")
    func stallDoesNotUseUpTheWait() {
        var wait = MergeWait()
        let t0 = ContinuousClock.now
        _ = wait.note(now: t0)
        _ = wait.note(now: t0 + .seconds(5))
        #expect(wait.waited == .seconds(1))
        _ = wait.note(now: t0 + .seconds(45))
        #expect(wait.waited == .seconds(2))
        #expect(wait.waited < StreamTask.mergeWaitBound)
        // Rounds resume: the wait goes on counting from there.
        for i in 1...28 { _ = wait.note(now: t0 + .seconds(45) + .milliseconds(500 * i)) }
        #expect(wait.waited == .seconds(16))
    }
}
