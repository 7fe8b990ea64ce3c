/* downgrade.c - 8-bit to 7-bit conversion (RFC 6152 3, RFC 1652); see
 * downgrade.h for the contract.
 *
 * Two passes over mime_parse()'s flat pre-order part tree.  The first
 * decides, part by part, what has to change or why the message cannot be
 * converted; nothing is written before the whole message is known to be
 * convertible, so a failure leaves out as it was.  The second copies the
 * message, replacing the header blocks and bodies that change.  Parts are
 * nested byte ranges and pre-order visits them by increasing offset, so a
 * single cursor into msg is enough: the bytes between two changes are
 * copied as they are.
 *
 * Every byte of the message belongs to exactly one of: a part's header
 * block, a leaf part's body, or a container's "gap" (a multipart's
 * preamble, delimiter lines and epilogue, or whatever the parser's limits
 * left unparsed).  Each is looked at once for 8-bit data:
 *   header  8-bit -> fail: RFC 6152 gives no way to rewrite header fields,
 *           and RFC 2047 re-encoding would change what the author wrote
 *           (and is out of scope here);
 *   gap     8-bit -> fail;
 *   leaf    8-bit -> re-encoded as quoted-printable when its declared
 *           encoding is none, 7bit or 8bit; fail otherwise. */
#include "mail/downgrade.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "mail/mime.h"

#define QP_LINE_MAX 76 /* RFC 2045 6.7 rule 5, the soft break's '=' included */

#define CTE "Content-Transfer-Encoding"
#define CT "Content-Type"
#define MIME_VERSION "MIME-Version"
/* RFC 1428: the charset of text whose 8-bit bytes nobody labelled. */
#define CT_UNKNOWN "text/plain; charset=unknown-8bit"

enum {
	ACT_QP = 1 << 0,           /* re-encode the body as quoted-printable */
	ACT_CTE_QP = 1 << 1,       /* set Content-Transfer-Encoding: quoted-printable */
	ACT_CTE_7BIT = 1 << 2,     /* set Content-Transfer-Encoding: 7bit (it said 8bit) */
	ACT_CT = 1 << 3,           /* set Content-Type: CT_UNKNOWN */
	ACT_MIME_VERSION = 1 << 4, /* add MIME-Version: 1.0 */
	ACT_CONVERTED = 1 << 5,    /* this part or one inside it is re-encoded */
};
#define ACT_HEADER (ACT_CTE_QP | ACT_CTE_7BIT | ACT_CT | ACT_MIME_VERSION)

static const char why_header[] = "8-bit data in a header field";
static const char why_too_large[] = "message too large to convert";
static const char why_no_room[] = "converted message too large";

bool downgrade_has_8bit(const char *msg, size_t len)
{
	const unsigned char *p = (const unsigned char *)msg;
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 0x80)
			return true;
	}
	return false;
}

/* ---- the plan ---- */

static bool field_is(const struct mime_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && str_nieq(f->name, name, n);
}

static bool header_has(const char *h, size_t len, const char *name)
{
	size_t pos = 0;
	struct mime_field f;
	while (mime_header_next(h, len, &pos, &f)) {
		if (field_is(&f, name))
			return true;
	}
	return false;
}

static bool enc_is(const struct mime_part *p, const char *enc)
{
	return p->encoding != NULL && strcmp(p->encoding, enc) == 0;
}

/* Exactly the parts whose body the parser splits into children (mime.c
 * make_part): a multipart, or a message/rfc822 that is not encoded.  A
 * container's body is never re-encoded as a whole: RFC 2045 6.4 and RFC
 * 2046 5.2.1 allow only 7bit, 8bit and binary there, so the 8-bit data
 * must be converted in the leaves inside it. */
static bool is_container(const struct mime_part *p)
{
	if (mime_part_is_multipart(p))
		return true;
	return mime_part_is_message(p) && !enc_is(p, "base64") && !enc_is(p, "quoted-printable");
}

