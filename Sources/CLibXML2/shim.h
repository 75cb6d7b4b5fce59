#ifndef SSOGATE_CLIBXML2_SHIM_H
#define SSOGATE_CLIBXML2_SHIM_H
/* xmlversion.h first, then drop ICU: Debian's libxml2 headers otherwise pull in the
   system ICU, which clashes with Foundation's own ICU module on clean builds. */
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/c14n.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>
#include <libxml/xmlIO.h>

/* xmlFree is a global function pointer; Swift 6 rejects it as shared mutable state. */
static inline void ssogate_xmlFree(void *p) { xmlFree(p); }
#endif
