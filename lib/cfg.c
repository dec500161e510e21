/* Loading the YAML configuration into struct cfg, reporting every problem as file:line:col, and look-ups in it. */
#include "lib/cfg.h"
#include "lib/cfg_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#define CFG_MAX_WORKERS      256
#define CFG_DEFAULT_LISTEN   "127.0.0.1"
#define CFG_DEFAULT_PORT     5432
#define CFG_DEFAULT_POOLSIZE 20
#define CFG_DEFAULT_CLIENTS  10000

#define CFG_DURATION_EXPECT "a duration like 30s, 500ms, 5m, 1h, 2d or a number of seconds"

void *cfg_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		cfg_oom();
	return p;
}

void *cfg_xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (!p)
		cfg_oom();
	return p;
}

char *cfg_xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		cfg_oom();
	return d;
}

static char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);

	if (!d)
		cfg_oom();
	return d;
}

__attribute__((format(printf, 1, 0)))
static char *xvasprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *s;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		cfg_oom();
	s = cfg_xcalloc(1, (size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

__attribute__((format(printf, 2, 3)))
static void errs_add(struct cfg_errors *errs, const char *fmt, ...)
{
	va_list ap;

	errs->msg = cfg_xrealloc(errs->msg, (errs->n + 1) * sizeof(*errs->msg));
	va_start(ap, fmt);
	errs->msg[errs->n++] = xvasprintf(fmt, ap);
	va_end(ap);
}

/* One problem, kept with its position so the list can be sorted into file order before it is handed out. */
struct diag {
	size_t line, col;
	char *msg;
};

/* A user name that must appear under users:, checked once the whole file has been read. */
struct ref {
	const char *user;   /* points into the cfg being built */
	const char *db;     /* NULL for an admin user */
	yaml_mark_t mark;
};

void cfg_report(struct ctx *x, yaml_mark_t m, const char *fmt, ...)
{
	va_list ap;

	x->diag = cfg_xrealloc(x->diag, (x->ndiag + 1) * sizeof(*x->diag));
	va_start(ap, fmt);
	x->diag[x->ndiag++] = (struct diag){ m.line + 1, m.column + 1, xvasprintf(fmt, ap) };
	va_end(ap);
}

/* Moves the diagnostics to errs in file order; insertion sort keeps same-position ones in discovery order. */
static void flush(struct ctx *x, struct cfg_errors *errs)
{
	for (size_t i = 1; i < x->ndiag; i++) {
		struct diag d = x->diag[i];
		size_t j = i;

		for (; j > 0 && (x->diag[j - 1].line > d.line ||
				 (x->diag[j - 1].line == d.line && x->diag[j - 1].col > d.col)); j--)
			x->diag[j] = x->diag[j - 1];
		x->diag[j] = d;
	}
	for (size_t i = 0; i < x->ndiag; i++) {
		errs_add(errs, "%s:%zu:%zu: %s", x->path, x->diag[i].line, x->diag[i].col, x->diag[i].msg);
		free(x->diag[i].msg);
	}
	free(x->diag);
	x->diag = NULL;
	x->ndiag = 0;
}

static const char *const auth_names[] = {
	[CFG_AUTH_TRUST] = "trust", [CFG_AUTH_PASSWORD] = "password",
	[CFG_AUTH_MD5] = "md5", [CFG_AUTH_SCRAM] = "scram-sha-256",
};
static const char *const level_names[] = {
	[CFG_LOG_DEBUG] = "debug", [CFG_LOG_INFO] = "info", [CFG_LOG_WARN] = "warn", [CFG_LOG_ERROR] = "error",
};
static const char *const pool_mode_names[] = {
	[CFG_POOL_SESSION] = "session", [CFG_POOL_TRANSACTION] = "transaction",
};

const char *cfg_auth_name(enum cfg_auth a)
{
	return (unsigned)a < sizeof(auth_names) / sizeof(auth_names[0]) ? auth_names[a] : "?";
}

static uint32_t online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > CFG_MAX_WORKERS ? CFG_MAX_WORKERS : (uint32_t)n;
}

/* ---- Walking the YAML document ---- */

void cfg_bad(struct ctx *x, const struct key *k, const yaml_node_t *v, const char *text)
{
	if (text)
		cfg_report(x, v->start_mark, "'%s' must be %s, not '%s'", k->name, k->expect, text);
	else
		cfg_report(x, v->start_mark, "'%s' must be %s", k->name, k->expect);
}

static bool is_var_char(char c, bool first)
{
	return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

/*
 * The value of the ${NAME} starting at *s, which is moved past it. NULL after
 * reporting a malformed reference or an unset variable.
 */
static const char *env_ref(struct ctx *x, yaml_mark_t m, const char **s)
{
	const char *name = *s + 2, *end = strchr(name, '}'), *val;
	size_t len = end ? (size_t)(end - name) : 0;
	bool valid = len > 0 && is_var_char(name[0], true);
	char *var;

	for (size_t i = 1; valid && i < len; i++)
		valid = is_var_char(name[i], false);
	if (!end) {
		cfg_report(x, m, "unterminated '${' (write '$${' for a literal '${')");
		*s += strlen(*s);
		return NULL;
	}
	*s = end + 1;
	if (!valid) {
		cfg_report(x, m, "invalid environment variable name '%.*s'", (int)len, name);
		return NULL;
	}
	var = xstrndup(name, len);
	val = getenv(var);
	if (!val)
		cfg_report(x, m, "environment variable '%s' is not set", var);
	free(var);
	return val;
}

/* Replaces each ${NAME} by its environment value; "$${" stands for a literal "${". NULL after reporting. */
static char *interpolate(struct ctx *x, yaml_mark_t m, const char *s)
{
	size_t cap = strlen(s) + 1, len = 0;
	char *out = cfg_xcalloc(1, cap);
	bool ok = true;

	while (*s) {
		const char *add = s;
		size_t n = 1;

		if (!strncmp(s, "$${", 3)) {
			add = "${";
			n = 2;
			s += 3;
		} else if (!strncmp(s, "${", 2)) {
			add = env_ref(x, m, &s);
			/* Keep going: every unset variable in the value gets its own error. */
			ok = ok && add;
			n = add ? strlen(add) : 0;
		} else {
			s++;
		}
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out = cfg_xrealloc(out, cap);
		}
		if (n)
			memcpy(out + len, add, n);
		len += n;
		out[len] = '\0';
	}
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

char *cfg_text(struct ctx *x, const struct key *k, const yaml_node_t *v)
{
	if (v->type != YAML_SCALAR_NODE || is_null(v) || has_nul(v)) {
		cfg_bad(x, k, v, NULL);
		return NULL;
	}
	return interpolate(x, v->start_mark, sval(v));
}

const char *cfg_key_name(struct ctx *x, const yaml_node_t *map, const yaml_node_pair_t *p)
{
	const yaml_node_t *k = node(x, p->key);

	if (k->type != YAML_SCALAR_NODE || !k->data.scalar.length || has_nul(k)) {
		cfg_report(x, k->start_mark, "keys must be non-empty strings");
		return NULL;
	}
	/* libyaml keeps repeated keys; quadratic is fine for hand-written files. */
	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
		const yaml_node_t *o = node(x, q->key);

		if (o->type == YAML_SCALAR_NODE && !strcmp(sval(o), sval(k))) {
			cfg_report(x, k->start_mark, "duplicate key '%s' (first at line %zu)", sval(k),
				   o->start_mark.line + 1);
			return NULL;
		}
	}
	return sval(k);
}

void cfg_parse_map(struct ctx *x, const yaml_node_t *map, const struct section *s, void *base,
		      const char *kind, const yaml_node_t *owner)
{
	uint64_t seen = 0;

	for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *name = cfg_key_name(x, map, p);
		size_t i;

		if (!name)
			continue;
		for (i = 0; i < s->n && strcmp(s->keys[i].name, name); i++)
			;
		if (i == s->n) {
			cfg_report(x, node(x, p->key)->start_mark, "unknown key '%s'", name);
			continue;
		}
		seen |= 1ull << i;
		s->keys[i].parse(x, &s->keys[i], node(x, p->value), (char *)base + s->keys[i].off);
	}
	for (size_t i = 0; i < s->n; i++) {
		if (!(s->keys[i].flags & K_REQUIRED) || (seen & (1ull << i)))
			continue;
		if (owner)
			cfg_report(x, owner->start_mark, "%s '%s' needs '%s'", kind, sval(owner), s->keys[i].name);
		else
			cfg_report(x, map->start_mark, "%s needs '%s'", kind, s->keys[i].name);
	}
}

