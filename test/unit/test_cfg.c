/*
 * Unit test for lib/cfg.c, lib/cfg_value.c and lib/cfg_tenant.c: loading, defaults, each kind of error
 * with its position, and the value parsers.
 */
#include "lib/cfg.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The ctest working directory is test/unit. */
#define EXAMPLE "../../config.yaml.example"

/* Appended to snippets that are about something else, so the file is otherwise valid. */
#define DB "databases:\n  db: {host: h}\n"

static int failures;
static int case_failed;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			printf("    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			case_failed = 1;                                                \
		}                                                                       \
	} while (0)

#define CHECK_STR(a, b)                                                                  \
	do {                                                                             \
		const char *a_ = (a), *b_ = (b);                                         \
		if (!a_ || !b_ || strcmp(a_, b_)) {                                      \
			printf("    %s:%d: %s is \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
			       #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");              \
			case_failed = 1;                                                 \
		}                                                                        \
	} while (0)

static void begin(const char *name)
{
	printf("case %s\n", name);
	case_failed = 0;
}

static void end(void)
{
	if (case_failed) {
		printf("  FAIL\n");
		failures++;
	}
}

/* Writes text to a new temporary file and returns its path (free it, unlink it); exits 77 without a temp dir. */
static char *write_tmp(const char *text)
{
	const char *dir = getenv("TMPDIR");
	size_t n = strlen(text);
	char *path;
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	path = malloc(strlen(dir) + 32);
	if (!path)
		abort();
	sprintf(path, "%s/test_cfg_XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		printf("skip: cannot create a file in %s: %s\n", dir, strerror(errno));
		exit(77);
	}
	if (write(fd, text, n) != (ssize_t)n)
		abort();
	close(fd);
	return path;
}

static void print_errors(const struct cfg_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		printf("    got: %s\n", e->msg[i]);
}

/* Loads text, which must be valid; the caller frees the result with cfg_free. */
static struct cfg *load_ok(const char *text)
{
	struct cfg_errors e = { 0 };
	struct cfg *c = NULL;
	char *path = write_tmp(text);
	int ret = cfg_load(path, &c, &e);

	if (ret) {
		printf("    load failed with %d\n", ret);
		print_errors(&e);
		case_failed = 1;
	}
	CHECK(e.n == 0);
	cfg_errors_free(&e);
	unlink(path);
	free(path);
	return c;
}

struct want {
	int line, col;
	const char *frag;
};

/* Loads text, which must fail with exactly the errors in want, in file order. */
static void expect_errors(const char *name, const char *text, const struct want *want, size_t n)
{
	struct cfg_errors e = { 0 };
	struct cfg *c = (struct cfg *)1;
	char *path = write_tmp(text);
	int ret;

	begin(name);
	ret = cfg_load(path, &c, &e);
	CHECK(ret == -EINVAL);
	CHECK(c == NULL);
	if (e.n != n) {
		printf("    want %zu errors, got %zu\n", n, e.n);
		case_failed = 1;
	}
	for (size_t i = 0; i < n && i < e.n; i++) {
		char prefix[512];
		size_t len = (size_t)snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", path, want[i].line, want[i].col);

		if (strncmp(e.msg[i], prefix, len) || !strstr(e.msg[i] + len, want[i].frag)) {
			printf("    error %zu: want \"%s...%s\"\n", i, prefix, want[i].frag);
			case_failed = 1;
		}
	}
	if (case_failed)
		print_errors(&e);
	cfg_errors_free(&e);
	cfg_free(ret ? NULL : c);
	unlink(path);
	free(path);
	end();
}

static void expect_error(const char *name, const char *text, int line, int col, const char *frag)
{
	struct want w = { line, col, frag };

	expect_errors(name, text, &w, 1);
}

static void test_example(void)
{
	struct cfg_errors e = { 0 };
	struct cfg *c = NULL;
	const struct cfg_db *db;
	int ret;

	begin("example config loads with the documented values");
	ret = cfg_load(EXAMPLE, &c, &e);
	print_errors(&e);
	CHECK(ret == 0 && e.n == 0);
	cfg_errors_free(&e);
	if (ret) {
		end();
		return;
	}
	CHECK(c->nlisten == 1 && !c->listen[0].is_unix && c->listen[0].port == 6432);
	CHECK_STR(c->listen[0].host, "127.0.0.1");
	CHECK(c->workers == (uint32_t)(sysconf(_SC_NPROCESSORS_ONLN) > 256 ? 256 : sysconf(_SC_NPROCESSORS_ONLN)));
	CHECK(c->max_client_connections == 10000);
	CHECK(c->log_level == CFG_LOG_INFO);
	CHECK(c->auth_method == CFG_AUTH_SCRAM);
	CHECK(c->nusers == 2);
	CHECK(cfg_find_user(c, "app") && !strcmp(cfg_find_user(c, "app")->password, "app"));
	CHECK(cfg_find_user(c, "admin") && !strcmp(cfg_find_user(c, "admin")->password, "admin"));
	CHECK(cfg_is_admin(c, "admin") && !cfg_is_admin(c, "app"));
	CHECK(c->ndbs == 2);
	db = cfg_find_db(c, "appdb");
	CHECK(db && !strcmp(db->name, "appdb"));
	if (db) {
		CHECK_STR(db->host, "127.0.0.1");
		CHECK(db->port == 5432);
		CHECK_STR(db->dbname, "appdb");
		CHECK_STR(db->user, "app");
		CHECK(db->password == NULL);
		CHECK(db->pool_mode == CFG_POOL_TRANSACTION && db->pool_size == 20);
	}
	db = cfg_find_db(c, "otherdb");
	CHECK(db && !strcmp(db->name, "*"));
	if (db) {
		CHECK_STR(db->host, "127.0.0.1");
		CHECK(db->dbname == NULL && db->user == NULL && db->password == NULL);
	}
	CHECK(c->client_login_timeout == 60000 && c->query_wait_timeout == 120000);
	CHECK(c->server_connect_timeout == 15000 && c->server_idle_timeout == 600000);
	CHECK(c->server_lifetime == 3600000 && c->shutdown_timeout == 30000 && c->server_login_retry == 1000);
	CHECK_STR(c->server_reset_query, "DISCARD ALL");
	CHECK_STR(c->path, EXAMPLE);
	CHECK(c->ntenants == 0 && c->tenants == NULL && c->quota_state_file == NULL);
	cfg_free(c);
	end();
}

/* The example with its commented-out tenants: and quota: sections in use: each "# " before YAML is dropped. */
static char *example_uncommented(void)
{
	FILE *f = fopen(EXAMPLE, "r");
	char line[1024], *out;
	size_t len = 0, cap = 1 << 16;

	out = calloc(1, cap);
	if (!f || !out)
		abort();
	while (fgets(line, sizeof(line), f)) {
		const char *s = line;

		if (!strncmp(s, "# tenants:", 10) || !strncmp(s, "# quota:", 8) || !strncmp(s, "#   ", 4))
			s += 2;
		if (len + strlen(s) + 1 > cap)
			abort();
		memcpy(out + len, s, strlen(s) + 1);
		len += strlen(s);
	}
	fclose(f);
	return out;
}

static void test_example_tenants(void)
{
	char *text = example_uncommented();
	const struct cfg_tenant *t;
	struct cfg *c;

	begin("example config's commented-out tenants and quota load when uncommented");
	c = load_ok(text);
	if (c) {
		CHECK(c->ntenants == 1);
		t = c->ntenants ? &c->tenants[0] : NULL;
		CHECK(t && t->nusers == 2 && t->ndatabases == 1 && t->nbudgets == 4 && t->ndeny == 1);
		CHECK(t && t->burst == 1000 && t->max_result_bytes == 100ull << 20 && !t->read_only);
		CHECK_STR(c->quota_state_file, "./ringbouncer-quota.state");
		cfg_free(c);
	}
	free(text);
	end();
}

static void test_defaults(void)
{
	struct cfg *c;

	begin("defaults");
	c = load_ok("databases:\n  db:\n    host: /var/run/postgresql\n");
	if (c) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		CHECK(c->nlisten == 1 && c->listen[0].port == 6432 && !c->listen[0].is_unix);
		CHECK_STR(c->listen[0].host, "127.0.0.1");
		CHECK(c->workers == (uint32_t)(cpus < 1 ? 1 : cpus > 256 ? 256 : cpus));
		CHECK(c->max_client_connections == 10000);
		CHECK(c->log_level == CFG_LOG_INFO && c->auth_method == CFG_AUTH_SCRAM);
		CHECK(c->nadmin_users == 0 && c->nusers == 0 && c->ndbs == 1);
		CHECK(c->client_login_timeout == 60000 && c->query_wait_timeout == 120000);
		CHECK(c->server_connect_timeout == 15000 && c->server_idle_timeout == 600000);
		CHECK(c->server_lifetime == 3600000 && c->shutdown_timeout == 30000);
		CHECK_STR(c->server_reset_query, "DISCARD ALL");
		CHECK_STR(c->dbs[0].name, "db");
		CHECK_STR(c->dbs[0].host, "/var/run/postgresql");
		CHECK(c->dbs[0].port == 5432 && c->dbs[0].pool_mode == CFG_POOL_SESSION && c->dbs[0].pool_size == 20);
		CHECK(!c->dbs[0].dbname && !c->dbs[0].user && !c->dbs[0].password);
		CHECK(cfg_find_db(c, "db") == &c->dbs[0]);
		CHECK(cfg_find_db(c, "other") == NULL);
		CHECK(cfg_find_user(c, "db") == NULL);
		CHECK(!cfg_is_admin(c, "admin"));
		CHECK(c->ntenants == 0 && c->quota_state_file == NULL);
		CHECK(cfg_find_tenant(c, "app", "db") == NULL);
		cfg_free(c);
	}
	end();
}

static const char scram_ok[] =
	"SCRAM-SHA-256$4096:c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
	"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=";

static void test_values(void)
{
	struct cfg *c;
	char text[2048];

	begin("every key with a non-default value");
	snprintf(text, sizeof(text),
		 "listen: [\"0.0.0.0:6000\", \"[::]:6432\", \"unix:/tmp\", \"unix:/var/run/rb:7000\"]\n"
		 "workers: 4\n"
		 "max_client_connections: 5\n"
		 "log: { level: debug }\n"
		 "auth: { method: md5 }\n"
		 "admin: { users: [ops, app] }\n"
		 "users:\n"
		 "  app: { password: \"md50123456789abcdef0123456789ABCDEF\" }\n"
		 "  ops: { password: \"%s\" }\n"
		 "  num: { password: 12345 }\n"
		 "databases:\n"
		 "  a: &shared\n"
		 "    host: db.example\n"
		 "    port: 6543\n"
		 "    dbname: real\n"
		 "    user: app\n"
		 "    pool_mode: transaction\n"
		 "    pool_size: 7\n"
		 "  b: *shared\n"
		 "  c: { host: h, user: stranger, password: secret, dbname: ~ }\n"
		 "  \"*\": { host: h }\n"
		 "client_login_timeout: 500ms\n"
		 "query_wait_timeout: 5m\n"
		 "server_connect_timeout: 7\n"
		 "server_login_retry: 250ms\n"
		 "server_idle_timeout: 1h\n"
		 "server_lifetime: 2d\n"
		 "shutdown_timeout: 0\n"
		 "server_reset_query: \"\"\n",
		 scram_ok);
	c = load_ok(text);
	if (c) {
		CHECK(c->nlisten == 4);
		CHECK(!c->listen[0].is_unix && c->listen[0].port == 6000 && !strcmp(c->listen[0].host, "0.0.0.0"));
		CHECK(!c->listen[1].is_unix && c->listen[1].port == 6432 && !strcmp(c->listen[1].host, "::"));
		CHECK(c->listen[2].is_unix && c->listen[2].port == 6432 && !strcmp(c->listen[2].path, "/tmp"));
		CHECK(c->listen[3].is_unix && c->listen[3].port == 7000 && !strcmp(c->listen[3].path, "/var/run/rb"));
		CHECK(c->workers == 4 && c->max_client_connections == 5);
		CHECK(c->log_level == CFG_LOG_DEBUG && c->auth_method == CFG_AUTH_MD5);
		CHECK(cfg_is_admin(c, "ops") && cfg_is_admin(c, "app") && !cfg_is_admin(c, "num"));
		CHECK(c->nusers == 3);
		CHECK_STR(cfg_find_user(c, "ops")->password, scram_ok);
		CHECK_STR(cfg_find_user(c, "num")->password, "12345");
		CHECK(c->ndbs == 4);
		for (int i = 0; i < 2; i++) {
			CHECK_STR(c->dbs[i].host, "db.example");
			CHECK_STR(c->dbs[i].dbname, "real");
			CHECK_STR(c->dbs[i].user, "app");
			CHECK(c->dbs[i].port == 6543 && c->dbs[i].pool_mode == CFG_POOL_TRANSACTION);
			CHECK(c->dbs[i].pool_size == 7 && !c->dbs[i].password);
		}
		CHECK_STR(c->dbs[2].password, "secret");
		CHECK(c->dbs[2].dbname == NULL);
		CHECK(cfg_find_db(c, "b") == &c->dbs[1] && cfg_find_db(c, "zzz") == &c->dbs[3]);
		CHECK(c->client_login_timeout == 500 && c->query_wait_timeout == 300000);
		CHECK(c->server_connect_timeout == 7000 && c->server_idle_timeout == 3600000);
		CHECK(c->server_lifetime == 172800000 && c->shutdown_timeout == 0 && c->server_login_retry == 250);
		CHECK_STR(c->server_reset_query, "");
		cfg_free(c);
	}
	end();

	begin("a single listen string, workers auto, each auth method");
	c = load_ok("listen: \"[::1]:5000\"\nworkers: auto\nauth: { method: trust }\n" DB);
	if (c) {
		CHECK(c->nlisten == 1 && c->listen[0].port == 5000 && !strcmp(c->listen[0].host, "::1"));
		CHECK(c->workers >= 1 && c->workers <= 256);
		CHECK(c->auth_method == CFG_AUTH_TRUST);
		cfg_free(c);
	}
	c = load_ok("auth: { method: password }\n" DB);
	CHECK(c && c->auth_method == CFG_AUTH_PASSWORD);
	cfg_free(c);
	c = load_ok("auth: { method: scram-sha-256 }\nlog: { level: error }\n" DB);
	CHECK(c && c->auth_method == CFG_AUTH_SCRAM && c->log_level == CFG_LOG_ERROR);
	cfg_free(c);
	CHECK_STR(cfg_auth_name(CFG_AUTH_TRUST), "trust");
	CHECK_STR(cfg_auth_name(CFG_AUTH_MD5), "md5");
	CHECK_STR(cfg_auth_name(CFG_AUTH_PASSWORD), "password");
	CHECK_STR(cfg_auth_name(CFG_AUTH_SCRAM), "scram-sha-256");
	end();
}

static void test_env(void)
{
	struct cfg *c;

	begin("${ENV} interpolation, $${ literal, before validation");
	setenv("RB_TEST_HOST", "pg.internal", 1);
	setenv("RB_TEST_PORT", "6543", 1);
	setenv("RB_TEST_PW", "s3cret", 1);
	c = load_ok("users:\n  app: { password: \"${RB_TEST_PW}\" }\n"
		    "databases:\n  db: { host: \"${RB_TEST_HOST}\", port: \"${RB_TEST_PORT}\", user: app }\n"
		    "server_reset_query: \"SET x = '$${RB_TEST_HOST}' -- ${RB_TEST_HOST}:${RB_TEST_PORT} $$ $\"\n");
	if (c) {
		CHECK_STR(c->users[0].password, "s3cret");
		CHECK_STR(c->dbs[0].host, "pg.internal");
		CHECK(c->dbs[0].port == 6543);
		CHECK_STR(c->server_reset_query, "SET x = '${RB_TEST_HOST}' -- pg.internal:6543 $$ $");
		cfg_free(c);
	}
	end();

	setenv("RB_TEST_PORT", "70000", 1);
	expect_error("interpolated value is validated", "databases:\n  db: { host: h, port: \"${RB_TEST_PORT}\" }\n",
		     2, 24, "'port' must be a port number (1-65535), not '70000'");
	unsetenv("RB_TEST_UNSET");
	unsetenv("RB_TEST_UNSET2");
	expect_error("unset ${ENV}", "server_reset_query: \"SET x = ${RB_TEST_UNSET}\"\n" DB,
		     1, 21, "environment variable 'RB_TEST_UNSET' is not set");
	{
		static const struct want w[] = {
			{ 2, 19, "environment variable 'RB_TEST_UNSET' is not set" },
			{ 2, 19, "environment variable 'RB_TEST_UNSET2' is not set" },
		};

		expect_errors("every unset ${ENV} in one value",
			      "users:\n  app: {password: \"${RB_TEST_UNSET}${RB_TEST_UNSET2}\"}\n" DB, w, 2);
	}
	expect_error("bad ${ENV} name", "server_reset_query: \"${1X}\"\n" DB, 1, 21,
		     "invalid environment variable name '1X'");
	expect_error("unterminated ${", "server_reset_query: \"${RB_TEST_HOST\"\n" DB, 1, 21, "unterminated '${'");
}

static void test_errors(void)
{
	char long_dir[200];
	char text[512];

	expect_error("unknown top-level key", "bogus: 1\n" DB, 1, 1, "unknown key 'bogus'");
	expect_error("unknown key in a database", "databases:\n  db:\n    host: h\n    hots: x\n",
		     4, 5, "unknown key 'hots'");
	expect_error("unknown key in log", "log: { lvl: info }\n" DB, 1, 8, "unknown key 'lvl'");
	expect_error("unknown key in a user", "users:\n  app: { password: x, passwd: y }\n" DB,
		     2, 23, "unknown key 'passwd'");
	expect_error("key that is not a string", "? [a]\n: 1\n" DB, 1, 3, "keys must be non-empty strings");

	expect_error("workers not a number", "workers: lots\n" DB, 1, 10, "'workers' must be a positive integer or auto");
	expect_error("workers zero", "workers: 0\n" DB, 1, 10, "'workers' must be a positive integer or auto");
	expect_error("workers above 256", "workers: 257\n" DB, 1, 10, "not '257'");
	expect_error("workers a list", "workers: [4]\n" DB, 1, 10, "'workers' must be a positive integer or auto");
	expect_error("negative count", "max_client_connections: -1\n" DB, 1, 25,
		     "'max_client_connections' must be a positive integer, not '-1'");
	expect_error("count overflow", "max_client_connections: 4294967296\n" DB, 1, 25,
		     "'max_client_connections' must be a positive integer");
	expect_error("pool_size zero", "databases:\n  db: { host: h, pool_size: 0 }\n", 2, 29,
		     "'pool_size' must be a positive integer, not '0'");

	expect_error("duration unit", "client_login_timeout: 10 parsecs\n" DB, 1, 23,
		     "'client_login_timeout' must be a duration like 30s, 500ms, 5m, 1h, 2d or a number of seconds, not '10 parsecs'");
	expect_error("negative duration", "server_lifetime: -5s\n" DB, 1, 18, "'server_lifetime' must be a duration");
	expect_error("duration overflow", "query_wait_timeout: 99999999999999999999s\n" DB, 1, 21,
		     "'query_wait_timeout' must be a duration");
	expect_error("duration overflow in ms", "shutdown_timeout: 213503982334601d\n" DB, 1, 19,
		     "'shutdown_timeout' must be a duration");
	expect_error("fractional duration", "server_idle_timeout: 1.5s\n" DB, 1, 22, "must be a duration");
	expect_error("empty duration", "server_connect_timeout:\n" DB, 1, 24, "'server_connect_timeout' must be a duration");

	expect_error("database port out of range", "databases:\n  db: {host: h, port: 70000}\n", 2, 23,
		     "'port' must be a port number (1-65535), not '70000'");
	expect_error("database port zero", "databases:\n  db: {host: h, port: 0}\n", 2, 23, "'port' must be a port number");
	expect_error("listen port out of range", "listen: \"127.0.0.1:70000\"\n" DB, 1, 9,
		     "'listen' entry '127.0.0.1:70000' has a port outside 1-65535");
	expect_error("listen port zero, second entry", "listen: [\"127.0.0.1:6432\", \"[::1]:0\"]\n" DB, 1, 28,
		     "'listen' entry '[::1]:0' has a port outside 1-65535");
	expect_error("listen without port", "listen: localhost\n" DB, 1, 9, "must be host:port");
	expect_error("listen v6 without brackets", "listen: \"::1:6432\"\n" DB, 1, 9, "needs brackets around an IPv6 address");
	expect_error("listen bad v6", "listen: \"[fe80::zz]:6432\"\n" DB, 1, 9, "invalid IPv6 address");
	expect_error("listen relative unix dir", "listen: \"unix:tmp\"\n" DB, 1, 9, "absolute directory");
	memset(long_dir, 'd', sizeof(long_dir));
	long_dir[0] = '/';
	long_dir[120] = '\0';
	snprintf(text, sizeof(text), "listen: \"unix:%s\"\n" DB, long_dir);
	expect_error("listen unix dir too long", text, 1, 9, "too long for a socket path");
	snprintf(text, sizeof(text), "databases:\n  db: {host: %s}\n", long_dir);
	expect_error("database socket dir too long", text, 2, 14, "too long for a socket path");
	expect_error("listen empty", "listen: []\n" DB, 1, 9, "'listen' must be an address or a list");

	expect_error("unknown auth method", "auth:\n  method: kerberos\n" DB, 2, 11,
		     "'method' must be one of trust, password, md5, scram-sha-256, not 'kerberos'");
	expect_error("auth not a mapping", "auth: md5\n" DB, 1, 7, "'auth' must be a mapping");
	expect_error("bad log level", "log: {level: loud}\n" DB, 1, 14, "'level' must be one of debug, info, warn, error");
	expect_error("bad pool_mode", "databases:\n  db:\n    host: h\n    pool_mode: statement\n", 4, 16,
		     "'pool_mode' must be one of session, transaction, not 'statement'");

	expect_error("admin user missing from users",
		     "admin:\n  users: [admin, root]\nusers:\n  admin: {password: x}\n" DB, 2, 18,
		     "admin user 'root' is not in users");
	expect_error("database user missing and no password", "databases:\n  db:\n    host: h\n    user: bob\n",
		     4, 11, "database 'db' has no password, so its user 'bob' must be in users");
	expect_error("no databases key", "workers: 2\n", 1, 1, "the configuration needs 'databases'");
	expect_error("empty file", "", 1, 1, "the configuration needs 'databases'");
	expect_error("empty databases", "databases: {}\n", 1, 12, "'databases' must be a mapping of at least one");
	expect_error("database not a mapping", "databases:\n  db: h\n", 2, 7, "database 'db' must be a mapping");
	expect_error("database without host", "databases:\n  db: {port: 5432}\n", 2, 3, "database 'db' needs 'host'");
	expect_error("root not a mapping", "- a\n- b\n", 1, 1, "the configuration must be a mapping");

	expect_error("user without password", "users:\n  app: {}\n" DB, 2, 3, "user 'app' needs 'password'");
	expect_error("null password", "users:\n  app:\n    password:\n" DB, 3, 14, "'password' must be a string");
	expect_error("password not a string", "users:\n  app: {password: [x]}\n" DB, 2, 19, "'password' must be a string");
	expect_error("empty password", "users:\n  app: {password: \"\"}\n" DB, 2, 19, "'password' must not be empty");
	expect_error("malformed md5 secret", "users:\n  app: {password: md5zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz}\n" DB,
		     2, 19, "looks like an md5 secret");
	expect_error("malformed SCRAM secret", "users:\n  app: {password: \"SCRAM-SHA-256$4096:abc$x:y\"}\n" DB,
		     2, 19, "looks like a SCRAM secret");
	expect_error("NUL byte in a value", "server_reset_query: \"a\\0b\"\n" DB, 1, 21, "'server_reset_query' must be a string");

	expect_error("duplicate top-level key", "workers: 2\nworkers: 3\n" DB, 2, 1,
		     "duplicate key 'workers' (first at line 1)");
	expect_error("duplicate key in a database", "databases:\n  db:\n    host: h\n    host: i\n", 4, 5,
		     "duplicate key 'host' (first at line 3)");
	expect_error("duplicate user", "users:\n  a: {password: x}\n  a: {password: y}\n" DB, 3, 3, "duplicate key 'a'");

	expect_error("YAML syntax error", "workers: 4\nlog: level: info\n" DB, 2, 11,
		     "mapping values are not allowed in this context");
	expect_error("YAML unclosed flow sequence", "listen: [\"127.0.0.1:6432\"\nworkers: 4\n" DB, 2, 1,
		     "did not find expected ',' or ']'");
	expect_error("YAML control character", "workers: 4\n  x\x01\n" DB, 2, 4, "control characters are not allowed");
	expect_error("second YAML document", DB "---\nworkers: 2\n", 3, 1, "only one YAML document is allowed");
}

static void test_track_parameters(void)
{
	struct cfg *c;

	begin("track_parameters: the documented default list, and a list of one's own");
	c = load_ok(DB);
	if (c) {
		CHECK(c->ntrack_parameters == 7);
		CHECK(cfg_is_tracked(c, "TimeZone") && cfg_is_tracked(c, "timezone"));
		CHECK(cfg_is_tracked(c, "search_path") && !cfg_is_tracked(c, "work_mem"));
		CHECK(c->max_prepared_statements == 200);
		cfg_free(c);
	}
	c = load_ok("track_parameters: [work_mem, TimeZone]\nmax_prepared_statements: 5\n" DB);
	if (c) {
		CHECK(c->ntrack_parameters == 2 && cfg_is_tracked(c, "work_mem"));
		CHECK(!cfg_is_tracked(c, "application_name"));
		CHECK(c->max_prepared_statements == 5);
		cfg_free(c);
	}
	end();
	expect_error("a tracked parameter that is no name", "track_parameters: [TimeZone, \"x; drop\"]\n" DB, 1, 30,
		     "track_parameters");
	expect_error("max_prepared_statements must be positive", "max_prepared_statements: 0\n" DB, 1, 26,
		     "max_prepared_statements");
}

/* The tenant of the contract in config.yaml.example, with every key given. */
static const char tenants_full[] =
	"tenants:\n"
	"  acme:\n"
	"    users: [acme_app, acme_ro]\n"
	"    databases: [acme]\n"
	"    max_client_connections: 200\n"
	"    max_server_connections: 8\n"
	"    queries_per_second: 500\n"
	"    burst: 1000\n"
	"    rate_limit_action: reject\n"
	"    max_delay: 2s\n"
	"    query_timeout: 30s\n"
	"    idle_transaction_timeout: 60s\n"
	"    max_rows: 100000\n"
	"    max_result_bytes: 100MB\n"
	"    budgets:\n"
	"      - { metric: queries,     limit: 1000000, per: day }\n"
	"      - { metric: bytes_out,   limit: 10GB,    per: hour }\n"
	"      - { metric: rows,        limit: 50000000, per: day }\n"
	"      - { metric: server_time, limit: 1h,      per: hour }\n"
	"      - metric: queries\n"
	"        limit: 10\n"
	"        per: minute\n"
	"    deny:  ['^\\s*(drop|truncate)\\b', \"^vacuum\"]\n"
	"    allow: []\n"
	"    read_only: true\n"
	"  beta:\n"
	"    databases: [beta, acme_ro]\n"
	"    allow: '^select'\n"
	"quota:\n"
	"  state_file: ./ringbouncer-quota.state\n"
	DB;

static void test_tenants(void)
{
	const struct cfg_tenant *t;
	struct cfg *c;

	begin("tenants: every key, in file order");
	c = load_ok(tenants_full);
	if (c) {
		CHECK(c->ntenants == 2);
		t = &c->tenants[0];
		CHECK_STR(t->name, "acme");
		CHECK(t->nusers == 2 && t->ndatabases == 1);
		CHECK_STR(t->users[0], "acme_app");
		CHECK_STR(t->users[1], "acme_ro");
		CHECK_STR(t->databases[0], "acme");
		CHECK(t->max_client_connections == 200 && t->max_server_connections == 8);
		CHECK(t->queries_per_second == 500 && t->burst == 1000);
		CHECK(t->rate_limit_action == CFG_RATE_REJECT && t->max_delay == 2000);
		CHECK(t->query_timeout == 30000 && t->idle_transaction_timeout == 60000);
		CHECK(t->max_rows == 100000 && t->max_result_bytes == 100ull << 20);
		CHECK(t->nbudgets == 5);
		if (t->nbudgets == 5) {
			CHECK(t->budgets[0].metric == CFG_METRIC_QUERIES && t->budgets[0].per == CFG_WINDOW_DAY);
			CHECK(t->budgets[0].limit == 1000000);
			CHECK(t->budgets[1].metric == CFG_METRIC_BYTES_OUT && t->budgets[1].per == CFG_WINDOW_HOUR);
			CHECK(t->budgets[1].limit == 10ull << 30);
			CHECK(t->budgets[2].metric == CFG_METRIC_ROWS && t->budgets[2].per == CFG_WINDOW_DAY);
			CHECK(t->budgets[2].limit == 50000000);
			CHECK(t->budgets[3].metric == CFG_METRIC_SERVER_TIME && t->budgets[3].per == CFG_WINDOW_HOUR);
			CHECK(t->budgets[3].limit == 3600ull * 1000 * 1000);
			CHECK(t->budgets[4].metric == CFG_METRIC_QUERIES && t->budgets[4].per == CFG_WINDOW_MINUTE);
			CHECK(t->budgets[4].limit == 10);
		}
		CHECK(t->ndeny == 2 && t->nallow == 0);
		if (t->ndeny == 2) {
			CHECK_STR(t->deny[0], "^\\s*(drop|truncate)\\b");
			CHECK_STR(t->deny[1], "^vacuum");
		}
		CHECK(t->read_only);
		t = &c->tenants[1];
		CHECK_STR(t->name, "beta");
		CHECK(t->nusers == 0 && t->ndatabases == 2 && t->nallow == 1 && t->ndeny == 0);
		if (t->nallow == 1)
			CHECK_STR(t->allow[0], "^select");
		CHECK_STR(c->quota_state_file, "./ringbouncer-quota.state");

		/* The user's tenant wins over the database's; names match exactly. */
		CHECK(cfg_find_tenant(c, "acme_app", "beta") == &c->tenants[0]);
		CHECK(cfg_find_tenant(c, "acme_ro", "acme_ro") == &c->tenants[0]);
		CHECK(cfg_find_tenant(c, "someone", "acme_ro") == &c->tenants[1]);
		CHECK(cfg_find_tenant(c, "someone", "beta") == &c->tenants[1]);
		CHECK(cfg_find_tenant(c, "someone", "acme") == &c->tenants[0]);
		CHECK(cfg_find_tenant(c, "someone", "elsewhere") == NULL);
		CHECK(cfg_find_tenant(c, "ACME_APP", "Beta") == NULL);
		CHECK(cfg_find_tenant(c, NULL, "beta") == &c->tenants[1]);
		CHECK(cfg_find_tenant(c, "acme_ro", NULL) == &c->tenants[0]);
		CHECK(cfg_find_tenant(c, NULL, NULL) == NULL);
		cfg_free(c);
	}
	end();

	begin("tenants: defaults, file order, burst following the rate, ${ENV} in state_file");
	setenv("RB_TEST_STATE", "/var/lib/rb", 1);
	c = load_ok("tenants:\n"
		    "  zeta: { users: only }\n"
		    "  alpha: { databases: [a], queries_per_second: 50, read_only: False }\n"
		    "quota: { state_file: \"${RB_TEST_STATE}/quota\" }\n" DB);
	if (c) {
		CHECK(c->ntenants == 2);
		t = &c->tenants[0];
		CHECK_STR(t->name, "zeta");
		CHECK(t->nusers == 1 && t->ndatabases == 0);
		CHECK_STR(t->users[0], "only");
		CHECK(t->max_client_connections == 0 && t->max_server_connections == 0);
		CHECK(t->queries_per_second == 0 && t->burst == 0);
		CHECK(t->rate_limit_action == CFG_RATE_DELAY && t->max_delay == 1000);
		CHECK(t->query_timeout == 0 && t->idle_transaction_timeout == 0);
		CHECK(t->max_rows == 0 && t->max_result_bytes == 0);
		CHECK(t->nbudgets == 0 && t->ndeny == 0 && t->nallow == 0 && !t->read_only);
		t = &c->tenants[1];
		CHECK_STR(t->name, "alpha");
		CHECK(t->queries_per_second == 50 && t->burst == 50 && !t->read_only);
		CHECK_STR(c->quota_state_file, "/var/lib/rb/quota");
		CHECK(c->quota_log_interval == 60000);
		CHECK(cfg_find_tenant(c, "only", "a") == &c->tenants[0]);
		cfg_free(c);
	}
	c = load_ok("tenants: {}\nquota: {}\n" DB);
	CHECK(c && c->ntenants == 0 && c->quota_state_file == NULL);
	cfg_free(c);
	c = load_ok("quota: { log_interval: 0 }\n" DB);
	CHECK(c && c->quota_log_interval == 0);
	cfg_free(c);
	c = load_ok("quota: { log_interval: 5m }\n" DB);
	CHECK(c && c->quota_log_interval == 300000);
	cfg_free(c);
	end();
}

static void test_regcomp(void)
{
	regex_t re;

	begin("cfg_regcomp: extended, case-insensitive, GNU \\s and \\b");
	CHECK(cfg_regcomp(&re, "^\\s*(drop|truncate)\\b") == 0);
	CHECK(regexec(&re, "  DROP table x", 0, NULL, 0) == 0);
	CHECK(regexec(&re, "Truncate t", 0, NULL, 0) == 0);
	CHECK(regexec(&re, "\tdrop", 0, NULL, 0) == 0);
	CHECK(regexec(&re, "dropped", 0, NULL, 0) == REG_NOMATCH);
	CHECK(regexec(&re, "select 1; drop table x", 0, NULL, 0) == REG_NOMATCH);
	regfree(&re);
	CHECK(cfg_regcomp(&re, "(unclosed") != 0);
	end();
}

/* Appended to a tenant snippet, keeps the rest of the file valid. */
#define T_HEAD "tenants:\n  t:\n    users: [u]\n"

static void test_tenant_errors(void)
{
	expect_error("tenants not a mapping", "tenants: [a]\n" DB, 1, 10, "'tenants' must be a mapping of tenant names");
	expect_error("tenant not a mapping", "tenants:\n  t: x\n" DB, 2, 6, "tenant 't' must be a mapping of keys like 'users'");
	expect_error("empty tenant name", "tenants:\n  \"\": { users: [u] }\n" DB, 2, 3, "keys must be non-empty strings");
	expect_error("duplicate tenant", "tenants:\n  t: { users: [u] }\n  t: { users: [v] }\n" DB, 3, 3,
		     "duplicate key 't' (first at line 2)");
	expect_error("unknown key in a tenant", "tenants:\n  t: { users: [u], max_rowz: 5 }\n" DB, 2, 20,
		     "unknown key 'max_rowz'");
	expect_error("unknown key in a budget",
		     T_HEAD "    budgets:\n      - { metric: rows, limit: 1, per: day, window: x }\n" DB, 5, 45,
		     "unknown key 'window'");
	expect_error("unknown key in quota", "quota: { state_file: x, path: y }\n" DB, 1, 25, "unknown key 'path'");
	expect_error("bad log_interval", "quota: { log_interval: soon }\n" DB, 1, 24,
		     "'log_interval' must be a duration");

	expect_error("tenant without users or databases", "tenants:\n  t: { max_rows: 5 }\n" DB, 2, 3,
		     "tenant 't' needs 'users' or 'databases'");
	expect_error("tenant with empty lists", "tenants:\n  t: { users: [], databases: [] }\n" DB, 2, 3,
		     "tenant 't' needs 'users' or 'databases'");
	expect_error("empty user name", "tenants:\n  t: { users: [\"\"] }\n" DB, 2, 16,
		     "'users' must be a list of user names, not ''");
	expect_error("users a mapping", "tenants:\n  t: { users: {a: 1} }\n" DB, 2, 15, "'users' must be a list of user names");
	expect_error("user in two tenants", "tenants:\n  a: { users: [x, y] }\n  b: { users: [y] }\n" DB, 3, 16,
		     "user 'y' is already in tenant 'a'");
	expect_error("user twice in one tenant", "tenants:\n  a: { users: [x, x] }\n" DB, 2, 19,
		     "user 'x' is already in tenant 'a'");
	expect_error("database in two tenants", "tenants:\n  a: { databases: [d] }\n  b: { users: [u], databases: [d] }\n" DB,
		     3, 32, "database 'd' is already in tenant 'a'");

	expect_error("burst without queries_per_second", "tenants:\n  t: { users: [u], burst: 10 }\n" DB, 2, 27,
		     "'burst' needs 'queries_per_second'");
	expect_error("burst zero", "tenants:\n  t: { users: [u], queries_per_second: 5, burst: 0 }\n" DB, 2, 50,
		     "'burst' must be a positive integer, not '0'");
	expect_error("limit written as zero", "tenants:\n  t: { users: [u], max_server_connections: 0 }\n" DB, 2, 44,
		     "'max_server_connections' must be a positive integer, not '0'");
	expect_error("max_rows zero", T_HEAD "    max_rows: 0\n" DB, 4, 15, "'max_rows' must be a positive integer, not '0'");
	expect_error("bad rate_limit_action", T_HEAD "    rate_limit_action: drop\n" DB, 4, 24,
		     "'rate_limit_action' must be one of delay, reject, not 'drop'");
	expect_error("max_delay zero", T_HEAD "    max_delay: 0\n" DB, 4, 16, "'max_delay' must be a positive duration");
	expect_error("bad query_timeout", T_HEAD "    query_timeout: soon\n" DB, 4, 20,
		     "'query_timeout' must be a positive duration like 30s, 500ms, 5m, 1h, 2d or a number of seconds, not 'soon'");
	expect_error("bad size", T_HEAD "    max_result_bytes: 10XB\n" DB, 4, 23,
		     "'max_result_bytes' must be a positive size like 64KB, 100MB, 10GB or a number of bytes, not '10XB'");
	expect_error("read_only not a boolean", T_HEAD "    read_only: yes\n" DB, 4, 16,
		     "'read_only' must be true or false, not 'yes'");

	expect_error("unknown metric", T_HEAD "    budgets:\n      - { metric: cpu, limit: 1, per: day }\n" DB, 5, 19,
		     "'metric' must be one of queries, bytes_out, rows, server_time, not 'cpu'");
	expect_error("unknown window", T_HEAD "    budgets:\n      - { metric: rows, limit: 1, per: week }\n" DB, 5, 40,
		     "'per' must be one of minute, hour, day, not 'week'");
	expect_error("budget without limit", T_HEAD "    budgets:\n      - { metric: rows, per: day }\n" DB, 5, 9,
		     "budget needs 'limit'");
	expect_error("block budget without per", T_HEAD "    budgets:\n      - metric: rows\n        limit: 5\n" DB, 5, 9,
		     "budget needs 'per'");
	expect_error("budget not a mapping", T_HEAD "    budgets: [queries]\n" DB, 4, 15, "'budgets' must be a list of {");
	expect_error("budgets not a list", T_HEAD "    budgets: { metric: rows, limit: 1, per: day }\n" DB, 4, 14,
		     "'budgets' must be a list of {");
	expect_error("budget limit zero", T_HEAD "    budgets:\n      - { metric: queries, limit: 0, per: day }\n" DB,
		     5, 35, "'limit' must be a positive integer for metric queries, not '0'");
	expect_error("bytes_out limit not a size",
		     T_HEAD "    budgets:\n      - { metric: bytes_out, limit: lots, per: hour }\n" DB, 5, 37,
		     "'limit' must be a positive size like 64KB, 100MB, 10GB or a number of bytes for metric bytes_out, "
		     "not 'lots'");
	expect_error("server_time limit not a duration",
		     T_HEAD "    budgets:\n      - { metric: server_time, limit: 1 hour, per: day }\n" DB, 5, 39,
		     "for metric server_time, not '1 hour'");
	{
		static const struct want w[] = {
			/* In range as milliseconds, not as microseconds. */
			{ 5, 18, "'limit' must be a positive duration like 30s, 500ms, 5m, 1h, 2d or a number of seconds "
				 "for metric server_time, not '18446744073709552ms'" },
			{ 7, 9, "duplicate budget for rows per day (first at line 6)" },
		};

		expect_errors("duplicate budget, a bad limit beside it",
			      T_HEAD "    budgets:\n"
			      "      - { limit: 18446744073709552ms, metric: server_time, per: hour }\n"
			      "      - { metric: rows, limit: 5, per: day }\n"
			      "      - { metric: rows, limit: 6, per: day }\n"
			      "      - { metric: rows, limit: 7, per: hour }\n" DB,
			      w, 2);
	}

	expect_error("bad regex", T_HEAD "    deny: ['ok', '(unclosed']\n" DB, 4, 18,
		     "'deny' entry '(unclosed' is not a valid regular expression: Unmatched ( or \\(");
	expect_error("empty allow pattern", T_HEAD "    allow: [\"\"]\n" DB, 4, 13,
		     "'allow' must be a list of regular expressions, not ''");
	expect_error("empty state_file", "quota: { state_file: \"\" }\n" DB, 1, 22, "'state_file' must be a file name, not ''");
	expect_error("quota not a mapping", "quota: ./q.state\n" DB, 1, 8, "'quota' must be a mapping like { state_file:");
}

static void test_many_errors(void)
{
	static const struct want w[] = {
		{ 1, 1, "unknown key 'bogus'" },
		{ 2, 10, "'workers' must be a positive integer or auto" },
		{ 3, 7, "unknown key 'lvl'" },
		{ 5, 22, "database 'a' has no password, so its user 'bob' must be in users" },
		{ 6, 3, "duplicate key 'a' (first at line 5)" },
		{ 7, 22, "'port' must be a port number" },
		{ 8, 17, "admin user 'root' is not in users" },
		{ 10, 5, "user 'x' must be a mapping" },
		{ 11, 23, "'client_login_timeout' must be a duration" },
	};

	expect_errors("several errors in one file, all reported in file order",
		      "bogus: 1\n"
		      "workers: lots\n"
		      "log: {lvl: x}\n"
		      "databases:\n"
		      "  a: {host: h, user: bob}\n"
		      "  a: {}\n"
		      "  b: {host: h, port: x}\n"
		      "admin: {users: [root]}\n"
		      "users:\n"
		      "  x:\n"
		      "client_login_timeout: 10 parsecs\n",
		      w, sizeof(w) / sizeof(w[0]));
}

static void test_files(void)
{
	struct cfg_errors e = { 0 };
	struct cfg *c = (struct cfg *)1;
	int ret;

	begin("missing file: -errno and one error");
	ret = cfg_load("/nonexistent/ringbouncer.yaml", &c, &e);
	CHECK(ret == -ENOENT && c == NULL && e.n == 1);
	if (e.n == 1)
		CHECK_STR(e.msg[0], "/nonexistent/ringbouncer.yaml: cannot open: No such file or directory");
	end();

	begin("a directory: -errno, errors are appended");
	ret = cfg_load("/", &c, &e);
	CHECK(ret == -EISDIR && c == NULL && e.n == 2);
	if (e.n == 2)
		CHECK_STR(e.msg[1], "/: cannot read: Is a directory");
	cfg_errors_free(&e);
	CHECK(e.n == 0 && e.msg == NULL);
	end();
}

struct parse_case {
	const char *in;
	int ret;
	uint64_t out;
};

static void test_parsers(void)
{
	static const struct parse_case durations[] = {
		{ "0", 0, 0 }, { "1", 0, 1000 }, { "30s", 0, 30000 }, { "500ms", 0, 500 },
		{ "5m", 0, 300000 }, { "1h", 0, 3600000 }, { "2d", 0, 172800000 }, { "007s", 0, 7000 },
		{ "18446744073709551615ms", 0, UINT64_MAX }, { "18446744073709551s", 0, 18446744073709551000u },
		{ "", -EINVAL, 0 }, { "s", -EINVAL, 0 }, { "-5s", -EINVAL, 0 }, { "+5s", -EINVAL, 0 },
		{ " 5s", -EINVAL, 0 }, { "5s ", -EINVAL, 0 }, { "5 s", -EINVAL, 0 }, { "1.5s", -EINVAL, 0 },
		{ "10 parsecs", -EINVAL, 0 }, { "5S", -EINVAL, 0 }, { "5sec", -EINVAL, 0 }, { "5ms5", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 }, { "99999999999999999999s", -EINVAL, 0 }, { "18446744073709552s", -EINVAL, 0 },
		{ "213503982334601d", -EINVAL, 0 }, { "18446744073709551616ms", -EINVAL, 0 },
	};
	static const struct parse_case sizes[] = {
		{ "0", 0, 0 }, { "512", 0, 512 }, { "512B", 0, 512 }, { "64KB", 0, 65536 }, { "64kb", 0, 65536 },
		{ "64kB", 0, 65536 }, { "100MB", 0, 104857600 }, { "1GB", 0, 1073741824 }, { "2TB", 0, 2ull << 40 },
		{ "18446744073709551615", 0, UINT64_MAX }, { "16777215TB", 0, 16777215ull << 40 },
		{ "", -EINVAL, 0 }, { "KB", -EINVAL, 0 }, { "-1KB", -EINVAL, 0 }, { "1.5GB", -EINVAL, 0 },
		{ "64 KB", -EINVAL, 0 }, { "64KiB", -EINVAL, 0 }, { "10XB", -EINVAL, 0 }, { "64KBx", -EINVAL, 0 },
		{ "18446744073709551616", -EINVAL, 0 }, { "17179869184GB", -EINVAL, 0 }, { "16777216TB", -EINVAL, 0 },
	};
	static const struct parse_case uints[] = {
		{ "1", 0, 1 }, { "65535", 0, 65535 }, { "0", -EINVAL, 0 }, { "65536", -EINVAL, 0 },
		{ "", -EINVAL, 0 }, { "1x", -EINVAL, 0 }, { "-1", -EINVAL, 0 },
	};
	uint64_t v;

	begin("cfg_parse_duration table");
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		int ret = cfg_parse_duration(durations[i].in, &v);

		if (ret != durations[i].ret || (!ret && v != durations[i].out)) {
			printf("    \"%s\": got %d/%llu\n", durations[i].in, ret, (unsigned long long)v);
			case_failed = 1;
		}
	}
	CHECK(cfg_parse_duration(NULL, &v) == -EINVAL);
	end();

	begin("cfg_parse_size table");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int ret = cfg_parse_size(sizes[i].in, &v);

		if (ret != sizes[i].ret || (!ret && v != sizes[i].out)) {
			printf("    \"%s\": got %d/%llu\n", sizes[i].in, ret, (unsigned long long)v);
			case_failed = 1;
		}
	}
	end();

	begin("cfg_parse_uint table");
	for (size_t i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
		int ret = cfg_parse_uint(uints[i].in, 1, 65535, &v);

		if (ret != uints[i].ret || (!ret && v != uints[i].out)) {
			printf("    \"%s\": got %d/%llu\n", uints[i].in, ret, (unsigned long long)v);
			case_failed = 1;
		}
	}
	end();
}

