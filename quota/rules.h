/* A tenant's deny/allow rules, compiled for one worker thread. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cfg.h"

/*
 * Each worker compiles its own copy: glibc's regexec takes a lock inside a
 * shared pattern, and no path a query takes may wait on another thread.
 */
enum quota_rule { QUOTA_RULE_DENY, QUOTA_RULE_ALLOW, QUOTA_RULE_READ_ONLY };

/*
 * Texts that passed lately, so that a statement sent again and again (every
 * Parse of an unnamed statement, an application's fixed queries) is split and
 * matched once. Direct-mapped by hash; a hit compares the whole text.
 */
#define QUOTA_RULES_SEEN_SLOTS 32
#define QUOTA_RULES_SEEN_MAX   512   /* longer texts are judged each time */

struct quota_rules_seen {
	uint64_t hash;
	uint32_t len;                /* 0: empty slot */
	char    *text;               /* QUOTA_RULES_SEEN_MAX bytes once the slot is first used */
};

struct quota_rules {
	regex_t *deny, *allow;
	size_t   ndeny, nallow;
	size_t   nuser_deny;         /* deny[0..nuser_deny) are the tenant's, the rest read_only's */
	char    *scratch;            /* one statement at a time, NUL-terminated */
	size_t   scratch_cap;
	struct quota_rules_seen seen[QUOTA_RULES_SEEN_SLOTS];
};

/* 0, or -EINVAL when a pattern does not compile (cfg_load checked them all). */
int quota_rules_init(struct quota_rules *r, const struct cfg_tenant *t) __attribute__((warn_unused_result));
void quota_rules_free(struct quota_rules *r);
static inline bool quota_rules_any(const struct quota_rules *r) { return r->ndeny || r->nallow; }

/*
 * Whether every statement of sql[0..n) may run: none matches a deny rule and,
 * when there are allow rules, each matches one. PostgreSQL reads the text up
 * to its first NUL, and so do the rules. The text is split both with and
 * without backslash escapes (proto/sql.h) and must pass both ways: the
 * session's standard_conforming_strings may change under a pipelined SET
 * before the server reads it. On false, *stmt_out points at the first refused
 * statement (valid until the next call) and *why says which kind of rule
 * refused it.
 */
bool quota_rules_pass(struct quota_rules *r, const char *sql, size_t n, const char **stmt_out,
		      enum quota_rule *why);
