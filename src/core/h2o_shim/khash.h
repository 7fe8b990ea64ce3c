/* khash.h - the names of klib's khash that <h2o/http2_internal.h> uses,
 * so that core/http.c can read the state of an h2o HTTP/2 connection
 * (h2_unstick): Debian's libh2o-dev installs that header but not the
 * khash.h it includes.  Types only -- the connection's stream table is a
 * pointer we never follow; the one inline function of that header that
 * looks into it (h2o_http2_conn_get_stream) is never called by us, and
 * these stand-ins make it find nothing. */
#ifndef YUBIN_CORE_H2O_SHIM_KHASH_H
#define YUBIN_CORE_H2O_SHIM_KHASH_H

#include <stddef.h>

typedef unsigned int khint32_t;
typedef khint32_t khint_t;
typedef khint_t khiter_t;

#define khash_t(name) kh_##name##_t
#define KHASH_MAP_INIT_INT64(name, khval_t) typedef struct kh_##name##_s kh_##name##_t;
#define kh_get(name, h, k) ((void)(h), (void)(k), (khiter_t)0)
#define kh_end(h) ((void)(h), (khiter_t)0)
#define kh_val(h, x) ((void)(h), (void)(x), NULL)

#endif
