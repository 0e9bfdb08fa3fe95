import MariaDBClient
import Testing

@Suite struct MariaDBURLTests {
    @Test func parsesEveryPart() throws {
        let url = try MariaDBURL("mysql://shop:s%40cret:x@db.internal:3307/orders")
        #expect(url.host == "db.internal")
        #expect(url.port == 3307)
        #expect(url.user == "shop")
        #expect(url.password == "s@cret:x")
        #expect(url.database == "orders")
    }

    @Test func defaultPortAndNoPassword() throws {
        let url = try MariaDBURL("mariadb://reader@127.0.0.1/db")
        #expect(url.port == 3306)
        #expect(url.password == nil)
        #expect(url.description == "mysql://reader@127.0.0.1:3306/db")
    }

    @Test func passwordNeverInDescriptionOrErrors() throws {
        let url = try MariaDBURL("mysql://shop:hunter2@h:1/d")
        #expect(url.description == "mysql://shop:***@h:1/d")
        #expect(!"\(url)".contains("hunter2"))
        #expect(try MariaDBURL(url.urlString) == url)
        do {
            _ = try MariaDBURL("mysql://shop:hunter2@h:99999/d")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("port must be 1...65535"))
            #expect(!error.message.contains("hunter2"))
        }
    }

    @Test(arguments: ["redis://u:p@h/d", "mysql://h:3306/d", "mysql://u:p@h:3306", "mysql://u:p@h:3306/", "mysql://u:p@:3306/d"])
    func rejects(_ text: String) {
        #expect(throws: MariaDBError.self) { try MariaDBURL(text) }
    }
}
