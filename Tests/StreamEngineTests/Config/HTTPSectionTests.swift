import Testing
import StreamEngine

@Suite("ConfigLoader: the http section")
struct HTTPSectionTests {
    @Test("http.listen is the HTTP service's address; a bad one is reported at its line")
    func httpListen() throws {
        let base = ConfigFixtures.pipeline(steps: "      - filter: [{ field: a, op: exists }]\n")
        #expect(try ConfigFixtures.load(base).httpListen == nil)
        let config = try ConfigFixtures.load("http:\n  listen: 127.0.0.1:8080\n" + base)
        #expect(config.httpListen == "127.0.0.1:8080")

        let bad = ConfigFixtures.diagnostics("http:\n  listen: localhost\n" + base)
        #expect(bad.count == 1 && bad.first?.location.line == 2, "\(bad)")
        #expect(bad.first?.message.contains("expected host:port") == true, "\(bad)")
        let unknownKey = ConfigFixtures.diagnostics("http:\n  port: 8080\n" + base)
        #expect(unknownKey.contains { $0.location.line == 2 }, "\(unknownKey)")
    }
}