void cfg_p_str(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	char **dst = field, *s;

	if ((k->flags & K_NULLABLE) && is_null(v))
		return;
	s = cfg_text(x, k, v);
	if (s && (k->flags & K_NONEMPTY) && !*s) {
		cfg_bad(x, k, v, s);
		free(s);
		return;
	}
	if (s) {
		free(*dst);
		*dst = s;
	}
}

/* Never echoes the value: it is a password. */
static void p_secret(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	const char *why;

	cfg_p_str(x, k, v, field);
	if (*(char **)field && cfg_check_secret(*(char **)field, &why))
		cfg_report(x, v->start_mark, "'%s' %s", k->name, why);
}

void cfg_p_uint(struct ctx *x, const struct key *k, const yaml_node_t *v, uint64_t min, uint64_t max,
		   uint64_t *n)
{
	char *s = cfg_text(x, k, v);

	if (s && cfg_parse_uint(s, min, max, n))
		cfg_bad(x, k, v, s);
	free(s);
}

void cfg_p_count(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	uint64_t n = 0;

	cfg_p_uint(x, k, v, 1, UINT32_MAX, &n);
	if (n)
		*(uint32_t *)field = (uint32_t)n;
}

static void p_port(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	uint64_t n = 0;

	cfg_p_uint(x, k, v, 1, 65535, &n);
	if (n)
		*(uint16_t *)field = (uint16_t)n;
}

