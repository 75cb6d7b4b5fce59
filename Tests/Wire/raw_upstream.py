"""A plain-socket HTTP/1.1 upstream for Tests/Wire/check_wire.py, run in its process so the
checks can read what it received. It answers by path:

- /switch/noaccept, /switch/h2c: `101` without a WebSocket handshake answer (no
  Sec-WebSocket-Accept; or Upgrade: h2c), then records every byte that follows.
- /ws: a correct WebSocket handshake answer (the control case), then records bytes.
- /slow: answers after 3 s; counts requests in flight (`Upstream.in_flight`, `.max_in_flight`).
- /big: a 64 MiB body.
- /echo: the request line and fields it received, as JSON.
- /acme/page-script: an HTML page with `<body` inside a script, a comment and the title
  before its real body tag. /acme/range: a 206 of an HTML page.
- anything else: 200 "ok".
"""
import base64
import hashlib
import json
import socket
import socketserver
import threading
import time

BIG = 64 << 20
PAGE = (b"<!DOCTYPE html><html><head><script>var s = '<body>';</script><!-- <body> -->"
        b"<title>a <body> b</title></head><body class=\"real\"><p>content</p></body></html>")


class Upstream:
    lock = threading.Lock()
    in_flight = 0
    max_in_flight = 0
    received = bytearray()  # everything any connection sent, for "did this reach the upstream"
    requests = []           # (request line, [(name, value)])

    @classmethod
    def reset(cls):
        with cls.lock:
            cls.in_flight = cls.max_in_flight = 0
            cls.received = bytearray()
            cls.requests = []


def read_head(sock, buffered):
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buffered
        with Upstream.lock:
            Upstream.received += chunk
        buffered += chunk
    head, _, rest = buffered.partition(b"\r\n\r\n")
    return head, rest


def read_body(sock, fields, rest):
    length = next((int(v) for k, v in fields if k.lower() == "content-length"), None)
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in fields)
    def more():
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        with Upstream.lock:
            Upstream.received += chunk
        return chunk
    if length is not None:
        while len(rest) < length:
            rest += more()
        return rest[length:]
    if chunked:
        while True:
            while b"\r\n" not in rest:
                rest += more()
            line, _, rest = rest.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += more()
            rest = rest[size + 2:]
            if size == 0:
                return rest
    return rest


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        buffered = b""
        try:
            while True:
                head, buffered = read_head(sock, buffered)
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                fields = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
                with Upstream.lock:
                    Upstream.requests.append((lines[0], fields))
                buffered = read_body(sock, fields, buffered)
                if not self.answer(sock, method, target.split("?")[0], fields):
                    return
        except (ConnectionError, OSError, ValueError):
            return

    def answer(self, sock, method, path, fields):
        def send(status, body=b"", content_type="text/plain", extra=""):
            sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
                         .encode() + body)
        if path.startswith("/switch/"):
            upgrade = "h2c" if path == "/switch/h2c" else "websocket"
            sock.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {upgrade}\r\nConnection: Upgrade\r\n\r\n".encode())
            self.record_rest(sock)
            return False
        if path == "/ws":
            key = next((v for k, v in fields if k.lower() == "sec-websocket-key"), "")
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            sock.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode())
            self.record_rest(sock)
            return False
        if path == "/slow":
            with Upstream.lock:
                Upstream.in_flight += 1
                Upstream.max_in_flight = max(Upstream.max_in_flight, Upstream.in_flight)
            try:
                time.sleep(3)
                send("200 OK", b"slow")
            finally:
                with Upstream.lock:
                    Upstream.in_flight -= 1
            return True
        if path == "/big":
            sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {BIG}\r\n\r\n".encode())
            block = b"x" * (1 << 20)
            for _ in range(BIG >> 20):
                sock.sendall(block)
            return True
        if path == "/echo":
            send("200 OK", json.dumps({"fields": fields}).encode(), "application/json")
            return True
        if path == "/acme/page-script":
            send("200 OK", PAGE, "text/html; charset=utf-8")
            return True
        if path == "/acme/range":
            send("206 Partial Content", PAGE[:120], "text/html", f"Content-Range: bytes 0-119/{len(PAGE)}\r\n")
            return True
        send("200 OK", b"ok")
        return True

    def record_rest(self, sock):
        sock.settimeout(3)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                with Upstream.lock:
                    Upstream.received += chunk
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def start(port):
    server = Server(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
