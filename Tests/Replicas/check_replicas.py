#!/usr/bin/env python3
"""Two `ssogate serve` replicas sharing one PostgreSQL replay store, end to end.

A throwaway PostgreSQL (postgres.sh), a tiny upstream, one `ssogate dev-idp`, and two
gateways A and B with the same configuration except `listen`: the same `public_url` (A's
address, so one SP metadata file covers both), the same `session.secrets`, the same
`store`. Logins follow the IdP's HTML forms like a browser without JavaScript and stop
before the ACS POST, so each case chooses where the signed response goes.

  a. the same response POSTed to A and B at the same moment, 50 logins: one 303, one refusal
  b. SSO start on one replica, ACS on the other; the session works on both
  c. PostgreSQL stopped: logins fail closed (503 state_store_unavailable), sessions keep
     working, a logout is in force on its replica at once and queued; restarted: logins
     come back within a bound, the queued logout reaches the other replica, a response
     accepted before the outage is still refused, one refused with 503 was not spent
  d. as a, with IdP-initiated (tile) responses: no InResponseTo, only the assertion ID
  e. a third replica started while PostgreSQL is down: sessions work, logins 503, then
     its schema set-up is retried and logins work once PostgreSQL is back
  f. every replica is still running and exits 0 on SIGTERM

    python3 Tests/Replicas/check_replicas.py [path to ssogate]

Runs as root (postgres.sh runs the server as the `postgres` user). Standard library only.
"""
import http.client
import os
import re
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, Postgres, Proc, Upstream, check, free_port, gateway_problems, gateway_yaml,  # noqa: E402
                     header, obtain_response, obtain_unsolicited, placeholder_certificate, post_acs, reason, request, set_cookies,
                     sp_metadata, start_dev_idp, wait_for_port)

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/ssogate"))
SECRET = "replicas-test-secret-0123456789abcdef0123456789"
RACE_ROUNDS = 50
UNSOLICITED_ROUNDS = 20
REPLAY_CODES = {"in_response_to_unknown", "assertion_replayed"}
STORE_TIMEOUT = 3.0          # the gateway's store timeout (PostgresStore.timeout)
RECOVERY_BOUND = 30.0        # seconds after `resume` within which logins must work again
USERS = {"alice": "alice@example.test", "bob": "bob@example.test", "carol": "carol@example.test"}


