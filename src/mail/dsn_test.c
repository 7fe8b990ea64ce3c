/* dsn_test.c - delivery status notifications and header lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/util.h"
#include "mail/dsn.h"
#include "mail/mime.h"

#define ARRIVAL 1767268800 /* Thu, 1 Jan 2026 12:00:00 +0000 */
#define ATTEMPT 1767272400 /* 13:00 */
#define NOW 1767276000     /* 14:00 */
#define UNTIL 1767700000   /* Tue, 6 Jan 2026 11:46:40 +0000 */

static const char original[] =
	"From: Sender <x@a.example>\r\n"
	"To: y@b.example, z@c.example\r\n"
	"Subject: Lunch on Friday\r\n"
	"Message-ID: <orig1@a.example>\r\n"
	"\r\n"
	"SECRET BODY line one\r\n"
	"line two\r\n";
#define ORIG_HDR_LEN 115 /* the four fields, without the blank line */

static const struct dsn_rcpt two_failed[] = {
	{ "y@b.example", "rfc822;y@b.example", DSN_FAILED, "5.1.1", "mx.b.example",
	  "550 5.1.1 user unknown", ATTEMPT, 0 },
	{ "z@c.example", NULL, DSN_FAILED, "5.4.4", NULL, NULL, 0, 0 },
};

static struct dsn_report base_report(const struct dsn_rcpt *rcpts, size_t n)
{
	struct dsn_report r = {
		.reporting_mta = "a.example",
		.postmaster = "MAILER-DAEMON@a.example",
		.to = "x@a.example",
		.envid = "ENV1",
		.arrival = ARRIVAL,
		.now = NOW,
		.message_id = "<dsn1@a.example>",
		.boundary = "BOUND/1",
		.orig_subject = NULL,
		.rcpts = rcpts,
		.nrcpts = n,
		.original = original,
		.original_len = sizeof original - 1,
		.return_full = true,
		.return_max = 0,
	};
	return r;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0, k = strlen(needle);
	for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + k, needle))
		n++;
	return n;
}

/* Every line ends in CR LF, has at most 998 octets before it and is not
 * made of blanks only. */
static void check_lines(const char *m, size_t len)
{
	size_t col = 0;
	bool blank = true;
	assert_true(len >= 2);
	assert_memory_equal(m + len - 2, "\r\n", 2);
	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\r') {
			if (i + 1 >= len || m[i + 1] != '\n')
				fail_msg("bare CR at %zu", i);
			continue;
		}
		if (m[i] == '\n') {
			if (i == 0 || m[i - 1] != '\r')
				fail_msg("bare LF at %zu", i);
			if (col > 0 && blank)
				fail_msg("line of blanks only at %zu", i);
			col = 0;
			blank = true;
			continue;
		}
		if (++col > 998)
			fail_msg("line longer than 998 octets at %zu", i);
		if (m[i] != ' ' && m[i] != '\t')
			blank = false;
	}
}

/* The body of part 3 as mime_parse sees it. */
static void check_structure(const char *m, size_t len, const char *type3)
{
	struct mime_message *mm = mime_parse(m, len, NULL);
	const struct mime_part *top = &mm->parts[0];
	assert_string_equal(top->type, "multipart");
	assert_string_equal(top->subtype, "report");
	assert_string_equal(mime_param_get(&top->params, "report-type"), "delivery-status");
	assert_int_equal(top->n_children, type3 ? 3 : 2);
	assert_false(top->flags & MIME_PART_NO_CLOSE);
	const struct mime_part *p1 = &mm->parts[top->first_child];
	assert_string_equal(p1->type, "text");
	assert_string_equal(p1->subtype, "plain");
	const struct mime_part *p2 = &mm->parts[p1->next_sibling];
	assert_string_equal(p2->type, "message");
	assert_string_equal(p2->subtype, "delivery-status");
	if (type3 != NULL) {
		const struct mime_part *p3 = &mm->parts[p2->next_sibling];
		char t[64];
		snprintf(t, sizeof t, "%s/%s", p3->type, p3->subtype);
		assert_string_equal(t, type3);
	}
	mime_message_free(&mm);
}

