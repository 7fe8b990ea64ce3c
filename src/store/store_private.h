/* store_private.h - what store.c, store_account.c and store_message.c
 * share; not for anything outside src/store/. */
#ifndef YUBIN_STORE_PRIVATE_H
#define YUBIN_STORE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Idle connections kept in the pool; more may be open while busy. */
#define STORE_POOL_IDLE 8
/* How long a connection waits for another writer (SQLite busy handler). */
#define STORE_BUSY_MS 10000
/* Longest address (RFC 5321: 64 + 1 + 255 minus the angle brackets). */
#define STORE_ADDRESS_MAX 319
#define STORE_DOMAIN_MAX 255

struct store {
	char *data_dir;
	char *db_path;
	pthread_mutex_t mu;
	struct sqlite3 *idle[STORE_POOL_IDLE];
	size_t nidle;
};

struct store_txn {
	struct store *st;
	sqlite3 *db;
};

/* Error text for the operator in *error_r (heap); set_error takes msg. */
void store_set_error(char **error_r, char *msg);
void store_set_db_error(struct store *st, sqlite3 *db, const char *what, char **error_r);
int store_exec(sqlite3 *db, const char *sql);
sqlite3_stmt *store_prep(sqlite3 *db, const char *sql);
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
char *store_col_strdup(sqlite3_stmt *s, int i);
int store_step_done(sqlite3_stmt *s);
bool store_valid_domain(const char *name);
char *store_split_address(const char *address, const char **domain_r);
int store_collect_paths(sqlite3_stmt *s, char ***arr_r, size_t *n_r);
/* Next UIDVALIDITY: max(now, last + 1), never reused.  Inside a write txn. */
int store_next_uidvalidity(sqlite3 *db, uint32_t *v_r);

#endif
