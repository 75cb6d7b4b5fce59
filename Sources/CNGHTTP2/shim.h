#ifndef SSOGATE_CNGHTTP2_SHIM_H
#define SSOGATE_CNGHTTP2_SHIM_H
// libnghttp2 (Debian 12: 1.52 with the rapid-reset and CONTINUATION-flood fixes backported).
#include <nghttp2/nghttp2.h>
#endif
