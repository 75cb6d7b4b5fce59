// A Node.js application as an upstream that routes the way Express does by default: on the
// pathname of the WHATWG URL parser (which drops `#...`, reads `\` as `/` and resolves
// `%2e` dot segments) and without regard to case. Routes: /acme[/...] and
// /datasets/acme/... (acme's content), anything else (public).
//
//     node node_upstream.js PORT
const http = require("http");

const routes = [
  [/^\/acme(\/|$)/i, "acme"],
  [/^\/datasets\/acme\//i, "acme"],
];

const server = http.createServer((request, response) => {
  const url = new URL(request.url, "http://upstream.invalid");
  let route = "public";
  for (const [pattern, name] of routes) {
    if (pattern.test(url.pathname)) { route = name; break; }
  }
  response.setHeader("Content-Type", "application/json");
  response.end(JSON.stringify({
    server: "node", route, user: request.headers["x-forwarded-user"] || null,
    organization: request.headers["x-sso-organization"] || null, path: url.pathname,
  }));
});
server.listen(Number(process.argv[2]), "127.0.0.1", () => console.log(`listening on ${process.argv[2]}`));