/* The bytes of container i's body outside its children. */
static const char *check_gaps(const char *msg, const struct mime_message *m, size_t i)
{
	const struct mime_part *p = &m->parts[i];
	size_t cur = p->body_off, end = p->body_off + p->body_len;
	bool bad = false;
	/* siblings are linked in increasing index order, so this ends */
	for (size_t c = p->first_child; c != MIME_NONE && !bad; c = m->parts[c].next_sibling) {
		const struct mime_part *k = &m->parts[c];
		assert(c > i && k->hdr_off >= cur && k->body_off + k->body_len <= end);
		bad = downgrade_has_8bit(msg + cur, k->hdr_off - cur);
		cur = k->body_off + k->body_len;
	}
	if (!bad)
		bad = downgrade_has_8bit(msg + cur, end - cur);
	if (!bad)
		return NULL;
	/* What the parser did not make into parts cannot be converted. */
	if (p->flags & MIME_PART_DEPTH_CAPPED)
		return "message nested too deeply to convert";
	if (p->flags & MIME_PART_PARTS_CAPPED)
		return "too many MIME parts to convert";
	if (!mime_part_is_multipart(p))
		return "8-bit data in an unparsed encapsulated message";
	if (p->flags & MIME_PART_NO_BOUNDARY)
		return "8-bit data in a multipart without a usable boundary";
	/* RFC 2046 5.1.1 has readers ignore the preamble and epilogue, so
	 * dropping their 8-bit lines would lose nothing a reader shows; we
	 * fail instead: 8-bit text there is rare and more often a sign of a
	 * broken structure (a wrong boundary) than of harmless junk, and a
	 * clear bounce is better than quietly cutting a message in transit. */
	return "8-bit data in a multipart preamble or epilogue";
}

/* Leaf part p: NULL and *act set, or why it cannot be made 7-bit. */
static const char *check_leaf(const char *msg, const struct mime_part *p, unsigned *act)
{
	if (!downgrade_has_8bit(msg + p->body_off, p->body_len))
		return NULL;
	/* Already encoded and still 8-bit: broken, and encoding it twice
	 * would not give the reader the data back. */
	if (enc_is(p, "base64") || enc_is(p, "quoted-printable"))
		return "8-bit data in a base64/quoted-printable part";
	/* binary data has no lines (RFC 2045 2.9): its CR LF may be data,
	 * so they cannot become quoted-printable hard breaks */
	if (enc_is(p, "binary"))
		return "8-bit data in a binary part";
	/* RFC 2045 6.4: a message type is composite and may only be 7bit, 8bit
	 * or binary (message/partial and external-body only 7bit, RFC 2046
	 * 5.2.2, 5.2.3).  message/global is 8-bit by design; RFC 6532 3.7
	 * would let it be encoded as a whole, but only SMTPUTF8 systems read
	 * it and a server that lacks even 8BITMIME is not one, so it is
	 * bounced rather than wrapped. */
	if (strcmp(p->type, "message") == 0) {
		if (strncmp(p->subtype, "global", 6) == 0)
			return "8-bit data in a message/global part";
		return "8-bit data in a message part that must be 7-bit";
	}
	/* x-uuencode and the like: we do not know what we would wrap */
	if (p->encoding != NULL && !enc_is(p, "7bit") && !enc_is(p, "8bit"))
		return "8-bit data in a part with an unknown transfer encoding";
	*act |= ACT_QP | ACT_CTE_QP | ACT_CONVERTED;
	/* No valid Content-Type: the default text/plain; charset=us-ascii
	 * (RFC 2045 5.2) is now a lie, and the charset of the bytes is
	 * unknown (RFC 1428).  A digest child's default is message/rfc822, a
	 * container, so it never gets here. */
	if ((p->flags & MIME_PART_CT_DEFAULT) && strcmp(p->type, "text") == 0)
		*act |= ACT_CT;
	return NULL;
}

