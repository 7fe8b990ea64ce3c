/* sts_fetch.c - MTA-STS policy fetch over HTTPS with libcurl.  See sts_fetch.h. */
#include "mta/sts_fetch.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "core/util.h"

#define STS_HOST_PREFIX "mta-sts."
#define STS_PATH "/.well-known/mta-sts.txt"
/* mta-sts.<domain> must still be a host name of at most 253 characters. */
#define STS_DOMAIN_MAX (253 - (sizeof STS_HOST_PREFIX - 1))
#define STS_TYPE "text/plain"

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static bool initialised;

struct fetch {
	CURL *c;
	char *body;                 /* MTASTS_BODY_MAX bytes */
	size_t len;
	bool checked;               /* status and media type looked at */
	bool rejected;              /* ... and found wrong: reading stopped */
	bool too_large;             /* more than MTASTS_BODY_MAX: reading stopped */
};

/* why is for the log: printable ASCII only, whatever a peer put in it. */
__attribute__((format(printf, 3, 4)))
static void set_why(char *why, size_t whysz, const char *fmt, ...)
{
	va_list ap;

	if (!why || whysz == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(why, whysz, fmt, ap) < 0)
		why[0] = '\0';
	va_end(ap);
	for (char *s = why; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

int sts_fetch_init(char *why, size_t whysz)
{
	int r = 0;

	pthread_mutex_lock(&init_lock);
	if (!initialised) {
		CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
		if (rc == CURLE_OK) {
			initialised = true;
		} else {
			set_why(why, whysz, "curl_global_init: %s", curl_easy_strerror(rc));
			r = -1;
		}
	}
	pthread_mutex_unlock(&init_lock);
	return r;
}

void sts_fetch_cleanup(void)
{
	pthread_mutex_lock(&init_lock);
	if (initialised) {
		curl_global_cleanup();
		initialised = false;
	}
	pthread_mutex_unlock(&init_lock);
}

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* LDH labels of 1-63 characters, no '-' at either end of a label, one
 * trailing dot allowed (not counted in *len_r): nothing that could change
 * the URL's meaning ('/', '@', ':', '?', '%', ...) gets through. */
static bool domain_ok(const char *d, size_t *len_r)
{
	size_t len = strlen(d), label = 0;

	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > STS_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
		} else if (is_alnum(c) || c == '-') {
			if ((c == '-' && label == 0) || ++label > 63)
				return false;
		} else {
			return false;
		}
	}
	if (label == 0 || d[len - 1] == '-')
		return false;           /* "b.example..": an empty last label */
	*len_r = len;
	return true;
}

/* "text/plain", any case, then nothing or parameters (OWS ";" ...). */
static bool type_ok(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (!str_nieq(ct, STS_TYPE, sizeof STS_TYPE - 1))
		return false;
	ct += sizeof STS_TYPE - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Length of the leading type/subtype token characters of a media type, so
 * the log shows "text/html" and not whatever else the peer sent. */
static int type_token_len(const char *ct)
{
	size_t n = 0;

	while (ct[n] && n < 64 && (is_alnum((unsigned char)ct[n]) || strchr("!#$%&'*+-.^_`|~/", ct[n])))
		n++;
	return (int)n;
}

/* The body, as it arrives.  Status and media type are known by the first
 * call: a wrong one stops the transfer at once (a 404 page or a redirect's
 * body is not read), and so does a body growing past MTASTS_BODY_MAX.
 * Returning less than given makes curl fail with CURLE_WRITE_ERROR. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;    /* size is always 1 */

	if (!f->checked) {
		long code = 0;
		const char *ct = NULL;
		f->checked = true;
		if (curl_easy_getinfo(f->c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK
		    || code != 200
		    || curl_easy_getinfo(f->c, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK
		    || !type_ok(ct)) {
			f->rejected = true;
			return 0;
		}
	}
	if (n > MTASTS_BODY_MAX - f->len) {
		f->too_large = true;
		return 0;
	}
	memcpy(f->body + f->len, data, n);
	f->len += n;
	return n;
}

#define SET(opt, val) do { \
		CURLcode rc_ = curl_easy_setopt(c, opt, val); \
		if (rc_ != CURLE_OK) \
			return rc_; \
	} while (0)

static CURLcode setup(struct fetch *f, const char *url, const struct sts_fetch_opts *o,
		      struct curl_slist *connect_to, char *errbuf)
{
	CURL *c = f->c;
	long timeout = o->timeout_ms > 0 ? o->timeout_ms : STS_FETCH_TIMEOUT_DEFAULT_MS;

	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);      /* RFC 8461 3.3: MUST NOT follow */
	SET(CURLOPT_MAXREDIRS, 0L);
	SET(CURLOPT_HTTPGET, 1L);
	SET(CURLOPT_NOSIGNAL, 1L);            /* no SIGALRM on a worker thread */
	SET(CURLOPT_USERAGENT, "Yubin");
	SET(CURLOPT_PROXY, "");               /* and no *_proxy from the environment */
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->ca_file && o->ca_file[0]) {
		SET(CURLOPT_CAINFO, o->ca_file);
		SET(CURLOPT_CAPATH, (char *)NULL); /* that file only, not the system's too */
	}
	SET(CURLOPT_TIMEOUT_MS, timeout);
	SET(CURLOPT_CONNECTTIMEOUT_MS, timeout);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MTASTS_BODY_MAX);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, f);
	if (connect_to)
		SET(CURLOPT_CONNECT_TO, connect_to);
	return CURLE_OK;
}

