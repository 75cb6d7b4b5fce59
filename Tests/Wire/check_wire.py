#!/usr/bin/env python3
"""Hostile clients on the wire (issue 13), against real gateways on loopback.

Four `ssogate serve` processes, each in front of one upstream: a servlet application on
Jetty 9.4, a Flask application on Werkzeug's server, a Node.js application routing on the
WHATWG URL like Express (case-insensitive), and a plain-socket upstream run in this process
(Tests/Wire/raw_upstream.py) that reports what it received. Short deadlines (2 s) so the
timeout cases finish quickly. Each check is named after the item of the review it replays;
each would fail on the gateway before its fix.

    python3 Tests/Wire/check_wire.py [path to ssogate]

Needs: java + javac with Debian's libjetty9-java and libservlet-api-java, node, flask, h2.
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import h2.config
import h2.connection
import hpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
sys.path.insert(0, HERE)
from ssogate_support import PeakRSS, Proc, check, free_port, placeholder_certificate, wait_for_port  # noqa: E402
import raw_upstream  # noqa: E402
from raw_upstream import Upstream  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/ssogate"))
JARS = ":".join(f"/usr/share/java/{name}.jar" for name in
                ["jetty9-server", "jetty9-servlet", "jetty9-http", "jetty9-io", "jetty9-util", "jetty9-security", "servlet-api"])
DEADLINE = 2  # header_timeout, body_timeout and write_timeout of every gateway here


# MARK: - Setup


def gateway_yaml(port, app_port, extra=""):
    certificate = "\n".join("          " + line for line in placeholder_certificate().splitlines())
    return f"""listen: "127.0.0.1:{port}"
public_url: "http://hub.example.test"
upstream: "http://127.0.0.1:{app_port}"
upstream_timeout: 10s
header_timeout: {DEADLINE}s
body_timeout: {DEADLINE}s
write_timeout: {DEADLINE}s
idle_timeout: 5s
session: {{secrets: ["wire-test-secret-0123456789abcdef0123456789"]}}
protected_paths: ["/{{org}}/", "/datasets/{{org}}/"]
http2: {{enabled: true, max_concurrent_streams: 100}}
{extra}organizations:
  - name: acme
    saml:
      enabled: true
      sign_on_url: "https://idp.invalid/sso"
      certificate: |
{certificate}
"""


class World:
    def __init__(self, work):
        self.work, self.procs, self.gw, self.app = work, [], {}, {}

    def spawn(self, name, args, port, cwd=None):
        proc = Proc(name, args, cwd=cwd)
        proc.drain()
        self.procs.append(proc)
        wait_for_port(port, proc, seconds=60)
        return proc

    def setup(self):
        classes = os.path.join(self.work, "classes")
        os.makedirs(classes)
        out = subprocess.run(["javac", "-cp", JARS, "-d", classes, os.path.join(HERE, "JettyUpstream.java")],
                             capture_output=True, text=True)
        check(out.returncode == 0, f"javac: {out.stderr}")
        self.app = {name: free_port() for name in ("jetty", "werkzeug", "node", "raw")}
        self.raw_server = raw_upstream.start(self.app["raw"])
        self.spawn("jetty", ["java", "-cp", f"{classes}:{JARS}", "JettyUpstream", str(self.app["jetty"])], self.app["jetty"])
        self.spawn("werkzeug", [sys.executable, os.path.join(HERE, "werkzeug_upstream.py"), str(self.app["werkzeug"])],
                   self.app["werkzeug"])
        self.spawn("node", ["node", os.path.join(HERE, "node_upstream.js"), str(self.app["node"])], self.app["node"])
        for name, app_port in self.app.items():
            port = free_port()
            config = os.path.join(self.work, f"{name}.yaml")
            with open(config, "w") as f:
                f.write(gateway_yaml(port, app_port))
            proc = self.spawn(f"gateway-{name}", [BIN, "serve", "--config", config], port, cwd=ROOT)
            proc.port = port
            self.gw[name] = proc

    def cleanup(self):
        self.raw_server.shutdown()
        for p in reversed(self.procs):
            p.stop()


# MARK: - Clients


def raw_request(port, data, read_timeout=5.0, until_close=False):
    """Sends bytes, returns what came back: the first answer (or everything, until_close)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(read_timeout)
    s.sendall(data)
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            if not until_close and b"\r\n\r\n" in got:
                head, _, body = got.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
    except socket.timeout:
        pass
    finally:
        s.close()
    return got


