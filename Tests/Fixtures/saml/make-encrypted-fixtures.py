#!/usr/bin/env python3
"""Writes the EncryptedAssertion fixtures (encrypted/*.xml) from valid-assertion-signed.xml.

The encryption is done by third parties, never by our code: Debian's xmlsec1 CLI
(`xmlsec1 --encrypt`, an EncryptedData template per algorithm pair) wherever it supports
the pair, and Python's `cryptography` package (OpenSSL) for xmlenc11 RSA-OAEP with a
SHA-256 digest, which xmlsec1 1.2.37 does not implement. A Response signature over an
EncryptedAssertion is made by `xmlsec1 --sign`. encrypted/README.md gives each file's
verdict. Encryption is randomized (session key, IV, OAEP seed): every run rewrites the
files with different bytes and the same verdicts.

    python3 Tests/Fixtures/saml/make-encrypted-fixtures.py

Needs: xmlsec1, python3 with `cryptography`. Uses keys/sp-rsa.* (the SP) and
keys/idp-rsa.* (the IdP, for the Response signature).
"""
import base64
import os
import re
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "encrypted")
KEYS = os.path.join(HERE, "keys")
X = "http://www.w3.org/2001/04/xmlenc#"
X11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"


def source():
    with open(os.path.join(HERE, "valid-assertion-signed.xml")) as f:
        return f.read()


def assertion_span(text):
    start = text.index("<saml:Assertion")
    end = text.index("</saml:Assertion>") + len("</saml:Assertion>")
    return start, end


def wrapped(text):
    """The response with its Assertion inside a saml:EncryptedAssertion, ready to encrypt."""
    a, b = assertion_span(text)
    return text[:a] + f'<saml:EncryptedAssertion xmlns:saml="{NS_SAML}">' + text[a:b] + "</saml:EncryptedAssertion>" + text[b:]


def without_assertion_signature(text):
    return re.sub(r"<ds:Signature .*?</ds:Signature>", "", text, count=1, flags=re.S)


def template(content, transport, transport_children=""):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xenc:EncryptedData xmlns:xenc="{X}" Type="{X}Element">
  <xenc:EncryptionMethod Algorithm="{content}"/>
  <ds:KeyInfo xmlns:ds="{DS}">
    <xenc:EncryptedKey>
      <xenc:EncryptionMethod Algorithm="{transport}">{transport_children}</xenc:EncryptionMethod>
      <xenc:CipherData><xenc:CipherValue/></xenc:CipherData>
    </xenc:EncryptedKey>
  </ds:KeyInfo>
  <xenc:CipherData><xenc:CipherValue/></xenc:CipherData>
</xenc:EncryptedData>
"""


def run(args, work):
    out = subprocess.run(args, capture_output=True, text=True, cwd=work)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{out.stderr}")
    return out.stdout


def xmlsec_encrypt(document, content, transport, session, work, cert="sp-rsa.crt"):
    with open(os.path.join(work, "in.xml"), "w") as f:
        f.write(document)
    with open(os.path.join(work, "template.xml"), "w") as f:
        f.write(template(content, transport))
    run(["xmlsec1", "--encrypt", "--pubkey-cert-pem", os.path.join(KEYS, cert), "--session-key", session,
         "--xml-data", "in.xml", "--node-name", f"{NS_SAML}:Assertion", "--output", "out.xml", "template.xml"], work)
    with open(os.path.join(work, "out.xml")) as f:
        return f.read()


def python_encrypt(document, content_bits, mgf1):
    """xmlenc11 RSA-OAEP, DigestMethod SHA-256, the given MGF1 digest; AES-GCM content."""
    a, b = assertion_span(document)
    plaintext = document[a:b].encode()
    session = os.urandom(content_bits // 8)
    iv = os.urandom(12)
    ciphertext = iv + AESGCM(session).encrypt(iv, plaintext, None)
    with open(os.path.join(KEYS, "sp-rsa.crt"), "rb") as f:
        public = x509.load_pem_x509_certificate(f.read()).public_key()
    mgf = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}[mgf1]
    wrapped_key = public.encrypt(session, padding.OAEP(mgf=padding.MGF1(mgf), algorithm=hashes.SHA256(), label=None))
    mgf_element = f'<xenc11:MGF xmlns:xenc11="{X11}" Algorithm="{X11}mgf1{mgf1}"/>' if mgf1 != "sha1" else ""
    encrypted = f"""<xenc:EncryptedData xmlns:xenc="{X}" Type="{X}Element">\
