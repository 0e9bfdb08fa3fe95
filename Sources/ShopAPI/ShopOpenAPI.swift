extension ShopAPI {
    /// The OpenAPI paths and schemas of the shop routes (merged into the engine's document).
    public static let openAPI = #"""
    {
      "x-parameter-examples": {"store": "user-purchases", "key": "u-1"},
      "info": {"title": "StreamEngine shop service", "version": "1.0.0",
               "description": "The shop's real-time features over the pipelines of topologies.yaml, and the engine's interactive queries, metrics and dashboard."},
      "paths": {
        "/price-comparison/{productId}": {"get": {"summary": "Every platform's current price of a product, lowest first", "operationId": "priceComparison",
          "parameters": [{"name": "productId", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}, "example": "p-1"}],
          "responses": {
            "200": {"description": "Prices", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PriceComparison"}}}},
            "404": {"description": "Unknown product (or no price in the last 24 h)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "503": {"description": "Redis unreachable", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}},
        "/recommendation/{userId}": {"get": {"summary": "Up to 20 recommended products; a user without data gets the best sellers over all categories (source popular)", "operationId": "recommendation",
          "parameters": [{"name": "userId", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}, "example": "u-1"}],
          "responses": {
            "200": {"description": "Recommendations", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Recommendation"}}}},
            "503": {"description": "Redis unreachable", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}},
        "/recently-viewed/{viewerId}": {"get": {"summary": "A member's or guest's recently viewed products, latest first (at most 100)", "operationId": "recentlyViewed",
          "parameters": [{"name": "viewerId", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}, "example": "u-1"}],
          "responses": {
            "200": {"description": "Recently viewed (empty for an unknown viewer)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RecentlyViewed"}}}},
            "503": {"description": "Redis unreachable", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}},
        "/purchase-event": {"post": {"summary": "A purchase: validated against the purchases schema, produced to `purchases` keyed by userId", "operationId": "purchaseEvent",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Purchase"}}}},
          "responses": {
            "202": {"description": "Acknowledged by Kafka", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Produced"}}}},
            "400": {"description": "Malformed JSON, a missing or wrongly typed field (named in `field`)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "413": {"description": "Body too large", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "503": {"description": "Kafka did not acknowledge within the delivery timeout", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}},
        "/product-view": {"post": {"summary": "A product view by a member or a guest (guestId from the body or the non-login-id cookie), produced to `user_events`", "operationId": "productView",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProductView"}}}},
          "responses": {
            "202": {"description": "Acknowledged by Kafka", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Produced"}}}},
            "400": {"description": "Invalid body (the field is named in `field`)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "413": {"description": "Body too large", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "503": {"description": "Kafka did not acknowledge within the delivery timeout", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}},
        "/login": {"post": {"summary": "A guest logged in as a member: produced to `logins` keyed by guestId; the merge of the recently viewed lists runs in the pipelines, never in this request", "operationId": "login",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Login"}}}},
          "responses": {
            "202": {"description": "Acknowledged by Kafka", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Produced"}}}},
            "400": {"description": "Invalid body (the field is named in `field`)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "413": {"description": "Body too large", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            "503": {"description": "Kafka did not acknowledge within the delivery timeout", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}}
      },
      "components": {"schemas": {
        "PlatformPrice": {"type": "object", "required": ["platform", "price"], "properties": {"platform": {"type": "string"}, "price": {"type": "number"}}},
        "PriceComparison": {"type": "object", "required": ["productId", "lowest", "platforms", "updatedAt"],
          "properties": {"productId": {"type": "string"}, "lowest": {"$ref": "#/components/schemas/PlatformPrice"},
            "platforms": {"type": "array", "items": {"$ref": "#/components/schemas/PlatformPrice"}},
            "updatedAt": {"type": "string", "nullable": true, "description": "When the product's prices last changed in Redis (ISO-8601 UTC)"}}},
        "Recommendation": {"type": "object", "required": ["userId", "items", "source"],
          "properties": {"userId": {"type": "string"}, "source": {"type": "string", "enum": ["personal", "popular"]},
            "items": {"type": "array", "items": {"type": "object", "required": ["productId", "score", "reason"],
              "properties": {"productId": {"type": "string"}, "score": {"type": "number"},
                "reason": {"type": "string", "enum": ["viewed-and-in-cart", "in-cart", "viewed", "popular-in-your-categories", "related", "popular"]}}}}}},
        "RecentlyViewed": {"type": "object", "required": ["viewerId", "kind", "items"],
          "properties": {"viewerId": {"type": "string"}, "kind": {"type": "string", "nullable": true, "enum": ["member", "guest", null]},
            "items": {"type": "array", "items": {"type": "object", "required": ["productId", "viewedAt"],
              "properties": {"productId": {"type": "string"}, "viewedAt": {"type": "string"}}}}}},
        "Purchase": {"type": "object", "required": ["orderId", "userId", "productId", "category", "price", "quantity", "timestamp"],
          "properties": {"orderId": {"type": "string"}, "userId": {"type": "string", "minLength": 1}, "productId": {"type": "string"}, "category": {"type": "string"},
            "price": {"type": "number", "minimum": 0, "maximum": 10000000}, "quantity": {"type": "integer", "minimum": 1, "maximum": 10000},
            "timestamp": {"type": "string", "format": "date-time", "example": "2024-12-14T10:00:00Z"}}},
        "ProductView": {"type": "object", "required": ["productId"],
          "description": "A member's view has memberId; a guest's has guestId (or sends the non-login-id cookie instead).",
          "properties": {"memberId": {"type": "string", "nullable": true}, "guestId": {"type": "string", "nullable": true}, "productId": {"type": "string", "minLength": 1},
            "category": {"type": "string", "nullable": true}, "eventId": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"}},
          "anyOf": [{"required": ["memberId"], "properties": {"memberId": {"type": "string", "minLength": 1}}},
                    {"required": ["guestId"], "properties": {"guestId": {"type": "string", "minLength": 1}}}]},
        "Login": {"type": "object", "required": ["memberId", "guestId"],
          "description": "guestId may come from the non-login-id cookie instead of the body.",
          "properties": {"memberId": {"type": "string", "minLength": 1}, "guestId": {"type": "string", "minLength": 1}, "timestamp": {"type": "string", "format": "date-time"}}},
        "Produced": {"type": "object", "required": ["topic", "partition", "offset"],
          "properties": {"topic": {"type": "string"}, "partition": {"type": "integer"}, "offset": {"type": "integer"}}}
      }}
    }
    """#
}
