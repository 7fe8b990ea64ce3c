/* account_test.c - client.conf parsing, loading and the password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "client/account.h"
#include "core/util.h"

#define HOME "/home/taro"

static int setup(void **state)
{
	setenv("HOME", HOME, 1);
	unsetenv("XDG_CONFIG_HOME");
	account_password_set_timeout_ms(0);
	return 0;
}

/* Parse text that must parse; returns the accounts. */
static struct account *parse_ok(const char *text, size_t *n_r)
{
	struct account *v = NULL;
	char err[512] = "";
	int rc = accounts_parse(text, strlen(text), NULL, &v, n_r, err, sizeof err);
	if (rc != 0)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");
	return v;
}

static const char full_file[] =
	"# Taro's accounts\n"
	"\n"
	"[account work]\n"
	"default = yes\n"
	"name = Taro Yamada   # the display name\n"
	"address = taro@example.jp\n"
	"signature_file = ~/.config/yubin/sig-work\n"
	"smtp = smtp.example.jp:587\n"
	"smtp_tls = starttls\n"
	"smtp_user = taro@example.jp\n"
	"incoming = imaps://imap.example.jp\n"
	"incoming_user = taro\n"
	"password_cmd = pass show mail/work\n"
	"cafile = /etc/ssl/private-ca.pem\n"
	"pin_sha256 = "
	"AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:"
	"23:45:67:89\n"
	"folders = INBOX, Lists/dev ,Sent Items\n"
	"maildir = ~/Mail/work\n"
	"\r\n"
	"  [account  home ]  \r\n"
	"\tname=山田 太郎#not a comment\n"
	"address = 太郎@例え.jp\n"
	"signature = -- Taro\n"
	"smtp = [2001:db8::25]:465\n"
	"incoming = pop3://pop.example.net:1110/\n"
	"password_cmd = printf '%s\\n' \"$PW\"   # quoted #\n"
	"maildir = /var/mail/taro";

static void test_full(void **state)
{
	size_t n;
	struct account *v = parse_ok(full_file, &n);
	assert_int_equal(n, 2);

	const struct account *w = &v[0];
	assert_string_equal(w->name, "work");
	assert_true(w->is_default);
	assert_string_equal(w->display_name, "Taro Yamada");
	assert_string_equal(w->address, "taro@example.jp");
	assert_string_equal(w->signature_file, HOME "/.config/yubin/sig-work");
	assert_string_equal(w->signature, "");
	assert_string_equal(w->smtp_host, "smtp.example.jp");
	assert_int_equal(w->smtp_port, 587);
	assert_int_equal(w->smtp_tls, TLS_STARTTLS);
	assert_string_equal(w->smtp_user, "taro@example.jp");
	assert_int_equal(w->in_proto, IN_IMAP);
	assert_string_equal(w->in_host, "imap.example.jp");
	assert_int_equal(w->in_port, 993);
	assert_int_equal(w->in_tls, TLS_IMPLICIT);
	assert_string_equal(w->in_user, "taro");
	assert_string_equal(w->password_cmd, "pass show mail/work");
	assert_string_equal(w->cafile, "/etc/ssl/private-ca.pem");
	assert_string_equal(w->pin_sha256,
			    "AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:AB:CD:EF:01:23:45:67:"
			    "89:ab:cd:ef:01:23:45:67:89");
	assert_string_equal(w->folders, "INBOX,Lists/dev,Sent Items");
	assert_string_equal(w->maildir, HOME "/Mail/work");

	const struct account *h = &v[1];
	assert_string_equal(h->name, "home");
	assert_false(h->is_default);
	assert_string_equal(h->display_name, "山田 太郎#not a comment");
	assert_string_equal(h->address, "太郎@例え.jp");
	assert_string_equal(h->signature_file, "");
	assert_string_equal(h->signature, "-- Taro");
	assert_string_equal(h->smtp_host, "2001:db8::25");
	assert_int_equal(h->smtp_port, 465);
	assert_int_equal(h->smtp_tls, TLS_IMPLICIT);
	assert_string_equal(h->smtp_user, "太郎@例え.jp");
	assert_int_equal(h->in_proto, IN_POP3);
	assert_string_equal(h->in_host, "pop.example.net");
	assert_int_equal(h->in_port, 1110);
	assert_int_equal(h->in_tls, TLS_STARTTLS);
	assert_string_equal(h->in_user, "太郎@例え.jp");
	assert_string_equal(h->password_cmd, "printf '%s\\n' \"$PW\"");
	assert_string_equal(h->cafile, "");
	assert_string_equal(h->pin_sha256, "");
	assert_string_equal(h->folders, "INBOX");
	assert_string_equal(h->maildir, "/var/mail/taro");

	assert_ptr_equal(account_find(v, n, NULL), &v[0]);
	assert_ptr_equal(account_find(v, n, "home"), &v[1]);
	free(v);
}

struct defaults_case {
	const char *lines; /* after "[account a]\naddress = a@b.example\n" */
	const char *host;
	int port;
	enum tls_mode tls;
	enum incoming_proto in_proto;
	const char *in_host;
	int in_port;
	enum tls_mode in_tls;
};

