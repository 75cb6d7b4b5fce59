#!/usr/bin/env bash
# Regenerates every SAML fixture in this folder: keys, signed responses, attack vectors,
# their .b64 twins and xmlsec1-verify.txt. README.md says what each file is and the
# verdict a correct SP must give.
#
# Signatures are made by a third-party signer, Debian's xmlsec1 CLI (package `xmlsec1`),
# never by our own code, so our verifier is tested against somebody else's reading of
# XML-DSig. Documents are written from templates (heredocs below); the attack files are
# then edited after signing by a small Python helper that uses only the standard library.
#
# Usage: make-fixtures.sh [--new-keys]
#   Keys in keys/ are reused when present, so a re-run rewrites every fixture byte for byte
#   (RSA PKCS#1 v1.5 signatures are deterministic; the randomized ECDSA one is kept while
#   it still fits, see keep_previous_signature) and `git status` stays clean.
#   --new-keys throws the keys away first; every fixture is then re-signed with the new ones.
#
# Needs: bash, openssl, python3 (standard library only), xmlsec1, base64 (coreutils).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

new_keys=0
if [[ ${1:-} == --new-keys ]]; then
  new_keys=1
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--new-keys]" >&2
  exit 2
fi

for tool in openssl python3 xmlsec1 base64; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y xmlsec1 openssl python3 coreutils)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

die() { echo "make-fixtures: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# Fixed values. Tests validate "at 2026-01-01T10:01:00Z" (clock_skew 60s) as the SP below,
# with an outstanding AuthnRequest id-request-1.
# ---------------------------------------------------------------------------------------
SP_ENTITY_ID="https://hub.example.test/organizations/acme/saml/metadata"
ACS_URL="https://hub.example.test/organizations/acme/saml/consume"
IDP_ENTITY_ID="http://www.okta.com/exk-test"
OTHER_ORG_ACS="https://hub.example.test/organizations/other/saml/consume"
OTHER_ORG_ENTITY_ID="https://hub.example.test/organizations/other/saml/metadata"

NS_SAML="urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAMLP="urn:oasis:names:tc:SAML:2.0:protocol"
# xmlsec1 knows no schema, so it must be told which attributes are XML IDs.
ID_ATTRS=(--id-attr:ID "$NS_SAML:Assertion" --id-attr:ID "$NS_SAMLP:Response")

ALG_RSA_SHA256="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ALG_ECDSA_SHA256="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ALG_RSA_SHA1="http://www.w3.org/2000/09/xmldsig#rsa-sha1"
DIGEST_SHA256="http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA1="http://www.w3.org/2000/09/xmldsig#sha1"

# ---------------------------------------------------------------------------------------
# Keys and certificates
# ---------------------------------------------------------------------------------------
# Self-signed certificates with fixed names, serials and dates (2025-01-01 to 2045-01-01,
# 20 years), so they are valid at the fixtures' 2026 instant whenever the keys were made.
# `openssl ca -selfsign` is used because OpenSSL 3.0's `req -x509` cannot set a start date.
make_cert() { # name key-algorithm common-name serial key-usage
  local name=$1 alg=$2 cn=$3 serial=$4 usage=$5 dir="$work/ca-$1"
  mkdir -p "$dir"
  : > "$dir/index.txt"
  echo "$serial" > "$dir/serial"
  cat > "$dir/ca.cnf" <<EOF
[ ca ]
default_ca = selfsign
[ selfsign ]
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
x509_extensions = ext
[ anything ]
commonName = supplied
[ ext ]
keyUsage = critical,$usage
subjectKeyIdentifier = hash
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = $cn
EOF
  case $alg in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "keys/$name.key" 2>/dev/null ;;
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -pkeyopt ec_param_enc:named_curve -out "keys/$name.key" ;;
  esac
  openssl req -new -key "keys/$name.key" -config "$dir/ca.cnf" -out "$dir/req.csr"
  openssl ca -batch -config "$dir/ca.cnf" -selfsign -keyfile "keys/$name.key" -in "$dir/req.csr" \
    -startdate 20250101000000Z -enddate 20450101000000Z -notext -out "keys/$name.crt" 2>/dev/null
}

KEY_NAMES=(idp-rsa idp-ec attacker-rsa sp-rsa)

have_all_keys() { # DIR
  local name
  for name in "${KEY_NAMES[@]}"; do
    [[ -f $1/$name.key && -f $1/$name.crt ]] || return 1
  done
}

make_keys() { # into ./keys
  make_cert idp-rsa rsa ssogate-test-idp 1001 digitalSignature
  make_cert idp-ec p256 ssogate-test-idp-ec 1002 digitalSignature
  # The attacker's certificate copies the IdP's subject, issuer, serial and dates; only the
  # key differs. An SP that trusts KeyInfo, or matches certificates by name, is fooled by it.
  make_cert attacker-rsa rsa ssogate-test-idp 1001 digitalSignature
  make_cert sp-rsa rsa ssogate-test-sp 1003 digitalSignature,keyEncipherment
}

# ---------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------
# Every value of the base document, reset before each fixture; a fixture overrides a few.
reset_values() {
  RESPONSE_ID=id-response-1
  ASSERTION_ID=id-assertion-1
  ISSUE_INSTANT=2026-01-01T10:00:00Z
  DESTINATION=$ACS_URL
  IN_RESPONSE_TO=id-request-1          # empty: no InResponseTo anywhere (IdP-initiated)
  RESPONSE_ISSUER=$IDP_ENTITY_ID
  ASSERTION_ISSUER=$IDP_ENTITY_ID
  STATUS_CODE=urn:oasis:names:tc:SAML:2.0:status:Success
  STATUS_SUBCODE=""
  NAMEID_XML=alice@example.test        # element content, pasted as is (may hold markup)
  SC_NOT_ON_OR_AFTER=2026-01-01T10:05:00Z
  RECIPIENT=$ACS_URL
  NOT_BEFORE=2026-01-01T09:59:00Z
  NOT_ON_OR_AFTER=2026-01-01T10:05:00Z
  AUDIENCE=$SP_ENTITY_ID
  EMAIL=alice@example.test
  RESPONSE_SIGNATURE=""                # signature templates (see signature_template)
  ASSERTION_SIGNATURE=""
  SECOND_ASSERTION=""                  # rendered second Assertion, for two-assertions.xml
}

# Prints a ds:Signature template for xmlsec1 to fill in (DigestValue, SignatureValue,
# X509Certificate). Options: --ref URI, --alg SIGNATURE-URI, --digest DIGEST-URI,
# --prefix-list LIST (Okta's InclusiveNamespaces in the exc-c14n transform),
# --xpath-transform EXPR (an extra XPath filter before exc-c14n), --second-ref URI.
signature_template() {
  local ref="" alg=$ALG_RSA_SHA256 digest=$DIGEST_SHA256 prefix_list="" xpath="" second_ref=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --ref) ref=$2 ;;
      --alg) alg=$2 ;;
      --digest) digest=$2 ;;
      --prefix-list) prefix_list=$2 ;;
      --xpath-transform) xpath=$2 ;;
      --second-ref) second_ref=$2 ;;
      *) die "signature_template: unknown option $1" ;;
    esac
    shift 2
  done
  local exc_c14n='<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
  if [[ -n $prefix_list ]]; then
    exc_c14n="<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\">
          <ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"$prefix_list\"/>
        </ds:Transform>"
  fi
  local extra_transform=""
  if [[ -n $xpath ]]; then
    extra_transform="<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\">
          <ds:XPath xmlns:saml=\"$NS_SAML\">$xpath</ds:XPath>
        </ds:Transform>
        "
  fi
  reference() { # uri
    cat <<EOF
    <ds:Reference URI="$1">
      <ds:Transforms>
        <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
        $extra_transform$exc_c14n
      </ds:Transforms>
      <ds:DigestMethod Algorithm="$digest"/>
      <ds:DigestValue></ds:DigestValue>
    </ds:Reference>
EOF
  }
  echo '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
  echo '  <ds:SignedInfo>'
  echo '    <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
  echo "    <ds:SignatureMethod Algorithm=\"$alg\"/>"
  reference "$ref"
  if [[ -n $second_ref ]]; then reference "$second_ref"; fi
  echo '  </ds:SignedInfo>'
  echo '  <ds:SignatureValue></ds:SignatureValue>'
  echo '  <ds:KeyInfo>'
  echo '    <ds:X509Data>'
  echo '      <ds:X509Certificate></ds:X509Certificate>'
  echo '    </ds:X509Data>'
  echo '  </ds:KeyInfo>'
  echo '</ds:Signature>'
}

