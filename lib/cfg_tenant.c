/* The tenants: section of the configuration (members, limits, budgets, statement filters) and finding a client's tenant. */
#include "lib/cfg.h"
#include "lib/cfg_internal.h"

#include <stddef.h>
#include <string.h>

#define POSITIVE_DURATION "a positive duration like 30s, 500ms, 5m, 1h, 2d or a number of seconds"
#define POSITIVE_SIZE     "a positive size like 64KB, 100MB, 10GB or a number of bytes"

static const char *const rate_action_names[] = { [CFG_RATE_DELAY] = "delay", [CFG_RATE_REJECT] = "reject" };
static const char *const metric_names[] = {
	[CFG_METRIC_QUERIES] = "queries", [CFG_METRIC_BYTES_OUT] = "bytes_out",
	[CFG_METRIC_ROWS] = "rows", [CFG_METRIC_SERVER_TIME] = "server_time",
};
static const char *const window_names[] = {
	[CFG_WINDOW_MINUTE] = "minute", [CFG_WINDOW_HOUR] = "hour", [CFG_WINDOW_DAY] = "day",
};
/* YAML 1.2's core schema spellings; yes/no/on/off are strings there, and surprising ones. */
static const char *const bool_names[] = { "false", "False", "FALSE", "true", "True", "TRUE" };

int cfg_regcomp(regex_t *re, const char *pattern)
{
	return regcomp(re, pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB);
}

/* The tenant whose users (user) or databases (!user) list name, or NULL. */
static const struct cfg_tenant *listing(const struct cfg *c, const char *name, bool user)
{
	for (size_t i = 0; i < c->ntenants; i++) {
		const struct cfg_tenant *t = &c->tenants[i];
		char *const *names = user ? t->users : t->databases;
		size_t n = user ? t->nusers : t->ndatabases;

		for (size_t j = 0; j < n; j++)
			if (!strcmp(names[j], name))
				return t;
	}
	return NULL;
}

const struct cfg_tenant *cfg_find_tenant(const struct cfg *c, const char *user, const char *db)
{
	const struct cfg_tenant *t = user ? listing(c, user, true) : NULL;

	return t || !db ? t : listing(c, db, false);
}

P_ENUM(p_rate_action, enum cfg_rate_action, rate_action_names)
P_ENUM(p_metric, int, metric_names)
P_ENUM(p_window, int, window_names)

static void p_bool(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	int i = cfg_p_enum(x, k, v, bool_names, sizeof(bool_names) / sizeof(bool_names[0]));

	if (i >= 0)
		*(bool *)field = i >= 3;
}

static void p_count64(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	uint64_t n = 0;

	cfg_p_uint(x, k, v, 1, UINT64_MAX, &n);
	if (n)
		*(uint64_t *)field = n;
}

/* A tenant's limits are 0 when absent, so a written 0 would silently mean "none": refused. */
static void p_duration(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	char *s = cfg_text(x, k, v);
	uint64_t ms;

	if (s && (cfg_parse_duration(s, &ms) || ms == 0))
		cfg_bad(x, k, v, s);
	else if (s)
		*(uint64_t *)field = ms;
	free(s);
}

static void p_size(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	char *s = cfg_text(x, k, v);
	uint64_t bytes;

	if (s && (cfg_parse_size(s, &bytes) || bytes == 0))
		cfg_bad(x, k, v, s);
	else if (s)
		*(uint64_t *)field = bytes;
	free(s);
}

typedef bool vet_fn(struct ctx *x, const struct key *k, const yaml_node_t *item, const char *s);

/* A list of strings (one string is a list of one) into *list; vet may refuse an item after reporting it. */
static void p_strings(struct ctx *x, const struct key *k, const yaml_node_t *v, char ***list, size_t *n,
		      vet_fn *vet)
{
	size_t len = list_len(v);

	if (v->type == YAML_MAPPING_NODE) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	*list = cfg_xcalloc(len, sizeof(**list));
	for (size_t i = 0; i < len; i++) {
		const yaml_node_t *item = list_item(x, v, i);
		char *s = NULL;

		cfg_p_str(x, k, item, &s);
		if (s && !vet(x, k, item, s)) {
			free(s);
			s = NULL;
		}
		if (s)
			(*list)[(*n)++] = s;
	}
}

/*
 * A client belongs to one tenant, so a name may be listed only once in all
 * tenants; the tenant being parsed is already in c->tenants, with the items
 * accepted so far.
 */
static bool unclaimed(struct ctx *x, const yaml_node_t *item, const char *s, bool user)
{
	const struct cfg_tenant *t = listing(x->c, s, user);

	if (t)
		cfg_report(x, item->start_mark, "%s '%s' is already in tenant '%s'", user ? "user" : "database", s,
			   t->name);
	return !t;
}

static bool vet_user(struct ctx *x, const struct key *k, const yaml_node_t *item, const char *s)
{
	(void)k;
	return unclaimed(x, item, s, true);
}