static void p_workers(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	char *s = cfg_text(x, k, v);
	uint64_t n;

	if (s && !strcmp(s, "auto"))
		*(uint32_t *)field = online_cpus();
	else if (s && cfg_parse_uint(s, 1, CFG_MAX_WORKERS, &n))
		cfg_bad(x, k, v, s);
	else if (s)
		*(uint32_t *)field = (uint32_t)n;
	free(s);
}

static void p_duration(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	char *s = cfg_text(x, k, v);

	if (s && cfg_parse_duration(s, field))
		cfg_bad(x, k, v, s);
	free(s);
}

int cfg_p_enum(struct ctx *x, const struct key *k, const yaml_node_t *v, const char *const *names, size_t n)
{
	char *s = cfg_text(x, k, v);
	int r = -1;

	for (size_t i = 0; s && i < n && r < 0; i++)
		if (!strcmp(s, names[i]))
			r = (int)i;
	if (s && r < 0)
		cfg_bad(x, k, v, s);
	free(s);
	return r;
}

P_ENUM(p_log_level, enum cfg_log_level, level_names)
P_ENUM(p_auth_method, enum cfg_auth, auth_names)
P_ENUM(p_pool_mode, enum cfg_pool_mode, pool_mode_names)

static void p_section(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	if (v->type != YAML_MAPPING_NODE) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	cfg_parse_map(x, v, k->sub, field, k->name, NULL);
}

static void p_listen(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg *c = field;
	size_t n = list_len(v);

	if (v->type == YAML_MAPPING_NODE || n == 0) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	c->listen = cfg_xcalloc(n, sizeof(*c->listen));
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *item = list_item(x, v, i);
		char *s = cfg_text(x, k, item);
		const char *why;

		if (s && cfg_parse_listen(s, &c->listen[c->nlisten], &why))
			cfg_report(x, item->start_mark, "'%s' entry '%s' %s", k->name, s, why);
		else if (s)
			c->nlisten++;
		free(s);
	}
}

static void add_ref(struct ctx *x, const char *user, const char *db, yaml_mark_t m)
{
	x->refs = cfg_xrealloc(x->refs, (x->nrefs + 1) * sizeof(*x->refs));
	x->refs[x->nrefs++] = (struct ref){ user, db, m };
}

