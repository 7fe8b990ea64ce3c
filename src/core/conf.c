/* conf.c - the settings table and the config file parser.
 *
 * Every key is one row of conf_table: adding a setting means adding a field
 * to struct conf and a row here; parsing, defaults, range checks,
 * --print-config and the documentation all follow from the row. */
#include "core/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"

enum conf_type { T_STR, T_INT, T_SIZE, T_DURATION, T_ENUM, T_LISTEN };

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;
	const char *def;
	int64_t min, max;            /* T_INT, T_SIZE, T_DURATION (ms) */
	const char *const *names;    /* T_ENUM: value names, index = value */
	const char *doc;
};

static const char *const plaintext_names[] = {"never", "loopback", "always", NULL};
static const char *const loglevel_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const barenl_names[] = {"normalize", "reject", NULL};

#define OFF(f) offsetof(struct conf, f)
#define DAY (24LL * 3600 * 1000)

static const struct conf_key conf_table[] = {
	{"hostname", T_STR, OFF(hostname), "localhost", 0, 0, NULL,
	 "Fully-qualified name of this host: used in greetings, Received headers and queue ids."},
	{"data_dir", T_STR, OFF(data_dir), "/var/lib/yubin", 0, 0, NULL,
	 "Directory of the store: yubin.db (SQLite, WAL) and msg/ (one immutable file per message)."},
	{"user", T_STR, OFF(user), "", 0, 0, NULL,
	 "Unprivileged user to switch to after binding ports when started as root. Required when "
	 "started as root; yubind refuses to serve mail as root."},
	{"postmaster", T_STR, OFF(postmaster), "", 0, 0, NULL,
	 "Account that receives mail for postmaster@ every local domain (RFC 5321 4.5.1) when the "
	 "domain has no postmaster account of its own, e.g. admin@example.test."},
	{"recipient_delimiter", T_STR, OFF(recipient_delimiter), "+", 0, 0, NULL,
	 "One character that separates a tag from the user name: mail for user+tag@domain goes "
	 "to user@domain when no account, list or alias has the full address. Empty: off."},
	{"tls_cert", T_STR, OFF(tls_cert), "", 0, 0, NULL,
	 "PEM certificate chain for STARTTLS, STLS and the implicit-TLS listeners. Empty: no TLS."},
	{"tls_key", T_STR, OFF(tls_key), "", 0, 0, NULL,
	 "PEM private key matching tls_cert. Read at start-up, before privileges are dropped."},
	{"plaintext_auth", T_ENUM, OFF(plaintext_auth), "never", 0, 0, plaintext_names,
	 "Where passwords may be sent without TLS: never, loopback (clients on 127.0.0.0/8 and ::1), "
	 "or always (not recommended)."},
	{"log_level", T_ENUM, OFF(log_level), "info", 0, 0, loglevel_names,
	 "Least severe log level written to stderr: debug, info, warn or error."},
	{"listen_smtp", T_LISTEN, OFF(listen_smtp), "127.0.0.1:25", 0, 0, NULL,
	 "SMTP listeners for mail from the Internet (port 25 role), comma-separated host:port; "
	 "[v6]:port and *:port allowed; port 0 picks a free port; empty disables."},
	{"listen_pop3", T_LISTEN, OFF(listen_pop3), "127.0.0.1:110", 0, 0, NULL,
	 "POP3 listeners (STLS offered when TLS is configured)."},
	{"listen_pop3s", T_LISTEN, OFF(listen_pop3s), "", 0, 0, NULL,
	 "POP3 over implicit TLS listeners (port 995 role); need tls_cert and tls_key."},
	{"listen_imap", T_LISTEN, OFF(listen_imap), "127.0.0.1:143", 0, 0, NULL,
	 "IMAP listeners (STARTTLS offered when TLS is configured; LOGIN and AUTHENTICATE "
	 "only after TLS unless plaintext_auth allows them)."},
	{"listen_imaps", T_LISTEN, OFF(listen_imaps), "", 0, 0, NULL,
	 "IMAP over implicit TLS listeners (port 993 role); need tls_cert and tls_key."},
	{"listen_submission", T_LISTEN, OFF(listen_submission), "127.0.0.1:587", 0, 0, NULL,
	 "Mail submission listeners (RFC 6409, port 587 role): STARTTLS, then AUTH; mail is "
	 "taken only from authenticated users, who may send anywhere but only as their own "
	 "addresses."},
	{"listen_submissions", T_LISTEN, OFF(listen_submissions), "", 0, 0, NULL,
	 "Submission over implicit TLS listeners (RFC 8314, port 465 role); need tls_cert and "
	 "tls_key."},
	{"listen_https", T_LISTEN, OFF(listen_https), "", 0, 0, NULL,
	 "HTTPS listeners (port 443 role): the JMAP API (RFC 8620, 8621) at /jmap/ and "
	 "/.well-known/jmap, HTTP/1.1 and HTTP/2; need tls_cert and tls_key."},
	{"listen_http", T_LISTEN, OFF(listen_http), "", 0, 0, NULL,
	 "Plain HTTP listeners, for a TLS-terminating proxy on loopback; passwords are taken "
	 "there only as plaintext_auth allows."},
	{"local_submit_socket", T_STR, OFF(local_submit_socket), CONF_LOCAL_SUBMIT_SOCKET, 0, 0,
	 NULL,
	 "Unix socket where local programs (yubin sendmail, cron, scripts) submit mail without a "
	 "password: any local user may connect (mode 0666); the kernel names the user (uid), "
	 "who may send anywhere, and the Received header says so. Same SMTP and limits as "
	 "submission, without TLS or AUTH. yubind creates its directory (mode 0755) if missing, "
	 "removes a stale socket at start and the socket at stop. Empty: off."},
	{"message_size_limit", T_SIZE, OFF(message_size_limit), "25M", 1024, 1LL << 31, NULL,
	 "Largest message accepted, in bytes (k, M, G suffixes). Advertised as SIZE; bigger "
	 "messages get 552 5.3.4."},
	{"smtp_data_memory_max", T_SIZE, OFF(smtp_data_memory_max), "512M", 1024 * 1024, 1LL << 40,
	 NULL,
	 "Message data that all SMTP sessions together may hold in memory while receiving "
	 "and storing; a message that would go past it gets 452 4.3.1 (try again later)."},
	{"smtp_data_in_memory", T_SIZE, OFF(smtp_data_in_memory), "128k", 4096, 1LL << 30, NULL,
	 "Data of one message kept in memory while it arrives; beyond it the message is "
	 "written to its body file as it comes (and the client waits when it sends faster "
	 "than the disk takes it, past four times this amount)."},
	{"smtp_max_recipients", T_INT, OFF(smtp_max_recipients), "1000", 1, 100000, NULL,
	 "Recipients accepted in one SMTP transaction; more get 452 4.5.3."},
	{"smtp_max_errors", T_INT, OFF(smtp_max_errors), "20", 1, 1000, NULL,
	 "Bad SMTP commands in one session before 421 and disconnect."},
	{"max_connections", T_INT, OFF(max_connections), "2000", 1, 1000000, NULL,
	 "Client connections served at once by the whole daemon; more are closed at once."},
	{"max_connections_per_ip", T_INT, OFF(max_connections_per_ip), "50", 1, 1000000, NULL,
	 "Client connections at once from one IP address."},
	{"smtp_bare_newline", T_ENUM, OFF(smtp_bare_newline), "normalize", 0, 0, barenl_names,
	 "A bare LF in message data: normalize (store it as CR LF) or reject (550 5.5.2). Either "
	 "way it never ends the data (SMTP smuggling)."},
	{"smtp_timeout", T_DURATION, OFF(smtp_timeout), "300s", 100, DAY, NULL,
	 "SMTP: idle time allowed between commands (s, ms, m, h suffixes; bare number = seconds)."},
	{"smtp_data_timeout", T_DURATION, OFF(smtp_data_timeout), "10m", 100, DAY, NULL,
	 "SMTP: deadline for the whole DATA or BDAT transfer of one message (slow senders)."},
	{"pop3_timeout", T_DURATION, OFF(pop3_timeout), "10m", 100, DAY, NULL,
	 "POP3: idle time allowed between commands (RFC 1939 asks for at least 10 minutes)."},
	{"imap_timeout", T_DURATION, OFF(imap_timeout), "30m", 100, DAY, NULL,
	 "IMAP: idle time allowed between commands and in IDLE (RFC 3501 asks for at least 30 "
	 "minutes; clients in IDLE re-issue it every 29)."},
	{"imap_max_sessions_per_user", T_INT, OFF(imap_max_sessions_per_user), "50", 1, 100000,
	 NULL,
	 "IMAP sessions one account may have open at once; a login beyond it gets NO [LIMIT]."},
	{"imap_max_sessions_per_ip", T_INT, OFF(imap_max_sessions_per_ip), "100", 1, 1000000,
	 NULL,
	 "IMAP connections at once from one IP address (before login too); more get BYE."},
	{"auth_cache_ttl", T_DURATION, OFF(auth_cache_ttl), "1h", 0, DAY, NULL,
	 "How long a verified login is remembered (a keyed digest, never the password) so that "
	 "the same user and password skip the argon2id check; a password change ends it at "
	 "once. 0 turns the cache off."},
	{"command_timeout", T_DURATION, OFF(command_timeout), "60s", 100, DAY, NULL,
	 "Every protocol: a command line that has started must be complete within this time; "
	 "also the time allowed for the TLS handshake on implicit-TLS ports."},
	{"shutdown_timeout", T_DURATION, OFF(shutdown_timeout), "10s", 0, DAY, NULL,
	 "On SIGTERM: time given to in-flight transactions before connections are cut."},
	{"store_batch_max", T_INT, OFF(store_batch_max), "256", 1, 100000, NULL,
	 "Most store operations committed together in one group commit (one fsync)."},
	{"relayhost", T_STR, OFF(relayhost), "", 0, 0, NULL,
	 "Send all outbound mail through this smart host instead of looking up MX records: "
	 "host:port looks up the host's MX first, [host]:port only its addresses. Empty: "
	 "deliver to each domain's MX. Per-domain routes (yubin route) come first."},
	{"relayhost_user", T_STR, OFF(relayhost_user), "", 0, 0, NULL,
	 "Log in to the relayhost (SMTP AUTH PLAIN or LOGIN) as this user. The session to it then "
	 "requires STARTTLS: without TLS nothing is sent and the mail waits. Empty: no login."},
	{"relayhost_password_file", T_STR, OFF(relayhost_password_file), "", 0, 0, NULL,
	 "File holding the relayhost password (its first line), readable by yubind only; read "
	 "at start. Required with relayhost_user."},
	{"dns_server", T_STR, OFF(dns_server), "", 0, 0, NULL,
	 "DNS resolver to ask (ADDR or ADDR@PORT, comma-separated), e.g. 127.0.0.1@53 for a "
	 "local validating resolver or a test server. Empty: the servers in /etc/resolv.conf."},
	{"dns_trust_anchor", T_STR, OFF(dns_trust_anchor), "/usr/share/dns/root.key", 0, 0, NULL,
	 "DNSSEC root trust anchor file (Debian package dns-root-data); answers are validated "
	 "and bogus ones are treated as temporary failures. Empty, or a missing file: no "
	 "validation (DANE is then never used)."},
	{"smtp_out_port", T_INT, OFF(smtp_out_port), "25", 1, 65535, NULL,
	 "Port of the mail exchangers outbound mail is delivered to (25 on the Internet)."},
	{"smtp_out_connect_timeout", T_DURATION, OFF(smtp_out_connect_timeout), "30s", 100, DAY,
	 NULL, "Outbound SMTP: time allowed for a TCP connection to a mail exchanger."},
	{"smtp_out_timeout", T_DURATION, OFF(smtp_out_timeout), "5m", 100, DAY, NULL,
	 "Outbound SMTP: time allowed for each reply of the remote server (RFC 5321 4.5.3.2 "
	 "asks for minutes)."},
	{"smtp_out_max_connections", T_INT, OFF(smtp_out_max_connections), "100", 1, 100000, NULL,
	 "Outbound SMTP connections open at once, all destinations together."},
	{"smtp_out_max_per_domain", T_INT, OFF(smtp_out_max_per_domain), "10", 1, 10000, NULL,
	 "Outbound SMTP connections open at once to one destination domain."},
	{"smtp_out_idle_time", T_DURATION, OFF(smtp_out_idle_time), "2s", 0, 300000, NULL,
	 "An outbound connection with no more mail waits this long for new mail to the same "
	 "destination before QUIT (a connection cache, like Postfix's); 0: QUIT at once."},
	{"smtp_out_max_messages", T_INT, OFF(smtp_out_max_messages), "100", 1, 100000, NULL,
	 "Messages sent over one outbound connection before it is closed (connection reuse)."},
	{"smtp_out_ipv6", T_INT, OFF(smtp_out_ipv6), "1", 0, 1, NULL,
	 "1: try the IPv6 addresses of a mail exchanger first, then IPv4; 0: IPv4 only."},
	{"smtp_out_bind", T_STR, OFF(smtp_out_bind), "", 0, 0, NULL,
	 "Local addresses outbound SMTP connects from: one IPv4 and/or one IPv6 address, "
	 "comma-separated (hosts with several addresses; SPF). Empty: the system chooses."},
	{"smtp_out_ca_file", T_STR, OFF(smtp_out_ca_file), "", 0, 0, NULL,
	 "PEM file of the certificate authorities trusted, instead of the system's, when a "
	 "certificate must be verified (MTA-STS policy fetches and MX hosts under an MTA-STS "
	 "policy); for private CAs and tests. Empty: the system trust store."},
	{"mta_sts", T_INT, OFF(mta_sts), "1", 0, 1, NULL,
	 "1: honour the MTA-STS policies (RFC 8461) that destination domains publish (TLS with a "
	 "verified certificate to their listed MX hosts); 0: ignore them."},
	{"mta_sts_port", T_INT, OFF(mta_sts_port), "443", 1, 65535, NULL,
	 "HTTPS port of the mta-sts.DOMAIN policy host (443; other values for tests)."},
	{"queue_retry_min", T_DURATION, OFF(queue_retry_min), "5m", 100, DAY, NULL,
	 "Delay before the first retry of a temporarily failed delivery; each later delay "
	 "doubles, up to queue_retry_max."},
	{"queue_retry_max", T_DURATION, OFF(queue_retry_max), "1h", 100, 7 * DAY, NULL,
	 "Longest delay between two delivery attempts of one recipient."},
	{"queue_lifetime", T_DURATION, OFF(queue_lifetime), "5d", 1000, 60 * DAY, NULL,
	 "How long a message is retried before it is returned to its sender as undeliverable."},
	{"queue_delay_warning", T_DURATION, OFF(queue_delay_warning), "4h", 0, 60 * DAY, NULL,
	 "After this long undelivered, the sender gets one delay notification (RFC 3464, "
	 "action delayed); 0: never."},
	{"pop_before_smtp", T_DURATION, OFF(pop_before_smtp), "0", 0, DAY, NULL,
	 "Legacy POP-before-SMTP: a successful POP3 or IMAP login lets its IP address relay "
	 "through the SMTP listeners for this long without AUTH. 0 (the default) turns it off; "
	 "prefer submission with AUTH."},
	{"auth_cram_md5", T_INT, OFF(auth_cram_md5), "0", 0, 1, NULL,
	 "1: offer SMTP AUTH CRAM-MD5 (RFC 2195) on submission, for accounts given a secret "
	 "with yubin user apop. Legacy and weaker: the server keeps a password-equivalent "
	 "secret. SCRAM-SHA-256 is always offered and preferred."},
	{"auth_fail_delay_max", T_DURATION, OFF(auth_fail_delay_max), "15s", 0, DAY, NULL,
	 "Failed SMTP AUTH logins are answered after a delay that doubles with each recent "
	 "failure from the same IP address or for the same account, up to this."},
};

