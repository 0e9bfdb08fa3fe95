import StreamEngine

/// The OpenAPI 3.0 document of the engine's routes; an application's routes join
/// it through fragments of the same shape (`paths`, `components.schemas`).
public enum OpenAPIDocument {
    /// Merges the `paths` and `components.schemas` of `fragments` into `engine`.
    public static func merged(engine: String, fragments: [String]) -> JSONValue {
        guard case .object(var doc) = (try? JSONValue.parse(engine)) ?? .null else { return .null }
        var paths = doc["paths"]?.objectValue ?? [:]
        var components = doc["components"]?.objectValue ?? [:]
        var schemas = components["schemas"]?.objectValue ?? [:]
        var examples = JSONObject()
        for text in fragments {
            guard let f = (try? JSONValue.parse(text))?.objectValue else { continue }
            for (k, v) in f["paths"]?.objectValue ?? [:] { _ = paths.updateValue(v, forKey: k) }
            for (k, v) in f["x-parameter-examples"]?.objectValue ?? [:] { _ = examples.updateValue(v, forKey: k) }
            for (k, v) in f["components"]?.objectValue?["schemas"]?.objectValue ?? [:] { _ = schemas.updateValue(v, forKey: k) }
            if let info = f["info"] { _ = doc.updateValue(info, forKey: "info") }
        }
        // `x-parameter-examples` of a fragment: example values of the engine's parameters (such as a
        // store name that exists in the application), so that generated requests reach real data.
        if !examples.isEmpty {
            for (path, item) in paths {
                guard case .object(var pathItem) = item else { continue }
                for (method, op) in pathItem {
                    guard case .object(var operation) = op, let params = operation["parameters"]?.arrayValue else { continue }
                    operation["parameters"] = .array(params.map { p in
                        guard case .object(var o) = p, let name = o["name"]?.stringValue, let e = examples[name], o["example"] == nil else { return p }
                        o["example"] = e
                        return .object(o)
                    })
                    pathItem[method] = .object(operation)
                }
                paths[path] = .object(pathItem)
            }
        }
        _ = components.updateValue(.object(schemas), forKey: "schemas")
        _ = doc.updateValue(.object(paths), forKey: "paths")
        _ = doc.updateValue(.object(components), forKey: "components")
        return .object(doc)
    }

