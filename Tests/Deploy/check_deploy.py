#!/usr/bin/env python3
"""Checks deploy/ without Docker or a cluster: the systemd unit passes `systemd-analyze
verify` and keeps its hardening; the Kubernetes manifests parse and have the parts an
operator relies on, and the configuration they carry passes `ssogate check`; the Dockerfile
is multi-stage, runs as non-root and installs only the runtime libraries.

    python3 Tests/Deploy/check_deploy.py [path to ssogate]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/ssogate"))
failures = []


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message)
    if not condition:
        failures.append(message)


def systemd_unit(work):
    text = open(os.path.join(ROOT, "deploy/ssogate.service")).read()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    for key, value in [("DynamicUser", "yes"), ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                       ("CapabilityBoundingSet", "")]:
        check(settings.get(key) == [value], f"systemd: {key}={value}")
    check("AmbientCapabilities" not in settings, "systemd: no AmbientCapabilities unless binding a low port")
    check(settings.get("ExecReload") == ["/bin/kill -HUP $MAINPID"], "systemd: reload is SIGHUP")
    check(settings.get("StateDirectory") == ["ssogate"] and 'store: "sqlite:/var/lib/ssogate/ssogate.db"' in text,
          "systemd: a writable state folder for the SQLite store, and the store line that uses it")
    # verify needs the binary named in ExecStart to exist: point it at the built one.
    unit = os.path.join(work, "ssogate.service")
    with open(unit, "w") as f:
        f.write(text.replace("/usr/local/bin/ssogate", BIN))
    result = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
    problems = [l for l in (result.stdout + result.stderr).splitlines() if "ssogate.service" in l]
    check(result.returncode == 0 and not problems, "systemd: systemd-analyze verify: " + (" | ".join(problems) or "clean"))


def kubernetes(work):
    docs = [d for d in yaml.safe_load_all(open(os.path.join(ROOT, "deploy/kubernetes/ssogate.yaml"))) if d]
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    kinds = {d["kind"]: d for d in docs if not (d["kind"] == "Secret" and d["metadata"]["name"] != "ssogate-session")}
    for kind in ["Deployment", "ConfigMap", "Secret", "PodDisruptionBudget", "Service"]:
        check(kind in kinds, f"kubernetes: has a {kind}")
    deployment = kinds["Deployment"]
    check(deployment["spec"]["replicas"] == 2, "kubernetes: 2 replicas")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    for probe in ["readinessProbe", "livenessProbe"]:
        check(container.get(probe, {}).get("httpGet", {}).get("path") == "/_ssogate/healthz", f"kubernetes: {probe} on /_ssogate/healthz")
    env = {e["name"]: e for e in container.get("env", [])}
    secret_ref = env.get("SSOGATE_SESSION_SECRET", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(secret_ref.get("name") == kinds["Secret"]["metadata"]["name"], "kubernetes: session secret comes from the Secret")
    # Replicas share one replay store, whose URL (with its password) comes from a Secret
    # and names the PostgreSQL Service of postgres.yaml.
    store_ref = env.get("SSOGATE_STORE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(store_ref.get("name") in secrets, "kubernetes: the store URL comes from a Secret")
    store_url = secrets.get(store_ref.get("name"), {}).get("stringData", {}).get(store_ref.get("key"), "")
    check('store: "${SSOGATE_STORE_URL}"' in kinds["ConfigMap"]["data"]["ssogate.yaml"], "kubernetes: the configuration uses the shared store")
    pg = {d["kind"]: d for d in yaml.safe_load_all(open(os.path.join(ROOT, "deploy/kubernetes/postgres.yaml"))) if d}
    check({"StatefulSet", "Service", "Secret"} <= set(pg), "kubernetes: postgres.yaml has a StatefulSet, a Service and a Secret")
    check(store_url.startswith("postgres://") and f"@{pg['Service']['metadata']['name']}:5432/" in store_url,
          "kubernetes: the store URL names postgres.yaml's Service")
    check(pod["securityContext"].get("runAsNonRoot") is True and container["securityContext"].get("allowPrivilegeEscalation") is False,
          "kubernetes: non-root, no privilege escalation")
    pdb = kinds["PodDisruptionBudget"]["spec"]
    check(pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"] and pdb.get("minAvailable") == 1,
          "kubernetes: the PodDisruptionBudget keeps one replica of this Deployment")
    check(pod["terminationGracePeriodSeconds"] > 30, "kubernetes: grace period longer than the 30s drain")
    # The configuration in the ConfigMap is one `ssogate check` accepts, given its secret and
    # certificate (the certificate path is moved into the temp folder).
    config = kinds["ConfigMap"]["data"]["ssogate.yaml"]
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                    open(os.path.join(ROOT, "Config/minimal.yaml")).read(), re.S).group(0)
    cert = os.path.join(work, "acme.pem")
    with open(cert, "w") as f:
        f.write("\n".join(l.strip() for l in pem.splitlines()) + "\n")
    path = os.path.join(work, "k8s.yaml")
    with open(path, "w") as f:
        f.write(config.replace("/etc/ssogate/idp/acme.pem", cert))
    result = subprocess.run([BIN, "check", "--config", path], capture_output=True, text=True,
                            env=dict(os.environ, SSOGATE_SESSION_SECRET="k8s-test-0123456789abcdef0123456789abcdef",
                                     SSOGATE_STORE_URL=store_url))
    check(result.returncode == 0, "kubernetes: the ConfigMap's configuration passes ssogate check " + result.stderr.strip())


def dockerfile():
    text = open(os.path.join(ROOT, "deploy/Dockerfile")).read()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    check(len(stages) == 2 and stages[0].startswith("swift:") and "slim" in stages[1], f"docker: build on Swift, run on slim ({stages})")
    runtime = text.split("\nFROM ")[-1]
    installs = re.search(r"apt-get install -y --no-install-recommends ([^\\&\n]+)", runtime).group(1).split()
    check(set(installs) <= {"libxml2", "libssl3", "libnghttp2-14", "zlib1g", "libbrotli1", "libsqlite3-0"}, f"docker: runtime libraries only ({installs})")
    check("VOLUME /var/lib/ssogate" in runtime and "chown 65532:65532 /var/lib/ssogate" in runtime,
          "docker: the state folder belongs to the runtime user and is a volume")
    user = re.search(r"^USER (\S+)", runtime, re.M)
    check(user is not None and not user.group(1).startswith(("0", "root")), "docker: runs as a non-root user")


def main():
    work = tempfile.mkdtemp(prefix="ssogate-deploy-test.")
    try:
        systemd_unit(work)
        kubernetes(work)
        dockerfile()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"deploy: {'FAILED ' + str(len(failures)) if failures else 'all checks passed'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
