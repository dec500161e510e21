/* Named prepared statements for transaction pooling: shared statement texts, client name maps, per-server sets. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define STMT_HASH_LEN 16
#define STMT_NAME_LEN 36      /* "rb_" + 32 hex digits + NUL */

/* One distinct statement (query text and parameter types), shared by a worker's clients. */
struct stmt {
	uint8_t  hash[STMT_HASH_LEN];
	char     name[STMT_NAME_LEN];  /* its name on every server */
	uint8_t *body;                 /* the Parse body after the name: query\0 int16 n, n x int32 */
	uint32_t len;
	uint32_t refs;                 /* client names that map to it */
	struct stmt *next;             /* hash chain */
};

struct stmt_table {
	struct stmt **v;
	uint32_t cap, n;
};

/* The statement with this Parse body (found or made), one reference taken. Worker thread. */
struct stmt *stmt_get(struct stmt_table *t, const uint8_t *body, uint32_t len);
void stmt_put(struct stmt_table *t, struct stmt *s);
void stmt_table_free(struct stmt_table *t);

/* A client's names -> statements. */
struct stmt_map_entry {
	char *name;
	struct stmt *st;
};

struct stmt_map {
	struct stmt_map_entry *v;
	uint32_t cap, n;
};

struct stmt *stmt_map_get(const struct stmt_map *m, const char *name);
/* Sets name -> st (st's reference moves into the map); an old mapping's reference is returned to t. */
void stmt_map_set(struct stmt_map *m, struct stmt_table *t, const char *name, struct stmt *st);
void stmt_map_del(struct stmt_map *m, struct stmt_table *t, const char *name);
void stmt_map_free(struct stmt_map *m, struct stmt_table *t);

/* The statements a server has (or is preparing), least recently used first out. */
enum stmt_state { STMT_ABSENT, STMT_PENDING, STMT_READY };

struct stmt_set_entry {
	uint8_t  hash[STMT_HASH_LEN];
	uint8_t  state;
	uint64_t used;          /* LRU clock */
};

struct stmt_set {
	struct stmt_set_entry *v;
	uint32_t cap, n;
	uint64_t clock;
};

enum stmt_state stmt_set_state(struct stmt_set *s, const uint8_t hash[STMT_HASH_LEN]);
void stmt_set_mark(struct stmt_set *s, const uint8_t hash[STMT_HASH_LEN], enum stmt_state st);
/* The least recently used READY entry, when more than max are kept; NULL otherwise. */
const struct stmt_set_entry *stmt_set_victim(const struct stmt_set *s, uint32_t max);
void stmt_set_free(struct stmt_set *s);
/* "rb_" + hex of hash. */
void stmt_name_of(const uint8_t hash[STMT_HASH_LEN], char out[STMT_NAME_LEN]);