static int64_t *i64(struct conf *c, const struct conf_key *k)
{
	return (int64_t *)((char *)c + k->off);
}

static char **strp(struct conf *c, const struct conf_key *k)
{
	return (char **)((char *)c + k->off);
}

static int *intp(struct conf *c, const struct conf_key *k)
{
	return (int *)((char *)c + k->off);
}

static struct conf_listen *lp(struct conf *c, const struct conf_key *k)
{
	return (struct conf_listen *)((char *)c + k->off);
}

static void listen_clear(struct conf_listen *l)
{
	for (int i = 0; i < l->count; i++)
		FREE(l->addr[i]);
	l->count = 0;
}

static const char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Parse a number with an optional unit. units: "size" or "duration". */
static int parse_number(const char *v, bool duration, int64_t *out, const char **err)
{
	errno = 0;
	char *end;
	if (*v < '0' || *v > '9') {
		*err = "not a number";
		return -1;
	}
	long long n = strtoll(v, &end, 10);
	if (errno == ERANGE) {
		*err = "number out of range";
		return -1;
	}
	long long mul = 1;
	if (duration) {
		mul = 1000; /* bare number = seconds */
		if (strcmp(end, "ms") == 0)
			mul = 1;
		else if (strcmp(end, "s") == 0 || *end == '\0')
			mul = 1000;
		else if (strcmp(end, "m") == 0)
			mul = 60000;
		else if (strcmp(end, "h") == 0)
			mul = 3600000;
		else if (strcmp(end, "d") == 0)
			mul = 24LL * 3600000;
		else {
			*err = "unknown unit (use ms, s, m, h or d)";
			return -1;
		}
	} else if (*end != '\0') {
		if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
			mul = 1024;
		else if (strcmp(end, "M") == 0)
			mul = 1024 * 1024;
		else if (strcmp(end, "G") == 0)
			mul = 1024LL * 1024 * 1024;
		else {
			*err = "unknown unit (use k, M or G)";
			return -1;
		}
	}
	if (n > LLONG_MAX / mul) {
		*err = "number out of range";
		return -1;
	}
	*out = n * mul;
	return 0;
}

