/* mime_fuzz.c - libFuzzer target for mime_parse and the header helpers.
 *
 * Input: byte 0 picks limits (low 2 bits: max_depth 20 / 3 / 1 / 0; next
 * bits: max_parts 1000 / 7), the rest is the message.  Checks that every
 * offset stays inside the message, parents come before their children,
 * depth and part counts stay under the caps, the tree links agree and every
 * string is there. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	static const unsigned depths[] = {MIME_DEPTH_MAX, 3, 1, 0};
	struct mime_limits lim = mime_limits_default;
	lim.max_depth = depths[data[0] & 3];
	if (data[0] & 4)
		lim.max_parts = 7;
	if (data[0] & 8)
		lim.max_field_len = 16;
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;

	struct mime_message *m = mime_parse(msg, len, &lim);
	CHECK(m != NULL && m->n_parts >= 1 && m->n_parts <= lim.max_parts);
	CHECK(m->parts[0].parent == MIME_NONE && m->parts[0].subtree_end == m->n_parts);
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		CHECK(p->hdr_off <= len && p->hdr_len <= len - p->hdr_off);
		CHECK(p->body_off == p->hdr_off + p->hdr_len && p->body_len <= len - p->body_off);
		CHECK(p->body_lines <= p->body_len);
		CHECK(p->depth <= lim.max_depth);
		CHECK(p->type != NULL && p->subtype != NULL && p->section != NULL);
		CHECK(p->subtree_end > i && p->subtree_end <= m->n_parts);
		for (size_t k = 0; k < p->params.n; k++)
			CHECK(strlen(p->params.v[k].value) <= lim.max_field_len);
		CHECK(p->params.n <= lim.max_params && p->disp_params.n <= lim.max_params);
		if (p->description != NULL)
			CHECK(strlen(p->description) <= lim.max_field_len);
		size_t n = 0;
		for (size_t c = p->first_child; c != MIME_NONE; c = m->parts[c].next_sibling) {
			CHECK(c > i && c < p->subtree_end && m->parts[c].parent == i);
			n++;
		}
		CHECK(n == p->n_children);
		if (i == 0)
			continue;
		CHECK(p->parent < i);
		const struct mime_part *pp = &m->parts[p->parent];
		CHECK(p->depth == pp->depth + 1);
		CHECK(p->hdr_off >= pp->body_off &&
		      p->body_off + p->body_len <= pp->body_off + pp->body_len);
		CHECK(p->subtree_end <= pp->subtree_end);
		CHECK(mime_find_section(m, p->section) != NULL);
	}
	/* the helpers on the top-level header */
	size_t pos = 0;
	struct mime_field f;
	while (mime_header_next(msg, m->parts[0].hdr_len, &pos, &f)) {
		CHECK(f.name >= msg && f.value >= msg && f.value + f.value_len <= msg + len);
		CHECK(pos <= m->parts[0].hdr_len);
	}
	bool trunc;
	char *v = mime_header_find(msg, m->parts[0].hdr_len, "subject", lim.max_field_len, &trunc);
	CHECK(v == NULL || strlen(v) <= lim.max_field_len);
	free(v);
	mime_message_free(&m);
	CHECK(m == NULL);
	return 0;
}
