"""The application behind the gateway in the HTTP/2 test: one asyncio HTTP/1.1 server with
keep-alive (the gateway's upstream hop is HTTP/1.1) that also does RFC 6455 itself.

    python3 Tests/HTTP2/upstream.py PORT

Routes:
  GET  /                 public HTML page
  GET  /acme/page        HTML page with <body>, status 403 (the app's restricted page)
  GET  /whoami, /acme/whoami   JSON of the request as received (?delay=SECONDS waits first)
  GET  /acme/big?n=BYTES streams BYTES of `pattern` with Content-Length, chunk by chunk
  POST /acme/upload      reads the whole body (Content-Length or chunked): JSON {length, sha256}
  GET  /ws, /acme/ws     WebSocket: sends "hello <X-Forwarded-User or anonymous>", then echoes
"""
import asyncio
import base64
import hashlib
import json
import struct
import sys
import urllib.parse

# Byte i of every /acme/big body is i % 251; BLOCK is a whole number of periods, so the
# pattern continues across blocks.
PERIOD = 251
BLOCK = bytes(i % PERIOD for i in range(PERIOD * 256))
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Request:
    def __init__(self, method, target, version, headers):
        self.method, self.target, self.version, self.headers = method, target, version, headers
        split = urllib.parse.urlsplit(target)
        self.path = split.path
        self.query = dict(urllib.parse.parse_qsl(split.query))

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def keep_alive(self):
        conn = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


async def read_head(reader):
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
    return Request(method, target, version, headers)


async def body_chunks(reader, req):
    """The request body, piece by piece, whatever its framing."""
    if "chunked" in (req.header("transfer-encoding") or "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return
            left = size
            while left:
                piece = await reader.read(min(left, 1 << 16))
                if not piece:
                    raise ConnectionError("eof in chunk")
                left -= len(piece)
                yield piece
            await reader.readexactly(2)
    else:
        left = int(req.header("content-length") or 0)
        while left:
            piece = await reader.read(min(left, 1 << 16))
            if not piece:
                raise ConnectionError("eof in body")
            left -= len(piece)
            yield piece


async def send(writer, status, reason, body, content_type, keep_alive, extra=()):
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in extra]
    if not keep_alive:
        head.append("Connection: close")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()


def page(title, text):
    return (f"<!doctype html><html><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{text}</p></body></html>").encode()


async def big(writer, n, keep_alive):
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n"
    writer.write((head + ("" if keep_alive else "Connection: close\r\n") + "\r\n").encode())
    left = n
    view = memoryview(BLOCK)
    while left:
        piece = view[:min(left, len(BLOCK))]
        writer.write(piece)
        left -= len(piece)
        await writer.drain()  # backpressure: wait while the gateway does not read


async def websocket(reader, writer, req):
    key = req.header("sec-websocket-key")
    if not key or (req.header("upgrade") or "").lower() != "websocket":
        await send(writer, 426, "Upgrade Required", b"websocket only\n", "text/plain", False)
        return
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    user = req.header("x-forwarded-user") or "anonymous"
    write_frame(writer, 0x1, f"hello {user}".encode())
    await writer.drain()
    while True:
        b0, b1 = await reader.readexactly(2)
        opcode, masked, length = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        mask = await reader.readexactly(4) if masked else b"\0\0\0\0"
        payload = bytearray(await reader.readexactly(length))
        for i in range(len(payload)):
            payload[i] ^= mask[i % 4]
        if opcode in (0x1, 0x2, 0x0):
            write_frame(writer, opcode, bytes(payload))
        elif opcode == 0x9:
            write_frame(writer, 0xA, bytes(payload))
        elif opcode == 0x8:
            write_frame(writer, 0x8, bytes(payload[:2]))
            await writer.drain()
            return
        await writer.drain()


def write_frame(writer, opcode, payload):
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack("!Q", n)
    writer.write(head + payload)


async def handle(reader, writer):
    try:
        while True:
            req = await read_head(reader)
            if req is None:
                return
            keep = req.keep_alive()
            if req.path in ("/ws", "/acme/ws"):
                await websocket(reader, writer, req)
                return
            if req.method == "POST" and req.path == "/acme/upload":
                digest, length = hashlib.sha256(), 0
                async for piece in body_chunks(reader, req):
                    digest.update(piece)
                    length += len(piece)
                body = json.dumps({"length": length, "sha256": digest.hexdigest()}).encode()
                await send(writer, 200, "OK", body, "application/json", keep)
            else:
                async for _ in body_chunks(reader, req):
                    pass
                if req.path in ("/whoami", "/acme/whoami"):
                    if "delay" in req.query:
                        await asyncio.sleep(float(req.query["delay"]))
                    body = json.dumps({"method": req.method, "path": req.target, "headers": req.headers}).encode()
                    await send(writer, 200, "OK", body, "application/json", keep)
                elif req.path == "/acme/big":
                    await big(writer, int(req.query.get("n", "0")), keep)
                elif req.path == "/acme/page":
                    await send(writer, 403, "Forbidden", page("Restricted", "acme members only"), "text/html; charset=utf-8", keep)
                elif req.path == "/":
                    await send(writer, 200, "OK", page("Public", "welcome"), "text/html; charset=utf-8", keep)
                else:
                    await send(writer, 404, "Not Found", page("Not found", req.path), "text/html; charset=utf-8", keep)
            if not keep:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 20, backlog=512)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