/* Fill act[] for every part of m, or say why m cannot be converted. */
static const char *plan(const char *msg, const struct mime_message *m, unsigned *act)
{
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		if (downgrade_has_8bit(msg + p->hdr_off, p->hdr_len))
			return why_header;
		const char *why = is_container(p) ? check_gaps(msg, m, i)
						  : check_leaf(msg, p, &act[i]);
		if (why != NULL)
			return why;
		/* Once converted nothing is 8-bit, and a label that says 8bit
		 * would make the message one that needs 8BITMIME again. */
		if (!(act[i] & ACT_CTE_QP) && enc_is(p, "8bit"))
			act[i] |= ACT_CTE_7BIT;
	}
	/* children come after their parent: one backward sweep */
	for (size_t i = m->n_parts; i-- > 1;) {
		if (act[i] & ACT_CONVERTED)
			act[m->parts[i].parent] |= ACT_CONVERTED;
	}
	/* RFC 2045 4: a message (the top level or an encapsulated one) is
	 * MIME only with MIME-Version, and RFC 6152 3 wants the conversion
	 * done the MIME way. */
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		if ((p->flags & MIME_PART_MESSAGE) && (act[i] & ACT_CONVERTED) &&
		    !header_has(msg + p->hdr_off, p->hdr_len, MIME_VERSION))
			act[i] |= ACT_MIME_VERSION;
	}
	return NULL;
}

/* ---- the writer ---- */

/* "name: value" and the line end end[0..end_len). */
static int put_field(struct buf *out, const char *name, const char *value, const char *end,
		     size_t end_len)
{
	if (buf_append_str(out, name) < 0 || buf_append(out, ": ", 2) < 0 ||
	    buf_append_str(out, value) < 0 || buf_append(out, end, end_len) < 0)
		return -1;
	return 0;
}

/* Header block h[0..len) with the changes in act.  A field that is set
 * replaces the first of its name, keeping that one's line end (so the
 * header/body split stays where it was), and every other of that name is
 * dropped (a reader might use any of them).  Fields that were absent go
 * at the end, before the blank line, ending in CR LF.  Everything else is
 * copied as it is. */
static int write_header(const char *h, size_t len, unsigned act, struct buf *out)
{
	const char *cte = NULL;
	if (act & ACT_CTE_QP)
		cte = "quoted-printable";
	else if (act & ACT_CTE_7BIT)
		cte = "7bit";
	bool ct = (act & ACT_CT) != 0, put_cte = false, put_ct = false;
	size_t pos = 0, start = 0;
	struct mime_field f;
	while (mime_header_next(h, len, &pos, &f)) {
		const char *lend = f.value + f.value_len;
		size_t lend_len = (size_t)(h + pos - lend);
		int rc = 0;
		if (cte != NULL && field_is(&f, CTE)) {
			if (!put_cte)
				rc = put_field(out, CTE, cte, lend, lend_len);
			put_cte = true;
		} else if (ct && field_is(&f, CT)) {
			if (!put_ct)
				rc = put_field(out, CT, CT_UNKNOWN, lend, lend_len);
			put_ct = true;
		} else {
			rc = buf_append(out, h + start, pos - start);
		}
		if (rc < 0)
			return -1;
		start = pos;
	}
	/* start: the blank line, or len when there is none */
	bool add = (act & ACT_MIME_VERSION) || (cte != NULL && !put_cte) || (ct && !put_ct);
	if (add && start > 0 && h[start - 1] != '\n' && buf_append(out, "\r\n", 2) < 0)
		return -1;
	if ((act & ACT_MIME_VERSION) && put_field(out, MIME_VERSION, "1.0", "\r\n", 2) < 0)
		return -1;
	if (ct && !put_ct && put_field(out, CT, CT_UNKNOWN, "\r\n", 2) < 0)
		return -1;
	if (cte != NULL && !put_cte && put_field(out, CTE, cte, "\r\n", 2) < 0)
		return -1;
	return buf_append(out, h + start, len - start);
}