int conf_parse_listen(const char *s, struct sockaddr_storage *ss, char **error_r)
{
	memset(ss, 0, sizeof *ss);
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon[1] == '\0') {
		*error_r = xasprintf("\"%s\": expected host:port", s);
		return -1;
	}
	char *endp;
	errno = 0;
	long port = strtol(colon + 1, &endp, 10);
	if (*endp != '\0' || port < 0 || port > 65535 || errno) {
		*error_r = xasprintf("\"%s\": bad port", s);
		return -1;
	}
	char host[128];
	size_t hl = (size_t)(colon - s);
	if (hl >= sizeof host) {
		*error_r = xasprintf("\"%s\": host too long", s);
		return -1;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (strcmp(host, "*") == 0) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		in->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1) {
			*error_r = xasprintf("\"%s\": bad IPv6 address", s);
			return -1;
		}
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
		*error_r = xasprintf("\"%s\": bad IPv4 address (names are not resolved; use an address)", s);
		return -1;
	}
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	return 0;
}

static int set_value(struct conf *c, const struct conf_key *k, const char *v, char **msg)
{
	const char *err = NULL;
	int64_t n;
	switch (k->type) {
	case T_STR:
		free(*strp(c, k));
		*strp(c, k) = xstrdup(v);
		return 0;
	case T_INT:
	case T_SIZE:
	case T_DURATION:
		if (k->type == T_INT) {
			char *end;
			errno = 0;
			long long x = strtoll(v, &end, 10);
			if (*v == '\0' || *end != '\0' || errno) {
				*msg = xasprintf("\"%s\" is not a whole number", v);
				return -1;
			}
			n = x;
		} else if (parse_number(v, k->type == T_DURATION, &n, &err) < 0) {
			*msg = xasprintf("\"%s\": %s", v, err);
			return -1;
		}
		if (n < k->min || n > k->max) {
			if (k->type == T_DURATION)
				*msg = xasprintf("\"%s\" out of range (%lldms..%lldms)", v,
						 (long long)k->min, (long long)k->max);
			else
				*msg = xasprintf("\"%s\" out of range (%lld..%lld)", v,
						 (long long)k->min, (long long)k->max);
			return -1;
		}
		*i64(c, k) = n;
		return 0;
	case T_ENUM:
		for (int i = 0; k->names[i]; i++) {
			if (strcmp(k->names[i], v) == 0) {
				*intp(c, k) = i;
				return 0;
			}
		}
		{
			struct buf b;
			buf_init(&b, 1024);
			for (int i = 0; k->names[i]; i++)
				buf_printf(&b, "%s%s", i ? ", " : "", k->names[i]);
			*msg = xasprintf("\"%s\" is not one of: %s", v, b.data);
			buf_free(&b);
		}
		return -1;
	case T_LISTEN: {
		struct conf_listen *l = lp(c, k);
		listen_clear(l);
		char *copy = xstrdup(v);
		char *save = NULL;
		for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
			struct sockaddr_storage ss;
			char *e = NULL;
			if (conf_parse_listen(tok, &ss, &e) < 0) {
				*msg = e;
				free(copy);
				return -1;
			}
			if (l->count == CONF_MAX_LISTEN) {
				*msg = xasprintf("more than %d addresses", CONF_MAX_LISTEN);
				free(copy);
				return -1;
			}
			l->addr[l->count++] = xstrdup(tok);
		}
		free(copy);
		return 0;
	}
	}
	return -1;
}

