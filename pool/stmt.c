/* Prepared-statement bookkeeping: a content-addressed statement table, client maps and server sets. */
#include "pool/stmt.h"

#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "lib/bytes.h"
#include "lib/log.h"

void stmt_name_of(const uint8_t hash[STMT_HASH_LEN], char out[STMT_NAME_LEN])
{
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "rb_", 3);
	for (int i = 0; i < STMT_HASH_LEN; i++) {
		out[3 + 2 * i] = hex[hash[i] >> 4];
		out[4 + 2 * i] = hex[hash[i] & 15];
	}
	out[3 + 2 * STMT_HASH_LEN] = 0;
}

static uint32_t stmt_bucket(const struct stmt_table *t, const uint8_t *hash)
{
	uint32_t h;
	memcpy(&h, hash, sizeof h);
	return h & (t->cap - 1);
}

static void stmt_table_grow(struct stmt_table *t)
{
	uint32_t ncap = t->cap ? t->cap * 2 : 64;
	struct stmt **nv = calloc(ncap, sizeof *nv);
	if (!nv)
		die("out of memory");
	struct stmt_table nt = { .v = nv, .cap = ncap, .n = t->n };
	for (uint32_t i = 0; i < t->cap; i++) {
		for (struct stmt *s = t->v[i], *next; s; s = next) {
			next = s->next;
			uint32_t b = stmt_bucket(&nt, s->hash);
			s->next = nv[b];
			nv[b] = s;
		}
	}
	free(t->v);
	*t = nt;
}

struct stmt *stmt_get(struct stmt_table *t, const uint8_t *body, uint32_t len)
{
	uint8_t digest[WC_SHA256_DIGEST_SIZE];
	/* A name from the content: equal texts share one server-side statement, across clients. */
	if (wc_Sha256Hash(body, len, digest) != 0)
		die("SHA-256 failed");
	if (t->cap == 0 || t->n >= t->cap)
		stmt_table_grow(t);
	uint32_t b = stmt_bucket(t, digest);
	for (struct stmt *s = t->v[b]; s; s = s->next) {
		if (memcmp(s->hash, digest, STMT_HASH_LEN) == 0) {
			s->refs++;
			return s;
		}
	}
	struct stmt *s = calloc(1, sizeof *s);
	if (!s || !(s->body = malloc(len)))
		die("out of memory");
	memcpy(s->hash, digest, STMT_HASH_LEN);
	stmt_name_of(s->hash, s->name);
	memcpy(s->body, body, len);
	s->len = len;
	s->refs = 1;
	s->next = t->v[b];
	t->v[b] = s;
	t->n++;
	return s;
}

void stmt_put(struct stmt_table *t, struct stmt *s)
{
	if (--s->refs)
		return;
	for (struct stmt **pp = &t->v[stmt_bucket(t, s->hash)]; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			t->n--;
			free(s->body);
			free(s);
			return;
		}
	}
	die("statement not in its table");
}

void stmt_table_free(struct stmt_table *t)
{
	for (uint32_t i = 0; i < t->cap; i++) {
		for (struct stmt *s = t->v[i], *next; s; s = next) {
			next = s->next;
			free(s->body);
			free(s);
		}
	}
	free(t->v);
	*t = (struct stmt_table){ 0 };
}

static struct stmt_map_entry *stmt_map_find(const struct stmt_map *m, const char *name)
{
	for (uint32_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].name, name) == 0)
			return &m->v[i];
	return NULL;
}

struct stmt *stmt_map_get(const struct stmt_map *m, const char *name)
{
	struct stmt_map_entry *e = stmt_map_find(m, name);
	return e ? e->st : NULL;
}

void stmt_map_set(struct stmt_map *m, struct stmt_table *t, const char *name, struct stmt *st)
{
	struct stmt_map_entry *e = stmt_map_find(m, name);
	if (e) {
		stmt_put(t, e->st);
		e->st = st;
		return;
	}
	if (m->n == m->cap)
		m->v = bytes_grow_array(m->v, &m->cap, sizeof *m->v, 8);
	m->v[m->n].name = strdup(name);
	if (!m->v[m->n].name)
		die("out of memory");
	m->v[m->n++].st = st;
}

void stmt_map_del(struct stmt_map *m, struct stmt_table *t, const char *name)
{
	struct stmt_map_entry *e = stmt_map_find(m, name);
	if (!e)
		return;
	stmt_put(t, e->st);
	free(e->name);
	*e = m->v[--m->n];
}

void stmt_map_free(struct stmt_map *m, struct stmt_table *t)
{
	for (uint32_t i = 0; i < m->n; i++) {
		stmt_put(t, m->v[i].st);
		free(m->v[i].name);
	}
	free(m->v);
	*m = (struct stmt_map){ 0 };
}

static struct stmt_set_entry *stmt_set_find(const struct stmt_set *s, const uint8_t *hash)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (memcmp(s->v[i].hash, hash, STMT_HASH_LEN) == 0)
			return &s->v[i];
	return NULL;
}

enum stmt_state stmt_set_state(struct stmt_set *s, const uint8_t hash[STMT_HASH_LEN])
{
	struct stmt_set_entry *e = stmt_set_find(s, hash);
	if (!e)
		return STMT_ABSENT;
	e->used = ++s->clock;
	return e->state;
}

void stmt_set_mark(struct stmt_set *s, const uint8_t hash[STMT_HASH_LEN], enum stmt_state st)
{
	struct stmt_set_entry *e = stmt_set_find(s, hash);
	if (st == STMT_ABSENT) {
		if (e)
			*e = s->v[--s->n];
		return;
	}
	if (!e) {
		if (s->n == s->cap)
			s->v = bytes_grow_array(s->v, &s->cap, sizeof *s->v, 16);
		e = &s->v[s->n++];
		memcpy(e->hash, hash, STMT_HASH_LEN);
	}
	e->state = (uint8_t)st;
	e->used = ++s->clock;
}

const struct stmt_set_entry *stmt_set_victim(const struct stmt_set *s, uint32_t max)
{
	if (s->n <= max)
		return NULL;
	const struct stmt_set_entry *victim = NULL;
	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].state == STMT_READY && (!victim || s->v[i].used < victim->used))
			victim = &s->v[i];
	return victim;
}

void stmt_set_free(struct stmt_set *s)
{
	free(s->v);
	*s = (struct stmt_set){ 0 };
}