    /// The engine's routes.
    public static let engine = #"""
    {
      "openapi": "3.0.3",
      "info": {"title": "StreamEngine instance", "version": "1.0.0",
               "description": "Interactive queries over the state stores of every instance, metrics, health and the live dashboard."},
      "paths": {
        "/health": {"get": {"summary": "Liveness", "operationId": "health",
          "responses": {"200": {"description": "The process is alive", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
        "/ready": {"get": {"summary": "Readiness: every assigned partition's tasks restored and running", "operationId": "ready",
          "responses": {
            "200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}},
            "503": {"description": "Not ready (joining the group or restoring)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
          "responses": {"200": {"description": "Prometheus text exposition format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
          "responses": {"200": {"description": "OpenAPI 3.0 document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/topology": {"get": {"summary": "The topology: pipelines, their topics and stores, and the Mermaid picture of `stream-engine describe`", "operationId": "topology",
          "responses": {"200": {"description": "Topology", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Topology"}}}}}}},
        "/instances": {"get": {"summary": "Live instances of the application, as announced through Kafka", "operationId": "instances",
          "responses": {"200": {"description": "Instances", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Instances"}}}}}}},
        "/": {"get": {"summary": "Live dashboard (HTML)", "operationId": "dashboard",
          "responses": {"200": {"description": "The dashboard page", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/stores": {"get": {"summary": "State stores, their partitions and the instances holding them", "operationId": "listStores",
          "responses": {"200": {"description": "Stores", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StoreList"}}}}}}},
        "/stores/{store}": {"get": {"summary": "Scan a store in key order over every instance: keys with a prefix and/or in [from, to], at most limit", "operationId": "scanStore",
          "parameters": [
            {"name": "store", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}},
            {"name": "prefix", "in": "query", "required": false, "schema": {"type": "string"}},
            {"name": "from", "in": "query", "required": false, "schema": {"type": "string"}, "description": "Smallest key (inclusive)"},
            {"name": "to", "in": "query", "required": false, "schema": {"type": "string"}, "description": "Largest key (inclusive)"},
            {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}}],
          "responses": {
            "200": {"description": "Matching entries", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScanResult"}}}},
            "400": {"description": "Invalid limit", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "404": {"description": "Unknown store", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "503": {"description": "Partition counts not known yet", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}},
        "/stores/{store}/{key}": {"get": {"summary": "A key's value, from the instance holding its partition (forwarded when that is another instance)", "operationId": "getStoreKey",
          "parameters": [
            {"name": "store", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}},
            {"name": "key", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}],
          "responses": {
            "200": {"description": "The value", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StoreEntry"}}}},
            "400": {"description": "Invalid key", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "404": {"description": "Unknown store or key", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "502": {"description": "The owning instance did not answer", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "503": {"description": "No instance holds the key's partition right now (rebalancing, restoring)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}}
      },
      "components": {"schemas": {
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
          "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                         "field": {"type": "string", "description": "The request field at fault"}}},
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}},
        "Readiness": {"type": "object", "required": ["ready", "tasks", "restoring"],
          "properties": {"ready": {"type": "boolean"}, "tasks": {"type": "integer"}, "restoring": {"type": "integer"}}},
        "Topology": {"type": "object", "required": ["applicationId", "dlqTopic", "mermaid", "pipelines"],
          "properties": {"applicationId": {"type": "string"}, "dlqTopic": {"type": "string"}, "mermaid": {"type": "string"},
            "pipelines": {"type": "array", "items": {"type": "object", "required": ["name", "sources", "stores"],
              "properties": {"name": {"type": "string"}, "sources": {"type": "array", "items": {"type": "string"}},
                             "repartition": {"type": "string", "nullable": true}, "stores": {"type": "array", "items": {"type": "string"}}}}}}},
        "Instance": {"type": "object", "required": ["id", "url", "stores", "partitions", "ready", "announcedAt"],
          "properties": {"id": {"type": "string"}, "url": {"type": "string"},
            "stores": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}},
            "partitions": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}},
            "ready": {"type": "boolean"}, "announcedAt": {"type": "integer"}}},
        "Instances": {"type": "object", "required": ["self", "topic", "instances"],
          "properties": {"self": {"type": "string"}, "topic": {"type": "string"}, "instances": {"type": "array", "items": {"$ref": "#/components/schemas/Instance"}}}},
        "StoreList": {"type": "object", "required": ["applicationId", "instance", "stores"],
          "properties": {"applicationId": {"type": "string"}, "instance": {"type": "string"},
            "stores": {"type": "array", "items": {"type": "object", "required": ["name", "pipeline", "subTopology", "changelog", "partitions", "localPartitions", "owners"],
              "properties": {"name": {"type": "string"}, "pipeline": {"type": "string"}, "subTopology": {"type": "string"}, "changelog": {"type": "string"},
                "partitions": {"type": "integer", "nullable": true}, "localPartitions": {"type": "array", "items": {"type": "integer"}},
                "owners": {"type": "object", "additionalProperties": {"type": "string"}}}}}}},
        "StoreEntry": {"type": "object", "required": ["store", "key", "partition", "value", "expiresAt", "servedBy"],
          "properties": {"store": {"type": "string"}, "key": {"type": "string"}, "partition": {"type": "integer"}, "value": {},
                         "expiresAt": {"type": "string", "nullable": true}, "servedBy": {"type": "string"}}},
        "ScanResult": {"type": "object", "required": ["store", "entries", "more", "partitions"],
          "properties": {"store": {"type": "string"}, "more": {"type": "boolean"},
            "entries": {"type": "array", "items": {"type": "object", "required": ["key", "partition", "value", "expiresAt"],
              "properties": {"key": {"type": "string"}, "partition": {"type": "integer"}, "value": {}, "expiresAt": {"type": "string", "nullable": true}}}},
            "partitions": {"type": "object", "required": ["covered", "missing"],
              "properties": {"covered": {"type": "array", "items": {"type": "integer"}}, "missing": {"type": "array", "items": {"type": "integer"}}}}}}
      }}
    }
    """#
}