static const struct defaults_case defaults_cases[] = {
	{"smtp = h.example", "h.example", 587, TLS_STARTTLS, IN_NONE, "", 0, TLS_NONE},
	{"smtp = h.example:587", "h.example", 587, TLS_STARTTLS, IN_NONE, "", 0, TLS_NONE},
	{"smtp = h.example:465", "h.example", 465, TLS_IMPLICIT, IN_NONE, "", 0, TLS_NONE},
	{"smtp = h.example:25", "h.example", 25, TLS_STARTTLS, IN_NONE, "", 0, TLS_NONE},
	{"smtp = 192.0.2.1:2525\nsmtp_tls = none", "192.0.2.1", 2525, TLS_NONE, IN_NONE, "", 0,
	 TLS_NONE},
	{"smtp_tls = TLS\nsmtp = h:587", "h", 587, TLS_IMPLICIT, IN_NONE, "", 0, TLS_NONE},
	{"smtp = [::1]", "::1", 587, TLS_STARTTLS, IN_NONE, "", 0, TLS_NONE},
	{"smtp = [::1]:465", "::1", 465, TLS_IMPLICIT, IN_NONE, "", 0, TLS_NONE},
	{"smtp = h:65535", "h", 65535, TLS_STARTTLS, IN_NONE, "", 0, TLS_NONE},
	{"smtp = h:1", "h", 1, TLS_STARTTLS, IN_NONE, "", 0, TLS_NONE},
	{"smtp = h\nincoming = imaps://i.example", "h", 587, TLS_STARTTLS, IN_IMAP, "i.example",
	 993, TLS_IMPLICIT},
	{"smtp = h\nincoming = IMAP://i.example", "h", 587, TLS_STARTTLS, IN_IMAP, "i.example",
	 143, TLS_STARTTLS},
	{"smtp = h\nincoming = pop3://i", "h", 587, TLS_STARTTLS, IN_POP3, "i", 110,
	 TLS_STARTTLS},
	{"smtp = h\nincoming = pop3s://i", "h", 587, TLS_STARTTLS, IN_POP3, "i", 995,
	 TLS_IMPLICIT},
	{"smtp = h\nincoming = imaps://i:10993", "h", 587, TLS_STARTTLS, IN_IMAP, "i", 10993,
	 TLS_IMPLICIT},
	{"smtp = h\nincoming = imap://[2001:db8::1]:1143/", "h", 587, TLS_STARTTLS, IN_IMAP,
	 "2001:db8::1", 1143, TLS_STARTTLS},
	/* incoming_tls before incoming still wins over the scheme's default */
	{"incoming_tls = none\nsmtp = h\nincoming = imap://localhost", "h", 587, TLS_STARTTLS,
	 IN_IMAP, "localhost", 143, TLS_NONE},
	{"smtp = h\nincoming = imap://i\nincoming_tls = tls", "h", 587, TLS_STARTTLS, IN_IMAP,
	 "i", 143, TLS_IMPLICIT},
	{"smtp = h\nincoming = imaps://i\nincoming_tls = tls", "h", 587, TLS_STARTTLS, IN_IMAP,
	 "i", 993, TLS_IMPLICIT},
};

static void test_defaults(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(defaults_cases); i++) {
		const struct defaults_case *c = &defaults_cases[i];
		char text[512];
		snprintf(text, sizeof text, "[account a]\naddress = a@b.example\n%s\n", c->lines);
		size_t n;
		struct account *v = parse_ok(text, &n);
		assert_int_equal(n, 1);
		if (strcmp(v[0].smtp_host, c->host) != 0 || v[0].smtp_port != c->port ||
		    v[0].smtp_tls != c->tls || v[0].in_proto != c->in_proto ||
		    strcmp(v[0].in_host, c->in_host) != 0 || v[0].in_port != c->in_port ||
		    v[0].in_tls != c->in_tls)
			fail_msg("case %zu (%s): got %s %d %d / %d %s %d %d", i, c->lines,
				 v[0].smtp_host, v[0].smtp_port, v[0].smtp_tls, v[0].in_proto,
				 v[0].in_host, v[0].in_port, v[0].in_tls);
		/* user defaults: smtp_user = address, in_user = smtp_user */
		assert_string_equal(v[0].smtp_user, "a@b.example");
		assert_string_equal(v[0].in_user, "a@b.example");
		assert_string_equal(v[0].folders, "INBOX");
		assert_string_equal(v[0].maildir, HOME "/Mail/a");
		assert_false(v[0].is_default);
		free(v);
	}

	size_t n;
	struct account *v = parse_ok("[account a]\naddress = a@b\nsmtp = h\nsmtp_user = u\n"
				     "incoming = imap://i\n",
				     &n);
	assert_string_equal(v[0].smtp_user, "u");
	assert_string_equal(v[0].in_user, "u");
	free(v);

	/* empty text, comments only, a BOM */
	v = parse_ok("", &n);
	assert_int_equal(n, 0);
	assert_null(v);
	v = parse_ok("# nothing\n\n   # here\n\t\n", &n);
	assert_int_equal(n, 0);
	v = parse_ok("\xef\xbb\xbf[account a]\naddress = a@b\nsmtp = h\n", &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "a");
	free(v);
}

struct error_case {
	const char *text;
	const char *err;
};

#define A "[account a]\n"
#define AS "[account a]\naddress = a@b.example\nsmtp = h.example\n"

