"""The application behind the gateway in the end-to-end test: an HTML page per path that
shows which identity headers reached it."""
import html
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Page(BaseHTTPRequestHandler):
    def do_GET(self):
        user = self.headers.get("X-Forwarded-User", "")
        role = self.headers.get("X-SSO-Role", "")
        body = (f"<!doctype html><html><head><title>app {html.escape(self.path)}</title></head>"
                f"<body><h1>App page {html.escape(self.path)}</h1>"
                f"<p id=\"user\">{html.escape(user)}</p><p id=\"role\">{html.escape(role)}</p>"
                f"<p id=\"groups\">{html.escape(self.headers.get('X-Forwarded-Groups', ''))}</p></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Page).serve_forever()
