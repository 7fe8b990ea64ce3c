/* imap_resp_fuzz.c - libFuzzer target for the client's IMAP response
 * parser: any bytes parse or fail cleanly; every node of a parsed response
 * lies inside the input, lists count their children right, and walking
 * the tree ends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/imap_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct imap_resp *r, const struct imap_node *n, const char *in,
		 size_t size, size_t *seen)
{
	/* iterative over siblings, recursion bounded by IMAP_RESP_DEPTH_MAX */
	for (; n != NULL; n = imap_resp_next(r, n)) {
		if (++*seen > r->nnodes)
			abort();
		if (n->type == IMAP_NODE_LIST) {
			uint32_t k = 0;
			for (const struct imap_node *c = imap_resp_child(r, n); c != NULL;
			     c = imap_resp_next(r, c))
				k++;
			if (k != n->len)
				abort();
			walk(r, imap_resp_child(r, n), in, size, seen);
		} else if (n->type != IMAP_NODE_NIL) {
			if (n->s < in || n->s + n->len > in + size)
				abort();
			char *d = imap_node_dup(n);
			free(d);
			uint64_t v;
			(void)imap_node_u64(n, &v);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	struct imap_resp r;
	const char *e;
	uint64_t n;
	(void)imap_resp_literal(in, size, 1000, &n);
	if (imap_resp_parse(in, size, &r, &e) == 0) {
		size_t seen = 0;
		walk(&r, imap_resp_first(&r), in, size, &seen);
		if (seen != r.nnodes)
			abort();
		const struct imap_node *f = imap_resp_first(&r);
		if (f != NULL && f->type == IMAP_NODE_LIST)
			(void)imap_fetch_item(&r, f, "BODY[");
		imap_resp_free(&r);
	}
	free(in);
	return 0;
}
