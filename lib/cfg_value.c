/* Parsers for single configuration values, free of YAML: numbers, durations, sizes, listen addresses, password secrets. */
#include "lib/cfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

/* Reads at least one decimal digit; *end is left after the last one. */
static int parse_digits(const char *s, uint64_t *n, const char **end)
{
	uint64_t v = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*n = v;
	*end = s;
	return 0;
}

int cfg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *n)
{
	const char *end;
	uint64_t v;

	if (parse_digits(s, &v, &end) || *end || v < min || v > max)
		return -EINVAL;
	*n = v;
	return 0;
}

struct unit {
	const char *name;
	uint64_t mul;
};

static int parse_scaled(const char *s, const struct unit *u, size_t nu, bool icase, uint64_t *out)
{
	uint64_t n;
	const char *end;

	if (parse_digits(s, &n, &end))
		return -EINVAL;
	for (size_t i = 0; i < nu; i++) {
		if ((icase ? strcasecmp(end, u[i].name) : strcmp(end, u[i].name)) != 0)
			continue;
		if (n > UINT64_MAX / u[i].mul)
			return -EINVAL;
		*out = n * u[i].mul;
		return 0;
	}
	return -EINVAL;
}

int cfg_parse_duration(const char *s, uint64_t *ms)
{
	/* Case matters: "m" is minutes, and an "M" could be meant as months. */
	static const struct unit units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};

	return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), false, ms);
}

int cfg_parse_size(const char *s, uint64_t *bytes)
{
	/* PostgreSQL writes "kB", others "KB" or "kb"; all mean 1024 here. */
	static const struct unit units[] = {
		{ "", 1 }, { "B", 1 }, { "KB", 1ull << 10 }, { "MB", 1ull << 20 }, { "GB", 1ull << 30 },
		{ "TB", 1ull << 40 },
	};

	return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), true, bytes);
}

static int port_of(const char *s, uint16_t *port, const char **why)
{
	uint64_t n;

	if (!*s || strspn(s, "0123456789") != strlen(s)) {
		*why = "must be host:port, [v6addr]:port, unix:/dir or unix:/dir:port";
		return -EINVAL;
	}
	if (cfg_parse_uint(s, 1, 65535, &n)) {
		*why = "has a port outside 1-65535";
		return -EINVAL;
	}
	*port = (uint16_t)n;
	return 0;
}

/* unix:/dir or unix:/dir:port; s points after "unix:". */
static int parse_unix(const char *s, struct cfg_listen *l, const char **why)
{
	const char *colon = strrchr(s, ':');
	size_t len = strlen(s);

	l->is_unix = true;
	l->port = CFG_LISTEN_PORT_DEFAULT;
	/* A directory may hold ':' itself; only an all-digit tail is a port. */
	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
		if (port_of(colon + 1, &l->port, why))
			return -EINVAL;
		len = (size_t)(colon - s);
	}
	if (len == 0 || s[0] != '/') {
		*why = "must name an absolute directory after unix:";
		return -EINVAL;
	}
	if (len > CFG_SOCKET_DIR_MAX) {
		*why = "names a directory too long for a socket path";
		return -EINVAL;
	}
	memcpy(l->path, s, len);
	return 0;
}

int cfg_parse_listen(const char *s, struct cfg_listen *l, const char **why)
{
	const char *sep;
	size_t len;

	memset(l, 0, sizeof(*l));
	if (!strncmp(s, "unix:", 5))
		return parse_unix(s + 5, l, why);
	if (s[0] == '[') {
		struct in6_addr a;

		sep = strchr(s, ']');
		len = sep ? (size_t)(sep - s - 1) : 0;
		if (!sep || sep[1] != ':') {
			*why = "must be host:port, [v6addr]:port, unix:/dir or unix:/dir:port";
			return -EINVAL;
		}
		if (len < sizeof(l->host))
			memcpy(l->host, s + 1, len);
		if (len >= sizeof(l->host) || inet_pton(AF_INET6, l->host, &a) != 1) {
			*why = "has an invalid IPv6 address";
			return -EINVAL;
		}
		sep++;
	} else {
		sep = strrchr(s, ':');
		len = sep ? (size_t)(sep - s) : 0;
		if (len == 0) {
			*why = "must be host:port, [v6addr]:port, unix:/dir or unix:/dir:port";
			return -EINVAL;
		}
		if (memchr(s, ':', len)) {
			*why = "needs brackets around an IPv6 address, like [::1]:6432";
			return -EINVAL;
		}
		if (len >= sizeof(l->host)) {
			*why = "has a host name longer than 255 bytes";
			return -EINVAL;
		}
		memcpy(l->host, s, len);
	}
	return port_of(sep + 1, &l->port, why);
}

static bool is_b64(const char *s, size_t n, size_t want_bytes)
{
	size_t pad = 0;

	if (n == 0 || n % 4)
		return false;
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
			return false;
	return !want_bytes || n / 4 * 3 - pad == want_bytes;
}

/* <iterations>:<salt>$<StoredKey>:<ServerKey> after "SCRAM-SHA-256$", as PostgreSQL keeps it in pg_authid. */
static bool is_scram_secret(const char *s)
{
	const char *colon, *dollar, *colon2;
	uint64_t iter;

	if (parse_digits(s, &iter, &colon) || *colon != ':' || iter == 0 || iter > INT32_MAX)
		return false;
	dollar = strchr(colon + 1, '$');
	if (!dollar || !is_b64(colon + 1, (size_t)(dollar - colon - 1), 0))
		return false;
	colon2 = strchr(dollar + 1, ':');
	return colon2 && is_b64(dollar + 1, (size_t)(colon2 - dollar - 1), 32) &&
	       is_b64(colon2 + 1, strlen(colon2 + 1), 32);
}

/*
 * PostgreSQL takes anything that is not a well-formed secret as a plain
 * password; a string shaped like a secret but malformed is far more likely a
 * pasting mistake than a password, so it is refused here.
 */
int cfg_check_secret(const char *s, const char **why)
{
	static const char scram[] = "SCRAM-SHA-256$";

	if (!*s) {
		*why = "must not be empty";
		return -EINVAL;
	}
	if (!strncmp(s, scram, strlen(scram)) && !is_scram_secret(s + strlen(scram))) {
		*why = "looks like a SCRAM secret but is not SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>";
		return -EINVAL;
	}
	if (!strncmp(s, "md5", 3) && strlen(s) == 35 && strspn(s + 3, "0123456789abcdefABCDEF") != 32) {
		*why = "looks like an md5 secret but is not \"md5\" and 32 hex digits";
		return -EINVAL;
	}
	return 0;
}