static const struct conf_key *find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(conf_table); i++)
		if (strcmp(conf_table[i].name, name) == 0)
			return &conf_table[i];
	return NULL;
}

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < ARRAY_LEN(conf_table); i++) {
		char *msg = NULL;
		if (set_value(c, &conf_table[i], conf_table[i].def, &msg) < 0)
			log_fatal("built-in default of %s is invalid: %s", conf_table[i].name, msg);
	}
}

#define CONF_LINE_MAX 4096
#define CONF_FILE_MAX (1024 * 1024)

int conf_load_string(struct conf *c, const char *name, const char *text, char **error_r)
{
	bool seen[ARRAY_LEN(conf_table)] = {false};
	free(c->path);
	c->path = xstrdup(name);
	int lineno = 0;
	const char *p = text;
	while (*p) {
		lineno++;
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len >= CONF_LINE_MAX) {
			*error_r = xasprintf("%s:%d: line longer than %d bytes", name, lineno, CONF_LINE_MAX);
			return -1;
		}
		char line[CONF_LINE_MAX];
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl ? 1 : 0);
		if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
			*error_r = xasprintf("%s:%d: NUL byte in line", name, lineno);
			return -1;
		}
		const char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			*error_r = xasprintf("%s:%d: expected \"key = value\", got \"%s\"", name, lineno, s);
			return -1;
		}
		*eq = '\0';
		const char *key = trim((char *)s);
		const char *val = trim(eq + 1);
		const struct conf_key *k = find_key(key);
		if (k == NULL) {
			*error_r = xasprintf("%s:%d: unknown key \"%s\" (see etc/yubin.conf.example)",
					     name, lineno, key);
			return -1;
		}
		size_t idx = (size_t)(k - conf_table);
		if (seen[idx]) {
			*error_r = xasprintf("%s:%d: key %s set twice", name, lineno, key);
			return -1;
		}
		seen[idx] = true;
		char *msg = NULL;
		if (set_value(c, k, val, &msg) < 0) {
			*error_r = xasprintf("%s:%d: %s: %s", name, lineno, key, msg);
			free(msg);
			return -1;
		}
	}
	return 0;
}