static bool vet_database(struct ctx *x, const struct key *k, const yaml_node_t *item, const char *s)
{
	(void)k;
	return unclaimed(x, item, s, false);
}

static bool vet_pattern(struct ctx *x, const struct key *k, const yaml_node_t *item, const char *s)
{
	regex_t re;
	char why[256];
	int err = cfg_regcomp(&re, s);

	if (!err) {
		regfree(&re);
		return true;
	}
	regerror(err, &re, why, sizeof(why));
	cfg_report(x, item->start_mark, "'%s' entry '%s' is not a valid regular expression: %s", k->name, s, why);
	return false;
}

static void p_users(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg_tenant *t = field;

	p_strings(x, k, v, &t->users, &t->nusers, vet_user);
}

static void p_databases(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg_tenant *t = field;

	p_strings(x, k, v, &t->databases, &t->ndatabases, vet_database);
}

static void p_deny(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg_tenant *t = field;

	p_strings(x, k, v, &t->deny, &t->ndeny, vet_pattern);
}

static void p_allow(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg_tenant *t = field;

	p_strings(x, k, v, &t->allow, &t->nallow, vet_pattern);
}

/* A budget as written; its limit is read once the metric says whether it is a count, a size or a duration. */
struct budget_in {
	int metric, per;            /* -1 until parsed */
	const yaml_node_t *limit;
};

static void p_node(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	(void)x;
	(void)k;
	*(const yaml_node_t **)field = v;
}

static const struct key budget_keys[] = {
	{ .name = "metric", .parse = p_metric, .off = offsetof(struct budget_in, metric), .flags = K_REQUIRED,
	  .expect = "one of queries, bytes_out, rows, server_time" },
	{ .name = "limit", .parse = p_node, .off = offsetof(struct budget_in, limit), .flags = K_REQUIRED },
	{ .name = "per", .parse = p_window, .off = offsetof(struct budget_in, per), .flags = K_REQUIRED,
	  .expect = "one of minute, hour, day" },
};
static const struct section budget_section = SECTION(budget_keys);

/* Reads the limit of a budget of metric m into *limit (server time in microseconds); false after reporting. */
static bool budget_limit(struct ctx *x, enum cfg_metric m, const yaml_node_t *v, uint64_t *limit)
{
	static const struct key keys[] = {
		[CFG_METRIC_QUERIES] = { .name = "limit", .expect = "a positive integer for metric queries" },
		[CFG_METRIC_BYTES_OUT] = { .name = "limit", .expect = POSITIVE_SIZE " for metric bytes_out" },
		[CFG_METRIC_ROWS] = { .name = "limit", .expect = "a positive integer for metric rows" },
		[CFG_METRIC_SERVER_TIME] = { .name = "limit", .expect = POSITIVE_DURATION " for metric server_time" },
	};
	const struct key *k = &keys[m];
	char *s = cfg_text(x, k, v);
	uint64_t n = 0;
	bool ok = false;

	if (!s)
		return false;
	switch (m) {
	case CFG_METRIC_QUERIES:
	case CFG_METRIC_ROWS:
		ok = !cfg_parse_uint(s, 1, UINT64_MAX, &n);
		break;
	case CFG_METRIC_BYTES_OUT:
		ok = !cfg_parse_size(s, &n) && n > 0;
		break;
	case CFG_METRIC_SERVER_TIME:
		ok = !cfg_parse_duration(s, &n) && n > 0 && n <= UINT64_MAX / 1000;
		n *= 1000;
		break;
	}
	if (ok)
		*limit = n;
	else
		cfg_bad(x, k, v, s);
	free(s);
	return ok;
}

static void p_budgets(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg_tenant *t = field;
	size_t n = list_len(v);
	yaml_mark_t *marks;

	if (v->type != YAML_SEQUENCE_NODE) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	t->budgets = cfg_xcalloc(n, sizeof(*t->budgets));
	/* Where each kept budget is written, to point a duplicate at the first. */
	marks = cfg_xcalloc(n, sizeof(*marks));
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *item = list_item(x, v, i);
		struct budget_in in = { .metric = -1, .per = -1 };
		struct cfg_budget b;
		size_t j;

		if (item->type != YAML_MAPPING_NODE) {
			cfg_bad(x, k, item, NULL);
			continue;
		}
		cfg_parse_map(x, item, &budget_section, &in, "budget", NULL);
		if (in.metric < 0 || in.per < 0 || !in.limit)
			continue;
		b = (struct cfg_budget){ .metric = (enum cfg_metric)in.metric, .per = (enum cfg_window)in.per };
		if (!budget_limit(x, b.metric, in.limit, &b.limit))
			continue;
		for (j = 0; j < t->nbudgets && (t->budgets[j].metric != b.metric || t->budgets[j].per != b.per); j++)
			;
		if (j < t->nbudgets) {
			cfg_report(x, item->start_mark, "duplicate budget for %s per %s (first at line %zu)",
				   metric_names[b.metric], window_names[b.per], marks[j].line + 1);
			continue;
		}
		marks[t->nbudgets] = item->start_mark;
		t->budgets[t->nbudgets++] = b;
	}
	free(marks);
}