# The usual templates: the Assertion's carries Okta's PrefixList="xs" (xsi:type values
# name the xs prefix, which exc-c14n would otherwise drop); the Response's does not,
# as in Okta's responses.
assertion_signature() { signature_template --ref "#$ASSERTION_ID" --prefix-list xs "$@"; }
response_signature() { signature_template --ref "#$RESPONSE_ID" "$@"; }

indent() { sed "s/^/$1/"; }   # re-indents a template for its place in the document

# An Assertion with the current values: render_assertion ID NAMEID-XML SIGNATURE-TEMPLATE.
# The signature goes right after the Issuer, where the SAML schema puts it.
render_assertion() {
  local id=$1 nameid=$2 signature=$3
  local sc_irt="" sig=""
  [[ -n $IN_RESPONSE_TO ]] && sc_irt=" InResponseTo=\"$IN_RESPONSE_TO\""
  [[ -n $signature ]] && sig=$'\n'$(indent '    ' <<<"$signature")
  cat <<EOF
  <saml:Assertion xmlns:saml="$NS_SAML" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="$id" IssueInstant="$ISSUE_INSTANT" Version="2.0">
    <saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">$ASSERTION_ISSUER</saml:Issuer>$sig
    <saml:Subject>
      <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">$nameid</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData$sc_irt NotOnOrAfter="$SC_NOT_ON_OR_AFTER" Recipient="$RECIPIENT"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="$NOT_BEFORE" NotOnOrAfter="$NOT_ON_OR_AFTER">
      <saml:AudienceRestriction>
        <saml:Audience>$AUDIENCE</saml:Audience>
      </saml:AudienceRestriction>
    </saml:Conditions>
    <saml:AuthnStatement AuthnInstant="$ISSUE_INSTANT" SessionIndex="session-1">
      <saml:AuthnContext>
        <saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>
      </saml:AuthnContext>
    </saml:AuthnStatement>
    <saml:AttributeStatement>
      <saml:Attribute Name="email" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">
        <saml:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">$EMAIL</saml:AttributeValue>
      </saml:Attribute>
      <saml:Attribute Name="groups" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">
        <saml:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">engineering</saml:AttributeValue>
        <saml:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">hf-admins</saml:AttributeValue>
      </saml:Attribute>
    </saml:AttributeStatement>
  </saml:Assertion>
EOF
}

