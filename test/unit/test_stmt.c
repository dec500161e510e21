/* Unit test of pool/stmt: content-derived statement names, client name maps, server sets with LRU eviction. */
#include "pool/stmt.h"
#include "test/unit/check.h"

#include <string.h>

static const uint8_t q1[] = "select 1\0\0\0";
static const uint8_t q2[] = "select 2\0\0\0";

int main(void)
{
	struct stmt_table t = { 0 };

	/* Equal text and types share one statement and one name; different ones do not. */
	struct stmt *a = stmt_get(&t, q1, sizeof q1 - 1);
	struct stmt *b = stmt_get(&t, q1, sizeof q1 - 1);
	struct stmt *c = stmt_get(&t, q2, sizeof q2 - 1);
	CHECK(a == b && a != c && a->refs == 2 && t.n == 2);
	CHECK(strncmp(a->name, "rb_", 3) == 0 && strlen(a->name) == 3 + 2 * STMT_HASH_LEN);
	CHECK(strcmp(a->name, c->name) != 0);
	CHECK(a->len == sizeof q1 - 1 && memcmp(a->body, q1, a->len) == 0);
	char name[STMT_NAME_LEN];
	stmt_name_of(a->hash, name);
	CHECK(strcmp(name, a->name) == 0);

	/* A client's names: set, re-point, delete; references follow. */
	struct stmt_map m = { 0 };
	stmt_map_set(&m, &t, "s1", a);      /* takes a's second reference */
	stmt_map_set(&m, &t, "s2", c);
	CHECK(stmt_map_get(&m, "s1") == a && stmt_map_get(&m, "s2") == c && !stmt_map_get(&m, "s3"));
	struct stmt *a2 = stmt_get(&t, q1, sizeof q1 - 1);
	stmt_map_set(&m, &t, "s2", a2);     /* s2 now names q1: c loses its only reference */
	CHECK(stmt_map_get(&m, "s2") == a && a->refs == 3 && t.n == 1);
	stmt_map_del(&m, &t, "s1");
	CHECK(!stmt_map_get(&m, "s1") && a->refs == 2);
	stmt_map_del(&m, &t, "nothing");
	stmt_put(&t, b);                     /* the first reference, taken by stmt_get above */
	CHECK(a->refs == 1 && t.n == 1);
	stmt_map_free(&m, &t);
	CHECK(t.n == 0);

	/* Many statements grow the table and stay findable. */
	struct stmt *many[300];
	for (int i = 0; i < 300; i++) {
		char sql[32];
		int n = snprintf(sql, sizeof sql, "select %d", i);
		many[i] = stmt_get(&t, (const uint8_t *)sql, (uint32_t)n + 1);
	}
	CHECK(t.n == 300);
	for (int i = 0; i < 300; i++) {
		char sql[32];
		int n = snprintf(sql, sizeof sql, "select %d", i);
		struct stmt *again = stmt_get(&t, (const uint8_t *)sql, (uint32_t)n + 1);
		CHECK(again == many[i]);
		stmt_put(&t, again);
		stmt_put(&t, many[i]);
	}
	CHECK(t.n == 0);

	/* A server's set: states, and the least recently used READY entry goes first. */
	struct stmt_set set = { 0 };
	uint8_t h[5][STMT_HASH_LEN];
	for (int i = 0; i < 5; i++) {
		memset(h[i], i + 1, STMT_HASH_LEN);
		stmt_set_mark(&set, h[i], STMT_READY);
	}
	stmt_set_mark(&set, h[4], STMT_PENDING);
	CHECK(stmt_set_state(&set, h[4]) == STMT_PENDING && stmt_set_state(&set, h[0]) == STMT_READY);
	CHECK(stmt_set_victim(&set, 5) == NULL);       /* within the limit */
	const struct stmt_set_entry *v = stmt_set_victim(&set, 4);
	CHECK(v && memcmp(v->hash, h[1], STMT_HASH_LEN) == 0); /* h[0] was just used */
	stmt_set_mark(&set, h[1], STMT_ABSENT);
	CHECK(stmt_set_state(&set, h[1]) == STMT_ABSENT && set.n == 4);
	/* A pending entry is never the victim. */
	for (int i = 0; i < 4; i++)
		if (i != 1)
			stmt_set_state(&set, h[i]);
	v = stmt_set_victim(&set, 1);
	CHECK(v && v->state == STMT_READY);
	stmt_set_free(&set);
	stmt_table_free(&t);
	return check_summary();
}