int conf_load(struct conf *c, const char *path, char **error_r)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		*error_r = xasprintf("%s: cannot open config file: %s", path, strerror(errno));
		return -1;
	}
	struct buf b;
	buf_init(&b, CONF_FILE_MAX);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
		if (buf_append(&b, tmp, n) < 0) {
			*error_r = xasprintf("%s: config file larger than %d bytes", path, CONF_FILE_MAX);
			fclose(f);
			buf_free(&b);
			return -1;
		}
	}
	bool err = ferror(f);
	fclose(f);
	if (err) {
		*error_r = xasprintf("%s: read error", path);
		buf_free(&b);
		return -1;
	}
	if (b.len && strlen(b.data) != b.len) {
		*error_r = xasprintf("%s: NUL byte in config file", path);
		buf_free(&b);
		return -1;
	}
	int r = conf_load_string(c, path, b.data ? b.data : "", error_r);
	buf_free(&b);
	return r;
}

bool conf_valid_hostname(const char *h)
{
	size_t label = 0, total = 0;

	if (*h == '\0')
		return false;
	for (const char *p = h; *p; p++, total++) {
		char ch = *p;
		if (ch == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || (ch == '-' && label > 0);
		if (!ok || ++label > 63)
			return false;
	}
	return total <= 253 && label > 0 && h[total - 1] != '-';
}

int conf_check(const struct conf *c, char **error_r)
{
	const char *f = c->path ? c->path : "config";
	if (!conf_valid_hostname(c->hostname)) {
		*error_r = xasprintf("%s: hostname: \"%s\" is not a host name (letters, digits and "
				     "hyphens in dot-separated labels; no inline comments)",
				     f, c->hostname);
		return -1;
	}
	const char *rd = c->recipient_delimiter;
	if (strlen(rd) > 1 || (rd[0] && (rd[0] == '@' || (unsigned char)rd[0] <= ' ' ||
					 (unsigned char)rd[0] >= 0x7f))) {
		*error_r = xasprintf("%s: recipient_delimiter: \"%s\" must be one printable "
				     "character other than @ (e.g. + or -), or empty", f, rd);
		return -1;
	}
	if (strpbrk(c->user, " \t#") != NULL || strpbrk(c->postmaster, " \t#") != NULL) {
		*error_r = xasprintf("%s: user and postmaster take one word (inline comments are "
				     "not supported: put # at the start of a line)", f);
		return -1;
	}
	if (c->data_dir[0] != '/') {
		*error_r = xasprintf("%s: data_dir: must be an absolute path, got \"%s\"", f, c->data_dir);
		return -1;
	}
	if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
		*error_r = xasprintf("%s: tls_cert and tls_key must be set together", f);
		return -1;
	}
	if (c->tls_cert[0] == '\0' && c->listen_imaps.count > 0) {
		*error_r = xasprintf("%s: listen_imaps: implicit TLS needs tls_cert and tls_key", f);
		return -1;
	}
	if (c->tls_cert[0] == '\0' && c->listen_submissions.count > 0) {
		*error_r = xasprintf("%s: listen_submissions: implicit TLS needs tls_cert and "
				     "tls_key", f);
		return -1;
	}
	if (c->tls_cert[0] == '\0' && c->listen_https.count > 0) {
		*error_r = xasprintf("%s: listen_https: HTTPS needs tls_cert and tls_key", f);
		return -1;
	}
	if (c->tls_cert[0] == '\0' && c->listen_pop3s.count > 0) {
		*error_r = xasprintf("%s: listen_pop3s: implicit TLS needs tls_cert and tls_key", f);
		return -1;
	}
	const char *ls = c->local_submit_socket;
	if (ls[0] && (ls[0] != '/' || strlen(ls) > CONF_SOCKET_PATH_MAX ||
		      ls[strlen(ls) - 1] == '/' || strpbrk(ls, " \t#") != NULL)) {
		*error_r = xasprintf("%s: local_submit_socket: \"%s\" must be an absolute path of "
				     "a file (at most %d bytes, no blanks), or empty for none", f, ls,
				     CONF_SOCKET_PATH_MAX);
		return -1;
	}
	if (c->postmaster[0] && strchr(c->postmaster, '@') == NULL) {
		*error_r = xasprintf("%s: postmaster: \"%s\" is not an address (user@domain)", f,
				     c->postmaster);
		return -1;
	}
	return 0;
}