# The whole samlp:Response, shaped like Okta's (saml prefix declared on the Issuer and
# again on the Assertion, xs on the Assertion, xsi on each AttributeValue).
render_response() {
  local irt="" sig="" status
  [[ -n $IN_RESPONSE_TO ]] && irt=" InResponseTo=\"$IN_RESPONSE_TO\""
  [[ -n $RESPONSE_SIGNATURE ]] && sig=$'\n'$(indent '  ' <<<"$RESPONSE_SIGNATURE")
  if [[ -n $STATUS_SUBCODE ]]; then
    status="<samlp:StatusCode Value=\"$STATUS_CODE\">
      <samlp:StatusCode Value=\"$STATUS_SUBCODE\"/>
    </samlp:StatusCode>"
  else
    status="<samlp:StatusCode Value=\"$STATUS_CODE\"/>"
  fi
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="$NS_SAMLP" Destination="$DESTINATION" ID="$RESPONSE_ID"$irt IssueInstant="$ISSUE_INSTANT" Version="2.0">
  <saml:Issuer xmlns:saml="$NS_SAML" Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">$RESPONSE_ISSUER</saml:Issuer>$sig
  <samlp:Status>
    $status
  </samlp:Status>
$(render_assertion "$ASSERTION_ID" "$NAMEID_XML" "$ASSERTION_SIGNATURE")
EOF
  [[ -n $SECOND_ASSERTION ]] && printf '%s\n' "$SECOND_ASSERTION"
  echo '</samlp:Response>'
}

# ---------------------------------------------------------------------------------------
# Signing and verifying with xmlsec1
# ---------------------------------------------------------------------------------------
# XPath of the n-th ds:Signature in document order; xmlsec1 starts at that node.
nth_signature() { echo "(//*[local-name()='Signature' and namespace-uri()='http://www.w3.org/2000/09/xmldsig#'])[$1]"; }

# sign IN OUT KEY-NAME N: fills the n-th signature template of IN with keys/KEY-NAME.
sign() {
  local in=$1 out=$2 key=$3 n=$4
  xmlsec1 --sign --privkey-pem "keys/$key.key,keys/$key.crt" "${ID_ATTRS[@]}" \
    --node-xpath "$(nth_signature "$n")" --output "$out" "$in" 2>"$work/sign.log" ||
    { cat "$work/sign.log" >&2; die "xmlsec1 could not sign $out"; }
}

# Signs the templates present in the current values and writes the fixture. The
# Assertion's signature is made first: the Response's digest covers it.
build() { # FILE SIGNING-KEY
  local file=$1 key=$2
  local have_response_sig=0 have_assertion_sig=0
  [[ -n $RESPONSE_SIGNATURE ]] && have_response_sig=1
  [[ -n $ASSERTION_SIGNATURE ]] && have_assertion_sig=1
  render_response > "$work/step.xml"
  # The Response's signature (if any) is the first in document order.
  if [[ $have_assertion_sig == 1 ]]; then
    sign "$work/step.xml" "$work/step2.xml" "$key" $((1 + have_response_sig))
    mv "$work/step2.xml" "$work/step.xml"
  fi
  if [[ -n $SECOND_ASSERTION ]]; then
    sign "$work/step.xml" "$work/step2.xml" "$key" $((2 + have_response_sig))
    mv "$work/step2.xml" "$work/step.xml"
  fi
  if [[ $have_response_sig == 1 ]]; then
    sign "$work/step.xml" "$work/step2.xml" "$key" 1
    mv "$work/step2.xml" "$work/step.xml"
  fi
  mv "$work/step.xml" "$file"
}

# Runs `xmlsec1 --verify` on the n-th signature of FILE with the configured certificate.
# xmlsec1 first tries the certificate in KeyInfo, drops it because it does not chain to a
# trusted root (ours are self-signed; the "certificate verification failed" noise in its
# output), then uses the key given here. Prints OK, or FAIL with what xmlsec1 says went wrong.
xmlsec_verify() { # FILE CERT N [extra xmlsec1 options]
  local file=$1 cert=$2 n=$3
  shift 3
  local log="$work/verify.log"
  if xmlsec1 --verify --pubkey-cert-pem "keys/$cert.crt" "${ID_ATTRS[@]}" \
      --node-xpath "$(nth_signature "$n")" "$@" "$file" >"$log" 2>&1; then
    echo OK
    return
  fi
  # What failed, in words, from xmlsec1's error output.
  if grep -q 'data and digest do not match' "$log"; then
    echo "FAIL (digest mismatch)"
  elif grep -q 'EVP_VerifyFinal: signature verification failed' "$log"; then
    echo "FAIL (SignatureValue does not verify with this certificate)"
  elif grep -q 'duplicate ID attribute' "$log"; then
    echo "FAIL (duplicate ID attribute: document refused before any check)"
  elif grep -q 'XML_ENTITY_REF_NODE is invalid' "$log"; then
    echo "FAIL (entity left unexpanded: libxml2's C14N refuses the entity reference node)"
  elif grep -q 'unexpected node:node=' "$log"; then
    echo "FAIL (unexpected <$(grep -m1 -o 'unexpected node:node=[A-Za-z]*' "$log" | cut -d= -f2)> element inside ds:Signature)"
  else
    echo "FAIL ($(grep -m1 -o 'error=[0-9]*:[^:]*' "$log" || echo unknown))"
  fi
}

