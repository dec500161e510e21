/* Quota usage kept across restarts (a small text file), and the one-line summary of a tenant for the log. */
#include "quota/tenant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The file: a header line, then one line per budget with usage in its current
 * window, every line ending in '\n':
 *
 *   ringbouncer-quota 1
 *   <tenant> <metric> <window> <window index> <used>
 *
 * The tenant name is percent-encoded outside [A-Za-z0-9_.-], so it holds no
 * space or newline and the fields split on single spaces.
 */
#define STATE_HEADER "ringbouncer-quota 1"
/* Far more than any configuration writes; a bigger file is not ours. */
#define STATE_MAX_BYTES (64u << 20)

/* A growing text; a failed allocation is remembered and reported once at the end. */
struct text {
	char *p;
	size_t len, cap;
	bool oom;
};

static void text_reserve(struct text *t, size_t more)
{
	if (t->oom || t->cap - t->len > more)
		return;
	size_t cap = t->cap ? t->cap : 256;
	while (cap - t->len <= more)
		cap *= 2;
	char *p = realloc(t->p, cap);
	if (!p) {
		t->oom = true;
		return;
	}
	t->p = p;
	t->cap = cap;
}

static void text_add(struct text *t, const char *s, size_t n)
{
	text_reserve(t, n);
	if (t->oom)
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
}

static bool name_char_plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '.' || c == '-';
}

static void text_add_name(struct text *t, const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		if (name_char_plain(*s)) {
			text_add(t, (const char *)s, 1);
		} else {
			char esc[3] = { '%', hex[*s >> 4], hex[*s & 15] };
			text_add(t, esc, 3);
		}
	}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int quota_save(const struct quota *q, const char *path, uint64_t wall_s)
{
	struct text t = { 0 };
	char line[128];
	text_add(&t, STATE_HEADER "\n", sizeof STATE_HEADER "\n" - 1);
	for (size_t i = 0; i < q->ntenants; i++) {
		const struct quota_tenant *qt = &q->tenants[i];
		for (size_t j = 0; j < qt->cfg->nbudgets; j++) {
			const struct cfg_budget *b = &qt->cfg->budgets[j];
			uint64_t used = quota_used(qt, j, wall_s);
			if (!used)
				continue;
			int n = snprintf(line, sizeof line, " %s %s %llu %llu\n", quota_metric_name(b->metric),
					 quota_window_name(b->per),
					 (unsigned long long)quota_window_index(b->per, wall_s),
					 (unsigned long long)used);
			text_add_name(&t, qt->cfg->name);
			text_add(&t, line, (size_t)n);
		}
	}
	size_t plen = strlen(path);
	char *tmp = malloc(plen + sizeof ".tmp");
	int rc = 0, fd = -1;
	if (t.oom || !tmp) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", sizeof ".tmp");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = write_all(fd, t.p, t.len)) < 0)
		goto fail;
	/* On disk before the rename, so a crash leaves the old file or the whole new one. */
	if (fsync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = close(fd);
	fd = -1;
	if (rc < 0 || rename(tmp, path) < 0) {
		rc = -errno;
		goto fail;
	}
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out:
	free(tmp);
	free(t.p);
	return rc;
}

/* The whole file into *out (NUL-terminated for convenience; lines are parsed by length). */
static int read_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct text t = { 0 };
	int rc = 0;
	for (;;) {
		text_reserve(&t, 4096);
		if (t.oom) {
			rc = -ENOMEM;
			break;
		}
		ssize_t n = read(fd, t.p + t.len, t.cap - t.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		t.len += (size_t)n;
		if (t.len > STATE_MAX_BYTES) {
			rc = -EFBIG;
			break;
		}
	}
	close(fd);
	if (rc < 0) {
		free(t.p);
		return rc;
	}
	t.p[t.len] = 0;
	*out = t.p;
	*len = t.len;
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes a tenant field into out (room for n + 1); false when malformed. */
static bool decode_name(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (n - i < 3)
				return false;
			int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return false;
			c = (char)(h << 4 | l);
			i += 2;
		} else if (!name_char_plain((unsigned char)c)) {
			return false;
		}
		out[o++] = c;
	}
	out[o] = 0;
	return true;
}

