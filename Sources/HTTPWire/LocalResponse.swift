import NIOHTTP1

/// A response the gateway makes itself.
package struct LocalResponse: Sendable {
    package var status: HTTPResponseStatus
    package var headers: [(String, String)]
    package var body: [UInt8]

    package init(status: HTTPResponseStatus, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    package static func text(_ status: HTTPResponseStatus, _ text: String) -> LocalResponse {
        LocalResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array((text + "\n").utf8))
    }
}
