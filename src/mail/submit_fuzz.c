/* submit_fuzz.c - libFuzzer target for submit_scan(), submit_rewrite() and
 * submit_from_addresses().
 *
 * Input: byte 0 = the rewrite buffer's slack (0: exactly the needed size
 * minus one, must fail), the rest the message.  Checks: the Bcc ranges are
 * ordered fields inside the header, the rewrite has the computed length,
 * scanning it again finds nothing to do, and the From/Sender callback is
 * called exactly as many times as the count says, with sane addresses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/submit.h"

#define HDR 1

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	int calls;
};

static void on_addr(const char *addr, void *arg)
{
	struct seen *s = arg;
	size_t n = strlen(addr);
	if (n == 0 || n > SUBMIT_ADDR_MAX || strchr(addr, '@') == NULL ||
	    strpbrk(addr, "\r\n") != NULL)
		abort();
	s->calls++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	size_t slack = data[0];
	size_t len = size - HDR;
	char *msg = xmalloc(len ? len : 1);
	memcpy(msg, data + HDR, len);

	struct seen s = { 0 };
	int n = submit_from_addresses(msg, len, on_addr, &s);
	if (n < -1 || (n >= 0 && n != s.calls) || (n < 0 && s.calls != 0))
		abort();
	if (submit_from_addresses(msg, len, NULL, NULL) != n)
		abort();

	struct submit_fix f;
	if (submit_scan(msg, len, &f) != 0)
		goto out;
	if (f.header_end > len || f.nbcc > SUBMIT_BCC_MAX)
		abort();
	size_t removed = 0, prev = 0;
	for (size_t i = 0; i < f.nbcc; i++) {
		if (f.bcc[i][0] < prev || f.bcc[i][1] <= f.bcc[i][0] ||
		    f.bcc[i][1] > f.header_end || !str_nieq(msg + f.bcc[i][0], "bcc", 3))
			abort();
		removed += f.bcc[i][1] - f.bcc[i][0];
		prev = f.bcc[i][1];
	}
	struct buf out;
	buf_init(&out, len + 256);
	if (submit_rewrite(msg, len, &f, 1767276000, "Q1", "h.example", &out) != 0)
		abort();
	size_t added = out.len - (len - removed);
	if (out.len < len - removed || (added == 0) != (!f.add_date && !f.add_message_id))
		abort();
	struct submit_fix g;
	if (submit_scan(out.data, out.len, &g) != 0 || g.nbcc != 0 || g.add_date ||
	    g.add_message_id)
		abort();
	if (out.len > 0) {
		struct buf small;
		buf_init(&small, slack ? out.len + slack : out.len - 1);
		int r = submit_rewrite(msg, len, &f, 1767276000, "Q1", "h.example", &small);
		if (r != (slack ? 0 : -1) || (r == 0 && memcmp(small.data, out.data, out.len)))
			abort();
		buf_free(&small);
	}
	buf_free(&out);
out:
	free(msg);
	return 0;
}