/* A plain decimal number within [0, max]. */
static bool parse_u64(const char *s, size_t n, uint64_t max, uint64_t *v)
{
	if (n == 0 || n > 20)
		return false;
	uint64_t r = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (r > (max - d) / 10)
			return false;
		r = r * 10 + d;
	}
	*v = r;
	return true;
}

static bool parse_metric(const char *s, size_t n, enum cfg_metric *m)
{
	static const enum cfg_metric all[] = { CFG_METRIC_QUERIES, CFG_METRIC_BYTES_OUT, CFG_METRIC_ROWS,
					       CFG_METRIC_SERVER_TIME };
	for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
		const char *name = quota_metric_name(all[i]);
		if (strlen(name) == n && memcmp(name, s, n) == 0) {
			*m = all[i];
			return true;
		}
	}
	return false;
}

static bool parse_window(const char *s, size_t n, enum cfg_window *per)
{
	static const enum cfg_window all[] = { CFG_WINDOW_MINUTE, CFG_WINDOW_HOUR, CFG_WINDOW_DAY };
	for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
		const char *name = quota_window_name(all[i]);
		if (strlen(name) == n && memcmp(name, s, n) == 0) {
			*per = all[i];
			return true;
		}
	}
	return false;
}

/* Usage to restore into one budget, gathered first so that a corrupt file applies nothing. */
struct restore {
	struct quota_budget *b;
	uint64_t used;
};

struct restores {
	struct restore *v;
	size_t n, cap;
};

static bool restores_push(struct restores *r, struct quota_budget *b, uint64_t used)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct restore *v = realloc(r->v, cap * sizeof *v);
		if (!v)
			return false;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = (struct restore){ .b = b, .used = used };
	return true;
}

static struct quota_tenant *tenant_named(struct quota *q, const char *name)
{
	for (size_t i = 0; i < q->ntenants; i++) {
		if (strcmp(q->tenants[i].cfg->name, name) == 0)
			return &q->tenants[i];
	}
	return NULL;
}

/*
 * Parses one entry line [s, s + n) and queues what it restores. 0, -EINVAL
 * with a reason in *why (a static phrase), or -ENOMEM.
 */
static int parse_entry(struct quota *q, const char *s, size_t n, uint64_t wall_s, struct restores *r,
		       const char **why)
{
	const char *field[5];
	size_t flen[5], nf = 0;
	for (size_t i = 0, start = 0; i <= n; i++) {
		if (i < n && s[i] != ' ')
			continue;
		if (nf == 5) {
			*why = "too many fields";
			return -EINVAL;
		}
		field[nf] = s + start;
		flen[nf++] = i - start;
		start = i + 1;
	}
	if (nf != 5) {
		*why = "expected 5 fields: tenant metric window index used";
		return -EINVAL;
	}
	enum cfg_metric m;
	enum cfg_window per;
	uint64_t index, used;
	if (!parse_metric(field[1], flen[1], &m)) {
		*why = "unknown metric";
		return -EINVAL;
	}
	if (!parse_window(field[2], flen[2], &per)) {
		*why = "unknown window";
		return -EINVAL;
	}
	if (!parse_u64(field[3], flen[3], UINT64_MAX, &index)) {
		*why = "bad window index";
		return -EINVAL;
	}
	if (!parse_u64(field[4], flen[4], QUOTA_USED_MAX, &used)) {
		*why = "bad usage";
		return -EINVAL;
	}
	/* The decoded name is never longer than its field. */
	char *name = malloc(flen[0] + 1);
	if (!name)
		return -ENOMEM;
	int rc = 0;
	if (!decode_name(field[0], flen[0], name)) {
		*why = "bad tenant name";
		rc = -EINVAL;
		goto out;
	}
	struct quota_tenant *t = tenant_named(q, name);
	if (!t || index != quota_window_index(per, wall_s))
		goto out;
	for (size_t i = 0; i < t->cfg->nbudgets; i++) {
		const struct cfg_budget *b = t->budgets[i].cfg;
		if (b->metric == m && b->per == per && !restores_push(r, &t->budgets[i], used)) {
			rc = -ENOMEM;
			goto out;
		}
	}
out:
	free(name);
	return rc;
}

