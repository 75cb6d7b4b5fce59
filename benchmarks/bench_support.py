"""What the Python benchmarks share: running a command, and one wrk measurement."""
import datetime
import os
import re
import subprocess


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def wrk(url, duration, connections=32):
    """`wrk -t1 -cN` pinned to CPU 1: (req/s, p50 ms, p99 ms, non-2xx/3xx responses)."""
    out = run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return rps, ms("50"), ms("99"), int(errors.group(1)) if errors else 0


def stop_all(procs):
    """Stops processes in reverse start order: TERM, up to 10 s, then KILL."""
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def publish(name, lines):
    """Prints a Markdown report and keeps a copy under benchmarks/out/ (gitignored)."""
    text = "\n".join(lines)
    print(text)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}.md"), "w") as f:
        f.write(text)


def start_static_nginx(work, www, port, procs, connections=1024):
    """nginx on CPU 1 serving the files under `www` on 127.0.0.1:port (appended to `procs`).
    `work` must be readable by the nginx workers (www-data)."""
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx-error.log;
worker_rlimit_nofile {max(1024, connections)};
events {{ worker_connections {connections}; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; root {www}; }} }}
""")
    procs.append(subprocess.Popen(["taskset", "-c", "1", "nginx", "-c", conf]))


def gateway_yaml(port, upstream_port, secret, cert_file, extra=""):
    """One event loop, no access log, `/{org}/` protected for acme (a placeholder IdP)."""
    return f"""
listen: "127.0.0.1:{port}"
workers: 1
public_url: "http://127.0.0.1:{port}"
upstream: "http://127.0.0.1:{upstream_port}"
access_log: false
session: {{secrets: ["{secret}"]}}
protected_paths: ["/{{org}}/"]
{extra}organizations:
  - name: acme
    saml: {{enabled: true, sign_on_url: "https://idp.example.test/sso", certificate_file: "{cert_file}", allow_idp_initiated: true}}
"""
