/* Deny/allow rules matched on each statement of a query, comments blanked out. */
#include "quota/rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "proto/sql.h"

static int compile_all(regex_t **out, size_t *nout, char *const *pats, size_t n)
{
	*out = NULL;
	*nout = 0;
	if (!n)
		return 0;
	regex_t *v = calloc(n, sizeof *v);
	if (!v)
		die("out of memory");
	for (size_t i = 0; i < n; i++) {
		if (cfg_regcomp(&v[i], pats[i]) != 0) {
			while (i--)
				regfree(&v[i]);
			free(v);
			return -EINVAL;
		}
	}
	*out = v;
	*nout = n;
	return 0;
}

/*
 * read_only: whatever could turn a session's default_transaction_read_only
 * (or one transaction) back to read-write. set_config is let through only
 * with a plain literal name (read_only in it is caught by the first rule);
 * a computed one could spell anything. DISCARD/RESET ALL would restore the
 * default, and a DO block can run any of it as dynamic SQL. The client also
 * sees its server report the value: a change that gets past these ends the
 * session (lib/client.c). A read-only database role is the stronger guarantee.
 */
static char *const read_only_deny[] = {
	"transaction_read_only",
	"read[[:space:]]+write",
	"session[[:space:]]+characteristics",
	"(reset|discard)[[:space:]]+all",
	"set_config\"?[[:space:]]*\\([[:space:]]*([^'[:space:]]|'[^']*'[[:space:]]*[^,[:space:]])",
	"u&[\"']",
	"^do([[:space:]]|\\$)",
};

int quota_rules_init(struct quota_rules *r, const struct cfg_tenant *t)
{
	memset(r, 0, sizeof *r);
	size_t nro = t->read_only ? sizeof read_only_deny / sizeof *read_only_deny : 0;
	char **deny = calloc(t->ndeny + nro + 1, sizeof *deny);
	if (!deny)
		die("out of memory");
	if (t->ndeny)
		memcpy(deny, t->deny, t->ndeny * sizeof *deny);
	if (nro)
		memcpy(deny + t->ndeny, read_only_deny, nro * sizeof *deny);
	int ret = compile_all(&r->deny, &r->ndeny, deny, t->ndeny + nro);
	free(deny);
	if (ret < 0)
		return -EINVAL;
	r->nuser_deny = t->ndeny;
	if (compile_all(&r->allow, &r->nallow, t->allow, t->nallow) < 0) {
		quota_rules_free(r);
		return -EINVAL;
	}
	return 0;
}

void quota_rules_free(struct quota_rules *r)
{
	for (size_t i = 0; i < r->ndeny; i++)
		regfree(&r->deny[i]);
	for (size_t i = 0; i < r->nallow; i++)
		regfree(&r->allow[i]);
	free(r->deny);
	free(r->allow);
	free(r->scratch);
	for (size_t i = 0; i < QUOTA_RULES_SEEN_SLOTS; i++)
		free(r->seen[i].text);
	memset(r, 0, sizeof *r);
}

/* Index of the first pattern of v[0..n) that matches text, or n. */
static size_t first_match(const regex_t *v, size_t n, const char *text)
{
	size_t i = 0;
	while (i < n && regexec(&v[i], text, 0, NULL, 0) != 0)
		i++;
	return i;
}

/* Splits sql[0..n) with sql_flags and judges each statement; see quota_rules_pass. */
static bool rules_split_pass(struct quota_rules *r, const char *sql, size_t n, unsigned sql_flags,
			     const char **stmt_out, enum quota_rule *why)
{
	size_t off = 0;
	while (sql_next(sql, n, &off, r->scratch, sql_flags) >= 0) {
		size_t d = first_match(r->deny, r->ndeny, r->scratch);
		if (d < r->ndeny)
			*why = d < r->nuser_deny ? QUOTA_RULE_DENY : QUOTA_RULE_READ_ONLY;
		else if (r->nallow && first_match(r->allow, r->nallow, r->scratch) == r->nallow)
			*why = QUOTA_RULE_ALLOW;
		else
			continue;
		*stmt_out = r->scratch;
		return false;
	}
	return true;
}

/* Eight bytes at a time: the texts are short and a hit is confirmed by memcmp, so any fair spread will do. */
static uint64_t rules_hash(const char *s, size_t n)
{
	uint64_t h = n * UINT64_C(0x9E3779B97F4A7C15);
	for (; n >= 8; s += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * UINT64_C(0xFF51AFD7ED558CCD);
		h ^= h >> 32;
	}
	uint64_t w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * UINT64_C(0xC4CEB9FE1A85EC53);
	return h ^ h >> 29;
}

bool quota_rules_pass(struct quota_rules *r, const char *sql, size_t n, const char **stmt_out,
		      enum quota_rule *why)
{
	n = strnlen(sql, n);
	struct quota_rules_seen *e = NULL;
	uint64_t h = 0;
	if (n && n <= QUOTA_RULES_SEEN_MAX) {
		h = rules_hash(sql, n);
		e = &r->seen[h % QUOTA_RULES_SEEN_SLOTS];
		if (e->len == n && e->hash == h && memcmp(e->text, sql, n) == 0)
			return true;
	}
	if (r->scratch_cap < n + 1) {
		free(r->scratch);
		r->scratch = malloc(n + 1);
		if (!r->scratch)
			die("out of memory");
		r->scratch_cap = n + 1;
	}
	/* Without a backslash in the text both ways split alike: once is enough. */
	if (!rules_split_pass(r, sql, n, 0, stmt_out, why) ||
	    (memchr(sql, '\\', n) && !rules_split_pass(r, sql, n, SQL_BACKSLASH_ESCAPES, stmt_out, why)))
		return false;
	if (e) {
		if (!e->text && !(e->text = malloc(QUOTA_RULES_SEEN_MAX)))
			die("out of memory");
		memcpy(e->text, sql, n);
		e->len = (uint32_t)n;
		e->hash = h;
	}
	return true;
}
