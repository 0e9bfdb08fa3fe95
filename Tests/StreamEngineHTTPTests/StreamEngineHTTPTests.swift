import Testing
import Hummingbird
import StreamEngine
@testable import StreamEngineHTTP

@Suite("StreamEngineHTTP pieces")
struct StreamEngineHTTPTests {
    @Test("listen addresses parse as host:port")
    func listenAddress() {
        #expect(HTTPListenAddress(parsing: "127.0.0.1:8080") == HTTPListenAddress(host: "127.0.0.1", port: 8080))
        #expect(HTTPListenAddress(parsing: "0.0.0.0:0")?.port == 0)
        for bad in ["8080", ":8080", "host:", "host:70000", "host:x"] { #expect(HTTPListenAddress(parsing: bad) == nil, "\(bad)") }
    }

    @Test("an application's OpenAPI fragment joins the engine's paths and schemas")
    func openAPIMerge() throws {
        let fragment = #"{"paths": {"/things/{id}": {"get": {"responses": {}}}}, "components": {"schemas": {"Thing": {"type": "object"}}}}"#
        let doc = OpenAPIDocument.merged(engine: OpenAPIDocument.engine, fragments: [fragment])
        let paths = try #require(doc["paths"]?.objectValue)
        #expect(paths.keys.contains("/things/{id}") && paths.keys.contains("/stores/{store}/{key}") && paths.keys.contains("/metrics"))
        let schemas = try #require(doc["components"]?["schemas"]?.objectValue)
        #expect(schemas.keys.contains("Thing") && schemas.keys.contains("Problem"))
    }

    @Test("a known path asked with another method is told its allowed methods")
    func allowedMethods() {
        let m = ProblemMiddleware<Hummingbird.BasicRequestContext>(openAPI: OpenAPIDocument.merged(engine: OpenAPIDocument.engine, fragments: []))
        #expect(m.allowedMethods("/stores/user-purchases/u-1") == ["GET"])
        #expect(m.allowedMethods("/health") == ["GET"])
        #expect(m.allowedMethods("/nothing/here") == nil)
    }

    @Test("problem documents carry type, title, status, detail and the field")
    func problemDocument() throws {
        let p = Problem.badRequest(field: "price", "field 'price' is missing")
        let doc = try #require(p.document.objectValue)
        #expect(doc["status"]?.intValue == 400 && doc["field"]?.stringValue == "price" && doc["title"]?.stringValue == "Invalid request")
        #expect(doc["type"]?.stringValue != nil && doc["detail"]?.stringValue == "field 'price' is missing")
    }
}
