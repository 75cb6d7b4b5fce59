#!/usr/bin/env bash
# End-to-end: a real IdP (Debian's SimpleSAMLphp), the real gateway, a real upstream and a
# real browser (Debian's chromium + chromium-driver, driven by Selenium). The IdP answers on
# `localhost` and the gateway on `127.0.0.1`: different sites, so the IdP's POST back is a
# true cross-site POST, as with Okta. A second gateway serves the same organizations over
# https + HTTP/2 on `127.0.0.1`, with a certificate from a throwaway CA made here and
# trusted by Chromium through an NSS database of its own (certutil, libnss3-tools). A third
# organization, initech, has an SP key pair made here: the gateway signs its AuthnRequests,
# SimpleSAMLphp validates them and encrypts the assertion to the SP certificate, and the
# gateway refuses assertions in the clear for it (require_encrypted_assertions). Both
# gateways sign an X-SSO-Assertion (upstream_assertion) with P-256 keys made here, which the
# upstream verifies against their JWKS with joserfc.
# Screenshots go to .build/e2e/.
#
#   bash Tests/E2E/run-e2e.sh [path to ssogate]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${1:-$ROOT/.build/debug/ssogate}
WORK=$(mktemp -d /tmp/ssogate-e2e.XXXXXX)
OUT=$ROOT/.build/e2e
mkdir -p "$OUT" "$WORK"/{sp,jwt,idp/cert,idp/metadata,idp/log,idp/data,idp/tmp,idp/sessions,tls,home/.pki/nssdb}
rm -f "$OUT"/failure*.png  # from an earlier run
command -v certutil >/dev/null || { echo "run-e2e.sh: certutil missing (Debian package libnss3-tools)" >&2; exit 1; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
IDP_PORT=$(free_port); GW_PORT=$(free_port); GWS_PORT=$(free_port); APP_PORT=$(free_port)
IDP="http://localhost:$IDP_PORT"; GW="http://127.0.0.1:$GW_PORT"; GWS="https://127.0.0.1:$GWS_PORT"

# A test CA made for this run, and the https gateway's certificate signed by it (IP SAN
# 127.0.0.1, plus localhost). Chromium trusts the CA through the NSS database in
# $WORK/home/.pki/nssdb (chromedriver starts it with HOME=$WORK/home): only this run's
# browser, and certificate checking stays on.
TLS=$WORK/tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=ssogate e2e test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" > "$TLS/server.ext"
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -days 2 -sha256 \
  -extfile "$TLS/server.ext" -out "$TLS/server.crt" 2>/dev/null
NSSDB="sql:$WORK/home/.pki/nssdb"
certutil -N -d "$NSSDB" --empty-password
certutil -A -d "$NSSDB" -n "ssogate e2e test CA" -t "C,," -i "$TLS/ca.crt"

# The IdP's signing key pair, made for this run.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=e2e-idp -keyout "$WORK/idp/cert/idp.key" -out "$WORK/idp/cert/idp.crt" 2>/dev/null
# initech's SP key pair (both gateways use it), made for this run; the IdP gets the
# certificate only, for validating AuthnRequest signatures and encrypting assertions.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=e2e-sp-initech -keyout "$WORK/sp/sp.key" -out "$WORK/sp/sp.crt" 2>/dev/null
chmod 600 "$WORK/sp/sp.key"
cp "$WORK/sp/sp.crt" "$WORK/idp/cert/sp-initech.crt"
# The upstream_assertion signing keys (both gateways use them), made for this run: jwt-a
# signs, jwt-b is published in the JWKS only (a key rolled in).
for key in jwt-a jwt-b; do openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/jwt/$key.pem"; done
chmod 600 "$WORK"/jwt/*.pem
sed -e "s|@IDP@|$IDP|g" -e "s|@DIR@|$WORK/idp|g" "$ROOT/Tests/E2E/simplesamlphp/config.php" > "$WORK/idp/config.php"
cp "$ROOT/Tests/E2E/simplesamlphp/authsources.php" "$WORK/idp/authsources.php"
sed -e "s|@IDP@|$IDP|g" "$ROOT/Tests/E2E/simplesamlphp/saml20-idp-hosted.php" > "$WORK/idp/metadata/saml20-idp-hosted.php"
sed -e "s|@GW@|$GW|g" -e "s|@GWS@|$GWS|g" "$ROOT/Tests/E2E/simplesamlphp/saml20-sp-remote.php" > "$WORK/idp/metadata/saml20-sp-remote.php"
SIMPLESAMLPHP_CONFIG_DIR="$WORK/idp" php -S "localhost:$IDP_PORT" -t /usr/share/simplesamlphp/www > "$WORK/idp/php.log" 2>&1 &
PIDS+=($!)

# The upstream accepts assertions from these two issuers only (their public_url), fetches
# their JWKS (the https one through the test CA) and logs each token it gets for e2e.py.
python3 "$ROOT/Tests/E2E/upstream.py" "$APP_PORT" --gateway "$GW" --gateway "$GWS" --ca "$TLS/ca.crt" \
  --token-log "$WORK/upstream-tokens.jsonl" > "$WORK/upstream.log" 2>&1 &
PIDS+=($!)

# The same organizations and IdP behind both gateways; $1 listen, $2 public_url, then
# extra top-level lines (tls, hsts), then the upstream_assertion ttl. The assertion's iss is
# each gateway's public_url, its aud the upstream URL (the default audience).
gateway_config() {
  cat <<YAML
listen: "$1"
public_url: "$2"
upstream: "http://127.0.0.1:$APP_PORT"
session: {secrets: ["e2e-secret-0123456789abcdef0123456789abcdef"]}
protected_paths: ["/{org}/"]
upstream_assertion:
  enabled: true
  signing_key_files: ["$WORK/jwt/jwt-a.pem", "$WORK/jwt/jwt-b.pem"]
  ttl: $4
$3
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
  - name: initech
    unauthenticated: redirect
    saml:
      enabled: true
      sign_on_url: "$IDP/saml2/idp/SSOService.php"
      idp_entity_id: "$IDP/saml2/idp/metadata.php"
      certificate_file: "$WORK/idp/cert/idp.crt"
      sp_certificate_file: "$WORK/sp/sp.crt"
      sp_private_key_file: "$WORK/sp/sp.key"
      require_encrypted_assertions: true
      slo_url: "$IDP/saml2/idp/SingleLogoutService.php"
  - name: hooli
    id: "64f0c2hooli"
    managed: console
  - name: umbrella
    unauthenticated: redirect
    saml:
      enabled: true
      sign_on_url: "$IDP/saml2/idp/SSOService.php"
      idp_entity_id: "$IDP/saml2/idp/metadata.php"
      certificate_file: "$WORK/idp/cert/idp.crt"
    role_mapping: {attribute: groups, rules: [{value: engineering, role: write}]}
    access: {allowed_email_domains: [example.test], contact: "it-help@example.test"}
YAML
}
# The http gateway's tokens live 10s (the shortest ttl allowed): e2e.py presents its first
# one, genuine but expired by then, to the upstream at the end. The https one keeps 5m.
gateway_config "127.0.0.1:$GW_PORT" "$GW" "" 10s > "$WORK/ssogate.yaml"
gateway_config "127.0.0.1:$GWS_PORT" "$GWS" "tls: {certificate_file: \"$TLS/server.crt\", private_key_file: \"$TLS/server.key\"}
hsts: {max_age: 1d}" 5m > "$WORK/ssogate-https.yaml"
for config in ssogate ssogate-https; do
  "$BIN" check --config "$WORK/$config.yaml"
  "$BIN" serve --config "$WORK/$config.yaml" > "$WORK/$config.log" 2>&1 &
  PIDS+=($!)
done

for url in "$IDP/saml2/idp/metadata.php" "$GW/_ssogate/healthz" "$GWS/_ssogate/healthz" "http://127.0.0.1:$APP_PORT/"; do
  for _ in $(seq 1 100); do curl -fs --cacert "$TLS/ca.crt" -o /dev/null "$url" && break; sleep 0.1; done
done

status=0
E2E_IDP="$IDP" E2E_GW="$GW" E2E_GWS="$GWS" E2E_CA="$TLS/ca.crt" E2E_HOME="$WORK/home" E2E_OUT="$OUT" \
  E2E_APP="http://127.0.0.1:$APP_PORT" E2E_JWT_KEYS="$WORK/jwt/jwt-a.pem $WORK/jwt/jwt-b.pem" \
  E2E_UPSTREAM_TOKENS="$WORK/upstream-tokens.jsonl" E2E_UPSTREAM_LOG="$WORK/upstream.log" E2E_SP_CERT="$WORK/sp/sp.crt" E2E_IDP_LOG="$WORK/idp/log/simplesamlphp.log" python3 "$ROOT/Tests/E2E/e2e.py" || status=$?
# The org admin's story: hooli set up from the console (the SQLite store beside ssogate.yaml
# is shared by the CLI's admin-link and the running gateway).
E2E_IDP="$IDP" E2E_GW="$GW" E2E_BIN="$BIN" E2E_CONFIG="$WORK/ssogate.yaml" E2E_HOME="$WORK/home" E2E_OUT="$OUT" \
  E2E_IDP_CERT="$WORK/idp/cert/idp.crt" E2E_WRONG_CERT="$WORK/sp/sp.crt" python3 "$ROOT/Tests/E2E/admin_story.py" || status=$?
# The access policy: umbrella admits example.test only; mallory is refused with a page that
# says why, alice gets in.
E2E_IDP="$IDP" E2E_GW="$GW" E2E_HOME="$WORK/home" E2E_OUT="$OUT" python3 "$ROOT/Tests/E2E/policy_story.py" || status=$?
# Single Logout both ways with SimpleSAMLphp (initech, which has an SP key pair).
E2E_IDP="$IDP" E2E_GW="$GW" E2E_HOME="$WORK/home" E2E_OUT="$OUT" python3 "$ROOT/Tests/E2E/slo_story.py" || status=$?
if [ "$status" != 0 ]; then
  echo "--- ssogate log ($GW)"; tail -n 40 "$WORK/ssogate.log"
  echo "--- ssogate log ($GWS)"; tail -n 40 "$WORK/ssogate-https.log"
  echo "--- simplesamlphp log"; tail -n 40 "$WORK/idp/log/"* 2>/dev/null || true; tail -n 20 "$WORK/idp/php.log"
  echo "--- upstream log"; tail -n 20 "$WORK/upstream.log"
  echo "--- assertions the upstream received (verdicts)"; tail -n 20 "$WORK/upstream-tokens.jsonl" 2>/dev/null | cut -c 1-400 || true
fi
exit $status
