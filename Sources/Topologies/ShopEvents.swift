import StreamEngine

/// The four input topics of `topologies.yaml` and builders for their JSON values.
public enum ShopEvents {
    /// `product_prices`, keyed by productId.
    public static let pricesTopic = "product_prices"
    /// `purchases`, keyed by userId.
    public static let purchasesTopic = "purchases"
    /// `user_events`, keyed by memberId, else guestId.
    public static let userEventsTopic = "user_events"
    /// `logins`, keyed by guestId.
    public static let loginsTopic = "logins"
    /// All four, in that order.
    public static let topics = [pricesTopic, purchasesTopic, userEventsTopic, loginsTopic]

    /// `{"productId","platform","price","timestamp"}`.
    public static func price(product: String, platform: String, price: Double, at t: Int64) -> JSONValue {
        ["productId": .string(product), "platform": .string(platform), "price": .number(price), "timestamp": iso(t)]
    }

    /// `{"orderId","userId","productId","category","price","quantity","timestamp"}`.
    public static func purchase(order: String, user: String, product: String, category: String, price: Double, quantity: Int, at t: Int64) -> JSONValue {
        [
            "orderId": .string(order), "userId": .string(user), "productId": .string(product), "category": .string(category),
            "price": .number(price), "quantity": .number(Double(quantity)), "timestamp": iso(t),
        ]
    }

    /// `{"eventId","type","memberId","guestId","productId","category","timestamp"}`; absent ids are `null`.
    public static func userEvent(
        id: String, type: String, member: String?, guest: String?, product: String? = nil, category: String? = nil, at t: Int64
    ) -> JSONValue {
        [
            "eventId": .string(id), "type": .string(type), "memberId": member.map(JSONValue.string) ?? .null,
            "guestId": guest.map(JSONValue.string) ?? .null, "productId": product.map(JSONValue.string) ?? .null,
            "category": category.map(JSONValue.string) ?? .null, "timestamp": iso(t),
        ]
    }

    /// `{"memberId","guestId","timestamp"}`.
    public static func login(member: String, guest: String, at t: Int64) -> JSONValue {
        ["memberId": .string(member), "guestId": .string(guest), "timestamp": iso(t)]
    }

    /// The Kafka key of a user event: memberId when set, else guestId.
    public static func userEventKey(member: String?, guest: String?) -> String {
        member ?? guest ?? ""
    }

    private static func iso(_ t: Int64) -> JSONValue { .string(EventTime.formatISO8601(t)) }
}