/* One line's content s[0..n) (no line end) as quoted-printable, then a
 * CR LF hard break when hard.  A byte is written as it is when it is
 * printable ASCII other than '=', or a space or tab that is not the last
 * byte of the line (RFC 2045 6.7 rules 2 and 3; the end of a body is the
 * end of a line too, as a delimiter's CR LF follows it); anything else is
 * "=XX".  Output lines are at most QP_LINE_MAX long, the soft break "="
 * included: a byte goes to the next line when it would push this one past
 * QP_LINE_MAX - 1 (past QP_LINE_MAX for the last byte, which needs no
 * '=' after it). */
static int qp_line(const char *s, size_t n, bool hard, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	char line[QP_LINE_MAX + 3];
	size_t col = 0;
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)s[k];
		bool last = k + 1 == n;
		bool lit = (c > ' ' && c < 127 && c != '=') || ((c == ' ' || c == '\t') && !last);
		if (col + (lit ? 1 : 3) > (last ? QP_LINE_MAX : QP_LINE_MAX - 1)) {
			memcpy(line + col, "=\r\n", 3);
			if (buf_append(out, line, col + 3) < 0)
				return -1;
			col = 0;
		}
		/* A soft break can start a line anywhere, so "--" could begin
		 * one and read as a boundary delimiter of an enclosing
		 * multipart (RFC 2045 6.7 note 8, RFC 2046 5.1.1); an output
		 * line never starts with two dashes. */
		if (col == 0 && c == '-' && !last && s[k + 1] == '-')
			lit = false;
		if (lit) {
			line[col++] = (char)c;
		} else {
			line[col++] = '=';
			line[col++] = hex[c >> 4];
			line[col++] = hex[c & 15];
		}
	}
	if (hard) {
		line[col++] = '\r';
		line[col++] = '\n';
	}
	return buf_append(out, line, col);
}

/* s[0..len) as quoted-printable.  Lines end at LF, with or without a CR
 * before it; each becomes a CR LF hard break (the body was 8bit, which is
 * line-oriented text, so its line ends are line ends).  A bare CR is data
 * and becomes "=0D". */
static int qp_encode(const char *s, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(s + i, '\n', len - i);
		size_t e = nl != NULL ? (size_t)(nl - s) : len;
		size_t ce = e;
		if (nl != NULL && ce > i && s[ce - 1] == '\r')
			ce--;
		if (qp_line(s + i, ce - i, nl != NULL, out) < 0)
			return -1;
		i = nl != NULL ? e + 1 : len;
	}
	return 0;
}

static int write_message(const char *msg, size_t len, const struct mime_message *m,
			 const unsigned *act, struct buf *out)
{
	size_t cur = 0;
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		if (act[i] & ACT_HEADER) {
			assert(p->hdr_off >= cur);
			if (buf_append(out, msg + cur, p->hdr_off - cur) < 0 ||
			    write_header(msg + p->hdr_off, p->hdr_len, act[i], out) < 0)
				return -1;
			cur = p->body_off;
		}
		if (act[i] & ACT_QP) {
			assert(p->body_off >= cur);
			if (buf_append(out, msg + cur, p->body_off - cur) < 0 ||
			    qp_encode(msg + p->body_off, p->body_len, out) < 0)
				return -1;
			cur = p->body_off + p->body_len;
		}
	}
	return buf_append(out, msg + cur, len - cur);
}

int downgrade_7bit(const char *msg, size_t len, struct buf *out, const char **why_r)
{
	if (!downgrade_has_8bit(msg, len)) {
		if (buf_append(out, msg, len) < 0) {
			*why_r = why_no_room;
			return -1;
		}
		return 0;
	}
	if (len > DOWNGRADE_MAX) {
		*why_r = why_too_large;
		return -1;
	}
	struct mime_message *m = mime_parse(msg, len, NULL);
	unsigned *act = xcalloc(m->n_parts, sizeof(*act));
	const char *why = plan(msg, m, act);
	size_t start = out->len;
	if (why == NULL && write_message(msg, len, m, act, out) < 0) {
		/* back to what the caller had */
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
		why = why_no_room;
	}
	free(act);
	mime_message_free(&m);
	if (why != NULL) {
		*why_r = why;
		return -1;
	}
	return 0;
}