int sts_fetch_policy(const char *domain, const struct sts_fetch_opts *o,
		     struct mtasts_policy *p, char *why, size_t whysz)
{
	char host[256], url[sizeof host + 64], errbuf[CURL_ERROR_SIZE];
	struct curl_slist *connect_to = NULL;
	struct fetch f = { 0 };
	const char *ctype = NULL, *perr = NULL;
	size_t dlen = 0;
	long code = 0;
	CURLcode rc;
	int ret = -1;

	memset(p, 0, sizeof *p);
	if (why && whysz)
		why[0] = '\0';
	if (!domain_ok(domain, &dlen)) {
		set_why(why, whysz, "invalid domain");
		return -1;
	}
	if (o->port < 1 || o->port > 65535) {
		set_why(why, whysz, "invalid port %d", o->port);
		return -1;
	}
	if (sts_fetch_init(why, whysz) < 0)
		return -1;

	snprintf(host, sizeof host, STS_HOST_PREFIX "%.*s", (int)dlen, domain);
	str_lower(host);
	if (o->port == 443)
		snprintf(url, sizeof url, "https://%s" STS_PATH, host);
	else
		snprintf(url, sizeof url, "https://%s:%d" STS_PATH, host, o->port);

	if (o->connect_to && o->connect_to[0]) {
		/* HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT, an IPv6 address in []. */
		bool v6 = strchr(o->connect_to, ':') != NULL;
		char *spec = xasprintf("%s:%d:%s%s%s:%d", host, o->port, v6 ? "[" : "",
				       o->connect_to, v6 ? "]" : "", o->port);
		connect_to = curl_slist_append(NULL, spec);
		free(spec);
		if (!connect_to) {
			set_why(why, whysz, "out of memory");
			return -1;
		}
	}

	f.c = curl_easy_init();
	if (!f.c) {
		set_why(why, whysz, "curl_easy_init failed");
		goto out;
	}
	f.body = xmalloc(MTASTS_BODY_MAX);
	errbuf[0] = '\0';
	rc = setup(&f, url, o, connect_to, errbuf);
	if (rc != CURLE_OK) {
		set_why(why, whysz, "curl setup: %s", curl_easy_strerror(rc));
		goto out;
	}

	rc = curl_easy_perform(f.c);
	if (rc != CURLE_OK && rc != CURLE_FILESIZE_EXCEEDED
	    && !(rc == CURLE_WRITE_ERROR && (f.rejected || f.too_large))) {
		set_why(why, whysz, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	/* From here a response's headers arrived: judge them before the body. */
	if (curl_easy_getinfo(f.c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		code = 0;
	if (code >= 300 && code < 400) {
		set_why(why, whysz, "redirect refused (HTTP %ld)", code);
		goto out;
	}
	if (code != 200) {
		set_why(why, whysz, "HTTP %ld", code);
		goto out;
	}
	if (curl_easy_getinfo(f.c, CURLINFO_CONTENT_TYPE, &ctype) != CURLE_OK)
		ctype = NULL;
	if (!type_ok(ctype)) {
		if (ctype)
			set_why(why, whysz, "media type %.*s, not " STS_TYPE,
				type_token_len(ctype), ctype);
		else
			set_why(why, whysz, "no media type, not " STS_TYPE);
		goto out;
	}
	if (rc == CURLE_FILESIZE_EXCEEDED || f.too_large) {
		set_why(why, whysz, "body too large (more than %d bytes)", MTASTS_BODY_MAX);
		goto out;
	}
	if (rc != CURLE_OK || f.rejected) {     /* cannot happen: status and type were fine */
		set_why(why, whysz, "%s", curl_easy_strerror(rc));
		goto out;
	}
	if (mtasts_parse_policy(f.body, f.len, p, &perr) < 0) {
		set_why(why, whysz, "policy: %s", perr ? perr : "invalid");
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		memset(p, 0, sizeof *p);
	if (f.c)
		curl_easy_cleanup(f.c);
	curl_slist_free_all(connect_to);
	free(f.body);
	return ret;
}