#define COUNT(field) \
	{ .name = #field, .parse = cfg_p_count, .off = offsetof(struct cfg_tenant, field), .expect = "a positive integer" }
#define DURATION(field) \
	{ .name = #field, .parse = p_duration, .off = offsetof(struct cfg_tenant, field), .expect = POSITIVE_DURATION }

/* Parsers without an offset fill a list and its length, so they get the whole struct cfg_tenant. */
static const struct key tenant_keys[] = {
	{ .name = "users", .parse = p_users, .flags = K_NONEMPTY, .expect = "a list of user names" },
	{ .name = "databases", .parse = p_databases, .flags = K_NONEMPTY, .expect = "a list of database names" },
	COUNT(max_client_connections),
	COUNT(max_server_connections),
	COUNT(queries_per_second),
	COUNT(burst),
	{ .name = "rate_limit_action", .parse = p_rate_action, .off = offsetof(struct cfg_tenant, rate_limit_action),
	  .expect = "one of delay, reject" },
	DURATION(max_delay),
	DURATION(query_timeout),
	DURATION(idle_transaction_timeout),
	{ .name = "max_rows", .parse = p_count64, .off = offsetof(struct cfg_tenant, max_rows),
	  .expect = "a positive integer" },
	{ .name = "max_result_bytes", .parse = p_size, .off = offsetof(struct cfg_tenant, max_result_bytes),
	  .expect = POSITIVE_SIZE },
	{ .name = "budgets", .parse = p_budgets,
	  .expect = "a list of { metric: queries|bytes_out|rows|server_time, limit: ..., per: minute|hour|day }" },
	{ .name = "deny", .parse = p_deny, .flags = K_NONEMPTY, .expect = "a list of regular expressions" },
	{ .name = "allow", .parse = p_allow, .flags = K_NONEMPTY, .expect = "a list of regular expressions" },
	{ .name = "read_only", .parse = p_bool, .off = offsetof(struct cfg_tenant, read_only), .expect = "true or false" },
};
static const struct section tenant_section = SECTION(tenant_keys);
_Static_assert(sizeof(tenant_keys) / sizeof(tenant_keys[0]) <= 64, "parse_map tracks seen keys in 64 bits");

/* Whether key name of mapping m is absent or an empty list; a bad value has been reported already. */
static bool lists_nobody(struct ctx *x, const yaml_node_t *m, const char *name)
{
	const yaml_node_t *v = cfg_map_get(x, m, name);

	return !v || (v->type == YAML_SEQUENCE_NODE && list_len(v) == 0);
}

/* Checks across the keys of tenant t, written as mapping val under key; fills burst's default. */
static void tenant_finish(struct ctx *x, struct cfg_tenant *t, const yaml_node_t *key, const yaml_node_t *val)
{
	const yaml_node_t *burst = cfg_map_get(x, val, "burst");

	if (burst && !cfg_map_get(x, val, "queries_per_second"))
		cfg_report(x, burst->start_mark, "'burst' needs 'queries_per_second'");
	if (!t->burst)
		t->burst = t->queries_per_second;
	if (lists_nobody(x, val, "users") && lists_nobody(x, val, "databases"))
		cfg_report(x, key->start_mark, "tenant '%s' needs 'users' or 'databases', or it matches no client",
			   t->name);
}

void cfg_p_tenants(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg *c = field;

	if (v->type != YAML_MAPPING_NODE) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	c->tenants = cfg_xcalloc(npairs(v), sizeof(*c->tenants));
	for (const yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		const char *name = cfg_key_name(x, v, p);
		const yaml_node_t *val = node(x, p->value);
		struct cfg_tenant *t = &c->tenants[c->ntenants];

		if (!name)
			continue;
		t->name = cfg_xstrdup(name);
		t->rate_limit_action = CFG_RATE_DELAY;
		t->max_delay = 1000;
		/* Counted before its lists are parsed, so a name it lists twice is caught too. */
		c->ntenants++;
		cfg_parse_entry(x, p, &tenant_section, t, "tenant");
		if (val->type == YAML_MAPPING_NODE)
			tenant_finish(x, t, node(x, p->key), val);
	}
}

static void strings_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void cfg_tenants_free(struct cfg *c)
{
	for (size_t i = 0; i < c->ntenants; i++) {
		struct cfg_tenant *t = &c->tenants[i];

		free(t->name);
		strings_free(t->users, t->nusers);
		strings_free(t->databases, t->ndatabases);
		free(t->budgets);
		strings_free(t->deny, t->ndeny);
		strings_free(t->allow, t->nallow);
	}
	free(c->tenants);
	c->tenants = NULL;
	c->ntenants = 0;
}