# Records xmlsec1's verdict on every signature of FILE in xmlsec1-verify.txt and stops the
# script when it differs from EXPECTED (one word per signature, OK or FAIL), so the
# README's claims about xmlsec1 stay true, and a valid fixture never ships unverified.
record() { # FILE CERT EXPECTED...
  local file=$1 cert=$2
  shift 2
  local expected=("$@") count i outcome
  count=$({ grep -o '<ds:Signature xmlns:ds=' "$file" || true; } | wc -l)
  [[ $count == "${#expected[@]}" ]] || die "$file: $count signatures, expected ${#expected[@]}"
  if [[ $count == 0 ]]; then
    printf '%-62s no signature\n' "$file" >> "$results"
  fi
  for ((i = 1; i <= count; i++)); do
    outcome=$(xmlsec_verify "$file" "$cert" "$i")
    printf '%-62s signature %d of %d, cert %-13s %s\n' "$file" "$i" "$count" "$cert.crt:" "$outcome" >> "$results"
    [[ ${outcome%% *} == "${expected[$((i - 1))]}" ]] ||
      die "$file signature $i: xmlsec1 says '$outcome', expected ${expected[$((i - 1))]}"
  done
}

# ECDSA signatures are randomized (OpenSSL 3.0 has no RFC 6979 mode), so each run would
# write a new SignatureValue. When everything but the SignatureValue is unchanged and the
# previous file still verifies, the previous file is kept: a re-run leaves git clean.
# Succeeds when it kept the previous file.
keep_previous_signature() { # FILE CERT
  local file=$1 cert=$2 previous="$here/$1"
  [[ -f $previous ]] || return 1
  without_value() { sed '/<ds:SignatureValue>/,/<\/ds:SignatureValue>/d' "$1"; }
  cmp -s <(without_value "$file") <(without_value "$previous") || return 1
  [[ $(xmlsec_verify "$previous" "$cert" 1) == OK ]] || return 1
  cp "$previous" "$file"
}

# Succeeds when the first ECDSA SignatureValue of FILE has a zero first byte in r or in s.
ecdsa_has_leading_zero() { # FILE
  python3 - "$1" <<'PY'
import base64, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
value = base64.b64decode(re.search(r"<ds:SignatureValue>(.*?)</ds:SignatureValue>", text, re.S).group(1))
half = len(value) // 2
sys.exit(0 if value[0] == 0 or value[half] == 0 else 1)
PY
}

edit() { python3 "$work/fixture_edit.py" "$@"; }   # post-signing edits, see below

b64() { base64 -w0 "$1" > "${1%.xml}.b64"; }        # the SAMLResponse form value

# ---------------------------------------------------------------------------------------
# Post-signing edits (Python standard library). minidom re-serializes a parsed document
# byte for byte here (attribute order, whitespace and comments are kept), so every edit
# changes exactly the nodes it names and nothing else.
# ---------------------------------------------------------------------------------------
cat > "$work/fixture_edit.py" <<'PY'
import sys
from xml.dom import minidom, Node

NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
EVIL = "admin@example.test"   # whom the attacker wants to be

def load(path):
    with open(path, "rb") as f:
        return minidom.parseString(f.read())

def save(doc, path):
    with open(path, "wb") as f:
        f.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        f.write(doc.documentElement.toxml(encoding=None).encode("utf-8"))
        f.write(b"\n")

def one(nodes, what):
    nodes = list(nodes)
    if len(nodes) != 1:
        sys.exit(f"fixture_edit: expected exactly one {what}, found {len(nodes)}")
    return nodes[0]

def children(el, ns, name):
    return [c for c in el.childNodes
            if c.nodeType == Node.ELEMENT_NODE and c.namespaceURI == ns and c.localName == name]

def signature_of(el):
    return one(children(el, NS_DS, "Signature"), f"ds:Signature child of {el.tagName}")

def remove_with_indent(node):
    """Removes node and the whitespace text just before it, so the file stays tidy.
    Only for nodes outside any digested content (a whitespace node inside signed content
    is part of the digest)."""
    prev = node.previousSibling
    if prev is not None and prev.nodeType == Node.TEXT_NODE and prev.data.strip() == "":
        prev.parentNode.removeChild(prev)
    node.parentNode.removeChild(node)

def set_text(el, value):
    while el.firstChild:
        el.removeChild(el.firstChild)
    el.appendChild(el.ownerDocument.createTextNode(value))

def make_evil(assertion, new_id=None):
    """What every wrapping attack wants: another user's NameID and email."""
    set_text(one(assertion.getElementsByTagNameNS(NS_SAML, "NameID"), "NameID"), EVIL)
    for attr in assertion.getElementsByTagNameNS(NS_SAML, "Attribute"):
        if attr.getAttribute("Name") == "email":
            set_text(one(attr.getElementsByTagNameNS(NS_SAML, "AttributeValue"), "email value"), EVIL)
    if new_id:
        assertion.setAttribute("ID", new_id)

def the_assertion(doc):
    return one(children(doc.documentElement, NS_SAML, "Assertion"), "Assertion child of the Response")