static void test_listen_and_secrets(void)
{
	static const struct {
		const char *in;
		bool is_unix;
		const char *where;   /* host or path; NULL when the entry must be refused */
		uint16_t port;
	} listens[] = {
		{ "127.0.0.1:6432", false, "127.0.0.1", 6432 },
		{ "localhost:1", false, "localhost", 1 },
		{ "[::]:6432", false, "::", 6432 },
		{ "[fe80::1]:65535", false, "fe80::1", 65535 },
		{ "unix:/tmp", true, "/tmp", 6432 },
		{ "unix:/tmp:7000", true, "/tmp", 7000 },
		{ "unix:/odd:dir", true, "/odd:dir", 6432 },
		{ "127.0.0.1", false, NULL, 0 },
		{ "127.0.0.1:", false, NULL, 0 },
		{ ":6432", false, NULL, 0 },
		{ "127.0.0.1:0", false, NULL, 0 },
		{ "127.0.0.1:65536", false, NULL, 0 },
		{ "127.0.0.1:64x", false, NULL, 0 },
		{ "::1:6432", false, NULL, 0 },
		{ "[::1]", false, NULL, 0 },
		{ "[::1:6432", false, NULL, 0 },
		{ "[nope]:6432", false, NULL, 0 },
		{ "unix:", true, NULL, 0 },
		{ "unix:tmp", true, NULL, 0 },
		{ "unix:/tmp:0", true, NULL, 0 },
	};
	static const struct {
		const char *in;
		int ret;
	} secrets[] = {
		{ "plain", 0 },
		{ "md5", 0 },
		{ "md5 is a fine plain password", 0 },
		{ "md50123456789abcdef0123456789abcdef", 0 },
		{ scram_ok, 0 },
		{ "", -EINVAL },
		{ "md50123456789abcdef0123456789abcdeg", -EINVAL },
		{ "SCRAM-SHA-256$", -EINVAL },
		{ "SCRAM-SHA-256$0:c2FsdA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		  "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=", -EINVAL },
		{ "SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB", -EINVAL },
		{ "SCRAM-SHA-256$4096:c2Fsd!==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		  "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=", -EINVAL },
	};
	struct cfg_listen l;
	const char *why;

	begin("cfg_parse_listen table");
	for (size_t i = 0; i < sizeof(listens) / sizeof(listens[0]); i++) {
		int ret = cfg_parse_listen(listens[i].in, &l, &why);
		bool good = listens[i].where != NULL;

		if (good != (ret == 0) ||
		    (good && (l.is_unix != listens[i].is_unix || l.port != listens[i].port ||
			      strcmp(l.is_unix ? l.path : l.host, listens[i].where)))) {
			printf("    \"%s\": got %d (%s)\n", listens[i].in, ret, ret ? why : "accepted");
			case_failed = 1;
		}
	}
	end();

	begin("cfg_check_secret table");
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		if (cfg_check_secret(secrets[i].in, &why) != secrets[i].ret) {
			printf("    \"%s\": want %d\n", secrets[i].in, secrets[i].ret);
			case_failed = 1;
		}
	}
	end();
}

int main(void)
{
	test_example();
	test_example_tenants();
	test_defaults();
	test_values();
	test_env();
	test_errors();
	test_track_parameters();
	test_tenants();
	test_regcomp();
	test_tenant_errors();
	test_many_errors();
	test_files();
	test_parsers();
	test_listen_and_secrets();
	if (failures) {
		printf("%d case(s) failed\n", failures);
		return 1;
	}
	printf("all cases passed\n");
	return 0;
}
