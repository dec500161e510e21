/* Unit test of quota/rules.h: deny/allow/read_only on each statement, both ways of splitting, the seen-text cache. */
#include "quota/rules.h"
#include "test/unit/check.h"

#include <stdio.h>
#include <string.h>

static bool pass(struct quota_rules *r, const char *sql, enum quota_rule *why, const char **stmt)
{
	return quota_rules_pass(r, sql, strlen(sql), stmt, why);
}

static void test_deny(void)
{
	char *deny[] = { "^\\s*(drop|truncate)\\b" };
	struct cfg_tenant t = { .name = "acme", .deny = deny, .ndeny = 1 };
	struct quota_rules r;
	CHECK(quota_rules_init(&r, &t) == 0);
	CHECK(quota_rules_any(&r));
	enum quota_rule why = QUOTA_RULE_ALLOW;
	const char *stmt = NULL;

	CHECK(pass(&r, "SELECT 1", &why, &stmt));
	CHECK(!pass(&r, "select 1; DROP TABLE t", &why, &stmt) && why == QUOTA_RULE_DENY);
	CHECK(stmt && strcmp(stmt, "DROP TABLE t") == 0);
	CHECK(!pass(&r, "/* hi */ truncate t", &why, &stmt) && why == QUOTA_RULE_DENY);
	/* Inside a string the ';' splits nothing, so no statement starts with DROP. */
	CHECK(pass(&r, "SELECT 'x; drop table t'", &why, &stmt));
	/*
	 * Split the standard way, '\'' is one string up to the last quote; with
	 * standard_conforming_strings off, \' escapes a quote, the string ends
	 * early and the DROP is a statement of its own. Refused.
	 */
	CHECK(pass(&r, "SELECT '\\''; SELECT 2; --'", &why, &stmt));
	CHECK(!pass(&r, "SELECT '\\''; DROP TABLE t; --'", &why, &stmt) && why == QUOTA_RULE_DENY);
	CHECK(stmt && strcmp(stmt, "DROP TABLE t") == 0);
	/* PostgreSQL stops at a NUL, and so do the rules. */
	CHECK(quota_rules_pass(&r, "SELECT 1\0; DROP TABLE t", 23, &stmt, &why));
	quota_rules_free(&r);
}

static void test_allow_read_only(void)
{
	char *allow[] = { "^select\\b" };
	struct cfg_tenant t = { .name = "acme", .allow = allow, .nallow = 1, .read_only = true };
	struct quota_rules r;
	CHECK(quota_rules_init(&r, &t) == 0);
	enum quota_rule why = QUOTA_RULE_DENY;
	const char *stmt = NULL;
	CHECK(pass(&r, "SELECT 1; select 2", &why, &stmt));
	CHECK(!pass(&r, "SELECT 1; UPDATE t SET a = 1", &why, &stmt) && why == QUOTA_RULE_ALLOW);
	CHECK(stmt && strcmp(stmt, "UPDATE t SET a = 1") == 0);
	/* The built-in read_only rules come before allow. */
	CHECK(!pass(&r, "select set_config('default_transaction_read_only', 'off', false)", &why, &stmt) &&
	      why == QUOTA_RULE_READ_ONLY);
	CHECK(!pass(&r, "SELECT 1; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", &why, &stmt) &&
	      why == QUOTA_RULE_READ_ONLY);
	quota_rules_free(&r);
}

static void test_seen(void)
{
	char *deny[] = { "drop" };
	struct cfg_tenant t = { .name = "acme", .deny = deny, .ndeny = 1 };
	struct quota_rules r;
	CHECK(quota_rules_init(&r, &t) == 0);
	enum quota_rule why;
	const char *stmt;
	char sql[QUOTA_RULES_SEEN_MAX + 2];

	/* A passed text is remembered; a text refused is never, however often it comes. */
	for (int i = 0; i < 3; i++) {
		CHECK(pass(&r, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", &why, &stmt));
		CHECK(!pass(&r, "DROP TABLE pgbench_accounts", &why, &stmt));
	}
	size_t used = 0;
	for (size_t i = 0; i < QUOTA_RULES_SEEN_SLOTS; i++)
		used += r.seen[i].len != 0;
	CHECK(used == 1);

	/* Many texts evict one another, and the verdict of each stays its own. */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 200; i++) {
			snprintf(sql, sizeof sql, "SELECT %d", i);
			CHECK(pass(&r, sql, &why, &stmt));
			snprintf(sql, sizeof sql, "SELECT %d; drop table t%d", i, i);
			CHECK(!pass(&r, sql, &why, &stmt));
		}
	}

	/* Same length and a prefix of a remembered one: judged on its own. */
	CHECK(pass(&r, "SELECT 1234567", &why, &stmt));
	CHECK(!pass(&r, "DROP 123456789", &why, &stmt));
	/* A remembered text cut at a NUL is the shorter text. */
	CHECK(pass(&r, "SELECT 1", &why, &stmt));
	CHECK(!quota_rules_pass(&r, "drop\0SELECT 1", 13, &stmt, &why));
	/* What is remembered is the text up to the NUL, never the bytes past it. */
	for (size_t i = 0; i < QUOTA_RULES_SEEN_SLOTS; i++)
		r.seen[i].len = 0;   /* forget, keeping the slots' buffers */
	CHECK(quota_rules_pass(&r, "SELECT 9\0; drop t", 17, &stmt, &why));
	used = 0;
	for (size_t i = 0; i < QUOTA_RULES_SEEN_SLOTS; i++) {
		CHECK(r.seen[i].len != 17);
		used += r.seen[i].len == 8 && memcmp(r.seen[i].text, "SELECT 9", 8) == 0;
	}
	CHECK(used == 1);

	/* Texts past the cache's limit are judged each time, and right. */
	memset(sql, ' ', sizeof sql - 1);
	sql[sizeof sql - 1] = 0;
	memcpy(sql, "SELECT 1", 8);
	CHECK(pass(&r, sql, &why, &stmt) && pass(&r, sql, &why, &stmt));
	memcpy(sql + sizeof sql - 6, "drop", 4);
	CHECK(!pass(&r, sql, &why, &stmt));
	quota_rules_free(&r);
}

int main(void)
{
	test_deny();
	test_allow_read_only();
	test_seen();
	return check_summary();
}