def unsigned_copy(el):
    """A deep copy minus its enveloped Signature: the same bytes the signature's digest saw
    (the enveloped-signature transform removes the Signature element and nothing else)."""
    copy = el.cloneNode(True)
    copy.removeChild(signature_of(copy))
    return copy

def evil_copy(el, new_id=None):
    """An unsigned copy with the attacker's values. Nothing digests it, so the line its
    Signature stood on can go too."""
    copy = el.cloneNode(True)
    remove_with_indent(signature_of(copy))
    make_evil(copy, new_id)
    return copy

def ws(doc, text):
    return doc.createTextNode(text)

# --- plain edits ------------------------------------------------------------------------

def strip_assertion_signature(doc):
    remove_with_indent(signature_of(the_assertion(doc)))

def change_nameid(doc, value):
    set_text(one(doc.getElementsByTagNameNS(NS_SAML, "NameID"), "NameID"), value)

def insert_comment_in_nameid(doc, after):
    """Splits the NameID text after `after` with an empty comment: alice@example.test<!---->..."""
    nameid = one(doc.getElementsByTagNameNS(NS_SAML, "NameID"), "NameID")
    text = one(nameid.childNodes, "NameID text")
    if not text.data.startswith(after) or text.data == after:
        sys.exit(f"fixture_edit: NameID {text.data!r} does not continue after {after!r}")
    rest = text.splitText(len(after))
    nameid.insertBefore(doc.createComment(""), rest)

# --- the eight signature-wrapping permutations (SAML Raider's XSW1-8, after Somorovsky et
# al., "On Breaking SAML: Be Whoever You Want to Be", USENIX Security 2012) ------------

def xsw1(doc):
    """Response signed. The signed Response, minus its Signature, is moved into a ds:Object
    inside the Signature; the top-level Response becomes the attacker's (new ID, evil
    Assertion) and keeps the original Signature, whose Reference still names the original.
    Unlike SAML Raider, the evil Assertion gets a new ID too, so no ID occurs twice and an
    ID-based verifier (xmlsec1) has nothing to trip over."""
    response = doc.documentElement
    original = unsigned_copy(response)
    signature = signature_of(response)
    make_evil(the_assertion(doc), "id-evil-assertion")
    response.setAttribute("ID", "id-evil-response")
    obj = doc.createElementNS(NS_DS, "ds:Object")
    obj.appendChild(original)
    signature.appendChild(ws(doc, "  "))
    signature.appendChild(obj)
    signature.appendChild(ws(doc, "\n  "))

def xsw2(doc):
    """Response signed. As XSW1, but the original Response (minus its Signature) is put
    right before the Signature, as a sibling inside the attacker's Response."""
    response = doc.documentElement
    original = unsigned_copy(response)
    signature = signature_of(response)
    make_evil(the_assertion(doc), "id-evil-assertion")
    response.setAttribute("ID", "id-evil-response")
    response.insertBefore(original, signature)
    response.insertBefore(ws(doc, "\n  "), signature)

def xsw3(doc):
    """Assertion signed. An unsigned evil copy (new ID) is inserted before the signed
    Assertion, which stays where it was."""
    assertion = the_assertion(doc)
    evil = evil_copy(assertion, "id-evil-assertion")
    doc.documentElement.insertBefore(evil, assertion)
    doc.documentElement.insertBefore(ws(doc, "\n  "), assertion)

def xsw4(doc):
    """Assertion signed. An unsigned evil copy (new ID) takes the Assertion's place and the
    signed Assertion becomes its last child."""
    response = doc.documentElement
    assertion = the_assertion(doc)
    evil = evil_copy(assertion, "id-evil-assertion")
    response.replaceChild(evil, assertion)
    evil.appendChild(ws(doc, "  "))
    evil.appendChild(assertion)
    evil.appendChild(ws(doc, "\n  "))

def xsw5(doc):
    """Assertion signed. The signed Assertion is edited in place (evil values, new ID) and
    keeps its Signature; an unsigned copy of the original is appended at the end of the
    Response, where the Signature's Reference now finds it."""
    response = doc.documentElement
    assertion = the_assertion(doc)
    original = unsigned_copy(assertion)
    make_evil(assertion, "id-evil-assertion")
    closing = response.lastChild            # the line break before </samlp:Response>
    response.insertBefore(ws(doc, "\n  "), closing)
    response.insertBefore(original, closing)

def xsw6(doc):
    """Assertion signed. As XSW5, but the unsigned copy of the original goes inside the
    edited Assertion's own Signature (after KeyInfo)."""
    assertion = the_assertion(doc)
    original = unsigned_copy(assertion)
    signature = signature_of(assertion)
    make_evil(assertion, "id-evil-assertion")
    signature.appendChild(ws(doc, "  "))
    signature.appendChild(original)
    signature.appendChild(ws(doc, "\n    "))

def xsw7(doc):
    """Assertion signed. A samlp:Extensions element (where the schema allows any foreign
    element) is added to the Response and holds an unsigned evil copy that keeps the
    original ID; the signed Assertion stays in place. ID lookup now has two candidates."""
    response = doc.documentElement
    assertion = the_assertion(doc)
    evil = evil_copy(assertion)
    ext = doc.createElementNS(NS_SAMLP, "samlp:Extensions")
    ext.appendChild(ws(doc, "\n  "))
    ext.appendChild(evil)
    ext.appendChild(ws(doc, "\n  "))
    # Schema order of StatusResponseType: Issuer, Signature?, Extensions?, Status.
    status = one(children(response, NS_SAMLP, "Status"), "Status")
    response.insertBefore(ext, status)
    response.insertBefore(ws(doc, "\n  "), status)