def read_until_close(sock, seconds):
    """Everything the peer sends until it closes (or `seconds` pass without a byte)."""
    sock.settimeout(seconds)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    return got


def status_of(answer):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(m.group(1)) if m else None


def body_json(answer):
    body = answer.partition(b"\r\n\r\n")[2]
    try:
        return json.loads(body)
    except ValueError:
        return None


def closed_within(sock, seconds):
    """Seconds until the peer closed (EOF or reset), or None if it did not within `seconds`."""
    start = time.time()
    sock.settimeout(0.2)
    while time.time() - start < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.time() - start
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.time() - start
    return None


class H2Raw:
    """HTTP/2 by hand on a socket (h2c with prior knowledge): HPACK from `hpack`, frames
    built here so that frames `h2` refuses to make (a zero WINDOW_UPDATE, an unfinished
    header block) can be sent."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.encoder = hpack.Encoder()
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.frame(4, 0, 0, b""))
        self.next_id = 1

    @staticmethod
    def frame(kind, flags, stream, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

    def headers(self, path, method="GET", end_stream=True, end_headers=True, extra=()):
        stream = self.next_id
        self.next_id += 2
        block = self.encoder.encode([(":method", method), (":scheme", "http"), (":path", path), (":authority", "h"),
                                     ("accept", "application/json"), *extra])
        flags = (1 if end_stream else 0) | (4 if end_headers else 0)
        self.sock.sendall(self.frame(1, flags, stream, block))
        return stream

    def read_frames(self, seconds, stop=None):
        """Frames (type, flags, stream, payload) until the peer closes, `seconds` pass, or
        `stop(frame)` says so."""
        frames, buffered = [], b""
        deadline = time.time() + seconds
        self.sock.settimeout(0.2)
        while time.time() < deadline:
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            buffered += chunk
            while len(buffered) >= 9:
                length = int.from_bytes(buffered[:3], "big")
                if len(buffered) < 9 + length:
                    break
                f = (buffered[3], buffered[4], int.from_bytes(buffered[5:9], "big") & 0x7FFFFFFF, buffered[9:9 + length])
                buffered = buffered[9 + length:]
                frames.append(f)
                if stop and stop(f):
                    return frames
        return frames

    def close(self):
        self.sock.close()


def h2_status(frames, stream):
    """The :status of `stream`'s response HEADERS, decoded."""
    decoder = hpack.Decoder()
    for kind, _, sid, payload in frames:
        if kind == 1:
            headers = decoder.decode(payload)
            if sid == stream:
                return int(dict(headers)[":status"])
    return None


GOAWAY, RST_STREAM = 7, 3


# MARK: - The checks, one per item of the review