static void p_admin_users(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg *c = field;
	size_t n = list_len(v);

	if (v->type == YAML_MAPPING_NODE) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	c->admin_users = cfg_xcalloc(n, sizeof(*c->admin_users));
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *item = list_item(x, v, i);
		char *s = NULL;

		cfg_p_str(x, k, item, &s);
		if (s) {
			c->admin_users[c->nadmin_users++] = s;
			add_ref(x, s, NULL, item->start_mark);
		}
	}
}

static const char *const default_track_parameters[] = {
	"client_encoding", "DateStyle", "IntervalStyle", "TimeZone",
	"standard_conforming_strings", "application_name", "search_path",
};

static void track_parameters_free(struct cfg *c)
{
	for (size_t i = 0; i < c->ntrack_parameters; i++)
		free(c->track_parameters[i]);
	free(c->track_parameters);
	c->track_parameters = NULL;
	c->ntrack_parameters = 0;
}

static bool is_parameter_name(const char *s)
{
	if (!*s || (!isalpha((unsigned char)*s) && *s != '_'))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.')
			return false;
	return true;
}

static void p_track_parameters(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg *c = field;
	size_t n = list_len(v);

	if (v->type == YAML_MAPPING_NODE) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	track_parameters_free(c);
	c->track_parameters = cfg_xcalloc(n ? n : 1, sizeof(*c->track_parameters));
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *item = list_item(x, v, i);
		char *name = NULL;

		cfg_p_str(x, k, item, &name);
		if (name && !is_parameter_name(name)) {
			cfg_bad(x, k, item, "a parameter name such as TimeZone");
			free(name);
			name = NULL;
		}
		if (name)
			c->track_parameters[c->ntrack_parameters++] = name;
	}
}

static const struct key user_keys[] = {
	{ .name = "password", .parse = p_secret, .off = offsetof(struct cfg_user, password), .flags = K_REQUIRED,
	  .expect = "a string: a password, an md5 secret or a SCRAM secret" },
};
static const struct section user_section = SECTION(user_keys);

static const struct key db_keys[] = {
	{ .name = "host", .parse = cfg_p_str, .off = offsetof(struct cfg_db, host), .flags = K_REQUIRED | K_NONEMPTY,
	  .expect = "a host name, an address or a socket directory" },
	{ .name = "port", .parse = p_port, .off = offsetof(struct cfg_db, port),
	  .expect = "a port number (1-65535)" },
	{ .name = "dbname", .parse = cfg_p_str, .off = offsetof(struct cfg_db, dbname), .flags = K_NULLABLE | K_NONEMPTY,
	  .expect = "a database name" },
	{ .name = "user", .parse = cfg_p_str, .off = offsetof(struct cfg_db, user), .flags = K_NULLABLE | K_NONEMPTY,
	  .expect = "a user name" },
	{ .name = "password", .parse = cfg_p_str, .off = offsetof(struct cfg_db, password), .flags = K_NULLABLE,
	  .expect = "a string" },
	{ .name = "pool_mode", .parse = p_pool_mode, .off = offsetof(struct cfg_db, pool_mode),
	  .expect = "one of session, transaction" },
	{ .name = "pool_size", .parse = cfg_p_count, .off = offsetof(struct cfg_db, pool_size),
	  .expect = "a positive integer" },
};
static const struct section db_section = SECTION(db_keys);

void cfg_parse_entry(struct ctx *x, const yaml_node_pair_t *p, const struct section *s, void *base,
			const char *kind)
{
	const yaml_node_t *k = node(x, p->key), *v = node(x, p->value);

	if (v->type != YAML_MAPPING_NODE) {
		cfg_report(x, v->start_mark, "%s '%s' must be a mapping of keys like '%s'", kind, sval(k), s->keys[0].name);
		return;
	}
	cfg_parse_map(x, v, s, base, kind, k);
}

static void p_users(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg *c = field;

	if (v->type != YAML_MAPPING_NODE) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	c->users = cfg_xcalloc(npairs(v), sizeof(*c->users));
	for (const yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		const char *name = cfg_key_name(x, v, p);
		struct cfg_user *u = &c->users[c->nusers];

		if (!name)
			continue;
		u->name = cfg_xstrdup(name);
		c->nusers++;
		cfg_parse_entry(x, p, &user_section, u, "user");
	}
}