/* Raises a budget's usage in the current window to at least used: loading twice does not double it. */
static void restore_apply(const struct restore *r, uint64_t wall_s)
{
	uint64_t index = quota_window_index(r->b->cfg->per, wall_s);
	uint64_t cur = index & 0xFFFF, want = cur << QUOTA_USED_BITS | r->used;
	uint64_t w = atomic_load_explicit(&r->b->word, memory_order_relaxed);
	for (;;) {
		uint64_t tag = w >> QUOTA_USED_BITS, used = w & QUOTA_USED_MAX;
		if (tag == cur && used >= r->used)
			return;
		/* A used word of the next window (the clock moved on meanwhile) is left alone. */
		if (((tag - cur) & 0xFFFF) == 1 && used)
			return;
		if (atomic_compare_exchange_weak_explicit(&r->b->word, &w, want, memory_order_relaxed,
							  memory_order_relaxed))
			return;
	}
}

int quota_load(struct quota *q, const char *path, uint64_t wall_s, char *why, size_t why_size)
{
	char *data = NULL;
	size_t len = 0;
	int rc = read_file(path, &data, &len);
	if (rc < 0) {
		if (why_size)
			snprintf(why, why_size, "%s: %s", path, strerror(-rc));
		return rc;
	}
	struct restores r = { 0 };
	const char *reason = NULL;
	size_t lineno = 0;
	for (size_t pos = 0; pos < len || lineno == 0;) {
		lineno++;
		const char *s = data + pos, *nl = memchr(s, '\n', len - pos);
		if (!nl) {
			reason = lineno == 1 && pos == len ? "empty file" : "truncated line (no newline at its end)";
			break;
		}
		size_t n = (size_t)(nl - s);
		pos += n + 1;
		if (lineno == 1) {
			if (n != strlen(STATE_HEADER) || memcmp(s, STATE_HEADER, n) != 0)
				reason = "bad header (want \"" STATE_HEADER "\")";
		} else {
			rc = parse_entry(q, s, n, wall_s, &r, &reason);
		}
		if (reason || rc < 0)
			break;
	}
	if (reason) {
		rc = -EINVAL;
		if (why_size)
			snprintf(why, why_size, "%s: line %zu: %s", path, lineno, reason);
	} else if (rc < 0) {
		if (why_size)
			snprintf(why, why_size, "%s: %s", path, strerror(-rc));
	} else {
		for (size_t i = 0; i < r.n; i++)
			restore_apply(&r.v[i], wall_s);
	}
	free(r.v);
	free(data);
	return rc;
}

/* snprintf at *len into buf[size]; past the end it writes nothing more, and buf stays terminated. */
__attribute__((format(printf, 4, 5)))
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	if (*len >= size)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n;
}

/* A limit as text: "-" for none. */
static const char *limit_text(uint64_t limit, char out[24])
{
	if (!limit)
		return "-";
	snprintf(out, 24, "%llu", (unsigned long long)limit);
	return out;
}

void quota_describe(const struct quota_tenant *t, uint64_t wall_s, char *buf, size_t size)
{
	const struct cfg_tenant *c = t->cfg;
	char l1[24], l2[24];
	size_t len = 0;
	if (!size)
		return;
	buf[0] = 0;
	struct quota_totals sum;
	quota_totals(t, &sum);
	put(buf, size, &len, "%s: clients %u/%s, servers %u/%s, queries %llu (rejected %llu)", c->name,
	    atomic_load_explicit(&t->clients, memory_order_relaxed), limit_text(c->max_client_connections, l1),
	    atomic_load_explicit(&t->servers, memory_order_relaxed), limit_text(c->max_server_connections, l2),
	    (unsigned long long)sum.queries, (unsigned long long)sum.rejected);
	for (size_t i = 0; i < c->nbudgets; i++) {
		const struct cfg_budget *b = &c->budgets[i];
		put(buf, size, &len, ", %s/%s %llu/%s", quota_metric_name(b->metric), quota_window_name(b->per),
		    (unsigned long long)quota_used(t, i, wall_s), limit_text(b->limit, l1));
	}
}