/* The text between "marker" and the next "\r\n--BOUND/1". */
static char *part_after(const char *m, const char *marker)
{
	const char *s = strstr(m, marker);
	assert_non_null(s);
	s += strlen(marker);
	const char *e = strstr(s, "\r\n--BOUND/1");
	assert_non_null(e);
	return xstrndup(s, (size_t)(e - s));
}

static char *compose_ok(const struct dsn_report *r, size_t *len_r)
{
	char *m = NULL;
	size_t len = 0;
	if (dsn_compose(r, &m, &len) != 0)
		fail_msg("dsn_compose failed");
	assert_non_null(m);
	assert_int_equal(strlen(m), len);
	check_lines(m, len);
	*len_r = len;
	return m;
}

static void test_failed_two(void **state)
{
	(void)state;
	struct dsn_report r = base_report(two_failed, 2);
	size_t len;
	char *m = compose_ok(&r, &len);

	static const char *const head[] = {
		"From: \"Mail Delivery System\" <MAILER-DAEMON@a.example>\r\n",
		"\r\nTo: <x@a.example>\r\n",
		"\r\nSubject: Undelivered Mail Returned to Sender\r\n",
		"\r\nDate: Thu, 1 Jan 2026 14:00:00 +0000\r\n",
		"\r\nMessage-ID: <dsn1@a.example>\r\n",
		"\r\nAuto-Submitted: auto-replied\r\n",
		"\r\nMIME-Version: 1.0\r\n",
		"\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
		"\tboundary=\"BOUND/1\"\r\n\r\n",
		"\r\n--BOUND/1\r\nContent-Description: Notification\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		"\r\n--BOUND/1\r\nContent-Description: Delivery report\r\n"
		"Content-Type: message/delivery-status\r\n\r\n",
		"\r\n--BOUND/1\r\nContent-Description: Undelivered Message\r\n"
		"Content-Type: message/rfc822\r\n\r\n",
	};
	assert_true(strncmp(m, head[0], strlen(head[0])) == 0);
	for (size_t i = 1; i < ARRAY_LEN(head); i++)
		if (strstr(m, head[i]) == NULL)
			fail_msg("missing: %s", head[i]);
	/* Header block before the first blank line holds no 8bit marker. */
	assert_null(strstr(m, "Content-Transfer-Encoding"));
	assert_int_equal(count(m, "\r\n--BOUND/1\r\n"), 3);
	assert_int_equal(count(m, "--BOUND/1--"), 1);
	assert_true(len > 13 && strcmp(m + len - 13, "--BOUND/1--\r\n") == 0);

	char *status = part_after(m, "Content-Type: message/delivery-status\r\n\r\n");
	assert_string_equal(status,
		"Reporting-MTA: dns; a.example\r\n"
		"Original-Envelope-Id: ENV1\r\n"
		"Arrival-Date: Thu, 1 Jan 2026 12:00:00 +0000\r\n"
		"\r\n"
		"Original-Recipient: rfc822;y@b.example\r\n"
		"Final-Recipient: rfc822; y@b.example\r\n"
		"Action: failed\r\n"
		"Status: 5.1.1\r\n"
		"Remote-MTA: dns; mx.b.example\r\n"
		"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
		"Last-Attempt-Date: Thu, 1 Jan 2026 13:00:00 +0000\r\n"
		"\r\n"
		"Final-Recipient: rfc822; z@c.example\r\n"
		"Action: failed\r\n"
		"Status: 5.4.4\r\n");
	free(status);

	char *human = part_after(m, "charset=us-ascii\r\n\r\n");
	static const char *const said[] = {
		"This is the mail system at a.example.",
		"could not be delivered",
		"<y@b.example>: could not be delivered.",
		"mx.b.example",
		"550 5.1.1 user unknown",
		"<z@c.example>: could not be delivered.",
		"\"Lunch on Friday\"",
		"Your original message is attached.",
	};
	for (size_t i = 0; i < ARRAY_LEN(said); i++)
		if (strstr(human, said[i]) == NULL)
			fail_msg("human part lacks \"%s\":\n%s", said[i], human);
	assert_null(strstr(human, "Will"));
	free(human);

	char *orig = part_after(m, "Content-Type: message/rfc822\r\n\r\n");
	assert_string_equal(orig, original);
	free(orig);
	assert_null(strstr(m, "Will-Retry-Until"));
	check_structure(m, len, "message/rfc822");
	free(m);
}