class Replicas:
    def __init__(self, work):
        self.work = work
        self.procs = []
        self.pg = None
        self.upstream = None
        self.notes = []  # lines printed under the case that wrote them

    def note(self, text):
        self.notes.append(text)

    # MARK: set-up

    def setup(self):
        w = self.work
        self.pg = Postgres()
        self.store = self.pg.start()
        a_port, b_port, app_port, idp_port = free_port(), free_port(), free_port(), free_port()
        self.a, self.b = f"http://127.0.0.1:{a_port}", f"http://127.0.0.1:{b_port}"
        idp = f"http://localhost:{idp_port}"
        cert = os.path.join(w, "idp.crt")
        with open(cert, "w") as f:
            f.write(placeholder_certificate())
        configs = {}
        self.config_args = (app_port, idp, cert)
        for name, port in (("A", a_port), ("B", b_port)):
            configs[name] = os.path.join(w, f"{name}.yaml")
            with open(configs[name], "w") as f:
                f.write(gateway_yaml(port, self.a, app_port, idp, SECRET, cert, store=self.store, idp_initiated=True))
        with open(configs["A"]) as fa, open(configs["B"]) as fb:
            differ = [(x, y) for x, y in zip(fa.read().splitlines(), fb.read().splitlines()) if x != y]
        check(len(differ) == 1 and differ[0][0].startswith("listen:"), f"A and B differ only in listen: {differ}")
        sp_metadata(BIN, configs["A"], os.path.join(w, "sp.xml"))
        self.upstream = Upstream(app_port)
        dev_idp, self.idp = start_dev_idp(BIN, idp_port, [os.path.join(w, "sp.xml")], cert)
        self.procs.append(dev_idp)
        self.gw = {}
        for name in ("A", "B"):
            g = Proc(name, [BIN, "serve", "--config", configs[name]], cwd=ROOT)
            g.drain()
            self.procs.append(g)
            self.gw[name] = g
        self.base = {"A": self.a, "B": self.b}
        wait_for_port(a_port, self.gw["A"])
        wait_for_port(b_port, self.gw["B"])
        for g in self.gw.values():
            g.wait_for_line("replay store ready", 20)

    def cleanup(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                print(f"could not stop {p.name}: {e!r}")
        if self.upstream:
            self.upstream.stop()
        if self.pg:
            try:
                self.pg.stop()
            except Exception as e:
                print(f"could not stop PostgreSQL in {self.pg.dir}: {e!r}")

    # MARK: helpers

    def whoami(self, name, session):
        """GET /acme/whoami on replica `name` with the session cookie: (status, the upstream's
        X-Forwarded-User, seconds)."""
        before = len(self.upstream.seen)
        t0 = time.monotonic()
        status, _, body = request(self.base[name] + "/acme/whoami", headers={
            "Accept": "application/json", "Cookie": f"ssogate_session={session}", "X-Forwarded-User": "mallory"})
        seconds = time.monotonic() - t0
        seen = [user for path, user in self.upstream.seen[before:] if path == "/acme/whoami"]
        return status, (seen[-1] if seen else None), seconds, body

    def check_session(self, name, session, email):
        status, user, seconds, body = self.whoami(name, session)
        check(status == 200, f"{name}: /acme/whoami with the session answers {status}: {body[:200]}")
        check(user == email, f"{name}: the upstream saw X-Forwarded-User {user!r}, expected {email!r}")
        return seconds

    def accepted(self, name, signed, email_hint=""):
        status, headers, body, seconds = post_acs(self.base[name], signed)
        check(status == 303, f"ACS on {name} accepts the response{email_hint} (got {status}: {body[:200]})")
        cookie = set_cookies(headers).get("ssogate_session")
        check(cookie, f"ACS on {name} sets ssogate_session: {headers}")
        return cookie, headers, seconds

    # MARK: a

    def race(self, rounds=RACE_ROUNDS, unsolicited=False):
        """The same signed response written to A and B before either answer is read.
        unsolicited: IdP-initiated (tile) responses, which only their assertion ID guards."""
        winners, codes, worst = {"A": 0, "B": 0}, {}, 0.0
        for i in range(rounds):
            if unsolicited:
                signed, landing = obtain_unsolicited(self.idp, user="carol"), "/"
            else:
                signed = obtain_response(self.base["AB"[i % 2]], user="alice", return_to=f"/acme/race/{i}")
                landing = f"/acme/race/{i}"
            order = ("A", "B") if i % 4 < 2 else ("B", "A")
            socks = {}
            for name in order:
                port = int(self.base[name].rsplit(":", 1)[1])
                socks[name] = socket.create_connection(("127.0.0.1", port), timeout=20)
            t0 = time.monotonic()
            for name in order:  # both requests are on the wire before either is read
                socks[name].sendall(signed.raw_request(f"127.0.0.1:{socks[name].getpeername()[1]}"))
            results = {}
            for name in order:
                resp = http.client.HTTPResponse(socks[name])
                resp.begin()
                body = resp.read().decode("utf-8", "replace")
                results[name] = (resp.status, resp.getheaders(), body, time.monotonic() - t0)
                socks[name].close()
            worst = max(worst, *(r[3] for r in results.values()))
            ok = [n for n, r in results.items() if r[0] == 303]
            refused = [n for n, r in results.items() if r[0] != 303]
            summary = ", ".join(f"{n}: {r[0]} {reason(r[0], r[2]) if r[0] != 303 else 'accepted'}" for n, r in results.items())
            check(len(ok) == 1 and len(refused) == 1, f"round {i + 1}: exactly one replica accepts ({summary})")
            winner, loser = ok[0], refused[0]
            check(set_cookies(results[winner][1]).get("ssogate_session"), f"round {i + 1}: the 303 from {winner} sets ssogate_session")
            check(header(results[winner][1], "location") == landing, f"round {i + 1}: 303 to {landing}: {summary}")
            status, headers, body, _ = results[loser]
            check(not set_cookies(headers).get("ssogate_session"), f"round {i + 1}: the refusal from {loser} sets no session")
            code = reason(status, body)
            check(status == 403 and code in (("assertion_replayed",) if unsolicited else REPLAY_CODES),
                  f"round {i + 1}: the refusal is a 403 replay refusal, got {status} {code} ({summary})")
            winners[winner] += 1
            codes[code] = codes.get(code, 0) + 1
        self.note(f"{rounds} {'IdP-initiated ' if unsolicited else ''}rounds: accepted by A {winners['A']}x, by B {winners['B']}x; refusals: "
                  + ", ".join(f"403 {c} x{n}" for c, n in sorted(codes.items()))
                  + f"; slowest answer {worst * 1000:.0f} ms after the writes")

    # MARK: b

    def cross_replica(self):
        for start, acs, user in (("A", "B", "alice"), ("B", "A", "bob")):
            signed = obtain_response(self.base[start], user=user, return_to="/acme/x")
            cookie, headers, seconds = self.accepted(acs, signed, f" started on {start}")
            check(header(headers, "location") == "/acme/x", f"303 to return_to /acme/x: {header(headers, 'location')}")
            for name in ("A", "B"):
                self.check_session(name, cookie, USERS[user])
            self.note(f"SSO start on {start}, ACS on {acs}: 303 in {seconds * 1000:.0f} ms; {acs}'s session cookie "
                      f"proxied as {USERS[user]} by A and B")

    # MARK: c

    def outage(self):
        # Before: a login accepted on A, its response kept for a replay after the outage.
        before = obtain_response(self.a, user="carol", return_to="/acme/before")
        session, _, _ = self.accepted("A", before)
        self.check_session("B", session, USERS["carol"])
        # A second session, logged out during the outage.
        leaving, _, _ = self.accepted("A", obtain_response(self.a, user="bob", return_to="/acme/leaving"))
        t0 = time.monotonic()
        self.pg.pause()
        self.note(f"postgres.sh pause: {time.monotonic() - t0:.1f} s")
        marks = {n: len(g.lines) for n, g in self.gw.items()}

        # During: readiness says the store is gone (the replica leaves the rotation) ...
        for name in ("A", "B"):
            status, _, body = request(self.base[name] + "/_ssogate/ready", timeout=10)
            check(status == 503 and "state store" in body, f"{name}: /_ssogate/ready during the outage: {status} {body[:200]}")
        self.note("outage, /_ssogate/ready on A and B: 503, naming the state store")

        # ... new logins fail closed, on both replicas; JSON and HTML.
        refused = []
        for name, accept in (("A", "application/json"), ("B", "application/json"), ("A", "text/html")):
            signed = obtain_response(self.base[name], user="alice", return_to="/acme/during")
            status, headers, body, seconds = post_acs(self.base[name], signed, accept=accept)
            if accept == "application/json":
                check(status == 503 and reason(status, body) == "state_store_unavailable",
                      f"{name}: a new login during the outage gets 503 state_store_unavailable (got {status}: {body[:200]})")
            else:
                check(status == 503 and "state_store_unavailable" in body,
                      f"{name}: the HTML refusal is a 503 naming state_store_unavailable (got {status}: {body[:300]})")
            check(seconds < STORE_TIMEOUT + 2, f"{name}: the 503 took {seconds:.1f} s (store timeout {STORE_TIMEOUT:.0f} s)")
            check(set_cookies(headers).get("ssogate_session") is None, f"{name}: no session cookie on a 503: {headers}")
            refused.append((name, signed))
            self.note(f"outage, new login on {name} ({accept}): {status} state_store_unavailable in {seconds:.2f} s")
        # The response accepted before must not get through while the store cannot say so.
        status, _, body, seconds = post_acs(self.b, before)
        check(status != 303, f"B accepted, during the outage, a response A had accepted before it (got {status})")
        self.note(f"outage, replay on B of the response A accepted before: {status} {reason(status, body)} in {seconds:.2f} s")
        # Sessions do not need the store.
        for name in ("A", "B"):
            seconds = self.check_session(name, session, USERS["carol"])
            check(seconds < 1.0, f"{name}: a request with a session took {seconds:.2f} s during the outage")
            self.note(f"outage, session cookie on {name}: 200, upstream saw X-Forwarded-User {USERS['carol']} ({seconds * 1000:.0f} ms)")
        # A logout during the outage: in force on A at once, queued for the store (said in
        # A's log); B cannot know until the store is back.
        t1 = time.monotonic()
        status, _, body = request(self.a + "/_ssogate/logout", method="POST", body="",
                                  headers={"Cookie": f"ssogate_session={leaving}", "Sec-Fetch-Site": "same-origin",
                                           "Content-Type": "application/x-www-form-urlencoded"})
        seconds = time.monotonic() - t1
        check(status == 303, f"A: a logout during the outage answers {status}: {body[:200]}")
        status, user, _, _ = self.whoami("A", leaving)
        check(status == 401 and user is None, f"A: the logged-out session still works on A during the outage ({status}, {user})")
        queued = [line for line in list(self.gw["A"].lines)[marks["A"]:] if "session ending not stored yet" in line]
        check(queued, "A: no log line says the logout is queued for the store")
        self.note(f"outage, logout on A: 303 in {seconds:.2f} s, refused on A at once, queued ({queued[0][:160] if queued else '-'})")
        for name, g in self.gw.items():
            logged = [line for line in list(g.lines)[marks[name]:] if " error " in line or " warning " in line]
            self.note(f"{name} logged {len(logged)} warning/error line(s) during the outage"
                      + (f", first: {logged[0][:240]}" if logged else ""))

        # After: logins come back on both replicas within RECOVERY_BOUND.
        t0 = time.monotonic()
        self.pg.resume()
        resumed = time.monotonic()
        self.note(f"postgres.sh resume: {resumed - t0:.1f} s")
        back, attempts = {}, {"A": [], "B": []}
        while len(back) < 2 and time.monotonic() - resumed < RECOVERY_BOUND:
            for name in ("A", "B"):
                if name in back:
                    continue
                signed = obtain_response(self.base[name], user="bob", return_to="/acme/after")
                status, headers, body, seconds = post_acs(self.base[name], signed)
                attempts[name].append(f"{status}/{seconds:.2f}s")
                if status == 303:
                    back[name] = time.monotonic() - resumed
                    self.check_session("A" if name == "B" else "B", set_cookies(headers).get("ssogate_session"), USERS["bob"])
                else:
                    check(status == 503 and reason(status, body) == "state_store_unavailable",
                          f"{name}: while the store comes back a login gets 503 state_store_unavailable or 303, not {status}: {body[:200]}")
            if len(back) < 2:
                time.sleep(0.2)
        for name in ("A", "B"):
            check(name in back, f"{name}: no login accepted within {RECOVERY_BOUND:.0f} s of the resume "
                                f"(attempts: {' '.join(attempts[name][-10:])}):\n    {self.gw[name].tail()}")
            self.note(f"after resume, first accepted login on {name} {back[name]:.2f} s after postgres.sh resume returned "
                      f"({len(attempts[name])} attempt(s): {' '.join(attempts[name][:6])}{' ...' if len(attempts[name]) > 6 else ''})")

        # Readiness is back too.
        for name in ("A", "B"):
            ready_at = None
            while time.monotonic() - resumed < RECOVERY_BOUND:
                if request(self.base[name] + "/_ssogate/ready", timeout=10)[0] == 200:
                    ready_at = time.monotonic() - resumed
                    break
                time.sleep(0.2)
            check(ready_at is not None, f"{name}: /_ssogate/ready not 200 within {RECOVERY_BOUND:.0f} s of the resume")
            self.note(f"after resume, /_ssogate/ready on {name}: 200 {ready_at or 0:.2f} s after the resume")

        # The queued logout reaches the store, then B, within a few seconds of the resume.
        refused_at = None
        while time.monotonic() - resumed < RECOVERY_BOUND:
            if self.whoami("B", leaving)[0] == 401:
                refused_at = time.monotonic() - resumed
                break
            time.sleep(0.2)
        check(refused_at is not None, f"B: the session logged out on A during the outage still works {RECOVERY_BOUND:.0f} s after the resume")
        self.note(f"after resume, the logout queued on A during the outage is refused on B {refused_at or 0:.2f} s after the resume")

        # A login answered 503 spent nothing: posted again once the store is back, it is
        # accepted (a 403 here means a store query given up after 3 s ran later anyway).
        name, signed = refused[0]
        status, _, body, _ = post_acs(self.base[name], signed)
        self.note(f"after resume, the response refused with 503 on {name} during the outage, posted again: "
                  f"{status} {reason(status, body) if status != 303 else 'accepted'}")
        check(status == 303, f"{name}: a response refused with 503 during the outage was spent after all: "
                             f"posted again after the resume it gets {status} {reason(status, body)}")

        # No assertion accepted twice across the outage.
        for name in ("A", "B"):
            status, _, body, _ = post_acs(self.base[name], before)
            code = reason(status, body)
            check(status == 403 and code in REPLAY_CODES,
                  f"{name}: the response accepted before the outage, replayed after it, is refused as a replay (got {status} {code})")
            self.note(f"after resume, replay on {name} of the response accepted before the outage: {status} {code}")

    # MARK: e

    def started_during_outage(self):
        """A third replica C started while PostgreSQL is down: it listens, serves sessions,
        refuses logins with 503, and accepts them once the store is back (schema retried)."""
        signed = obtain_response(self.a, user="alice", return_to="/acme/before-c")
        session, _, _ = self.accepted("A", signed)
        self.pg.pause()
        port = free_port()
        config = os.path.join(self.work, "C.yaml")
        app_port, idp, cert = self.config_args
        with open(config, "w") as f:
            f.write(gateway_yaml(port, self.a, app_port, idp, SECRET, cert, store=self.store, idp_initiated=True))
        c = Proc("C", [BIN, "serve", "--config", config], cwd=ROOT)
        c.drain()
        self.procs.append(c)
        self.gw["C"] = c
        self.base["C"] = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        wait_for_port(port, c)
        self.note(f"C listens {time.monotonic() - t0:.1f} s after its start, PostgreSQL down")
        check(not c.grep("replay store ready"), f"C says its store is ready while PostgreSQL is down: {c.grep('replay store ready')}")
        self.check_session("C", session, USERS["alice"])
        late = obtain_response(self.base["C"], user="bob", return_to="/acme/c")
        status, _, body, seconds = post_acs(self.base["C"], late)
        check(status == 503 and reason(status, body) == "state_store_unavailable",
              f"C: a login before its store was ever reachable gets 503 state_store_unavailable (got {status}: {body[:200]})")
        self.note(f"C, store never reached yet: session proxied; new login 503 state_store_unavailable in {seconds:.2f} s")
        self.pg.resume()
        resumed = time.monotonic()
        ready = None
        while time.monotonic() - resumed < RECOVERY_BOUND:
            if ready is None and c.grep("replay store ready"):
                ready = time.monotonic() - resumed
            signed = obtain_response(self.base["C"], user="carol", return_to="/acme/c")
            status, headers, body, _ = post_acs(self.base["C"], signed)
            if status == 303:
                break
            check(status == 503, f"C: while its store comes up a login gets 503 or 303, not {status}: {body[:200]}")
            time.sleep(0.2)
        back = time.monotonic() - resumed
        check(status == 303, f"C: no login accepted within {RECOVERY_BOUND:.0f} s of the resume:\n    {c.tail()}")
        # The schema set-up is retried every 2 s, on its own: it may finish after the first login.
        while ready is None and time.monotonic() - resumed < RECOVERY_BOUND:
            if c.grep("replay store ready"):
                ready = time.monotonic() - resumed
            else:
                time.sleep(0.1)
        unreachable = c.grep("replay store unreachable")
        self.note(f"C: first accepted login {back:.2f} s after the resume; 'replay store ready' logged "
                  + (f"{ready:.2f} s after the resume" if ready is not None else f"not within {RECOVERY_BOUND:.0f} s")
                  + f"; {len(unreachable)} 'replay store unreachable' line(s) before")
        check(ready is not None, f"C logs 'replay store ready' within {RECOVERY_BOUND:.0f} s of the resume:\n    {c.tail()}")
        status, _, body, _ = post_acs(self.base["C"], signed)
        check(status == 403 and reason(status, body) in REPLAY_CODES, f"C: its accepted response replayed on C: {status} {reason(status, body)}")
        status, _, body, _ = post_acs(self.b, signed)
        check(status == 403 and reason(status, body) in REPLAY_CODES, f"C: its accepted response replayed on B: {status} {reason(status, body)}")
        self.note("C shares the store: its accepted response is refused on C and on B")

    # MARK: f

    def clean_exit(self):
        for name, g in self.gw.items():
            check(g.alive(), f"{name} is still running: exited {g.popen.returncode}:\n    {g.tail()}")
        for name, g in self.gw.items():
            t0 = time.monotonic()
            status = g.stop()
            check(status == 0, f"{name} exits 0 on SIGTERM (got {status}):\n    {g.tail()}")
            self.note(f"{name}: exit 0 {time.monotonic() - t0:.1f} s after SIGTERM")


def main():
    work = tempfile.mkdtemp(prefix="ssogate-replicas-test.")
    t = Replicas(work)
    passed = failed = 0
    started = time.monotonic()
    try:
        try:
            t.setup()
            print(f"set-up: PostgreSQL {t.store.rsplit('@', 1)[1]} ({t.pg.dir}), A {t.a}, B {t.b} "
                  f"({time.monotonic() - started:.1f} s)")
            cases = [
                ("a. one response posted to A and B at once is accepted once", t.race),
                ("b. SSO started on one replica, ACS on the other, session valid on both", t.cross_replica),
                ("c. store outage: logins fail closed, sessions work, recovery, no replay across it", t.outage),
                ("d. one IdP-initiated response posted to A and B at once is accepted once",
                 lambda: t.race(rounds=UNSOLICITED_ROUNDS, unsolicited=True)),
                ("e. a replica started while PostgreSQL is down catches up once it is back", t.started_during_outage),
                ("f. the replicas stay up and exit 0 on SIGTERM", t.clean_exit),
            ]
        except Exception as e:
            print(f"FAIL set-up: {e!r}")
            cases, failed = [], 1
        for name, case in cases:
            t.notes = []
            t0 = time.monotonic()
            try:
                case()
                print(f"ok   {name} ({time.monotonic() - t0:.1f} s)")
                passed += 1
            except Exception as e:  # report every case, then fail
                print(f"FAIL {name} ({time.monotonic() - t0:.1f} s): {e}")
                failed += 1
                if t.pg.paused:  # the next case needs PostgreSQL up
                    t.pg.resume()
            for line in t.notes:
                print(f"       {line}")
        expected = re.compile(r"certificate expiring|replay store did not record a login|replay store unreachable|"
                              r"login refused .*reason=(in_response_to_unknown|assertion_replayed|state_store_unavailable)")
        lines = [(g.name, line) for g in getattr(t, "gw", {}).values() for line in gateway_problems(g)]
        others = [f"{n}: {line}" for n, line in lines if not expected.search(line)]
        print(f"gateway warning/error lines: {len(lines)}, of which the refusals and store errors the cases cause: "
              f"{len(lines) - len(others)}, others: {len(others)}")
        for line in others[:12]:
            print(f"       {line[:300]}")
    finally:
        t.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"replicas: {passed} passed, {failed} failed ({time.monotonic() - started:.1f} s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