static void print_value(const struct conf *c, const struct conf_key *k, FILE *out)
{
	struct conf *cc = (struct conf *)c;
	switch (k->type) {
	case T_STR:
		fputs(*strp(cc, k), out);
		break;
	case T_INT:
		fprintf(out, "%lld", (long long)*i64(cc, k));
		break;
	case T_SIZE:
		fprintf(out, "%lld", (long long)*i64(cc, k));
		break;
	case T_DURATION: {
		long long ms = (long long)*i64(cc, k);
		if (ms % 1000)
			fprintf(out, "%lldms", ms);
		else
			fprintf(out, "%llds", ms / 1000);
		break;
	}
	case T_ENUM:
		fputs(k->names[*intp(cc, k)], out);
		break;
	case T_LISTEN: {
		struct conf_listen *l = lp(cc, k);
		for (int i = 0; i < l->count; i++)
			fprintf(out, "%s%s", i ? ", " : "", l->addr[i]);
		break;
	}
	}
}

void conf_print(const struct conf *c, FILE *out)
{
	for (size_t i = 0; i < ARRAY_LEN(conf_table); i++) {
		fprintf(out, "%s = ", conf_table[i].name);
		print_value(c, &conf_table[i], out);
		fputc('\n', out);
	}
}

void conf_print_doc(FILE *out)
{
	for (size_t i = 0; i < ARRAY_LEN(conf_table); i++)
		fprintf(out, "%s (default \"%s\"): %s\n", conf_table[i].name, conf_table[i].def,
			conf_table[i].doc);
}

void conf_free(struct conf *c)
{
	for (size_t i = 0; i < ARRAY_LEN(conf_table); i++) {
		const struct conf_key *k = &conf_table[i];
		if (k->type == T_STR)
			FREE(*strp(c, k));
		else if (k->type == T_LISTEN)
			listen_clear(lp(c, k));
	}
	FREE(c->path);
}
