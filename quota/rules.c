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

int quota_rules_init(struct quota_rules *r, const struct cfg_tenant *t)
{
	memset(r, 0, sizeof *r);
	if (compile_all(&r->deny, &r->ndeny, t->deny, t->ndeny) < 0)
		return -EINVAL;
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
	memset(r, 0, sizeof *r);
}

static bool matches_any(const regex_t *v, size_t n, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (regexec(&v[i], text, 0, NULL, 0) == 0)
			return true;
	return false;
}

bool quota_rules_pass(struct quota_rules *r, const char *sql, size_t n, unsigned sql_flags,
		      const char **stmt_out, bool *deny)
{
	n = strnlen(sql, n);
	if (r->scratch_cap < n + 1) {
		free(r->scratch);
		r->scratch = malloc(n + 1);
		if (!r->scratch)
			die("out of memory");
		r->scratch_cap = n + 1;
	}
	size_t off = 0;
	while (sql_next(sql, n, &off, r->scratch, sql_flags) >= 0) {
		bool denied = matches_any(r->deny, r->ndeny, r->scratch);
		if (denied || (r->nallow && !matches_any(r->allow, r->nallow, r->scratch))) {
			*stmt_out = r->scratch;
			*deny = denied;
			return false;
		}
	}
	return true;
}
