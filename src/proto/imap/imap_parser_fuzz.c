/* imap_parser_fuzz.c - libFuzzer target: arbitrary bytes fed in chunks.
 *
 * The first byte picks the limits (pre/post authentication, small caps);
 * the next two seed the chunk sizes.  Each chunk is an exact-size heap
 * copy so that ASan catches a read past it.  Invariants: consumed never
 * exceeds the chunk, MORE consumes everything, every argument lies inside
 * the command's data and is NUL-terminated, the tree is well formed and no
 * deeper than the cap. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "proto/imap/imap_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_command(const struct imap_command *c, const struct imap_parser_limits *lim)
{
	assert(c != NULL && c->tag != NULL && c->name != NULL);
	assert(c->tag[0] != '\0' && strlen(c->tag) <= IMAP_TAG_MAX);
	assert(c->name[0] != '\0' && strlen(c->name) <= IMAP_NAME_MAX);
	assert(c->nargs <= lim->args_max);
	for (uint32_t i = 0; i < c->nargs; i++) {
		const struct imap_arg *a = &c->args[i];
		/* a list at depth d holds arguments at depth d + 1 */
		assert(a->depth < lim->depth_max ||
		       (a->depth == lim->depth_max && a->type != IMAP_ARG_LIST));
		assert(a->end > i && a->end <= c->nargs);
		if (a->parent == IMAP_ARG_NO_PARENT) {
			assert(a->depth == 0);
		} else {
			const struct imap_arg *pa = &c->args[a->parent];
			assert(a->parent < i && pa->type == IMAP_ARG_LIST);
			assert(a->end <= pa->end && a->depth == pa->depth + 1);
		}
		if (a->type == IMAP_ARG_LIST) {
			uint32_t n = 0;
			for (uint32_t j = i + 1; j < a->end; j = c->args[j].end)
				n++;
			assert(n == a->nchildren);
			continue;
		}
		assert(a->end == i + 1);
		assert(a->str >= c->data && a->len < c->data_len &&
		       a->str + a->len < c->data + c->data_len);
		assert(a->str[a->len] == '\0');
		if (a->type != IMAP_ARG_LITERAL || !a->binary)
			assert(memchr(a->str, '\0', a->len) == NULL);
		if (a->type == IMAP_ARG_LITERAL)
			assert(a->len <= lim->literal_max);
		/* the helpers must cope with whatever the parser produced */
		if (a->type == IMAP_ARG_ATOM) {
			struct imap_seqset set;
			struct imap_fetch_section sec;
			const char *error;
			if (imap_seqset_parse(a->str, a->len, &set, &error) == 0) {
				for (size_t k = 0; k < set.count; k++)
					assert(set.ranges[k].lo >= 1 &&
					       set.ranges[k].lo <= set.ranges[k].hi);
				imap_seqset_free(&set);
			}
			if (imap_fetch_section_parse(a->str, a->len, &sec, &error) == 0) {
				assert(sec.nparts <= IMAP_SECTION_MAX_PARTS);
				assert(sec.nfields <= IMAP_SECTION_MAX_FIELDS);
				for (unsigned k = 0; k < sec.nfields; k++)
					assert(sec.fields[k].s >= a->str &&
					       sec.fields[k].s + sec.fields[k].len <=
					       a->str + a->len);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser_limits lim;
	if (size < 3)
		return 0;
	uint8_t mode = data[0];
	uint32_t rng = (uint32_t)data[1] << 8 | data[2];
	data += 3;
	size -= 3;

	imap_parser_limits_default(&lim, mode & 1);
	if (mode & 2) {         /* small caps so that the fuzzer reaches them */
		lim.line_max = 64;
		lim.literal_max = 16;
		lim.depth_max = 3;
		lim.args_max = 8;
	}
	struct imap_parser *p = imap_parser_new(&lim);
	size_t pos = 0;
	while (pos < size) {
		rng = rng * 1103515245u + 12345u;
		size_t n = 1 + (rng >> 16) % 64;
		if (n > size - pos)
			n = size - pos;
		uint8_t *chunk = xmalloc(n);
		memcpy(chunk, data + pos, n);
		size_t used = 0;
		while (used < n) {
			size_t c = SIZE_MAX;
			enum imap_parse_result r = imap_parser_feed(p, chunk + used, n - used, &c);
			assert(c <= n - used);
			used += c;
			if (r == IMAP_PARSE_MORE) {
				assert(used == n);
				break;
			}
			if (r == IMAP_PARSE_DONE) {
				check_command(imap_parser_command(p), &lim);
			} else if (r == IMAP_PARSE_ERROR) {
				const char *tag;
				enum imap_parse_error kind;
				const char *text = imap_parser_error(p, &tag, &kind);
				assert(text[0] != '\0' && kind != IMAP_ERR_NONE);
				assert(tag == NULL || (tag[0] != '\0' &&
						       strlen(tag) <= IMAP_TAG_MAX));
				assert(imap_parser_command(p) == NULL);
			} else {
				assert(r == IMAP_PARSE_CONTINUE);
			}
		}
		free(chunk);
		pos += n;
	}
	imap_parser_free(&p);
	return 0;
}
