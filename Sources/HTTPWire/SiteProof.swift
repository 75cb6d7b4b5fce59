import NIOHTTP1

/// What a browser's own request headers say of where a state-changing request came from
/// (`Sec-Fetch-Site`, `Origin`): the console's forms and the logout button are checked with
/// them, beside their CSRF tokens.
package enum SiteProof {
    /// The browser says another site sent it: refused whatever else the request carries.
    /// (`Origin: null`, sent from sandboxed or privacy-sensitive contexts, says nothing.)
    package static func crossSite(_ headers: HTTPHeaders, publicURL: String) -> Bool {
        if let site = headers.first(name: "sec-fetch-site"), site != "same-origin" { return true }
        if let origin = headers.first(name: "origin"), origin != "null", origin != publicURL { return true }
        return false
    }

    /// The browser says this site sent it.
    package static func sameSite(_ headers: HTTPHeaders, publicURL: String) -> Bool {
        headers.first(name: "sec-fetch-site") == "same-origin" || headers.first(name: "origin") == publicURL
    }
}