<xenc:EncryptionMethod Algorithm="{X11}aes{content_bits}-gcm"/><ds:KeyInfo xmlns:ds="{DS}"><xenc:EncryptedKey>\
<xenc:EncryptionMethod Algorithm="{X11}rsa-oaep"><ds:DigestMethod Algorithm="{X}sha256"/>{mgf_element}</xenc:EncryptionMethod>\
<xenc:CipherData><xenc:CipherValue>{base64.b64encode(wrapped_key).decode()}</xenc:CipherValue></xenc:CipherData>\
</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{base64.b64encode(ciphertext).decode()}</xenc:CipherValue>\
</xenc:CipherData></xenc:EncryptedData>"""
    return document[:a] + f'<saml:EncryptedAssertion xmlns:saml="{NS_SAML}">' + encrypted + "</saml:EncryptedAssertion>" + document[b:]


def sign_response(document, work):
    """Adds an enveloped RSA-SHA256 signature of the Response (after its Issuer), made by xmlsec1."""
    signature = f"""<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>\
<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>\
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>\
<ds:Reference URI="#id-response-1"><ds:Transforms>\
<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>\
<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
<ds:DigestMethod Algorithm="{X}sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>\
<ds:SignatureValue/></ds:Signature>"""
    issuer_end = document.index("</saml:Issuer>") + len("</saml:Issuer>")
    with open(os.path.join(work, "unsigned.xml"), "w") as f:
        f.write(document[:issuer_end] + signature + document[issuer_end:])
    run(["xmlsec1", "--sign", "--privkey-pem", f"{KEYS}/idp-rsa.key,{KEYS}/idp-rsa.crt",
         "--id-attr:ID", f"{NS_SAMLP}:Response", "--output", "signed.xml", "unsigned.xml"], work)
    with open(os.path.join(work, "signed.xml")) as f:
        return f.read()


def tamper_content(document):
    """One byte of the content CipherValue changed, in the middle of the ciphertext."""
    values = [m for m in re.finditer(r"<xenc:CipherValue>([^<]*)</xenc:CipherValue>", document)]
    m = values[-1]
    data = bytearray(base64.b64decode(m.group(1)))
    data[len(data) // 2] ^= 0x01
    return document[:m.start(1)] + base64.b64encode(bytes(data)).decode() + document[m.end(1):]


def main():
    os.makedirs(OUT, exist_ok=True)
    signed = source()
    unsigned_assertion = without_assertion_signature(signed)
    with tempfile.TemporaryDirectory() as work:
        files = {}
        for content, bits, session in [("cbc", 128, "aes-128"), ("cbc", 256, "aes-256"), ("gcm", 128, "aes-128"), ("gcm", 256, "aes-256")]:
            alg = f"{X}aes{bits}-cbc" if content == "cbc" else f"{X11}aes{bits}-gcm"
            files[f"oaep-mgf1p-aes{bits}-{content}.xml"] = xmlsec_encrypt(wrapped(signed), alg, f"{X}rsa-oaep-mgf1p", session, work)
        files["xmlenc11-oaep-sha256-aes256-gcm.xml"] = python_encrypt(signed, 256, "sha1")
        files["xmlenc11-oaep-sha256-mgf1sha256-aes128-gcm.xml"] = python_encrypt(signed, 128, "sha256")
        # The Response signed over an EncryptedAssertion whose Assertion is unsigned (Okta's
        # "signed response, encrypted assertion").
        files["response-signed-over-encrypted.xml"] = sign_response(
            xmlsec_encrypt(wrapped(unsigned_assertion), f"{X}aes256-cbc", f"{X}rsa-oaep-mgf1p", "aes-256", work), work)
        # Refusals.
        files["rsa-1_5-key-transport.xml"] = xmlsec_encrypt(wrapped(signed), f"{X}aes128-cbc", f"{X}rsa-1_5", "aes-128", work)
        files["tampered-cbc-ciphertext.xml"] = tamper_content(files["oaep-mgf1p-aes256-cbc.xml"])
        files["tampered-gcm-ciphertext.xml"] = tamper_content(files["oaep-mgf1p-aes256-gcm.xml"])
        files["tampered-under-response-signature.xml"] = tamper_content(files["response-signed-over-encrypted.xml"])
        files["unsigned-assertion-unsigned-response.xml"] = xmlsec_encrypt(
            wrapped(unsigned_assertion), f"{X11}aes256-gcm", f"{X}rsa-oaep-mgf1p", "aes-256", work)
        files["encrypted-to-another-key.xml"] = xmlsec_encrypt(
            wrapped(signed), f"{X11}aes256-gcm", f"{X}rsa-oaep-mgf1p", "aes-256", work, cert="attacker-rsa.crt")
        a, _ = assertion_span(signed)
        plain_too = files["oaep-mgf1p-aes128-gcm.xml"]
        files["encrypted-and-plain-assertion.xml"] = plain_too.replace(
            "</samlp:Response>", signed[a:assertion_span(signed)[1]] + "</samlp:Response>")
        for name, text in files.items():
            with open(os.path.join(OUT, name), "w") as f:
                f.write(text)
            print(f"wrote encrypted/{name}")


if __name__ == "__main__":
    main()