const yaml_node_t *cfg_map_get(struct ctx *x, const yaml_node_t *m, const char *name)
{
	for (const yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node(x, p->key);

		if (k->type == YAML_SCALAR_NODE && !strcmp(sval(k), name))
			return node(x, p->value);
	}
	return NULL;
}

static void p_databases(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field)
{
	struct cfg *c = field;

	if (v->type != YAML_MAPPING_NODE || npairs(v) == 0) {
		cfg_bad(x, k, v, NULL);
		return;
	}
	c->dbs = cfg_xcalloc(npairs(v), sizeof(*c->dbs));
	for (const yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		const char *name = cfg_key_name(x, v, p);
		const yaml_node_t *val = node(x, p->value);
		struct cfg_db *db = &c->dbs[c->ndbs];

		if (!name)
			continue;
		db->name = cfg_xstrdup(name);
		db->port = CFG_DEFAULT_PORT;
		db->pool_mode = CFG_POOL_SESSION;
		db->pool_size = CFG_DEFAULT_POOLSIZE;
		c->ndbs++;
		cfg_parse_entry(x, p, &db_section, db, "database");
		if (db->host && db->host[0] == '/' && strlen(db->host) > CFG_SOCKET_DIR_MAX)
			cfg_report(x, cfg_map_get(x, val, "host")->start_mark,
				   "'host' is a directory too long for a socket path");
		/* The proxy can only log in as a configured user whose password it knows. */
		if (db->user && !db->password)
			add_ref(x, db->user, db->name, cfg_map_get(x, val, "user")->start_mark);
	}
}

static const struct key log_keys[] = {
	{ .name = "level", .parse = p_log_level, .off = offsetof(struct cfg, log_level),
	  .expect = "one of debug, info, warn, error" },
};
static const struct section log_section = SECTION(log_keys);

static const struct key auth_keys[] = {
	{ .name = "method", .parse = p_auth_method, .off = offsetof(struct cfg, auth_method),
	  .expect = "one of trust, password, md5, scram-sha-256" },
};
static const struct section auth_section = SECTION(auth_keys);

static const struct key admin_keys[] = {
	{ .name = "users", .parse = p_admin_users, .flags = K_NONEMPTY, .expect = "a list of user names" },
};
static const struct section admin_section = SECTION(admin_keys);

static const struct key quota_keys[] = {
	{ .name = "state_file", .parse = cfg_p_str, .off = offsetof(struct cfg, quota_state_file), .flags = K_NONEMPTY,
	  .expect = "a file name" },
	{ .name = "log_interval", .parse = p_duration, .off = offsetof(struct cfg, quota_log_interval),
	  .expect = CFG_DURATION_EXPECT },
};
static const struct section quota_section = SECTION(quota_keys);

