/* The YAML configuration: loading, validation with file:line:column errors, and look-ups. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <regex.h>

enum cfg_auth { CFG_AUTH_TRUST, CFG_AUTH_PASSWORD, CFG_AUTH_MD5, CFG_AUTH_SCRAM };
enum cfg_pool_mode { CFG_POOL_SESSION, CFG_POOL_TRANSACTION };
enum cfg_log_level { CFG_LOG_DEBUG, CFG_LOG_INFO, CFG_LOG_WARN, CFG_LOG_ERROR };

struct cfg_listen {
	bool     is_unix;
	char     host[256];   /* numeric v4/v6 address or a name, TCP only */
	uint16_t port;
	char     path[108];   /* unix: the directory; the socket is <dir>/.s.PGSQL.<port> */
};

struct cfg_user {
	char *name;
	char *password;       /* as written after ${ENV} interpolation: plain, md5..., or SCRAM-SHA-256$... */
};

struct cfg_db {
	char *name;           /* what clients ask for; "*" matches any */
	char *host;           /* name/address, or a unix socket directory (starts with '/') */
	uint16_t port;
	char *dbname;         /* NULL: the client's database name */
	char *user;           /* NULL: the client's user */
	char *password;       /* NULL: the client's password where known */
	enum cfg_pool_mode pool_mode;
	uint32_t pool_size;
};

enum cfg_rate_action { CFG_RATE_DELAY, CFG_RATE_REJECT };
enum cfg_metric { CFG_METRIC_QUERIES, CFG_METRIC_BYTES_OUT, CFG_METRIC_ROWS, CFG_METRIC_SERVER_TIME };
enum cfg_window { CFG_WINDOW_MINUTE, CFG_WINDOW_HOUR, CFG_WINDOW_DAY };

/* `budgets:` item: at most limit of metric per UTC-aligned window. */
struct cfg_budget {
	enum cfg_metric metric;
	enum cfg_window per;
	uint64_t limit;       /* queries, bytes, rows, or server time in microseconds */
};

/* `tenants:` entry. Every limit is 0 when absent, meaning none. */
struct cfg_tenant {
	char  *name;
	char **users;                       /* a client whose user is listed belongs here */
	size_t nusers;
	char **databases;                   /* ... else one whose database is listed */
	size_t ndatabases;
	uint32_t max_client_connections;
	uint32_t max_server_connections;    /* across pools and workers */
	uint32_t queries_per_second;
	uint32_t burst;                     /* default: queries_per_second */
	enum cfg_rate_action rate_limit_action; /* default delay */
	uint64_t max_delay;                 /* ms; default 1s */
	uint64_t query_timeout;             /* ms */
	uint64_t idle_transaction_timeout;  /* ms */
	uint64_t max_rows;                  /* per result */
	uint64_t max_result_bytes;          /* per result */
	struct cfg_budget *budgets;
	size_t nbudgets;
	char **deny;                        /* regexes, checked to compile (POSIX ERE with GNU \s \b..., case-insensitive) */
	size_t ndeny;
	char **allow;
	size_t nallow;
	bool   read_only;
};

struct cfg {
	char   *path;
	struct cfg_listen *listen;
	size_t  nlisten;
	uint32_t workers;                 /* "auto" is resolved to the CPU count */
	uint32_t max_client_connections;
	enum cfg_log_level log_level;
	enum cfg_auth auth_method;
	char  **admin_users;
	size_t  nadmin_users;
	struct cfg_user *users;
	size_t  nusers;
	struct cfg_db *dbs;
	size_t  ndbs;