static void test_diagnostic_injection(void **state)
{
	(void)state;
	struct dsn_rcpt rc[] = { {
		"y@b.example\r\nBcc: victim@c.example", "rfc822;y@b.example\r\nX-A: 1",
		DSN_FAILED, "5.7.1", "mx.b.example\r\nX-B: 2",
		"550 5.7.1 no\r\nX-Injected: yes\rSubject: evil\n\n.\x01\x1b[31m\x7f end",
		0, 0 } };
	struct dsn_report r = base_report(rc, 1);
	r.envid = "E\r\nX-C: 3";
	size_t len;
	char *m = compose_ok(&r, &len);

	static const char *const banned[] = {
		"\nX-Injected", "\nSubject: evil", "\nBcc:", "\nX-A", "\nX-B", "\nX-C", "\x01",
		"\x1b", "\x7f", "\n.",
	};
	for (size_t i = 0; i < ARRAY_LEN(banned); i++)
		if (strstr(m, banned[i]) != NULL)
			fail_msg("output holds \"%s\"", banned[i]);
	static const char *const want[] = {
		("\r\nDiagnostic-Code: smtp; 550 5.7.1 no X-Injected: yes Subject: evil .??[31m? "
		 "end\r\n"),
		"\r\nOriginal-Envelope-Id: E??X-C: 3\r\n",
		"\r\nOriginal-Recipient: rfc822;y@b.example??X-A: 1\r\n",
		"\r\nFinal-Recipient: rfc822; y@b.example Bcc: victim@c.example\r\n",
		"\r\nRemote-MTA: dns; mx.b.example X-B: 2\r\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(want); i++)
		if (strstr(m, want[i]) == NULL)
			fail_msg("missing: %s\n%s", want[i], m);
	check_structure(m, len, "message/rfc822");
	free(m);
}

static void test_long_diagnostic(void **state)
{
	(void)state;
	/* words, then a 2000-octet run without blanks, then more words */
	char diag[DSN_DIAG_MAX];
	size_t n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(diag + n, sizeof diag - n, "word%02d ", i);
	memset(diag + n, 'x', 2000);
	n += 2000;
	n += (size_t)snprintf(diag + n, sizeof diag - n, " tail");
	struct dsn_rcpt rc[] = { { "y@b.example", NULL, DSN_FAILED, "5.0.0", "mx", diag, 0, 0 } };
	struct dsn_report r = base_report(rc, 1);
	/* blanks collapse: no line of blanks only from a fold */
	char envid[DSN_FIELD_MAX + 1];
	memset(envid, ' ', DSN_FIELD_MAX);
	envid[0] = 'a';
	envid[DSN_FIELD_MAX - 2] = 'b';
	envid[DSN_FIELD_MAX] = '\0';
	r.envid = envid;
	size_t len;
	char *m = compose_ok(&r, &len);
	assert_non_null(strstr(m, "\r\nOriginal-Envelope-Id: a b\r\n"));
	/* The field is folded: its continuation lines start with a blank, and
	 * unfolded it is the text again (plus the blanks of forced breaks). */
	const char *f = strstr(m, "\r\nDiagnostic-Code: smtp; word00 ");
	assert_non_null(f);
	char *v = xstrndup(f + 2, 8000);
	char *end = strstr(v, "\r\nLast") ? strstr(v, "\r\nLast") : strstr(v, "\r\n\r\n");
	if (end == NULL)
		end = v + strlen(v);
	size_t xs = 0, lines = 0;
	for (char *p = v; p < end; p++) {
		if (*p == 'x')
			xs++;
		if (p[0] == '\r' && p[1] == '\n' && p + 2 < end) {
			assert_true(p[2] == ' ' || p[2] == '\t');
			lines++;
		}
	}
	assert_int_equal(xs, 2000);
	assert_true(lines >= 5);
	assert_non_null(strstr(v, "tail"));
	free(v);
	free(m);

	/* Longer than DSN_DIAG_MAX: cut, marked. */
	char *big = xmalloc(3 * DSN_DIAG_MAX);
	for (size_t i = 0; i < 3 * DSN_DIAG_MAX - 1; i++)
		big[i] = i % 10 == 9 ? ' ' : 'a';
	big[3 * DSN_DIAG_MAX - 1] = '\0';
	rc[0].diagnostic = big;
	m = compose_ok(&r, &len);
	char *status = part_after(m, "Content-Type: message/delivery-status\r\n\r\n");
	assert_true(strlen(status) < 2 * DSN_DIAG_MAX);
	assert_non_null(strstr(status, "...\r\n"));
	free(status);
	free(m);
	free(big);
}

static void test_ret_hdrs(void **state)
{
	(void)state;
	struct dsn_report r = base_report(two_failed, 2);
	r.return_full = false;
	size_t len;
	char *m = compose_ok(&r, &len);
	assert_non_null(strstr(m, "\r\n--BOUND/1\r\nContent-Description: Undelivered Message "
				  "Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"));
	assert_null(strstr(m, "message/rfc822"));
	assert_null(strstr(m, "SECRET BODY"));
	char *h = part_after(m, "Content-Type: text/rfc822-headers\r\n\r\n");
	assert_int_equal(strlen(h), ORIG_HDR_LEN);
	assert_memory_equal(h, original, ORIG_HDR_LEN);
	free(h);
	assert_non_null(strstr(m, "The header of your original message is attached"));
	/* the remote's reply stands apart from our words (the human part is
	 * folded: compare without line ends) */
	char *flat = xstrdup(m);
	size_t k = 0;
	for (size_t i = 0; flat[i]; i++)
		if (flat[i] != '\r' && flat[i] != '\n')
			flat[k++] = flat[i];
	flat[k] = '\0';
	assert_non_null(strstr(flat, "replied: \"550 5.1.1 user unknown\"."));
	free(flat);
	check_structure(m, len, "text/rfc822-headers");
	free(m);
}

struct max_case {
	const char *name;
	size_t max;
	const char *type3;    /* NULL: no third part */
	size_t returned;      /* bytes of the original in part 3 */
	const char *note;     /* in the human part */
};

static const struct max_case max_cases[] = {
	{ "fits", sizeof original - 1, "message/rfc822", sizeof original - 1, "is attached." },
	{ "one short: headers", sizeof original - 2, "text/rfc822-headers", ORIG_HDR_LEN,
	  "was too large to return in full, so only its header is attached." },
	{ "header exactly", ORIG_HDR_LEN, "text/rfc822-headers", ORIG_HDR_LEN,
	  "only its header is attached." },
	{ "header cut at a field", ORIG_HDR_LEN - 1, "text/rfc822-headers", 84,
	  "only the first 84 bytes of the header are attached." },
	{ "one field", 30, "text/rfc822-headers", 28, "only the first 28 bytes" },
	{ "nothing fits", 5, NULL, 0, "so none of it is attached." },
};

static void test_return_max(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(max_cases); i++) {
		const struct max_case *c = &max_cases[i];
		struct dsn_report r = base_report(two_failed, 2);
		r.return_max = c->max;
		size_t len;
		char *m = compose_ok(&r, &len);
		check_structure(m, len, c->type3);
		char *human = part_after(m, "charset=us-ascii\r\n\r\n");
		/* The human part is wrapped: compare with line ends made blanks. */
		for (char *p = human; *p; p++)
			if (*p == '\r' || *p == '\n')
				*p = ' ';
		char *unwrapped = xstrndup(human, strlen(human));
		size_t k = 0;
		for (size_t j = 0; unwrapped[j]; j++)
			if (!(unwrapped[j] == ' ' && k > 0 && human[k - 1] == ' '))
				human[k++] = unwrapped[j];
		human[k] = '\0';
		free(unwrapped);
		if (strstr(human, c->note) == NULL)
			fail_msg("%s: human part lacks \"%s\": %s", c->name, c->note, human);
		free(human);
		if (c->type3 != NULL) {
			char marker[64];
			snprintf(marker, sizeof marker, "Content-Type: %s\r\n\r\n", c->type3);
			char *p3 = part_after(m, marker);
			if (strlen(p3) != c->returned || memcmp(p3, original, c->returned) != 0)
				fail_msg("%s: part 3 is \"%s\"", c->name, p3);
			free(p3);
		} else {
			assert_null(strstr(m, "message/rfc822"));
			assert_null(strstr(m, "rfc822-headers"));
		}
		free(m);
	}
}