#define DURATION(key) \
	{ .name = #key, .parse = p_duration, .off = offsetof(struct cfg, key), .expect = CFG_DURATION_EXPECT }

/* Parsers without an offset fill several fields of struct cfg, so they get all of it. */
static const struct key top_keys[] = {
	{ .name = "listen", .parse = p_listen,
	  .expect = "an address or a list of addresses (host:port, [v6addr]:port, unix:/dir[:port])" },
	{ .name = "workers", .parse = p_workers, .off = offsetof(struct cfg, workers),
	  .expect = "a positive integer or auto (at most 256)" },
	{ .name = "max_client_connections", .parse = cfg_p_count, .off = offsetof(struct cfg, max_client_connections),
	  .expect = "a positive integer" },
	{ .name = "log", .parse = p_section, .sub = &log_section, .expect = "a mapping like { level: info }" },
	{ .name = "auth", .parse = p_section, .sub = &auth_section,
	  .expect = "a mapping like { method: scram-sha-256 }" },
	{ .name = "admin", .parse = p_section, .sub = &admin_section, .expect = "a mapping like { users: [admin] }" },
	{ .name = "users", .parse = p_users, .expect = "a mapping of user names to { password: ... }" },
	{ .name = "databases", .parse = p_databases, .flags = K_REQUIRED,
	  .expect = "a mapping of at least one database name to { host: ..., ... }" },
	DURATION(client_login_timeout),
	DURATION(query_wait_timeout),
	DURATION(server_connect_timeout),
	DURATION(server_login_retry),
	DURATION(server_idle_timeout),
	DURATION(server_lifetime),
	DURATION(shutdown_timeout),
	{ .name = "server_reset_query", .parse = cfg_p_str, .off = offsetof(struct cfg, server_reset_query),
	  .expect = "a string (\"\" disables it)" },
	{ .name = "max_prepared_statements", .parse = cfg_p_count,
	  .off = offsetof(struct cfg, max_prepared_statements), .expect = "a positive integer" },
	{ .name = "track_parameters", .parse = p_track_parameters,
	  .expect = "a list of parameter names such as [TimeZone, search_path]" },
	{ .name = "tenants", .parse = cfg_p_tenants,
	  .expect = "a mapping of tenant names to { users: [...], databases: [...], ... }" },
	{ .name = "quota", .parse = p_section, .sub = &quota_section,
	  .expect = "a mapping like { state_file: ./ringbouncer-quota.state }" },
};
static const struct section top_section = SECTION(top_keys);
_Static_assert(sizeof(top_keys) / sizeof(top_keys[0]) <= 64, "parse_map tracks seen keys in 64 bits");

static struct cfg *cfg_new(const char *path)
{
	struct cfg *c = cfg_xcalloc(1, sizeof(*c));

	c->path = cfg_xstrdup(path);
	c->workers = online_cpus();
	c->max_client_connections = CFG_DEFAULT_CLIENTS;
	c->log_level = CFG_LOG_INFO;
	c->auth_method = CFG_AUTH_SCRAM;
	c->client_login_timeout = 60000;
	c->query_wait_timeout = 120000;
	c->server_connect_timeout = 15000;
	c->server_login_retry = 1000;
	c->server_idle_timeout = 600000;
	c->server_lifetime = 3600000;
	c->shutdown_timeout = 30000;
	c->quota_log_interval = 60000;
	c->server_reset_query = cfg_xstrdup("DISCARD ALL");
	c->max_prepared_statements = 200;
	size_t ntrack = sizeof default_track_parameters / sizeof default_track_parameters[0];
	c->track_parameters = cfg_xcalloc(ntrack, sizeof(*c->track_parameters));
	for (size_t i = 0; i < ntrack; i++)
		c->track_parameters[c->ntrack_parameters++] = cfg_xstrdup(default_track_parameters[i]);
	return c;
}

/* Checks what can only be checked once everything is read; fills defaults that depend on it. */
static void finish(struct ctx *x)
{
	struct cfg *c = x->c;

	for (size_t i = 0; i < x->nrefs; i++) {
		const struct ref *r = &x->refs[i];

		if (cfg_find_user(c, r->user))
			continue;
		if (r->db)
			cfg_report(x, r->mark, "database '%s' has no password, so its user '%s' must be in users",
			       r->db, r->user);
		else
			cfg_report(x, r->mark, "admin user '%s' is not in users", r->user);
	}
	if (!c->listen) {
		c->listen = cfg_xcalloc(1, sizeof(*c->listen));
		c->nlisten = 1;
		strcpy(c->listen[0].host, CFG_DEFAULT_LISTEN);
		c->listen[0].port = CFG_LISTEN_PORT_DEFAULT;
	}
}

/* The mark of byte off in buf, counting columns in UTF-8 characters as libyaml does. */
static yaml_mark_t mark_at(const char *buf, size_t len, size_t off)
{
	yaml_mark_t m = { .index = off };

	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
			m.column++;
		}
	}
	return m;
}

static void syntax_error(struct ctx *x, const yaml_parser_t *p, const char *buf, size_t len)
{
	yaml_mark_t m = p->problem_mark;

	if (p->error == YAML_MEMORY_ERROR)
		cfg_oom();
	/* Reader errors (bad encoding, control characters) carry a byte offset, not a mark. */
	if (p->error == YAML_READER_ERROR) {
		m = mark_at(buf, len, p->problem_offset);
		if (p->problem_value != -1)
			cfg_report(x, m, "%s (byte 0x%x)", p->problem, (unsigned)p->problem_value);
		else
			cfg_report(x, m, "%s", p->problem);
	} else if (p->context) {
		cfg_report(x, m, "%s (%s at %zu:%zu)", p->problem, p->context,
		       p->context_mark.line + 1, p->context_mark.column + 1);
	} else {
		cfg_report(x, m, "%s", p->problem ? p->problem : "invalid YAML");
	}
}

