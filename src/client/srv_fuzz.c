/* srv_fuzz.c - libFuzzer target for srv_parse and srv_select.
 *
 * Input: one SRV RDATA.  On success the record must re-encode to exactly
 * the input (so nothing was skipped or invented), its target must be
 * NUL-terminated, at most SRV_TARGET_MAX bytes of host-name characters,
 * and port 0 only with ".".  Then the input is also cut into records
 * (a length byte before each) for srv_select, whose pick must be one of
 * the records and not beaten by any other. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/srv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t encode(const struct srv_record *r, unsigned char *out)
{
	size_t o = 0;
	out[o++] = (unsigned char)(r->priority >> 8);
	out[o++] = (unsigned char)r->priority;
	out[o++] = (unsigned char)(r->weight >> 8);
	out[o++] = (unsigned char)r->weight;
	out[o++] = (unsigned char)(r->port >> 8);
	out[o++] = (unsigned char)r->port;
	const char *s = r->target;
	while (*s != '\0') {
		const char *dot = strchr(s, '.');
		size_t l = dot != NULL ? (size_t)(dot - s) : strlen(s);
		assert(l >= 1 && l <= 63);
		out[o++] = (unsigned char)l;
		memcpy(out + o, s, l);
		o += l;
		s += l;
		if (*s == '.')
			s++;
	}
	out[o++] = 0;
	return o;
}

static bool same(const struct srv_record *a, const struct srv_record *b)
{
	return a->priority == b->priority && a->weight == b->weight && a->port == b->port &&
	       strcmp(a->target, b->target) == 0;
}

static void check(const struct srv_record *r)
{
	assert(memchr(r->target, '\0', sizeof r->target) != NULL);
	size_t tl = strlen(r->target);
	assert(tl <= SRV_TARGET_MAX);
	assert(r->priority <= 65535 && r->weight <= 65535 && r->port <= 65535);
	assert(r->port != 0 || tl == 0);
	for (size_t i = 0; i < tl; i++) {
		char c = r->target[i];
		assert((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly size bytes, so that ASan sees any read past the record. */
	unsigned char *rd = malloc(size ? size : 1);
	if (rd == NULL)
		return 0;
	memcpy(rd, data, size);
	struct srv_record r;
	const char *why = NULL;
	if (srv_parse(rd, size, &r, &why) == 0) {
		check(&r);
		unsigned char again[6 + 256];
		size_t n = encode(&r, again);
		assert(n == size && memcmp(again, data, size) == 0);
	} else {
		assert(why != NULL && why[0] != '\0');
	}
	free(rd);

	/* Records cut from the input: [len][rdata]... */
	struct srv_record v[8];
	size_t nv = 0, i = 0;
	while (i < size && nv < 8) {
		size_t l = data[i++];
		if (l > size - i)
			l = size - i;
		unsigned char *one = malloc(l ? l : 1);
		if (one == NULL)
			return 0;
		memcpy(one, data + i, l);
		if (srv_parse(one, l, &v[nv], NULL) == 0)
			nv++;
		free(one);
		i += l;
	}
	struct srv_answer a;
	srv_select(v, nv, &a);
	if (nv == 0) {
		assert(a.state == SRV_ABSENT);
	} else if (a.state == SRV_FOUND) {
		bool member = false;
		for (size_t k = 0; k < nv; k++) {
			member |= same(&v[k], &a.rec);
			assert(v[k].target[0] == '\0' || !srv_better(&v[k], &a.rec));
		}
		assert(member && a.rec.target[0] != '\0');
	} else {
		assert(a.state == SRV_NOT_OFFERED);
		for (size_t k = 0; k < nv; k++)
			assert(v[k].target[0] == '\0');
	}
	return 0;
}
