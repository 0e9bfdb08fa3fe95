import RedisClient
import Testing

@Suite("RedisURL")
struct RedisURLTests {
    @Test("full URL with user, password, port and db")
    func fullURL() throws {
        let url = try RedisURL("redis://alice:p%40ss@cache.local:6390/3")
        #expect(url.host == "cache.local")
        #expect(url.port == 6390)
        #expect(url.db == 3)
        #expect(url.user == "alice")
        #expect(url.password == "p@ss")
        #expect(url.address == "cache.local:6390")
        #expect(!url.description.contains("p@ss"))
    }

    @Test("host and port only: no auth, db 0")
    func hostAndPort() throws {
        let url = try RedisURL("redis://127.0.0.1:6380")
        #expect(url == RedisURL(host: "127.0.0.1", port: 6380, db: 0, user: nil, password: nil))
    }

    @Test("defaults: port 6379, db 0; password-only user info")
    func defaults() throws {
        #expect(try RedisURL("redis://localhost") == RedisURL(host: "localhost"))
        #expect(try RedisURL("redis://localhost/") == RedisURL(host: "localhost"))
        let url = try RedisURL("redis://:secret@localhost/2")
        #expect(url.user == nil)
        #expect(url.password == "secret")
        #expect(url.port == 6379)
        #expect(url.db == 2)
    }

    @Test("IPv6 host in brackets")
    func ipv6() throws {
        let url = try RedisURL("redis://[::1]:7000/1")
        #expect(url.host == "::1")
        #expect(url.port == 7000)
        #expect(url.address == "[::1]:7000")
    }

    @Test(
        "bad URLs are rejected with a message naming the URL",
        arguments: [
            "http://localhost:6379", "localhost:6379", "redis://", "redis://host:0", "redis://host:99999",
            "redis://host:port", "redis://host:6379/x", "redis://host:6379/-1", "redis://user@host",
            "redis://host?db=1",
        ])
    func badURL(_ text: String) {
        let error = #expect(throws: RedisError.self) { try RedisURL(text) }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.message.contains(text) == true)
    }
}