static int read_file(const char *path, char **buf, size_t *len, struct cfg_errors *errs)
{
	size_t cap = 4096;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0) {
		err = errno;
		errs_add(errs, "%s: cannot open: %s", path, strerror(err));
		return -err;
	}
	*buf = cfg_xcalloc(1, cap);
	*len = 0;
	while ((n = read(fd, *buf + *len, cap - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			errs_add(errs, "%s: cannot read: %s", path, strerror(err));
			close(fd);
			free(*buf);
			return -err;
		}
		*len += (size_t)n;
		if (*len == cap)
			*buf = cfg_xrealloc(*buf, cap *= 2);
	}
	close(fd);
	return 0;
}

int cfg_load(const char *path, struct cfg **out, struct cfg_errors *errs)
{
	struct ctx x = { .path = path };
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	char *buf = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	ret = read_file(path, &buf, &len, errs);
	if (ret)
		return ret;
	x.c = cfg_new(path);
	if (!yaml_parser_initialize(&parser))
		cfg_oom();
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (yaml_parser_load(&parser, &doc)) {
		const yaml_node_t *root;

		x.doc = &doc;
		root = yaml_document_get_root_node(&doc);
		if (!root)
			cfg_report(&x, (yaml_mark_t){ 0 }, "the configuration needs 'databases'");
		else if (root->type != YAML_MAPPING_NODE)
			cfg_report(&x, root->start_mark, "the configuration must be a mapping of keys");
		else
			cfg_parse_map(&x, root, &top_section, x.c, "the configuration", NULL);
		/* A second document would be silently ignored, which hides mistakes. */
		if (!yaml_parser_load(&parser, &extra)) {
			syntax_error(&x, &parser, buf, len);
		} else {
			if (yaml_document_get_root_node(&extra))
				cfg_report(&x, extra.start_mark, "only one YAML document is allowed");
			yaml_document_delete(&extra);
		}
		yaml_document_delete(&doc);
		finish(&x);
	} else {
		syntax_error(&x, &parser, buf, len);
	}
	yaml_parser_delete(&parser);
	free(buf);
	free(x.refs);
	if (x.ndiag) {
		flush(&x, errs);
		cfg_free(x.c);
		return -EINVAL;
	}
	*out = x.c;
	return 0;
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->listen);
	for (size_t i = 0; i < c->nadmin_users; i++)
		free(c->admin_users[i]);
	free(c->admin_users);
	track_parameters_free(c);
	for (size_t i = 0; i < c->nusers; i++) {
		free(c->users[i].name);
		free(c->users[i].password);
	}
	free(c->users);
	for (size_t i = 0; i < c->ndbs; i++) {
		free(c->dbs[i].name);
		free(c->dbs[i].host);
		free(c->dbs[i].dbname);
		free(c->dbs[i].user);
		free(c->dbs[i].password);
	}
	free(c->dbs);
	free(c->server_reset_query);
	cfg_tenants_free(c);
	free(c->quota_state_file);
	free(c);
}

void cfg_errors_free(struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

const struct cfg_db *cfg_find_db(const struct cfg *c, const char *name)
{
	const struct cfg_db *any = NULL;

	for (size_t i = 0; i < c->ndbs; i++) {
		if (!strcmp(c->dbs[i].name, name))
			return &c->dbs[i];
		if (!strcmp(c->dbs[i].name, "*"))
			any = &c->dbs[i];
	}
	return any;
}

const struct cfg_user *cfg_find_user(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->nusers; i++)
		if (!strcmp(c->users[i].name, name))
			return &c->users[i];
	return NULL;
}

bool cfg_is_admin(const struct cfg *c, const char *user)
{
	for (size_t i = 0; i < c->nadmin_users; i++)
		if (!strcmp(c->admin_users[i], user))
			return true;
	return false;
}

bool cfg_is_tracked(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->ntrack_parameters; i++)
		if (!strcasecmp(c->track_parameters[i], name))
			return true;
	return false;
}