def xsw8(doc):
    """Assertion signed. The signed Assertion is edited in place (evil values, same ID) and
    keeps its Signature; an unsigned copy of the original goes into a ds:Object inside
    that Signature. Two elements now carry ID id-assertion-1."""
    assertion = the_assertion(doc)
    original = unsigned_copy(assertion)
    signature = signature_of(assertion)
    make_evil(assertion)
    obj = doc.createElementNS(NS_DS, "ds:Object")
    obj.appendChild(original)
    signature.appendChild(ws(doc, "  "))
    signature.appendChild(obj)
    signature.appendChild(ws(doc, "\n    "))

# --- DOCTYPEs: string edits, as minidom cannot write an internal subset ------------------

BILLION_LAUGHS = """<!DOCTYPE samlp:Response [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""
EXTERNAL_ENTITY = """<!DOCTYPE samlp:Response [
  <!ENTITY xxe SYSTEM "file:///etc/passwd">
]>
"""

def with_doctype(path_in, path_out, doctype, entity):
    """Puts the DOCTYPE after the XML declaration and the entity reference in place of the
    NameID's text, where an SP that expands entities would show it (the test=1 page)."""
    text = open(path_in, encoding="utf-8").read()
    decl = '<?xml version="1.0" encoding="UTF-8"?>\n'
    old = ">alice@example.test</saml:NameID>"
    if not text.startswith(decl) or text.count(old) != 1:
        sys.exit("fixture_edit: unexpected document for a DOCTYPE edit")
    text = decl + doctype + text[len(decl):].replace(old, f">&{entity};</saml:NameID>")
    open(path_out, "w", encoding="utf-8").write(text)

# --- command line ------------------------------------------------------------------------

DOM_EDITS = {
    "strip-assertion-signature": strip_assertion_signature,
    "change-nameid": change_nameid,
    "insert-comment-in-nameid": insert_comment_in_nameid,
    "xsw1": xsw1, "xsw2": xsw2, "xsw3": xsw3, "xsw4": xsw4,
    "xsw5": xsw5, "xsw6": xsw6, "xsw7": xsw7, "xsw8": xsw8,
}

def main():
    op, path_in, path_out, *args = sys.argv[1:]
    if op == "doctype-billion-laughs":
        with_doctype(path_in, path_out, BILLION_LAUGHS, "lol9")
    elif op == "doctype-external-entity":
        with_doctype(path_in, path_out, EXTERNAL_ENTITY, "xxe")
    else:
        doc = load(path_in)
        DOM_EDITS[op](doc, *args)
        save(doc, path_out)

main()
PY

# ---------------------------------------------------------------------------------------
# The fixtures
# ---------------------------------------------------------------------------------------
# Everything, new keys included, is written to a staging folder first and replaces the
# committed files only when every check has passed, so a failed run leaves the work tree
# as it was (and never with keys that do not match the fixtures).
stage="$work/stage"
mkdir "$stage"
cd "$stage"
fresh_keys=0
if [[ $new_keys == 0 ]] && have_all_keys "$here/keys"; then
  ln -s "$here/keys" keys
else
  fresh_keys=1
  mkdir keys
  make_keys
fi
results="$work/results.txt"
: > "$results"

# Self-check of the helper: a parse and re-serialization must not change a signed file.
reset_values
ASSERTION_SIGNATURE=$(assertion_signature)
build "$work/roundtrip.xml" idp-rsa
python3 - "$work/roundtrip.xml" <<'PY'
import sys
from xml.dom import minidom
raw = open(sys.argv[1], "rb").read()
body = minidom.parseString(raw).documentElement.toxml(encoding=None).encode("utf-8")
if raw != b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n":
    sys.exit("minidom does not round-trip the signed document; post-signing edits would be unsafe")
PY

### Valid responses: a correct SP accepts these (with the settings in README.md).

reset_values
ASSERTION_SIGNATURE=$(assertion_signature)
build valid-assertion-signed.xml idp-rsa
record valid-assertion-signed.xml idp-rsa OK

reset_values
RESPONSE_SIGNATURE=$(response_signature)
build valid-response-signed.xml idp-rsa
record valid-response-signed.xml idp-rsa OK

reset_values
ASSERTION_SIGNATURE=$(assertion_signature)
RESPONSE_SIGNATURE=$(response_signature)
build valid-both-signed.xml idp-rsa
record valid-both-signed.xml idp-rsa OK OK

reset_values
ASSERTION_SIGNATURE=$(assertion_signature --alg "$ALG_ECDSA_SHA256")
build valid-ecdsa-assertion-signed.xml idp-ec
keep_previous_signature valid-ecdsa-assertion-signed.xml idp-ec || true
record valid-ecdsa-assertion-signed.xml idp-ec OK

