#!/usr/bin/env bash
# End-to-end: a real IdP (Debian's SimpleSAMLphp), the real gateway, a real upstream and a
# real browser (Debian's chromium + chromium-driver, driven by Selenium). The IdP answers on
# `localhost` and the gateway on `127.0.0.1`: different sites, so the IdP's POST back is a
# true cross-site POST, as with Okta. Screenshots go to .build/e2e/.
#
#   bash Tests/E2E/run-e2e.sh [path to ssogate]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${1:-$ROOT/.build/debug/ssogate}
WORK=$(mktemp -d /tmp/ssogate-e2e.XXXXXX)
OUT=$ROOT/.build/e2e
mkdir -p "$OUT" "$WORK"/{idp/cert,idp/metadata,idp/log,idp/data,idp/tmp,idp/sessions}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
IDP_PORT=$(free_port); GW_PORT=$(free_port); APP_PORT=$(free_port)
IDP="http://localhost:$IDP_PORT"; GW="http://127.0.0.1:$GW_PORT"

# The IdP's signing key pair, made for this run.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=e2e-idp -keyout "$WORK/idp/cert/idp.key" -out "$WORK/idp/cert/idp.crt" 2>/dev/null
sed -e "s|@IDP@|$IDP|g" -e "s|@DIR@|$WORK/idp|g" "$ROOT/Tests/E2E/simplesamlphp/config.php" > "$WORK/idp/config.php"
cp "$ROOT/Tests/E2E/simplesamlphp/authsources.php" "$WORK/idp/authsources.php"
sed -e "s|@IDP@|$IDP|g" "$ROOT/Tests/E2E/simplesamlphp/saml20-idp-hosted.php" > "$WORK/idp/metadata/saml20-idp-hosted.php"
sed -e "s|@GW@|$GW|g" "$ROOT/Tests/E2E/simplesamlphp/saml20-sp-remote.php" > "$WORK/idp/metadata/saml20-sp-remote.php"
SIMPLESAMLPHP_CONFIG_DIR="$WORK/idp" php -S "localhost:$IDP_PORT" -t /usr/share/simplesamlphp/www > "$WORK/idp/php.log" 2>&1 &
PIDS+=($!)

python3 "$ROOT/Tests/E2E/upstream.py" "$APP_PORT" > "$WORK/upstream.log" 2>&1 &
PIDS+=($!)

cat > "$WORK/ssogate.yaml" <<YAML
listen: "127.0.0.1:$GW_PORT"
public_url: "$GW"
upstream: "http://127.0.0.1:$APP_PORT"
session: {secrets: ["e2e-secret-0123456789abcdef0123456789abcdef"]}
protected_paths: ["/{org}/"]
organizations:
  - name: acme
    unauthenticated: banner
    saml:
      enabled: true
      sign_on_url: "$IDP/saml2/idp/SSOService.php"
      idp_entity_id: "$IDP/saml2/idp/metadata.php"
      certificate_file: "$WORK/idp/cert/idp.crt"
      allow_idp_initiated: true
    role_mapping: {attribute: groups, rules: [{value: engineering, role: write}, {value: hf-admins, role: admin}]}
  - name: globex
    unauthenticated: redirect
    saml:
      enabled: true
      sign_on_url: "$IDP/saml2/idp/SSOService.php"
      idp_entity_id: "$IDP/saml2/idp/metadata.php"
      certificate_file: "$WORK/idp/cert/idp.crt"
YAML
"$BIN" check --config "$WORK/ssogate.yaml"
"$BIN" serve --config "$WORK/ssogate.yaml" > "$WORK/ssogate.log" 2>&1 &
PIDS+=($!)

for url in "$IDP/saml2/idp/metadata.php" "$GW/_ssogate/healthz" "http://127.0.0.1:$APP_PORT/"; do
  for _ in $(seq 1 100); do curl -fs -o /dev/null "$url" && break; sleep 0.1; done
done

status=0
E2E_IDP="$IDP" E2E_GW="$GW" E2E_OUT="$OUT" python3 "$ROOT/Tests/E2E/e2e.py" || status=$?
if [ "$status" != 0 ]; then
  echo "--- ssogate log"; tail -n 40 "$WORK/ssogate.log"
  echo "--- simplesamlphp log"; tail -n 40 "$WORK/idp/log/"* 2>/dev/null || true; tail -n 20 "$WORK/idp/php.log"
fi
exit $status
