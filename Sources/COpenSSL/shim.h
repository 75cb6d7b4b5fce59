#ifndef SSOGATE_COPENSSL_SHIM_H
#define SSOGATE_COPENSSL_SHIM_H
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>
#include <openssl/hmac.h>

/* OPENSSL_free is a function-like macro and does not import. */
static inline void ssogate_OPENSSL_free(void *p) { OPENSSL_free(p); }
/* ERR_GET_REASON is a macro in OpenSSL 3. */
static inline int ERR_GET_REASON_shim(unsigned long e) { return ERR_GET_REASON(e); }
/* XN_FLAG_RFC2253 is a composite macro that does not import. */
static inline unsigned long ssogate_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }
#endif