# An ECDSA SignatureValue is r||s, each left-padded to 32 bytes for P-256 (XML-DSig 1.1),
# not DER. About one signature in 128 has r or s starting with a zero byte: the case where
# a hand-written r||s-to-DER conversion goes wrong. Re-sign until xmlsec1 makes one.
file=valid-ecdsa-leading-zero-in-signature.xml
build "$file" idp-ec
if ! keep_previous_signature "$file" idp-ec; then
  for ((try = 1; try <= 3000; try++)); do
    ecdsa_has_leading_zero "$file" && break
    build "$file" idp-ec
  done
  ecdsa_has_leading_zero "$file" || die "no ECDSA signature with a leading zero byte in 3000 tries"
fi
record "$file" idp-ec OK

reset_values
IN_RESPONSE_TO=""
ASSERTION_SIGNATURE=$(assertion_signature)
build valid-idp-initiated.xml idp-rsa
record valid-idp-initiated.xml idp-rsa OK

reset_values
ASSERTION_SIGNATURE=$(assertion_signature --alg "$ALG_RSA_SHA1" --digest "$DIGEST_SHA1")
build valid-rsa-sha1.xml idp-rsa
record valid-rsa-sha1.xml idp-rsa OK

# The comment is in the NameID when the IdP signs; exc-c14n (without comments) leaves it
# out of the digest, so the signed value is the full text alice@example.test.evil.test.
reset_values
NAMEID_XML='alice@example.test<!---->.evil.test'
ASSERTION_SIGNATURE=$(assertion_signature)
build valid-comment-in-nameid.xml idp-rsa
record valid-comment-in-nameid.xml idp-rsa OK

for f in valid-assertion-signed valid-response-signed valid-both-signed valid-ecdsa-assertion-signed valid-idp-initiated; do
  b64 "$f.xml"
done

### Signed with the wrong key, or signed in a shape rule 4 forbids.

reset_values
ASSERTION_SIGNATURE=$(assertion_signature)
build signed-by-attacker-key.xml attacker-rsa
record signed-by-attacker-key.xml idp-rsa FAIL

# The Assertion holds the Signature but its Reference names the Response: xmlsec1 checks
# the Response (minus this enveloped Signature) and is satisfied.
reset_values
ASSERTION_SIGNATURE=$(signature_template --ref "#$RESPONSE_ID" --prefix-list xs)
build reference-to-other-element.xml idp-rsa
record reference-to-other-element.xml idp-rsa OK

reset_values
ASSERTION_SIGNATURE=$(assertion_signature --second-ref "#$RESPONSE_ID")
build two-references.xml idp-rsa
record two-references.xml idp-rsa OK

# An XPath filter that keeps the NameID out of the digest, then the NameID is changed
# after signing: xmlsec1, which runs any transform it is given, still says OK.
reset_values
ASSERTION_SIGNATURE=$(assertion_signature --xpath-transform 'not(ancestor-or-self::saml:NameID)')
build "$work/extra-transform.xml" idp-rsa
edit change-nameid "$work/extra-transform.xml" extra-transform.xml admin@example.test
record extra-transform.xml idp-rsa OK

cp valid-rsa-sha1.xml rsa-sha1-without-opt-in.xml
record rsa-sha1-without-opt-in.xml idp-rsa OK

### Edited after signing.

edit strip-assertion-signature valid-assertion-signed.xml signature-stripped.xml
record signature-stripped.xml idp-rsa

edit change-nameid valid-assertion-signed.xml value-changed-after-signing.xml admin@example.test
record value-changed-after-signing.xml idp-rsa FAIL

reset_values
NAMEID_XML=alice@example.test.evil.test
ASSERTION_SIGNATURE=$(assertion_signature)
build "$work/comment-truncation.xml" idp-rsa
edit insert-comment-in-nameid "$work/comment-truncation.xml" comment-truncation-attack.xml alice@example.test
record comment-truncation-attack.xml idp-rsa OK
# Same bytes as the valid twin: the signature cannot tell a comment added before signing
# from one added after, so neither may the SP.
cmp -s comment-truncation-attack.xml valid-comment-in-nameid.xml ||
  die "comment-truncation-attack.xml differs from valid-comment-in-nameid.xml"

edit doctype-billion-laughs valid-assertion-signed.xml doctype-billion-laughs.xml
record doctype-billion-laughs.xml idp-rsa FAIL
edit doctype-external-entity valid-assertion-signed.xml doctype-external-entity.xml
record doctype-external-entity.xml idp-rsa FAIL

### Signature wrapping. xmlsec1 verifies whatever its Reference resolves to, so several
### of these pass `xmlsec1 --verify`: only the SP's own rules (3, 4, 5) stop them.

edit xsw1 valid-response-signed.xml xsw1-response-wraps-signed-response-in-signature-object.xml
record xsw1-response-wraps-signed-response-in-signature-object.xml idp-rsa FAIL
edit xsw2 valid-response-signed.xml xsw2-response-wraps-signed-response-before-signature.xml
record xsw2-response-wraps-signed-response-before-signature.xml idp-rsa OK
edit xsw3 valid-assertion-signed.xml xsw3-unsigned-assertion-before-signed-assertion.xml
record xsw3-unsigned-assertion-before-signed-assertion.xml idp-rsa OK
edit xsw4 valid-assertion-signed.xml xsw4-unsigned-assertion-wraps-signed-assertion.xml
record xsw4-unsigned-assertion-wraps-signed-assertion.xml idp-rsa OK
edit xsw5 valid-assertion-signed.xml xsw5-edited-assertion-original-copy-appended.xml
record xsw5-edited-assertion-original-copy-appended.xml idp-rsa OK
edit xsw6 valid-assertion-signed.xml xsw6-edited-assertion-original-copy-inside-signature.xml
record xsw6-edited-assertion-original-copy-inside-signature.xml idp-rsa FAIL
edit xsw7 valid-assertion-signed.xml xsw7-unsigned-assertion-copy-in-extensions.xml
record xsw7-unsigned-assertion-copy-in-extensions.xml idp-rsa FAIL
edit xsw8 valid-assertion-signed.xml xsw8-edited-assertion-original-copy-in-signature-object.xml
record xsw8-edited-assertion-original-copy-in-signature-object.xml idp-rsa FAIL

