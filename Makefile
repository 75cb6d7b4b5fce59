# ssogate: build, test and run. `make demo` and `make test` work on a fresh Debian/Ubuntu
# machine with Swift installed: `deps` installs the system libraries that are missing.

SYSTEM_PACKAGES := libxml2-dev libssl-dev libnghttp2-dev pkg-config zlib1g-dev libbrotli-dev libsqlite3-dev
# Third-party parts the tests check against: xmlsec1 verifies our signatures; SimpleSAMLphp
# (with PHP's DOM extension), Chromium and its driver run the end-to-end login; PyYAML and
# systemd-analyze check deploy/; nghttp/h2load (nghttp2-client) drive the HTTP/2 listener;
# certutil (libnss3-tools) makes Chromium trust the e2e test's throwaway CA; PostgreSQL is
# the replicas' shared replay store (a throwaway server on loopback, Tests/Replicas).
# Jetty (libjetty9-java, servlet API, a JDK to compile the test servlet) and Node.js are real
# upstream application servers in Tests/Wire, beside Flask/Werkzeug from PyPI.
TEST_PACKAGES := xmlsec1 simplesamlphp php-cli php-xml php-mbstring chromium chromium-driver python3-yaml systemd nghttp2-client libnss3-tools postgresql \
  libjetty9-java libservlet-api-java openjdk-17-jdk-headless nodejs git curl nginx caddy
# Selenium drives Chromium in Tests/E2E; h2, httpx and websockets are the HTTP/2 and
# WebSocket clients of Tests/HTTP2; joserfc verifies X-SSO-Assertion in the E2E upstream. These versions resolve against this machine's PyPI mirror.
SELENIUM := selenium==4.27.1
PY_CLIENTS := "h2==4.1.0" "httpx[http2]==0.28.1" "websockets==17.4" "joserfc==1.6.5" "flask==3.1.3"
# The OTLP receiver of the tracing tests decodes what the exporter sends with the
# OpenTelemetry project's own protobuf definitions (Tests/Tracing/otlp_receiver.py).
OTLP_PROTO := "opentelemetry-proto==1.45.2"
PORT ?= 8080
# apt-get needs root; use sudo only when not already root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps test-deps build test demo release bench check-example

# Installs only what is missing, so it is quiet and quick once everything is there. No
# service a package brings (PostgreSQL's cluster, say) is started meanwhile.
deps:
	@$(MAKE) --no-print-directory install-missing PACKAGES="$(SYSTEM_PACKAGES)"

test-deps: deps
	@$(MAKE) --no-print-directory install-missing PACKAGES="$(TEST_PACKAGES)"
	@python3 -c 'import selenium' 2>/dev/null || pip install -q --disable-pip-version-check "$(SELENIUM)"
	@python3 -c 'import h2, httpx, websockets, joserfc, flask' 2>/dev/null || pip install -q --disable-pip-version-check $(PY_CLIENTS)
	@python3 -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null || pip install -q --disable-pip-version-check $(OTLP_PROTO)

.PHONY: install-missing
install-missing:
	@missing=""; \
	for pkg in $(PACKAGES); do \
	  dpkg -s "$$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  guard=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null && $(SUDO) chmod +x /usr/sbin/policy-rc.d && guard=1; \
	  fi; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  status=$$?; [ -n "$$guard" ] && $(SUDO) rm -f /usr/sbin/policy-rc.d; exit $$status; \
	fi

build: deps
	swift build