static const struct error_case error_cases[] = {
	/* structure */
	{"name = x\n", "client.conf:1: name outside an [account NAME] section"},
	{"# c\n\nsmtp = h\n[account a]\n", "client.conf:3: smtp outside an [account NAME] section"},
	{"[foo]\n", "client.conf:1: unknown section [foo] (sections are [account NAME])"},
	{"[accounts a]\n", "client.conf:1: unknown section [accounts a] (sections are [account NAME])"},
	{"[account]\n", "client.conf:1: [account] needs a name: [account NAME]"},
	{"[account   ]\n", "client.conf:1: [account] needs a name: [account NAME]"},
	{"[]\n", "client.conf:1: unknown section [] (sections are [account NAME])"},
	{"[account a\n", "client.conf:1: missing ']' at the end of the section line"},
	{"[account a b]\n",
	 "client.conf:1: bad account name \"a b\" (1-63 of A-Z a-z 0-9 . _ - + @, not starting "
	 "with '.')"},
	{"[account .hidden]\n",
	 "client.conf:1: bad account name \".hidden\" (1-63 of A-Z a-z 0-9 . _ - + @, not "
	 "starting with '.')"},
	{"[account a/b]\n",
	 "client.conf:1: bad account name \"a/b\" (1-63 of A-Z a-z 0-9 . _ - + @, not starting "
	 "with '.')"},
	{"[account 0123456789012345678901234567890123456789012345678901234567890123]\n",
	 "client.conf:1: bad account name "
	 "\"0123456789012345678901234567890123456789012345678901234567890123\" (1-63 of A-Z a-z "
	 "0-9 . _ - + @, not starting with '.')"},
	{AS "[account a]\n", "client.conf:4: a second account \"a\""},
	{A "smtp h.example\n", "client.conf:2: expected key = value or [account NAME]"},
	{A " = x\n", "client.conf:2: missing key before '='"},
	{A "name =\n", "client.conf:2: name needs a value"},
	{A "name =   # only a comment\n", "client.conf:2: name needs a value"},
	{AS "smtp = other\n", "client.conf:4: smtp given twice (first at line 3)"},
	/* required keys, reported at the section line */
	{"\n[account a]\nsmtp = h\n", "client.conf:2: account \"a\" has no address"},
	{"[account a]\naddress = a@b\n[account b]\n",
	 "client.conf:1: account \"a\" has no smtp (its submission server)"},
	{AS "[account b]\naddress = a@b\n",
	 "client.conf:4: account \"b\" has no smtp (its submission server)"},
	/* passwords */
	{A "password = hunter2\n",
	 "client.conf:2: passwords do not go in this file: use password_cmd"},
	{A "smtp_password = hunter2\n",
	 "client.conf:2: passwords do not go in this file: use password_cmd"},
	{"Password = x\n", "client.conf:1: passwords do not go in this file: use password_cmd"},
	{A "passwd = x\n", "client.conf:2: passwords do not go in this file: use password_cmd"},
	/* unknown keys */
	{A "smpt = h\n", "client.conf:2: unknown key \"smpt\" (did you mean smtp?)"},
	{A "colour = red\n", "client.conf:2: unknown key \"colour\""},
	/* lines and bytes */
	{A "name = a\0b\n", "client.conf:2: NUL byte"},
	{A "name = a\x01" "b\n", "client.conf:2: control character 0x01"},
	{A "name = a\rb\n", "client.conf:2: control character 0x0d"},
	{A "name = a\x7f\n", "client.conf:2: control character 0x7f"},
	{A "name = \xff\n", "client.conf:2: not valid UTF-8"},
	{A "name = \xc0\xaf\n", "client.conf:2: not valid UTF-8"},
	{A "name = \xed\xa0\x80\n", "client.conf:2: not valid UTF-8"},
	{A "name = \xe3\x81\n", "client.conf:2: not valid UTF-8"},
	/* values */
	{A "default = maybe\n", "client.conf:2: default must be yes or no"},
	{AS "default = yes\n[account b]\naddress = a@b\nsmtp = h\ndefault = yes\n",
	 "client.conf:8: a second default account (the first is at line 4)"},
	{A "address = taro\n", "client.conf:2: address \"taro\" is not local@domain"},
	{A "address = <a@b>\n", "client.conf:2: address \"<a@b>\" is not local@domain"},
	{A "address = a b@c\n", "client.conf:2: address \"a b@c\" is not local@domain"},
	{A "address = a@b.\n", "client.conf:2: address \"a@b.\" is not local@domain"},
	{A "address = Postmaster\n", "client.conf:2: address \"Postmaster\" is not local@domain"},
	{A "address = taro@\n", "client.conf:2: address \"taro@\" is not local@domain: missing domain"},
	{A "smtp = h:0\n", "client.conf:2: smtp: bad port \"0\" (1-65535)"},
	{A "smtp = h:65536\n", "client.conf:2: smtp: bad port \"65536\" (1-65535)"},
	{A "smtp = h:\n", "client.conf:2: smtp: bad port \"\" (1-65535)"},
	{A "smtp = h:submission\n", "client.conf:2: smtp: bad port \"submission\" (1-65535)"},
	{A "smtp = h:-1\n", "client.conf:2: smtp: bad port \"-1\" (1-65535)"},
	{A "smtp = 2001:db8::1\n",
	 "client.conf:2: smtp: an IPv6 address goes in brackets, e.g. [2001:db8::1]:587"},
	{A "smtp = [2001:db8::1\n", "client.conf:2: smtp: missing ']' after the IPv6 address"},
	{A "smtp = [example.org]:25\n",
	 "client.conf:2: smtp: bad IPv6 address \"example.org\""},
	{A "smtp = [::1]x\n", "client.conf:2: smtp: expected :PORT after ']'"},
	{A "smtp = bad host\n", "client.conf:2: smtp: bad host name \"bad host\""},
	{A "smtp = :587\n", "client.conf:2: smtp: bad host name \"\""},
	{A "smtp = -h\n", "client.conf:2: smtp: bad host name \"-h\""},
	{A "smtp = 例え.jp\n", "client.conf:2: smtp: write the host name in ASCII (xn--...)"},
	{A "smtp_tls = ssl\n",
	 "client.conf:2: smtp_tls must be starttls, tls or none (implicit TLS is called tls)"},
	{A "smtp_tls = maybe\n", "client.conf:2: smtp_tls must be starttls, tls or none"},
	{A "incoming = http://x\n",
	 "client.conf:2: incoming must start with imap://, imaps://, pop3:// or pop3s://"},
	{A "incoming = imap.example.jp\n",
	 "client.conf:2: incoming must start with imap://, imaps://, pop3:// or pop3s://"},
	{A "incoming = imaps://taro@imap.example.jp\n",
	 "client.conf:2: incoming: give the user as incoming_user, not in the URL"},
	{A "incoming = imaps://imap.example.jp/INBOX\n",
	 "client.conf:2: incoming: expected imaps://HOST[:PORT], nothing after it"},
	{A "incoming = imaps://\n", "client.conf:2: incoming: bad host name \"\""},
	{A "incoming = pop3s://h:99999\n", "client.conf:2: incoming: bad port \"99999\" (1-65535)"},
	{AS "incoming = imaps://i\nincoming_tls = starttls\n",
	 "client.conf:5: incoming_tls: imaps:// is always TLS (use imap:// for starttls or none)"},
	{AS "incoming_tls = none\nincoming = pop3s://i\n",
	 "client.conf:4: incoming_tls: pop3s:// is always TLS (use pop3:// for starttls or none)"},
	{AS "incoming_tls = none\n", "client.conf:4: incoming_tls without incoming"},
	{AS "\nincoming_user = u\n", "client.conf:5: incoming_user without incoming"},
	{AS "folders = INBOX\n", "client.conf:4: folders is only for an IMAP incoming server"},
	{AS "incoming = pop3s://p\nfolders = INBOX\n",
	 "client.conf:5: folders is only for an IMAP incoming server"},
	{A "folders = INBOX,,Sent\n", "client.conf:2: folders: empty folder name"},
	{A "folders = INBOX, \n", "client.conf:2: folders: empty folder name"},
	{A "pin_sha256 = ABCD\n",
	 "client.conf:2: pin_sha256 must be 64 hex digits (':' allowed between bytes)"},
	{A "pin_sha256 = "
	   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f:\n",
	 "client.conf:2: pin_sha256 must be 64 hex digits (':' allowed between bytes)"},
	{A "pin_sha256 = "
	   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\n",
	 "client.conf:2: pin_sha256 must be 64 hex digits (':' allowed between bytes)"},
	{A "pin_sha256 = "
	   "0g0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
	 "client.conf:2: pin_sha256 must be 64 hex digits (':' allowed between bytes)"},
	{A "signature = x\nsignature_file = /s\n",
	 "client.conf:3: signature and signature_file: give only one"},
	{A "signature_file = /s\nsignature = x\n",
	 "client.conf:3: signature and signature_file: give only one"},
	{A "cafile = ca.pem\n", "client.conf:2: cafile must be an absolute path or start with ~/"},
	{A "maildir = Mail/a\n",
	 "client.conf:2: maildir must be an absolute path or start with ~/"},
	{A "signature_file = ~taro/sig\n",
	 "client.conf:2: signature_file: only ~/ is expanded, not ~user"},
};