### Properly signed, with one value that a semantic rule (2, 3, 6, 7, 8) refuses. Values of
### the Assertion are signed by the Assertion's signature; Response-level values
### (Status, Destination, InResponseTo, the Response's Issuer) by both signatures.

semantic() { # FILE: builds from the current values, both signatures when asked
  build "$1" idp-rsa
  if [[ -n $RESPONSE_SIGNATURE ]]; then record "$1" idp-rsa OK OK; else record "$1" idp-rsa OK; fi
}

reset_values; ASSERTION_SIGNATURE=$(assertion_signature)
NOT_BEFORE=2026-01-01T09:50:00Z; NOT_ON_OR_AFTER=2026-01-01T09:55:00Z
semantic expired.xml

reset_values; ASSERTION_SIGNATURE=$(assertion_signature)
NOT_BEFORE=2026-01-01T10:10:00Z; NOT_ON_OR_AFTER=2026-01-01T10:15:00Z
semantic not-yet-valid.xml

reset_values; ASSERTION_SIGNATURE=$(assertion_signature)
SC_NOT_ON_OR_AFTER=2026-01-01T09:58:00Z
semantic subject-confirmation-expired.xml

reset_values; ASSERTION_SIGNATURE=$(assertion_signature)
AUDIENCE=$OTHER_ORG_ENTITY_ID
semantic wrong-audience.xml

reset_values; ASSERTION_SIGNATURE=$(assertion_signature)
RECIPIENT=$OTHER_ORG_ACS
semantic wrong-recipient.xml

reset_values; ASSERTION_SIGNATURE=$(assertion_signature); RESPONSE_SIGNATURE=$(response_signature)
DESTINATION=$OTHER_ORG_ACS
semantic wrong-destination.xml

reset_values; ASSERTION_SIGNATURE=$(assertion_signature); RESPONSE_SIGNATURE=$(response_signature)
RESPONSE_ISSUER=http://www.okta.com/exk-other; ASSERTION_ISSUER=http://www.okta.com/exk-other
semantic wrong-issuer.xml

reset_values; ASSERTION_SIGNATURE=$(assertion_signature); RESPONSE_SIGNATURE=$(response_signature)
IN_RESPONSE_TO=id-request-unknown
semantic unknown-in-response-to.xml

reset_values; ASSERTION_SIGNATURE=$(assertion_signature); RESPONSE_SIGNATURE=$(response_signature)
STATUS_CODE=urn:oasis:names:tc:SAML:2.0:status:Requester
STATUS_SUBCODE=urn:oasis:names:tc:SAML:2.0:status:RequestDenied
semantic status-not-success.xml

# Two Assertions, each properly signed by the IdP (the second for bob): only rule 3 refuses.
reset_values
ASSERTION_SIGNATURE=$(assertion_signature)
SECOND_ASSERTION=$(EMAIL=bob@example.test \
  render_assertion id-assertion-2 bob@example.test "$(signature_template --ref "#id-assertion-2" --prefix-list xs)")
build two-assertions.xml idp-rsa
record two-assertions.xml idp-rsa OK OK

### What xmlsec1 does when told to trust KeyInfo (--insecure skips the certificate check
### and uses the key in the document): the attacker's file passes. Recorded, not shipped.
echo "signed-by-attacker-key.xml with --insecure (key taken from KeyInfo): $(xmlsec_verify signed-by-attacker-key.xml idp-rsa 1 --insecure)" >> "$work/notes.txt"
grep -q ': OK$' "$work/notes.txt" || die "expected xmlsec1 --insecure to accept the attacker's KeyInfo"

{
  echo "# xmlsec1 --verify outcome for every signature of every fixture, written by make-fixtures.sh."
  echo "# $(xmlsec1 --version); checked against the configured certificate (--pubkey-cert-pem),"
  echo "# ID attributes declared with --id-attr:ID for saml:Assertion and samlp:Response."
  echo "# OK here means xmlsec1 found a Reference whose digest and SignatureValue hold; it does not"
  echo "# mean a SAML SP may accept the file (see README.md)."
  cat "$results"
  echo "# $(cat "$work/notes.txt")"
} > xmlsec1-verify.txt

# Only generated files are replaced; README.md and this script stay.
rm -f "$here"/*.xml "$here"/*.b64 "$here"/xmlsec1-verify.txt
cp ./*.xml ./*.b64 xmlsec1-verify.txt "$here/"
if [[ $fresh_keys == 1 ]]; then
  rm -rf "$here/keys"
  cp -R keys "$here/keys"
fi
cd "$here"

echo "make-fixtures: $(ls ./*.xml | wc -l) XML fixtures, $(ls ./*.b64 | wc -l) .b64 twins, keys in keys/; xmlsec1 results in xmlsec1-verify.txt"