	/* Durations in milliseconds; 0 disables where that makes sense. */
	uint64_t client_login_timeout;    /* default 60s */
	uint64_t query_wait_timeout;      /* default 120s */
	uint64_t server_connect_timeout;  /* default 15s */
	uint64_t server_login_retry;      /* after a failed server login, no new one this long; default 1s */
	uint64_t server_idle_timeout;     /* default 600s */
	uint64_t server_lifetime;         /* default 3600s */
	uint64_t shutdown_timeout;        /* default 30s */
	char    *server_reset_query;      /* default "DISCARD ALL"; "" disables */
	uint32_t max_prepared_statements; /* per server, transaction pooling; default 200 */
	char   **track_parameters;        /* kept per client across servers (transaction pooling) */
	size_t   ntrack_parameters;
	struct cfg_tenant *tenants;       /* in file order */
	size_t   ntenants;
	char    *quota_state_file;        /* quota.state_file; NULL: usage is not kept across restarts */
	uint64_t quota_log_interval;      /* quota.log_interval, ms: a usage line per tenant; default 60s, 0 never */
};

/* One problem found while loading: "file:line:col: message". */
struct cfg_errors {
	char  **msg;
	size_t  n;
};

/*
 * Loads and validates path. Returns 0 with *out set (free with cfg_free), or
 * -EINVAL with every problem appended to errs (free with cfg_errors_free),
 * or another -errno when the file cannot be read (also described in errs).
 * Called from the main thread; the result is immutable once published.
 */
int cfg_load(const char *path, struct cfg **out, struct cfg_errors *errs)
	__attribute__((warn_unused_result));
void cfg_free(struct cfg *c);
void cfg_errors_free(struct cfg_errors *errs);

/* The database entry for a client's database name (exact match first, then "*"), or NULL. */
const struct cfg_db *cfg_find_db(const struct cfg *c, const char *name);
/* The user entry, or NULL. */
const struct cfg_user *cfg_find_user(const struct cfg *c, const char *name);
bool cfg_is_admin(const struct cfg *c, const char *user);
/*
 * The tenant of a client: the one listing its user, else the one listing its
 * database, else NULL. Names match exactly, case included, as PostgreSQL's do;
 * user or db may be NULL. Any thread; the tenant lives as long as c.
 */
const struct cfg_tenant *cfg_find_tenant(const struct cfg *c, const char *user, const char *db);
/*
 * Compiles a deny/allow pattern as cfg_load checks it: extended, case-insensitive,
 * no sub-matches. Returns regcomp's code: 0 (free re with regfree), or an error
 * for regerror. Any thread.
 */
int cfg_regcomp(regex_t *re, const char *pattern);
/* Whether a parameter is tracked per client (case-insensitive, as PostgreSQL names are). */
bool cfg_is_tracked(const struct cfg *c, const char *name);

/* "30s", "500ms", "5m", "1h", "2d", or a bare number of seconds. 0 or -EINVAL. */
int cfg_parse_duration(const char *s, uint64_t *ms) __attribute__((warn_unused_result));
/* "64KB", "100MB", "1GB", "512B", or a bare number of bytes. 0 or -EINVAL. */
int cfg_parse_size(const char *s, uint64_t *bytes) __attribute__((warn_unused_result));
const char *cfg_auth_name(enum cfg_auth a);

/*
 * Single-value parsers behind cfg_load. They live in lib/cfg_value.c, apart
 * from the YAML walk, so other inputs (command line, admin console) can reuse
 * them. Each returns 0 or -EINVAL; on failure, `why` (where present) is set to
 * a static phrase meant to follow the value or its key, e.g. "has a port
 * outside 1-65535". Any thread may call them.
 */

/* The port of the default listen address and of "unix:/dir" without one. */
#define CFG_LISTEN_PORT_DEFAULT 6432
/* A unix socket directory must leave room in sun_path[108] for "/.s.PGSQL.65535". */
#define CFG_SOCKET_DIR_MAX (108 - sizeof("/.s.PGSQL.65535"))

/* A decimal integer within [min, max], nothing else. */
int cfg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *n) __attribute__((warn_unused_result));
/* "host:port", "[v6addr]:port", "unix:/dir" (port 6432) or "unix:/dir:port". */
int cfg_parse_listen(const char *s, struct cfg_listen *l, const char **why) __attribute__((warn_unused_result));
/* A user's password: non-empty, and well-formed if it looks like an md5 or SCRAM secret. */
int cfg_check_secret(const char *s, const char **why) __attribute__((warn_unused_result));