# Fails when any test fails (swift test exits non-zero). The executable is built first:
# the process tests run the real `ssogate` binary. demo_login.py completes a login in
# `ssogate demo` by following its HTML forms; check_http2.py drives the TLS, HTTP/2 and
# WebSocket listener with real clients (httpx, nghttp, h2load, websockets) and floods.
test: test-deps
	swift build --build-tests
	@# A throwaway PostgreSQL for the replica tests (the suite needs SSOGATE_TEST_POSTGRES).
	pgdir=$$(mktemp -d /tmp/ssogate-pg.XXXXXX); \
	url=$$(bash Tests/Replicas/postgres.sh start $$pgdir) || { bash Tests/Replicas/postgres.sh stop $$pgdir; exit 1; }; \
	SSOGATE_TEST_POSTGRES=$$url SSOGATE_TEST_POSTGRES_CA=$$pgdir/ca.crt swift test --skip-build; status=$$?; \
	bash Tests/Replicas/postgres.sh stop $$pgdir; exit $$status
	timeout 300 python3 Tests/Demo/demo_login.py .build/debug/ssogate
	python3 Tests/Deploy/check_deploy.py .build/debug/ssogate
	timeout 300 python3 Tests/HTTP2/check_http2.py .build/debug/ssogate
	@# Hostile clients on the wire, with Jetty, Werkzeug and Node.js applications as upstreams.
	timeout 300 python3 Tests/Wire/check_wire.py .build/debug/ssogate
	@# Two gateway processes sharing a throwaway PostgreSQL replay store, stopped mid-test.
	timeout 180 python3 Tests/Replicas/check_replicas.py .build/debug/ssogate
	@# Debian's git clones and pushes through the gateway with an access token.
	timeout 300 python3 Tests/Git/check_git.py .build/debug/ssogate
	@# Debian's nginx (auth_request) and Caddy (forward_auth) running the README's snippets.
	timeout 180 python3 Tests/ForwardAuth/check_forward_auth.py .build/debug/ssogate
	bash Tests/E2E/run-e2e.sh

# The browser login against SimpleSAMLphp alone (screenshots in .build/e2e/).
.PHONY: e2e
e2e: test-deps
	swift build --product ssogate
	bash Tests/E2E/run-e2e.sh

demo: build
	.build/debug/ssogate demo --port $(PORT)

# The README's screenshots of the demo (headless Chromium), into docs/screenshots/.
.PHONY: screenshots
screenshots: test-deps
	swift build --product ssogate
	python3 docs/take-screenshots.py .build/debug/ssogate

release: deps
	swift build -c release

bench: release
	@$(MAKE) --no-print-directory install-missing PACKAGES=postgresql
	bash benchmarks/proxy-bench.sh
	bash benchmarks/h2-bench.sh
	python3 benchmarks/acs-bench.py --binary .build/release/ssogate
	python3 benchmarks/auth-bench.py --binary .build/release/ssogate

check-example: build
	.build/debug/ssogate check --config Config/ssogate.example.yaml

# Coverage-guided fuzzing (libFuzzer + AddressSanitizer), FUZZ_SECONDS per target: SAMLResponse
# decoding and validation with IdP metadata; client bytes over HTTP/1.x; HTTP/2 frames; upstream
# responses (FUZZ_TARGETS picks some). Each target's seed corpus is Tests/Fixtures/fuzz/<target>
# (the SAML one also gets the hostile shapes of FuzzTargets.HostileShapes, written by
# `ssogate-bench hostile 0 DIR`); a crashing input is saved there (crash-*), so `make test`
# replays it from then on. RSS and single allocations are capped: unbounded growth is a finding.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= saml-response http1 http2 upstream-response
.PHONY: fuzz
fuzz: deps
	swift build -c debug --scratch-path .build-fuzz --product ssogate-fuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
	swift build --product ssogate-bench
	@for target in $(FUZZ_TARGETS); do \
	  echo "== fuzzing $$target for $(FUZZ_SECONDS) s"; \
	  corpus=$$(mktemp -d) && cp Tests/Fixtures/fuzz/$$target/* "$$corpus"/ && \
	  if [ "$$target" = saml-response ]; then .build/debug/ssogate-bench hostile 0 "$$corpus" || exit 1; fi; \
	  SSOGATE_FUZZ_TARGET=$$target .build-fuzz/x86_64-unknown-linux-gnu/debug/ssogate-fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -malloc_limit_mb=512 -artifact_prefix=Tests/Fixtures/fuzz/$$target/ "$$corpus"; \
	  status=$$?; rm -rf "$$corpus"; [ $$status -eq 0 ] || exit $$status; \
	done
