import Foundation

/// Runs blocking work — librdkafka calls, large file reads — on a thread of its
/// own and resumes the caller with its result, so that Swift's cooperative
/// thread pool is never blocked.
///
/// For tools built on the engine: the `stream-engine` command, the benchmark,
/// state inspection and tests.
///
/// - Parameters:
///   - name: the thread's name (shown by debuggers and `top -H`).
///   - body: the blocking work.
/// - Returns: what `body` returns.
/// - Throws: what `body` throws.
public func runOnDedicatedThread<T: Sendable>(
    _ name: String, _ body: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.name = name
        thread.start()
    }
}