static void test_delayed(void **state)
{
	(void)state;
	struct dsn_rcpt rc[] = { { "y@b.example", NULL, DSN_DELAYED, "4.4.1", "mx.b.example",
				   "421 4.4.1 try later", ATTEMPT, UNTIL } };
	struct dsn_report r = base_report(rc, 1);
	r.return_full = false;
	size_t len;
	char *m = compose_ok(&r, &len);
	assert_non_null(strstr(m, "\r\nSubject: Delayed Mail (still being retried)\r\n"));
	assert_non_null(strstr(m, "\r\nAction: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(m, "\r\nWill-Retry-Until: Tue, 6 Jan 2026 11:46:40 +0000\r\n"));
	assert_non_null(strstr(m, "\r\nLast-Attempt-Date: Thu, 1 Jan 2026 13:00:00 +0000\r\n"));
	char *human = part_after(m, "charset=us-ascii\r\n\r\n");
	for (char *p = human; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	assert_non_null(strstr(human, "not delivered yet"));
	assert_non_null(strstr(human, "do not need to send the message again"));
	assert_non_null(strstr(human, "Tue, 6 Jan 2026 11:46:40 +0000"));
	assert_null(strstr(human, "could not be delivered"));
	free(human);
	check_structure(m, len, "text/rfc822-headers");
	free(m);
}

static void test_success(void **state)
{
	(void)state;
	static const struct {
		enum dsn_action a;
		const char *line;
	} t[] = {
		{ DSN_DELIVERED, "\r\nAction: delivered\r\n" },
		{ DSN_RELAYED, "\r\nAction: relayed\r\n" },
		{ DSN_EXPANDED, "\r\nAction: expanded\r\n" },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		struct dsn_rcpt rc[] = { { "y@b.example", NULL, t[i].a, "2.0.0", "mx.b.example",
					   "250 2.0.0 ok", ATTEMPT, UNTIL } };
		struct dsn_report r = base_report(rc, 1);
		size_t len;
		char *m = compose_ok(&r, &len);
		assert_non_null(strstr(m, "\r\nSubject: Successful Mail Delivery Report\r\n"));
		assert_non_null(strstr(m, t[i].line));
		assert_null(strstr(m, "Will-Retry-Until")); /* delayed only */
		check_structure(m, len, "message/rfc822");
		free(m);
	}
	/* Mixed: a failure decides the subject. */
	struct dsn_rcpt mix[] = {
		{ "y@b.example", NULL, DSN_DELIVERED, "2.0.0", NULL, NULL, 0, 0 },
		{ "z@c.example", NULL, DSN_DELAYED, "4.2.2", NULL, NULL, 0, UNTIL },
		{ "w@d.example", NULL, DSN_FAILED, "5.2.2", NULL, NULL, 0, 0 },
	};
	struct dsn_report r = base_report(mix, 3);
	size_t len;
	char *m = compose_ok(&r, &len);
	assert_non_null(strstr(m, "\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
	assert_int_equal(count(m, "\r\nFinal-Recipient: "), 3);
	assert_int_equal(count(m, "\r\nWill-Retry-Until: "), 1);
	free(m);
}

static void test_utf8(void **state)
{
	(void)state;
	struct dsn_rcpt rc[] = { { "j\xc3\xb6rg+x@b.example", "utf-8;j\xc3\xb6rg+x@b.example",
				   DSN_FAILED, "5.1.1", NULL, "550 unknown \xc3\xb6", 0, 0 } };
	struct dsn_report r = base_report(rc, 1);
	r.orig_subject = "=?UTF-8?B?5pel5pys6Kqe?= test";
	size_t len;
	char *m = compose_ok(&r, &len);
	assert_non_null(strstr(m, "\r\nFinal-Recipient: utf-8; j\\x{F6}rg\\x{2B}x@b.example\r\n"));
	assert_non_null(strstr(m, "\r\nOriginal-Recipient: utf-8;j\\x{F6}rg+x@b.example\r\n"));
	assert_non_null(strstr(m, "\r\nDiagnostic-Code: smtp; 550 unknown ?\r\n"));
	assert_non_null(strstr(m, "Content-Type: text/plain; charset=utf-8\r\n"
				  "Content-Transfer-Encoding: 8bit\r\n\r\n"));
	char *human = part_after(m, "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
	assert_non_null(strstr(human, "<j\xc3\xb6rg+x@b.example>"));
	assert_non_null(strstr(human, "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e test\""));
	free(human);
	/* The delivery-status part stays 7-bit. */
	char *status = part_after(m, "Content-Type: message/delivery-status\r\n\r\n");
	for (const char *p = status; *p; p++)
		assert_true((unsigned char)*p < 0x80);
	free(status);
	/* 8-bit content declared at the top as well. */
	const char *blank = strstr(m, "\r\n\r\n");
	assert_non_null(blank);
	char *top = xstrndup(m, (size_t)(blank - m));
	assert_non_null(strstr(top, "\r\nContent-Transfer-Encoding: 8bit"));
	free(top);
	check_structure(m, len, "message/rfc822");
	free(m);
}

static void test_bad_input(void **state)
{
	(void)state;
	static char longstr[DSN_FIELD_MAX + 2];
	memset(longstr, 'a', DSN_FIELD_MAX + 1);
	enum { NRCPTS0, RCPTSNULL, NOBOUNDARY, LONGBOUNDARY, QUOTEBOUNDARY, SPACEEND, MSGID,
	       MSGIDSPACE, STATUS1, STATUS2, STATUS3, ACTION, TOEMPTY, TONULL, LONGFIELD,
	       NOMTA, NOFINAL, ORIGNULL, BOUNDARYINORIG, BOUNDARYINDIAG, NCASES };
	for (int k = 0; k < NCASES; k++) {
		struct dsn_rcpt rc[] = { two_failed[0], two_failed[1] };
		struct dsn_report r = base_report(rc, 2);
		switch (k) {
		case NRCPTS0: r.nrcpts = 0; break;
		case RCPTSNULL: r.rcpts = NULL; break;
		case NOBOUNDARY: r.boundary = NULL; break;
		case LONGBOUNDARY:
			r.boundary = "012345678901234567890123456789012345678901234567890123456"
				     "78901234567890";
			break;
		case QUOTEBOUNDARY: r.boundary = "a\"b"; break;
		case SPACEEND: r.boundary = "ab "; break;
		case MSGID: r.message_id = "dsn1@a.example"; break;
		case MSGIDSPACE: r.message_id = "<dsn 1@a.example>"; break;
		case STATUS1: rc[1].status = "5.1"; break;
		case STATUS2: rc[1].status = "6.1.1"; break;
		case STATUS3: rc[1].status = "5.1.1x"; break;
		case ACTION: rc[1].action = (enum dsn_action)99; break;
		case TOEMPTY: r.to = ""; break;
		case TONULL: r.to = NULL; break;
		case LONGFIELD: rc[0].final_rcpt = longstr; break;
		case NOMTA: r.reporting_mta = NULL; break;
		case NOFINAL: rc[1].final_rcpt = NULL; break;
		case ORIGNULL: r.original = NULL; break;
		case BOUNDARYINORIG:
			r.boundary = "sep";
			r.original = "X: y\r\n\r\n--sep\r\n";
			r.original_len = strlen(r.original);
			break;
		case BOUNDARYINDIAG: rc[0].diagnostic = "550 --BOUND/1 x"; break;
		}
		char *m = (char *)0x1;
		size_t len = 7;
		if (dsn_compose(&r, &m, &len) != -1)
			fail_msg("case %d accepted", k);
		assert_ptr_equal(m, (char *)0x1);
		assert_int_equal(len, 7);
	}
	assert_int_equal(dsn_compose(NULL, &(char *){ NULL }, &(size_t){ 0 }), -1);
	/* The boundary limit itself is fine, and so is no original at all. */
	struct dsn_report r = base_report(two_failed, 2);
	r.boundary = "0123456789012345678901234567890123456789012345678901234567890123456789";
	r.original = NULL;
	r.original_len = 0;
	size_t len;
	char *m = compose_ok(&r, &len);
	check_structure(m, len, NULL);
	free(m);
}

struct hv_case {
	const char *msg;
	const char *name;
	size_t outsz;
	int found;
	const char *want;
};

static const struct hv_case hv_cases[] = {
	{ "Subject: hi\r\n\r\nbody\r\n", "Subject", 64, 1, "hi" },
	{ "Subject: hi\r\n\r\nbody\r\n", "subJECT", 64, 1, "hi" },
	{ "From: a\r\nSubject:   folded\r\n  twice\r\n\tthrice  \r\n\r\n", "Subject", 64, 1,
	  "folded  twice\tthrice" },
	{ "Subject: first\r\nSubject: second\r\n\r\n", "Subject", 64, 1, "first" },
	{ "From: a\r\n\r\nSubject: in body\r\n", "Subject", 64, 1 - 1, "" },
	{ "Subject: abcdef\r\n\r\n", "Subject", 4, 1, "abc" },
	{ "Subject: abcdef\r\n\r\n", "Subject", 1, 1, "" },
	{ "Subject:\r\n\r\n", "Subject", 64, 1, "" },
	{ "Subject: lf\nX: y\n\nbody\n", "Subject", 64, 1, "lf" },
	{ "X: y\r\nSubject: no blank line", "Subject", 64, 1, "no blank line" },
	{ "Subjects: no\r\nSubject : yes\r\n\r\n", "Subject", 64, 1, "yes" },
	{ "", "Subject", 64, 0, "" },
	{ "\r\nSubject: body\r\n", "Subject", 64, 0, "" },
};

static void test_header_value(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(hv_cases); i++) {
		const struct hv_case *c = &hv_cases[i];
		char out[64];
		memset(out, 'Z', sizeof out);
		int got = dsn_header_value(c->msg, strlen(c->msg), c->name, out, c->outsz);
		if (got != c->found || strcmp(out, c->want) != 0)
			fail_msg("case %zu: %d \"%s\"", i, got, out);
	}
	char nothing = 'Z';
	assert_int_equal(dsn_header_value("Subject: x\r\n", 12, "Subject", &nothing, 0), 1);
	assert_int_equal(nothing, 'Z');
	char nul[] = "Subject: a\0b\r\n\r\n";
	char out[16];
	assert_int_equal(dsn_header_value(nul, sizeof nul - 1, "Subject", out, sizeof out), 1);
	assert_string_equal(out, "a b");
}

static int setup_tz(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_two),
		cmocka_unit_test(test_diagnostic_injection),
		cmocka_unit_test(test_long_diagnostic),
		cmocka_unit_test(test_ret_hdrs),
		cmocka_unit_test(test_return_max),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_header_value),
	};
	return cmocka_run_group_tests(tests, setup_tz, NULL);
}