static void test_errors(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(error_cases); i++) {
		const struct error_case *c = &error_cases[i];
		/* the cases with a NUL byte: the length runs to the last '\n' */
		size_t len = strlen(c->text);
		if (strstr(c->err, "NUL byte") != NULL)
			len += 1 + strlen(c->text + len + 1);
		struct account *v = (struct account *)1;
		size_t n = 99;
		char err[512];
		int rc = accounts_parse(c->text, len, NULL, &v, &n, err, sizeof err);
		if (rc != -1 || strncmp(err, c->err, strlen(c->err)) != 0)
			fail_msg("case %zu: %s\n  want: %s\n  got:  %s (rc %d)", i, c->text, c->err,
				 rc == 0 ? "" : err, rc);
		/* the address cases end in addr_parse_path's reason; the rest
		 * are exact */
		if (strstr(c->err, "is not local@domain") == NULL)
			assert_string_equal(err, c->err);
		assert_null(v);
		assert_int_equal(n, 0);
	}
}

static void test_error_path_and_small_buffer(void **state)
{
	struct account *v;
	size_t n;
	char err[512];
	const char *t = "[account a]\nsmtp = h\nsmpt = x\n";
	assert_int_equal(accounts_parse(t, strlen(t), "/home/taro/.config/yubin/client.conf", &v,
					&n, err, sizeof err),
			 -1);
	assert_string_equal(err, "/home/taro/.config/yubin/client.conf:3: unknown key \"smpt\" "
				 "(did you mean smtp?)");
	/* a short buffer is cut, still terminated; none at all is fine */
	char small[12];
	assert_int_equal(accounts_parse(t, strlen(t), NULL, &v, &n, small, sizeof small), -1);
	assert_string_equal(small, "client.conf");
	assert_int_equal(accounts_parse(t, strlen(t), NULL, &v, &n, NULL, 0), -1);
	/* the text need not be NUL-terminated: only len bytes are read */
	const char *u = "[account a]\naddress = a@b\nsmtp = h\nGARBAGE";
	assert_int_equal(accounts_parse(u, strlen(u) - 7, NULL, &v, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	free(v);
}

static void test_limits(void **state)
{
	/* a line of exactly 4096 bytes is fine, 4097 is not */
	static char t[20000];
	strcpy(t, "[account a]\naddress = a@b\nsmtp = h\n#");
	size_t base = strlen(t);
	memset(t + base, 'x', 4095);
	strcpy(t + base + 4095, "\n");
	size_t n;
	struct account *v = parse_ok(t, &n);
	assert_int_equal(n, 1);
	free(v);
	strcpy(t + base + 4095, "\r\n");
	v = parse_ok(t, &n); /* the CR of CR LF does not count */
	free(v);
	strcpy(t + base + 4095, "x\n");
	char err[512];
	assert_int_equal(accounts_parse(t, strlen(t), NULL, &v, &n, err, sizeof err), -1);
	assert_string_equal(err, "client.conf:4: line longer than 4096 bytes");
	/* also without a final line end */
	t[strlen(t) - 1] = '\0';
	assert_int_equal(accounts_parse(t, strlen(t), NULL, &v, &n, err, sizeof err), -1);
	assert_string_equal(err, "client.conf:4: line longer than 4096 bytes");

	/* a value too long for its field */
	strcpy(t, "[account a]\nname = ");
	base = strlen(t);
	memset(t + base, 'n', 256);
	strcpy(t + base + 256, "\n");
	assert_int_equal(accounts_parse(t, strlen(t), NULL, &v, &n, err, sizeof err), -1);
	assert_string_equal(err, "client.conf:2: name is too long (at most 255 bytes)");
	t[base + 255] = '\n';
	t[base + 256] = '\0';
	strcat(t, "address = a@b\nsmtp = h\n");
	v = parse_ok(t, &n);
	assert_int_equal(strlen(v[0].display_name), 255);
	free(v);

	/* 100 accounts are fine, the 101st is not */
	struct buf_s {
		char *p;
		size_t len;
	} b = {xmalloc(200 * 101), 0};
	for (int i = 0; i < 101; i++)
		b.len += (size_t)sprintf(b.p + b.len, "[account a%d]\naddress = a@b\nsmtp = h\n", i);
	size_t hundred = b.len - strlen("[account a100]\naddress = a@b\nsmtp = h\n");
	assert_int_equal(accounts_parse(b.p, hundred, NULL, &v, &n, err, sizeof err), 0);
	assert_int_equal(n, 100);
	assert_string_equal(v[99].name, "a99");
	assert_null(account_find(v, n, NULL));
	assert_ptr_equal(account_find(v, n, "a42"), &v[42]);
	free(v);
	assert_int_equal(accounts_parse(b.p, b.len, NULL, &v, &n, err, sizeof err), -1);
	assert_string_equal(err, "client.conf:301: more than 100 accounts");
	free(b.p);
}

static void test_did_you_mean(void **state)
{
	static const struct {
		const char *key, *hint;
	} cases[] = {
		{"smpt", "smtp"},           {"adress", "address"},
		{"SMTP", "smtp"},           {"nme", "name"},
		{"smtp-tls", "smtp_tls"},   {"smtp_tsl", "smtp_tls"},
		{"incomming", "incoming"},  {"incoming_usr", "incoming_user"},
		{"password_cmnd", NULL},    {"passwordcmd", NULL},
		{"pin_sha265", "pin_sha256"}, {"folder", "folders"},
		{"mail_dir", "maildir"},    {"cafle", "cafile"},
		{"signature-file", "signature_file"},
		{"x", NULL},                {"imap", NULL},
		{"defualt", "default"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char text[256], want[256], err[512];
		snprintf(text, sizeof text, "[account a]\n%s = v\n", cases[i].key);
		if (strstr(cases[i].key, "password") != NULL)
			snprintf(want, sizeof want,
				 "client.conf:2: passwords do not go in this file: use password_cmd");
		else if (cases[i].hint != NULL)
			snprintf(want, sizeof want, "client.conf:2: unknown key \"%s\" (did you mean %s?)",
				 cases[i].key, cases[i].hint);
		else
			snprintf(want, sizeof want, "client.conf:2: unknown key \"%s\"", cases[i].key);
		struct account *v;
		size_t n;
		assert_int_equal(accounts_parse(text, strlen(text), NULL, &v, &n, err, sizeof err), -1);
		assert_string_equal(err, want);
	}
}

static void test_default_account(void **state)
{
	size_t n;
	struct account *v;
	/* none at all */
	assert_null(account_find(NULL, 0, NULL));
	assert_null(account_find(NULL, 0, "a"));
	/* the only one, even unmarked */
	v = parse_ok("[account a]\naddress = a@b\nsmtp = h\n", &n);
	assert_ptr_equal(account_find(v, n, NULL), &v[0]);
	assert_ptr_equal(account_find(v, n, "a"), &v[0]);
	assert_null(account_find(v, n, "A"));
	assert_null(account_find(v, n, "b"));
	free(v);
	/* two, none marked: no default */
	v = parse_ok(AS "[account b]\naddress = a@b\nsmtp = h\n", &n);
	assert_null(account_find(v, n, NULL));
	assert_ptr_equal(account_find(v, n, "b"), &v[1]);
	free(v);
	/* the marked one, wherever it is; "no" does not mark */
	v = parse_ok(AS "default = no\n[account b]\naddress = a@b\nsmtp = h\ndefault = on\n"
			"[account c]\naddress = a@b\nsmtp = h\n",
		     &n);
	assert_int_equal(n, 3);
	assert_false(v[0].is_default);
	assert_true(v[1].is_default);
	assert_ptr_equal(account_find(v, n, NULL), &v[1]);
	free(v);
	v = parse_ok("[account a]\ndefault = TRUE\naddress = a@b\nsmtp = h\n", &n);
	assert_true(v[0].is_default);
	free(v);
}

static void test_tilde(void **state)
{
	size_t n;
	struct account *v;
	const char *t = "[account a]\naddress = a@b\nsmtp = h\nsignature_file = ~/sig\n"
			"cafile = ~\nmaildir = ~/Mail/x/\n";
	v = parse_ok(t, &n);
	assert_string_equal(v[0].signature_file, HOME "/sig");
	assert_string_equal(v[0].cafile, HOME);
	assert_string_equal(v[0].maildir, HOME "/Mail/x/");
	free(v);

	/* a trailing slash in $HOME does not double; HOME=/ */
	setenv("HOME", "/home/hanako/", 1);
	v = parse_ok(t, &n);
	assert_string_equal(v[0].signature_file, "/home/hanako/sig");
	assert_string_equal(v[0].cafile, "/home/hanako");
	free(v);
	setenv("HOME", "/", 1);
	v = parse_ok(t, &n);
	assert_string_equal(v[0].signature_file, "/sig");
	assert_string_equal(v[0].cafile, "/");
	free(v);
	v = parse_ok("[account x]\naddress = a@b\nsmtp = h\n", &n);
	assert_string_equal(v[0].maildir, "/Mail/x");
	free(v);

	/* too long once expanded */
	char *longhome = xmalloc(5000);
	longhome[0] = '/';
	memset(longhome + 1, 'h', 4091);
	longhome[4092] = '\0';
	setenv("HOME", longhome, 1);
	char err[512];
	assert_int_equal(accounts_parse(t, strlen(t), NULL, &v, &n, err, sizeof err), -1);
	assert_string_equal(err, "client.conf:4: signature_file is too long (at most 4095 bytes)");
	/* and the default maildir that does not fit is left empty */
	v = parse_ok("[account x]\naddress = a@b\nsmtp = h\n", &n);
	assert_string_equal(v[0].maildir, "");
	free(v);
	free(longhome);
	setenv("HOME", HOME, 1);
}

static void test_accounts_path(void **state)
{
	char out[4096];
	assert_int_equal(accounts_path(out, sizeof out), 0);
	assert_string_equal(out, HOME "/.config/yubin/client.conf");
	setenv("XDG_CONFIG_HOME", "/xdg/conf", 1);
	assert_int_equal(accounts_path(out, sizeof out), 0);
	assert_string_equal(out, "/xdg/conf/yubin/client.conf");
	/* a relative XDG_CONFIG_HOME is ignored (XDG base directory spec) */
	setenv("XDG_CONFIG_HOME", "conf", 1);
	assert_int_equal(accounts_path(out, sizeof out), 0);
	assert_string_equal(out, HOME "/.config/yubin/client.conf");
	setenv("XDG_CONFIG_HOME", "", 1);
	assert_int_equal(accounts_path(out, sizeof out), 0);
	assert_string_equal(out, HOME "/.config/yubin/client.conf");
	unsetenv("XDG_CONFIG_HOME");
	/* too small */
	char small[10];
	assert_int_equal(accounts_path(small, sizeof small), -1);
	assert_string_equal(small, "");
}

static char tmpdir[64];

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_load(void **state)
{
	strcpy(tmpdir, "/tmp/account_test.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	char path[128], err[512];
	snprintf(path, sizeof path, "%s/client.conf", tmpdir);
	struct account *v = (struct account *)1;
	size_t n = 7;

	/* missing: no accounts, no error */
	assert_int_equal(accounts_load(path, &v, &n, err, sizeof err), 0);
	assert_null(v);
	assert_int_equal(n, 0);

	write_file(path, full_file, 0600);
	assert_int_equal(accounts_load(path, &v, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[1].name, "home");
	free(v);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(accounts_load(path, &v, &n, err, sizeof err), 0);
	free(v);

	/* writable by others or the group: refused */
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(accounts_load(path, &v, &n, err, sizeof err), -1);
	assert_null(v);
	assert_int_equal(n, 0);
	char want[512];
	snprintf(want, sizeof want,
		 "%s is writable by others: refusing it (it names commands to run); chmod go-w %s",
		 path, path);
	assert_string_equal(err, want);
	assert_int_equal(chmod(path, 0620), 0);
	assert_int_equal(accounts_load(path, &v, &n, err, sizeof err), -1);
	assert_non_null(strstr(err, "is writable by its group"));

	/* parse errors carry the path */
	write_file(path, "[account a]\nsmtp = h\n", 0600);
	assert_int_equal(accounts_load(path, &v, &n, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:1: account \"a\" has no address", path);
	assert_string_equal(err, want);

	/* not a regular file; a FIFO does not hang */
	assert_int_equal(accounts_load(tmpdir, &v, &n, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: not a regular file", tmpdir);
	assert_string_equal(err, want);
	char fifo[128];
	snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(accounts_load(fifo, &v, &n, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(fifo);

	/* too large */
	char *big = xmalloc(ACCOUNTS_FILE_MAX + 2);
	memset(big, '\n', ACCOUNTS_FILE_MAX + 1);
	big[ACCOUNTS_FILE_MAX + 1] = '\0';
	write_file(path, big, 0600);
	free(big);
	assert_int_equal(accounts_load(path, &v, &n, err, sizeof err), -1);
	assert_non_null(strstr(err, "larger than 1048576 bytes"));

	/* a path under a file */
	snprintf(fifo, sizeof fifo, "%s/client.conf/x", tmpdir);
	assert_int_equal(accounts_load(fifo, &v, &n, err, sizeof err), -1);
	assert_non_null(strstr(err, "Not a directory"));

	unlink(path);
	rmdir(tmpdir);
}

static struct account cmd_account(const char *cmd)
{
	struct account a;
	memset(&a, 0, sizeof a);
	snprintf(a.password_cmd, sizeof a.password_cmd, "%s", cmd);
	return a;
}

static void expect_password(const char *cmd, const char *want)
{
	struct account a = cmd_account(cmd);
	char err[512] = "x";
	char *pw = account_password(&a, "taro@example.jp", err, sizeof err);
	if (pw == NULL)
		fail_msg("%s: %s", cmd, err);
	assert_string_equal(pw, want);
	assert_string_equal(err, "");
	explicit_bzero(pw, strlen(pw));
	free(pw);
}

static void expect_password_error(const char *cmd, const char *want)
{
	struct account a = cmd_account(cmd);
	char err[512];
	char *pw = account_password(&a, NULL, err, sizeof err);
	if (pw != NULL)
		fail_msg("%s: got a password \"%s\"", cmd, pw);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("%s:\n  want: %s\n  got:  %s", cmd, want, err);
}

static void test_password_cmd(void **state)
{
	expect_password("printf 'pw\\nsecond'", "pw");
	expect_password("printf 'pw'", "pw");
	expect_password("printf 'p w \\r\\n'", "p w ");
	expect_password("echo \"$0\"", "sh");
	/* stdin is /dev/null: a command reading it gets EOF at once */
	expect_password("cat; echo ok", "ok");
	/* a long output after the first line is read and dropped */
	expect_password("echo pw; head -c 200000 /dev/zero", "pw");
	/* 1024 bytes of password fit exactly */
	char cmd[128], want[1025];
	memset(want, 'p', 1024);
	want[1024] = '\0';
	snprintf(cmd, sizeof cmd, "head -c 1024 /dev/zero | tr '\\0' p");
	expect_password(cmd, want);
	/* stderr is the user's, not the password */
	expect_password("echo 'gpg: noise' >&2; echo pw", "pw");
}

static void test_password_cmd_errors(void **state)
{
	expect_password_error("exit 1", "password_cmd exited with status 1");
	expect_password_error("echo pw; exit 3", "password_cmd exited with status 3");
	expect_password_error("kill -TERM $$", "password_cmd was killed by signal 15");
	expect_password_error("true", "password_cmd printed nothing");
	expect_password_error("echo; echo pw", "password_cmd printed an empty first line");
	expect_password_error("head -c 1025 /dev/zero | tr '\\0' p",
			      "password_cmd: first line longer than 1024 bytes");
	expect_password_error("printf 'a\\000b\\n'", "password_cmd printed a NUL byte");
	expect_password_error("/nonexistent/command", "password_cmd exited with status 127");
}

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000 +
	       (uint64_t)((t1.tv_nsec - t0->tv_nsec) / 1000000);
}

static void test_password_cmd_timeout(void **state)
{
	struct timespec t0;
	account_password_set_timeout_ms(300);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_password_error("sleep 30", "password_cmd timed out after 300 ms");
	assert_true(ms_since(&t0) < 5000);
	/* the whole process group goes, not just the shell */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_password_error("sleep 30; echo pw", "password_cmd timed out after 300 ms");
	assert_true(ms_since(&t0) < 5000);
	/* a command that closes its stdout but does not exit */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_password_error("echo pw; exec >&-; sleep 30",
			      "password_cmd timed out after 300 ms (it did not exit)");
	assert_true(ms_since(&t0) < 5000);
	/* the 1 s default message */
	account_password_set_timeout_ms(1000);
	expect_password_error("sleep 30", "password_cmd timed out after 1 s");
	account_password_set_timeout_ms(0);

	/* something left in the background holding stdout does not hold us */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_password("(sleep 5 2>/dev/null &); echo pw", "pw");
	assert_true(ms_since(&t0) < 3000);
}

/* ---- the prompt, on a pseudo-terminal ---- */

/* Read from the pty master until want appears (or 5 s); the text read so
 * far into out. */
static bool pty_wait_for(int master, const char *want, char *out, size_t outsz)
{
	size_t got = strlen(out);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (strstr(out, want) == NULL) {
		if (ms_since(&t0) > 5000)
			return false;
		struct pollfd pf = {.fd = master, .events = POLLIN};
		if (poll(&pf, 1, 100) <= 0)
			continue;
		ssize_t r = read(master, out + got, outsz - 1 - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
		out[got] = '\0';
	}
	return true;
}

/* The child: prompt on its controlling terminal (the pty), then write
 * "rc echo-after password-or-error" to fd. */
static _Noreturn void prompt_child(int fd, const char *prompt_for)
{
	struct account a;
	memset(&a, 0, sizeof a);
	char err[512], out[2048];
	char *pw = account_password(&a, prompt_for, err, sizeof err);
	struct termios t;
	int echo = tcgetattr(0, &t) == 0 && (t.c_lflag & ECHO) ? 1 : 0;
	int k = snprintf(out, sizeof out, "%d %d %s", pw != NULL, echo, pw != NULL ? pw : err);
	ssize_t w = write(fd, out, (size_t)k);
	(void)w;
	_exit(0);
}

static pid_t start_prompt(int *master, int *result_fd, int *slave, const char *prompt_for)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = forkpty(master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		prompt_child(p[1], prompt_for);
	}
	close(p[1]);
	*result_fd = p[0];
	/* our own handle on the slave, to look at its modes after the child */
	*slave = open(ptsname(*master), O_RDWR | O_NOCTTY);
	assert_true(*slave >= 0);
	return pid;
}

static void read_result(int fd, char *out, size_t outsz)
{
	size_t got = 0;
	ssize_t r;
	while ((r = read(fd, out + got, outsz - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(fd);
}

static void test_prompt(void **state)
{
	int master, rfd, slave;
	pid_t pid = start_prompt(&master, &rfd, &slave, "taro@smtp.example.jp");
	char seen[4096] = "";
	assert_true(pty_wait_for(master, "Password for taro@smtp.example.jp: ", seen, sizeof seen));
	struct termios t;
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_false(t.c_lflag & ECHO);
	assert_int_equal(write(master, "s3cret pw\n", 10), 10);
	char res[2048];
	read_result(rfd, res, sizeof res);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* got it, echo back on, never shown */
	assert_string_equal(res, "1 1 s3cret pw");
	struct pollfd pf = {.fd = master, .events = POLLIN};
	size_t got = strlen(seen);
	while (poll(&pf, 1, 100) > 0) {
		ssize_t r = read(master, seen + got, sizeof seen - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		seen[got] = '\0';
	}
	assert_null(strstr(seen, "s3cret"));
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_true(t.c_lflag & ECHO);
	close(slave);
	close(master);

	/* an empty line is no password; the default prompt */
	pid = start_prompt(&master, &rfd, &slave, NULL);
	seen[0] = '\0';
	assert_true(pty_wait_for(master, "Password: ", seen, sizeof seen));
	assert_int_equal(write(master, "\n", 1), 1);
	read_result(rfd, res, sizeof res);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_string_equal(res, "0 1 no password given");
	close(slave);
	close(master);
}

static void test_prompt_signal_restores(void **state)
{
	int master, rfd, slave;
	pid_t pid = start_prompt(&master, &rfd, &slave, "x");
	char seen[4096] = "";
	assert_true(pty_wait_for(master, "Password for x: ", seen, sizeof seen));
	struct termios t;
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_false(t.c_lflag & ECHO);
	/* ^C: the child dies of SIGINT as it would have, echo back on */
	assert_int_equal(write(master, "\x03", 1), 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGINT);
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_true(t.c_lflag & ECHO);
	char res[64];
	read_result(rfd, res, sizeof res);
	assert_string_equal(res, "");
	close(slave);
	close(master);

	/* SIGTERM from outside too */
	pid = start_prompt(&master, &rfd, &slave, "x");
	seen[0] = '\0';
	assert_true(pty_wait_for(master, "Password for x: ", seen, sizeof seen));
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGTERM);
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_true(t.c_lflag & ECHO);
	read_result(rfd, res, sizeof res);
	close(slave);
	close(master);
}

/* ^Z: the terminal is restored for the stop and echo goes off again on
 * resume.  (The child leads its own session, so its process group is
 * orphaned and the kernel drops the stop itself: what is checked is that
 * the prompt goes on with echo off.) */
static void test_prompt_tstp(void **state)
{
	int master, rfd, slave;
	pid_t pid = start_prompt(&master, &rfd, &slave, "x");
	char seen[4096] = "";
	assert_true(pty_wait_for(master, "Password for x: ", seen, sizeof seen));
	assert_int_equal(write(master, "ab", 2), 2);
	assert_int_equal(write(master, "\x1a", 1), 1);
	struct timespec pause = {.tv_nsec = 200 * 1000000L};
	nanosleep(&pause, NULL);
	struct termios t;
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_false(t.c_lflag & ECHO);
	assert_int_equal(write(master, "cd\n", 3), 3);
	char res[2048];
	read_result(rfd, res, sizeof res);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	/* TCSAFLUSH on resume drops what was typed before the ^Z */
	assert_string_equal(res, "1 1 cd");
	close(slave);
	close(master);
}

static void test_no_terminal(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		setsid(); /* no controlling terminal any more */
		struct account a;
		memset(&a, 0, sizeof a);
		char err[512];
		char *pw = account_password(&a, "x", err, sizeof err);
		ssize_t w = write(p[1], pw != NULL ? "got one" : err,
				  strlen(pw != NULL ? "got one" : err));
		(void)w;
		_exit(0);
	}
	close(p[1]);
	char res[512];
	read_result(p[0], res, sizeof res);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_string_equal(res, "no terminal to ask for the password on: set password_cmd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_full, setup),
		cmocka_unit_test_setup(test_defaults, setup),
		cmocka_unit_test_setup(test_errors, setup),
		cmocka_unit_test_setup(test_error_path_and_small_buffer, setup),
		cmocka_unit_test_setup(test_limits, setup),
		cmocka_unit_test_setup(test_did_you_mean, setup),
		cmocka_unit_test_setup(test_default_account, setup),
		cmocka_unit_test_setup(test_tilde, setup),
		cmocka_unit_test_setup(test_accounts_path, setup),
		cmocka_unit_test_setup(test_load, setup),
		cmocka_unit_test_setup(test_password_cmd, setup),
		cmocka_unit_test_setup(test_password_cmd_errors, setup),
		cmocka_unit_test_setup(test_password_cmd_timeout, setup),
		cmocka_unit_test_setup(test_prompt, setup),
		cmocka_unit_test_setup(test_prompt_signal_restores, setup),
		cmocka_unit_test_setup(test_prompt_tstp, setup),
		cmocka_unit_test_setup(test_no_terminal, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