def item1_memory_pipelining_client_that_never_reads(w):
    """50 MiB of pipelined requests the gateway answers itself (401s), never reading: the
    gateway stops reading and answering the client, queues at most 16 KiB of its requests,
    and closes it (the queue overflowing, or write_timeout). Before: 578 MB for 50 MiB,
    kept after the client left."""
    gw = w.gw["raw"]
    one = b"GET /acme/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n"
    payload = one * ((50 << 20) // len(one))
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = [0]

    def push():
        try:
            view = memoryview(payload)
            while sent[0] < len(payload):
                sent[0] += s.send(view[sent[0]:sent[0] + (1 << 20)])
        except OSError:
            pass
    with PeakRSS(gw.pid) as rss:
        threading.Thread(target=push, daemon=True).start()
        closed = closed_within_no_read(s, DEADLINE + 8)
    s.close()
    check(rss.growth_mib < 48, f"gateway RSS grew {rss.growth_mib:.1f} MiB for a client that never reads")
    check(sent[0] < len(payload), f"the gateway read all {len(payload) >> 20} MiB instead of pausing")
    check(closed is not None, "the non-reading client was not closed")
    ok = raw_request(gw.port, b"GET /_ssogate/healthz HTTP/1.1\r\nHost: h\r\n\r\n")
    check(status_of(ok) == 200, f"gateway answers afterwards: {ok[:80]!r}")
    return f"peak RSS growth {rss.growth_mib:.1f} MiB; the gateway took {sent[0] >> 10} KiB of {len(payload) >> 20} MiB; closed after {closed:.1f} s"


def closed_within_no_read(sock, seconds):
    """Waits for the gateway to close a connection without reading what it sent: polls the
    socket's state (TCP_INFO state 7 = CLOSE, 8 = CLOSE_WAIT) so the receive window stays shut."""
    start = time.time()
    while time.time() - start < seconds:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
        if info[0] in (7, 8):
            return time.time() - start
        time.sleep(0.1)
    return None


SEMICOLON_SPELLINGS = ["/acme;/private-model", "/acme;jsessionid=1/private-model", "/acme%3B/private-model",
                       "/acme%3b/private-model", "/datasets;/acme/x", "/datasets%3B/acme/x", "/public/..;/acme/private-model",
                       "/;x/acme/private-model"]


def served_as_acme(answer):
    data = body_json(answer) if status_of(answer) == 200 else None
    return bool(data and data.get("route") == "acme")


def item2_semicolon_paths(w):
    """`;` parameters (and `%3B`) walk around no protection: for each upstream, every
    spelling either reaches acme's content as a member only (401 without a session) or is
    refused. Direct requests to each upstream show which spellings it maps onto acme."""
    table = []
    for app in ("jetty", "werkzeug", "node"):
        for path in SEMICOLON_SPELLINGS:
            request = f"GET {path} HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n".encode()
            direct = raw_request(w.app[app], request)
            via = raw_request(w.gw[app].port, request)
            check(not served_as_acme(via), f"{app}: {path} served acme's content anonymously: {via[:300]!r}")
            check(status_of(via) in (400, 401), f"{app}: {path} answered {status_of(via)}")
            table.append((app, path, served_as_acme(direct), status_of(via)))
    mapped = sorted({f"{app} {path}" for app, path, acme, _ in table if acme})
    check(any(a.startswith("jetty") for a in mapped), f"Jetty maps no ; spelling onto /acme/*: the check proves nothing ({table})")
    # HTTP/2 too, to the Jetty gateway.
    c = H2Raw(w.gw["jetty"].port)
    streams = {c.headers(path): path for path in SEMICOLON_SPELLINGS}
    answered = set()

    def all_answered(f):
        if f[0] == 1:
            answered.add(f[2])
        return answered >= set(streams)
    frames = c.read_frames(5, stop=all_answered)
    c.close()
    for stream, path in streams.items():
        status = h2_status(frames, stream)
        check(status in (400, 401), f"h2 {path}: {status}")
    return "upstreams map onto acme: " + ", ".join(mapped) + "; through the gateway: 400/401 each, HTTP/1.1 and h2"



def item3_fragment_in_target(w):
    """`#` in a request target: Werkzeug and Node route `/acme#` to `/acme`; the gateway
    answers 400 (RFC 9112's grammar has no fragment)."""
    out = []
    for app in ("werkzeug", "node"):
        for path in ["/acme#", "/acme#x", "/datasets/acme#/x"]:
            request = f"GET {path} HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n".encode()
            direct = raw_request(w.app[app], request)
            via = raw_request(w.gw[app].port, request)
            check(status_of(via) == 400, f"{app}: {path} through the gateway: {via[:200]!r}")
            if served_as_acme(direct):
                out.append(f"{app} {path}")
    check(out, "no upstream routes a # spelling onto acme: the check proves nothing")
    return "upstreams map onto acme: " + ", ".join(out) + "; through the gateway: 400"


def item4_pattern_case(w):
    """Fixed parts of patterns match without case: `/Datasets/acme/x` is acme's content for
    a case-insensitive router (Express, Node here), WebSocket upgrade included."""
    for path in ["/Datasets/acme/x", "/DATASETS/ACME/x", "/ACME/x", "/Acme"]:
        request = f"GET {path} HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n".encode()
        check(served_as_acme(raw_request(w.app["node"], request)), f"node does not route {path} to acme")
        via = raw_request(w.gw["node"].port, request)
        check(status_of(via) == 401, f"{path} through the gateway: {via[:200]!r}")
    upgrade = (b"GET /Datasets/acme/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    via = raw_request(w.gw["node"].port, upgrade)
    check(status_of(via) == 401, f"WebSocket to /Datasets/acme/ws: {via[:200]!r}")
    return "/Datasets/acme/x, /DATASETS/ACME/x, /ACME/x, /Acme and a WebSocket upgrade: 401"


def item5_timeouts_per_request(w):
    """A complete head whose announced body never comes, answered locally or proxied, and an
    HTTP/2 header block never finished: each ends within its deadline. 300 such connections
    at once leave the gateway answering others."""
    port = w.gw["raw"].port
    results = []
    for label, head, want in [
        ("local 401, body never sent", b"POST /acme/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nContent-Length: 1000\r\n\r\n", 401),
        ("proxied, body never sent", b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nabc", 408),
    ]:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head)
        start = time.time()
        got = read_until_close(s, DEADLINE + 6)
        took = time.time() - start
        s.close()
        check(status_of(got) == want, f"{label}: {got[:200]!r}")
        check(took < DEADLINE + 3, f"{label}: closed after {took:.1f} s (body_timeout {DEADLINE} s)")
        results.append(f"{label}: {want} and closed after {took:.1f} s")
    c = H2Raw(port)
    c.headers("/acme/x", end_headers=False)
    start = time.time()
    frames = c.read_frames(DEADLINE + 6)
    took = time.time() - start
    c.close()
    check(any(k == GOAWAY for k, *_ in frames), f"h2 unfinished header block: no GOAWAY ({frames})")
    check(took < DEADLINE + 3, f"h2 unfinished header block: closed after {took:.1f} s")
    results.append(f"h2 unfinished header block: GOAWAY and closed after {took:.1f} s")
    held = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /acme/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nContent-Length: 9\r\n\r\n")
        held.append(s)
    time.sleep(DEADLINE + 1.5)
    ok = raw_request(port, b"GET /_ssogate/healthz HTTP/1.1\r\nHost: h\r\n\r\n")
    check(status_of(ok) == 200, f"a new client after 300 held connections: {ok[:80]!r}")
    still_open = 0
    for s in held:
        if closed_within(s, 0.3) is None:
            still_open += 1
        s.close()
    check(still_open == 0, f"{still_open} of 300 held connections are still open after body_timeout")
    results.append("300 held connections all closed, others served")
    return "; ".join(results)


def item6_clients_that_stop_reading(w):
    """Clients that stop reading are closed after write_timeout, their upstream connections
    released; memory stays bounded: 100 HTTP/1.1 connections and one HTTP/2 connection with
    100 streams, each fetching 64 MiB and reading nothing."""
    port = w.gw["raw"].port
    with PeakRSS(w.gw["raw"].pid) as rss:
        conns = []
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
            conns.append(s)
        c = H2Raw(port)
        for _ in range(100):
            c.headers("/big")
        time.sleep(DEADLINE + 3)
        closed = sum(1 for s in conns if closed_within_no_read(s, 0.2) is not None)
        frames = c.read_frames(3)
    for s in conns:
        s.close()
    c.close()
    resets = {sid for kind, _, sid, payload in frames if kind == RST_STREAM}
    check(closed == 100, f"{closed} of 100 non-reading HTTP/1.1 clients closed after write_timeout")
    check(len(resets) >= 99 or any(k == GOAWAY for k, *_ in frames), f"h2: {len(resets)} streams reset")
    per_conn = rss.growth_mib * 1024 / 101
    check(rss.growth_mib < 160, f"RSS grew {rss.growth_mib:.1f} MiB for 100 + 1x100 non-reading clients")
    return f"100 HTTP/1.1 closed, {len(resets)} h2 streams reset; peak RSS growth {rss.growth_mib:.1f} MiB (~{per_conn:.0f} KiB per connection)"


def item7_made_you_reset(w):
    """Server-sent resets count: streams the client gets reset (an overflowing WINDOW_UPDATE)
    while their requests are in flight spend the budget, and the connection ends before the
    upstream has more requests in flight than a client may have streams. A WINDOW_UPDATE
    flood ends the connection too. Before: 1,401 requests in flight on one connection."""
    port = w.gw["raw"].port
    Upstream.reset()
    c = H2Raw(port)
    sent = 0
    try:
        for _ in range(1500):
            stream = c.headers("/slow")
            # A WINDOW_UPDATE that overflows the stream's window: libnghttp2 resets the stream
            # (FLOW_CONTROL_ERROR). (A zero increment ends the whole connection in 1.52.)
            c.sock.sendall(H2Raw.frame(8, 0, stream, struct.pack(">I", 0x7FFFFFFF)))
            sent += 1
    except OSError:
        pass
    frames = c.read_frames(2, stop=lambda f: f[0] == GOAWAY)
    c.close()
    goaway = [f for f in frames if f[0] == GOAWAY]
    check(goaway and struct.unpack(">I", goaway[0][3][4:8])[0] == 11, f"no GOAWAY ENHANCE_YOUR_CALM after {sent} resets")
    time.sleep(0.5)
    check(Upstream.max_in_flight <= 110, f"{Upstream.max_in_flight} upstream requests in flight from one connection")
    c = H2Raw(port)
    try:
        for _ in range(20000):
            c.sock.sendall(H2Raw.frame(8, 0, 0, struct.pack(">I", 1)))
    except OSError:
        pass
    flood = c.read_frames(3, stop=lambda f: f[0] == GOAWAY)
    c.close()
    check(any(k == GOAWAY for k, *_ in flood), "WINDOW_UPDATE flood: no GOAWAY")
    return f"reset flood: GOAWAY ENHANCE_YOUR_CALM, at most {Upstream.max_in_flight} requests in flight upstream; WINDOW_UPDATE flood: GOAWAY"


def item8_upgrades_only_as_asked(w):
    """A tunnel opens only for the WebSocket handshake asked for and answered correctly: a
    101 without Sec-WebSocket-Accept, or to h2c, is a 502 and the bytes after it never reach
    the upstream. The correct handshake still opens."""
    port = w.gw["raw"].port
    smuggled = b"GET /acme/admin HTTP/1.1\r\nHost: h\r\nX-Forwarded-User: evil\r\n\r\n"
    for path in ["/switch/noaccept", "/switch/h2c"]:
        Upstream.reset()
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        time.sleep(0.3)
        try:
            s.sendall(smuggled)
        except OSError:
            pass
        got = read_until_close(s, 3)
        s.close()
        check(status_of(got) == 502, f"{path}: {got[:200]!r}")
        time.sleep(0.3)
        check(b"X-Forwarded-User: evil" not in Upstream.received, f"{path}: smuggled bytes reached the upstream")
    answer = raw_request(port, b"GET /switch/plain HTTP/1.1\r\nHost: h\r\n\r\n")
    check(status_of(answer) == 502, f"a 101 nobody asked for: {answer[:200]!r}")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    s.settimeout(3)
    head = s.recv(65536)
    s.close()
    check(status_of(head) == 101 and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, f"the real handshake: {head[:200]!r}")
    return "101 without Accept, to h2c, or unasked: 502, nothing relayed; the real handshake opens"


def item9_lower(w):
    """The lower items, each against the real gateway."""
    port = w.gw["raw"].port
    out = []
    # HTTP/2 CONNECT: answered at once.
    c = H2Raw(port)
    stream = c.next_id
    c.next_id += 2
    block = c.encoder.encode([(":method", "CONNECT"), (":authority", "example.com:443")])
    c.sock.sendall(H2Raw.frame(1, 4, stream, block))
    start = time.time()
    frames = c.read_frames(3, stop=lambda f: f[0] == 1 and f[2] == stream)
    c.close()
    check(h2_status(frames, stream) == 405, f"h2 CONNECT: {frames}")
    out.append(f"h2 CONNECT: 405 in {time.time() - start:.2f} s")
    # A malformed chunked body: 400 at once, not a 504 after upstream_timeout.
    start = time.time()
    got = raw_request(port, b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", until_close=True)
    took = time.time() - start
    check(status_of(got) == 400 and took < 2, f"malformed chunk: {got[:100]!r} after {took:.1f} s")
    out.append(f"malformed chunk: 400 in {took:.2f} s")
    # HTTP/1.0 without Host: the upstream still gets one.
    Upstream.reset()
    got = raw_request(port, b"GET /echo HTTP/1.0\r\n\r\n", until_close=True)
    fields = dict((k.lower(), v) for k, v in body_json(got)["fields"])
    check(fields.get("host") == "hub.example.test", f"HTTP/1.0 without Host reached the upstream with {fields.get('host')}")
    out.append("HTTP/1.0 without Host: forwarded with Host: hub.example.test")
    # Chunked HTTP/1.0: answered, then the connection closes.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    check(closed_within(s, 3) is not None, "chunked HTTP/1.0 kept the connection open")
    s.close()
    out.append("chunked HTTP/1.0: closed after its answer")
    # HTTP/2 paths as bytes: `/acme/` + a combining mark is acme's.
    c = H2Raw(port)
    stream = c.headers("/acme/\u0301x")
    frames = c.read_frames(3, stop=lambda f: f[0] == 1 and f[2] == stream)
    c.close()
    check(h2_status(frames, stream) == 401, f"h2 /acme/ + combining mark: {h2_status(frames, stream)}")
    out.append("h2 /acme/\\u0301x: 401")
    # The banner after the real body tag only, never in a 206.
    page = raw_request(port, b"GET /acme/page-script HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n\r\n", until_close=False)
    body = page.partition(b"\r\n\r\n")[2]
    if b"transfer-encoding: chunked" in page.lower():
        page = raw_request(port, b"GET /acme/page-script HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
                           until_close=True)
        body = page.partition(b"\r\n\r\n")[2]
    banner_at = body.find(b"ssogate-banner")
    check(banner_at > body.find(b'<body class="real">') > 0, f"banner placement: {body[:600]!r}")
    check(body.count(b"ssogate-banner") == 1, "one banner")
    partial = raw_request(port, b"GET /acme/range HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nConnection: close\r\n\r\n", until_close=True)
    check(status_of(partial) == 206 and b"ssogate-banner" not in partial, f"206: {partial[:300]!r}")
    out.append("banner after the real <body>, not in a script, comment or title; none in a 206")
    # Client-address and URL-override fields from an untrusted client never arrive.
    names = ["X-Real-IP", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Uri"]
    request = "GET /echo HTTP/1.1\r\nHost: h\r\n" + "".join(f"{n}: 6.6.6.6\r\n" for n in names) + "\r\n"
    fields = [k.lower() for k, _ in body_json(raw_request(port, request.encode()))["fields"]]
    check(not any(n.lower() in fields for n in names), f"forwarded: {fields}")
    out.append("X-Real-IP, True-Client-IP, X-Original-URL and kin: dropped")
    # Host validated; bytes that are not UTF-8 refused, not rewritten.
    for host in [b"a b", b"evil.example/x", b"a@b", b"[::1", b"h:99999x"]:
        got = raw_request(port, b"GET /echo HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        check(status_of(got) == 400, f"Host {host!r}: {got[:100]!r}")
    Upstream.reset()
    got = raw_request(port, b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9\r\n\r\n")
    check(status_of(got) == 400 and b"\xef\xbf\xbd" not in Upstream.received, f"latin-1 field: {got[:100]!r}")
    out.append("bad Host: 400; a field that is not UTF-8: 400, never rewritten")
    return "; ".join(out)


CHECKS = [item1_memory_pipelining_client_that_never_reads, item2_semicolon_paths, item3_fragment_in_target,
          item4_pattern_case, item5_timeouts_per_request, item6_clients_that_stop_reading, item7_made_you_reset,
          item8_upgrades_only_as_asked, item9_lower]


def main():
    only = os.environ.get("WIRE_ONLY")
    work = tempfile.mkdtemp(prefix="ssogate-wire-")
    world = World(work)
    failed = 0
    start = time.time()
    try:
        world.setup()
        for run in CHECKS:
            if only and only not in run.__name__:
                continue
            t = time.time()
            try:
                figures = run(world)
                print(f"ok   {run.__name__} ({time.time() - t:.1f} s): {figures}", flush=True)
            except AssertionError as e:
                failed += 1
                print(f"FAIL {run.__name__}: {e}", flush=True)
                for name, g in world.gw.items():
                    print(f"    gateway-{name}: {g.tail(6)}")
    finally:
        world.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    total = sum(1 for run in CHECKS if not only or only in run.__name__)
    print(f"wire: {total - failed} passed, {failed} failed ({time.time() - start:.0f} s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
