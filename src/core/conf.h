/* conf.h - the one configuration file, parsed through one typed table.
 *
 * Syntax: "key = value" lines; '#' starts a comment line; blank lines are
 * ignored; a key may appear once.  Every key is described in the table in
 * conf.c (name, type, default, min, max, doc) and in
 * etc/yubin.conf.example; `yubind -c FILE --print-config` prints the
 * effective values.  Errors name the file, the line and the key. */
#ifndef YUBIN_CORE_CONF_H
#define YUBIN_CORE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_MAX_LISTEN 8
/* Default of local_submit_socket; yubin sendmail falls back to it too. */
#define CONF_LOCAL_SUBMIT_SOCKET "/run/yubin/submit.sock"
/* Longest local_submit_socket (sun_path holds 108 bytes with the NUL). */
#define CONF_SOCKET_PATH_MAX 107

/* Where plaintext passwords (USER/PASS, AUTH PLAIN, LOGIN) are accepted on a
 * connection that is not (yet) TLS. */
enum plaintext_auth { PLAINTEXT_NEVER, PLAINTEXT_LOOPBACK, PLAINTEXT_ALWAYS };

/* What SMTP does with a bare LF (or bare CR) inside message data. */
enum bare_newline { BARE_NEWLINE_NORMALIZE, BARE_NEWLINE_REJECT };

struct conf_listen {
	int count;
	char *addr[CONF_MAX_LISTEN]; /* "127.0.0.1:2525", "[::1]:25", "*:25" */
};

struct conf {
	char *path;                 /* file it came from */
	char *hostname;             /* our name in greetings and Received */
	char *data_dir;             /* store: yubin.db and msg/ */
	char *user;                 /* drop to this user when started as root */
	char *postmaster;           /* account receiving postmaster@ mail */
	char *recipient_delimiter;  /* "+" (user+tag@), "" = off */
	char *tls_cert;             /* PEM chain; empty = no TLS */
	char *tls_key;              /* PEM private key */
	enum plaintext_auth plaintext_auth;
	int log_level;              /* enum log_level */

	struct conf_listen listen_smtp;
	struct conf_listen listen_pop3;
	struct conf_listen listen_pop3s;
	struct conf_listen listen_imap;
	struct conf_listen listen_imaps;
	struct conf_listen listen_submission;
	struct conf_listen listen_submissions;
	struct conf_listen listen_https;  /* HTTP over TLS: JMAP (and webmail later) */
	struct conf_listen listen_http;   /* plain HTTP, for a TLS proxy on loopback */
	char *local_submit_socket;  /* Unix socket for local programs; "" = none */

	int64_t message_size_limit; /* bytes, SIZE and DATA/BDAT cap */
	int64_t smtp_data_memory_max; /* bytes of message data in memory, all sessions */
	int64_t smtp_data_in_memory; /* per message: more goes to its body file as it arrives */
	int64_t smtp_max_recipients;
	int64_t smtp_max_errors;    /* bad commands before 421 and close */
	int64_t max_connections;    /* whole daemon */
	int64_t max_connections_per_ip;
	enum bare_newline smtp_bare_newline;
	int64_t smtp_timeout;       /* ms: idle between commands */
	int64_t smtp_data_timeout;  /* ms: whole DATA/BDAT transfer deadline */
	int64_t pop3_timeout;       /* ms: idle between commands */
	int64_t imap_timeout;       /* ms: idle between commands, IDLE included */
	int64_t imap_max_sessions_per_user;
	int64_t imap_max_sessions_per_ip;
	int64_t auth_cache_ttl;     /* ms: verified-credentials cache, 0 = off */
	int64_t command_timeout;    /* ms: deadline for one command line to complete once started */
	int64_t shutdown_timeout;   /* ms: SIGTERM grace period for in-flight work */
	int64_t store_batch_max;    /* deliveries per group commit */
	/* outbound (src/mta) */
	char *relayhost;            /* smart host "[host]:port" / "host:port"; empty = MX */
	char *relayhost_user;       /* SMTP AUTH to the relayhost, "" = none */
	char *relayhost_password_file;
	char *dns_server;           /* "" = /etc/resolv.conf; else ADDR[@PORT],... */
	char *dns_trust_anchor;     /* root key for DNSSEC validation; "" = none */
	int64_t smtp_out_port;      /* port of MX hosts */
	int64_t smtp_out_connect_timeout; /* ms */
	int64_t smtp_out_timeout;   /* ms: each reply */
	int64_t smtp_out_max_connections;
	int64_t smtp_out_max_per_domain;
	int64_t smtp_out_max_messages; /* per connection before QUIT */
	int64_t smtp_out_ipv6;      /* 0/1 */
	int64_t smtp_out_idle_time; /* ms an idle connection waits for more mail */
	char *smtp_out_bind;        /* "IPv4[,IPv6]" to connect from, "" = any */
	char *smtp_out_ca_file;     /* extra CAs for verified TLS ("" = system only) */
	int64_t mta_sts;            /* 0/1: honour RFC 8461 policies */
	int64_t mta_sts_port;       /* 443 */
	int64_t queue_retry_min;    /* ms: first retry delay, doubled each time */
	int64_t queue_retry_max;    /* ms: longest delay between attempts */
	int64_t queue_lifetime;     /* ms: bounce after this long */
	int64_t queue_delay_warning; /* ms: warn the sender once after this long; 0 = never */
	int64_t pop_before_smtp;    /* ms a POP3/IMAP login lets its IP relay; 0 = off */
	int64_t auth_fail_delay_max; /* ms: longest delay after failed logins */
	int64_t auth_cram_md5;      /* 0/1: offer CRAM-MD5 (accounts with a secret) */
};

/* Fill c with the defaults of every key. */
void conf_defaults(struct conf *c);
/* Parse FILE over the defaults. On error returns -1 and a message naming
 * file, line and key in *error_r (heap string, caller frees). */
int conf_load(struct conf *c, const char *path, char **error_r);
/* Parse from a string (unit tests, fuzzing); name is used in messages. */
int conf_load_string(struct conf *c, const char *name, const char *text, char **error_r);
/* Semantic checks across keys (cert and key both set, listen addresses
 * parse, ...). -1 with *error_r on failure. */
int conf_check(const struct conf *c, char **error_r);
/* hostname syntax: LDH labels separated by dots (RFC 1123), no trailing dot. */
bool conf_valid_hostname(const char *h);
/* Print every key with its effective value, one "key = value" a line. */
void conf_print(const struct conf *c, FILE *out);
/* Print the documentation of every key (used to check etc/yubin.conf.example). */
void conf_print_doc(FILE *out);
void conf_free(struct conf *c);

/* Parse "host:port", "[v6]:port" or "*:port" into a sockaddr. */
struct sockaddr_storage;
int conf_parse_listen(const char *s, struct sockaddr_storage *ss, char **error_r);

#endif
