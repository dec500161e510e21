/* Per-tenant quota state: connection counters, GCRA query rate and windowed budgets, all C11 atomics. */
#include "quota/tenant.h"

#include <stdlib.h>

/*
 * Every counter here only counts: no other memory is published through it,
 * so relaxed order is enough, and a CAS loop keeps each update exact.
 */
#define RELAXED memory_order_relaxed
#define TAG_MASK UINT64_C(0xFFFF)

static uint64_t word_tag(uint64_t w)
{
	return w >> QUOTA_USED_BITS;
}

static uint64_t word_used(uint64_t w)
{
	return w & QUOTA_USED_MAX;
}

static uint64_t word_make(uint64_t index, uint64_t used)
{
	return (index & TAG_MASK) << QUOTA_USED_BITS | used;
}

/*
 * The word an update in window `index` builds on. A word of that window is
 * kept. So is a used word of the next window: another thread read the clock a
 * moment later and already rolled it, and resetting it back would lose its
 * counts (ours then land in the new window, which is where they are done).
 * Any other word is of an older window and counts as empty.
 */
static uint64_t word_base(uint64_t w, uint64_t index)
{
	uint64_t ahead = (word_tag(w) - index) & TAG_MASK;
	if (ahead == 0 || (ahead == 1 && word_used(w) > 0))
		return w;
	return word_make(index, 0);
}

static uint64_t window_seconds(enum cfg_window per)
{
	switch (per) {
	case CFG_WINDOW_MINUTE: return 60;
	case CFG_WINDOW_HOUR: return 3600;
	case CFG_WINDOW_DAY: return 86400;
	}
	return 86400;
}

uint64_t quota_window_index(enum cfg_window per, uint64_t wall_s)
{
	return wall_s / window_seconds(per);
}

uint64_t quota_window_left(enum cfg_window per, uint64_t wall_s)
{
	uint64_t len = window_seconds(per);
	return len - wall_s % len;
}

const char *quota_metric_name(enum cfg_metric m)
{
	switch (m) {
	case CFG_METRIC_QUERIES: return "queries";
	case CFG_METRIC_BYTES_OUT: return "bytes_out";
	case CFG_METRIC_ROWS: return "rows";
	case CFG_METRIC_SERVER_TIME: return "server_time";
	}
	return "unknown";
}

const char *quota_window_name(enum cfg_window per)
{
	switch (per) {
	case CFG_WINDOW_MINUTE: return "minute";
	case CFG_WINDOW_HOUR: return "hour";
	case CFG_WINDOW_DAY: return "day";
	}
	return "unknown";
}

struct quota *quota_new(const struct cfg *c, size_t ncounts)
{
	struct quota *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	if (c->ntenants && !(q->tenants = calloc(c->ntenants, sizeof *q->tenants)))
		goto fail;
	q->ntenants = c->ntenants;
	for (size_t i = 0; i < c->ntenants; i++) {
		struct quota_tenant *t = &q->tenants[i];
		t->cfg = &c->tenants[i];
		atomic_init(&t->clients, 0);
		atomic_init(&t->servers, 0);
		atomic_init(&t->tat_us, 0);
		t->ncounts = ncounts ? ncounts : 1;
		t->counts = aligned_alloc(alignof(struct quota_count), t->ncounts * sizeof *t->counts);
		if (!t->counts)
			goto fail;
		for (size_t j = 0; j < t->ncounts; j++) {
			struct quota_count *n = &t->counts[j];
			atomic_init(&n->queries, 0);
			atomic_init(&n->rejected, 0);
			atomic_init(&n->rows, 0);
			atomic_init(&n->bytes_out, 0);
			atomic_init(&n->server_us, 0);
		}
		if (!t->cfg->nbudgets)
			continue;
		if (!(t->budgets = calloc(t->cfg->nbudgets, sizeof *t->budgets)))
			goto fail;
		for (size_t j = 0; j < t->cfg->nbudgets; j++) {
			t->budgets[j].cfg = &t->cfg->budgets[j];
			atomic_init(&t->budgets[j].word, 0);
			t->metered |= 1u << t->cfg->budgets[j].metric;
		}
	}
	return q;
fail:
	quota_free(q);
	return NULL;
}

void quota_free(struct quota *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->ntenants; i++) {
		free(q->tenants[i].budgets);
		free(q->tenants[i].counts);
	}
	free(q->tenants);
	free(q);
}

/* One more on n unless that passes max (0: no limit); never above max, even for a moment. */
static bool counter_enter(atomic_uint *n, uint32_t max)
{
	if (!max) {
		atomic_fetch_add_explicit(n, 1, RELAXED);
		return true;
	}
	unsigned v = atomic_load_explicit(n, RELAXED);
	do {
		if (v >= max)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(n, &v, v + 1, RELAXED, RELAXED));
	return true;
}

bool quota_client_enter(struct quota_tenant *t)
{
	return counter_enter(&t->clients, t->cfg->max_client_connections);
}

void quota_client_leave(struct quota_tenant *t)
{
	atomic_fetch_sub_explicit(&t->clients, 1, RELAXED);
}

bool quota_server_take(struct quota_tenant *t)
{
	return counter_enter(&t->servers, t->cfg->max_server_connections);
}

void quota_server_give(struct quota_tenant *t)
{
	atomic_fetch_sub_explicit(&t->servers, 1, RELAXED);
}

/*
 * GCRA in ticks of 1/per_us µs, so the interval 1e6/qps µs is a whole number
 * of ticks: per_us = qps / gcd(qps, 1e6) makes it exact (3 qps: ticks of
 * 1/3 µs, interval 1,000,000 ticks), and no drift builds up over any span.
 * When that would need ticks finer than 1 ns, they are nanoseconds and the
 * interval is rounded up: the rate is never exceeded, and at most 1 ns slow
 * per query. per_us <= 1000 keeps 584 years of monotonic time in 64 bits.
 */
struct gcra {
	uint64_t per_us, interval, tolerance;
};

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t r = a % b;
		a = b;
		b = r;
	}
	return a;
}

static struct gcra gcra_of(const struct cfg_tenant *c)
{
	uint64_t qps = c->queries_per_second, g = gcd(qps, 1000000);
	struct gcra r;
	if (qps / g <= 1000) {
		r.per_us = qps / g;
		r.interval = 1000000 / g;
	} else {
		r.per_us = 1000;
		r.interval = (UINT64_C(1000000000) + qps - 1) / qps;
	}
	r.tolerance = (c->burst > 1 ? c->burst - 1 : 0) * r.interval;
	return r;
}

static enum quota_verdict rate_admit(struct quota_tenant *t, uint64_t now_us, uint64_t *wait_us)
{
	const struct cfg_tenant *c = t->cfg;
	if (!c->queries_per_second)
		return QUOTA_OK;
	struct gcra g = gcra_of(c);
	uint64_t now = now_us * g.per_us;
	uint64_t max_wait = c->max_delay > UINT64_MAX / 1000 ? UINT64_MAX : c->max_delay * 1000;
	uint64_t tat = atomic_load_explicit(&t->tat_us, RELAXED);
	for (;;) {
		uint64_t start = tat > now ? tat : now, wait = 0;
		/* The slot conforms at start - tolerance; written so that nothing underflows. */
		if (start - now > g.tolerance) {
			if (c->rate_limit_action == CFG_RATE_REJECT)
				return QUOTA_RATE;
			uint64_t ticks = start - now - g.tolerance;
			wait = ticks / g.per_us + (ticks % g.per_us != 0);
			if (wait > max_wait)
				return QUOTA_RATE;
		}
		if (atomic_compare_exchange_weak_explicit(&t->tat_us, &tat, start + g.interval, RELAXED, RELAXED)) {
			*wait_us = wait;
			return wait ? QUOTA_DELAY : QUOTA_OK;
		}
	}
}

static uint64_t budget_limit(const struct cfg_budget *c)
{
	return c->limit && c->limit < QUOTA_USED_MAX ? c->limit : QUOTA_USED_MAX;
}

/* Whether a budget refuses new queries: its usage in the window is at or over its limit. */
static bool budget_spent(struct quota_budget *b, uint64_t wall_s)
{
	if (!b->cfg->limit)
		return false;
	uint64_t index = quota_window_index(b->cfg->per, wall_s);
	uint64_t w = word_base(atomic_load_explicit(&b->word, RELAXED), index);
	return word_used(w) >= budget_limit(b->cfg);
}

/*
 * Counts one query in a queries budget while it is under its limit. On
 * success *tag is the window it was counted in, or UINT64_MAX when nothing was
 * counted (no limit, usage saturated).
 */
static bool budget_take(struct quota_budget *b, uint64_t wall_s, uint64_t *tag)
{
	uint64_t index = quota_window_index(b->cfg->per, wall_s), limit = budget_limit(b->cfg);
	uint64_t w = atomic_load_explicit(&b->word, RELAXED);
	for (;;) {
		uint64_t base = word_base(w, index);
		if (word_used(base) >= limit) {
			if (b->cfg->limit)
				return false;
			*tag = UINT64_MAX;
			return true;
		}
		if (atomic_compare_exchange_weak_explicit(&b->word, &w, base + 1, RELAXED, RELAXED)) {
			*tag = word_tag(base);
			return true;
		}
	}
}

/* Takes back a budget_take whose query was refused after all; a window since rolled over has nothing to give back. */
static void budget_untake(struct quota_budget *b, uint64_t tag)
{
	uint64_t w = atomic_load_explicit(&b->word, RELAXED);
	while (word_tag(w) == tag && word_used(w) > 0) {
		if (atomic_compare_exchange_weak_explicit(&b->word, &w, w - 1, RELAXED, RELAXED))
			return;
	}
}

/*
 * Counts the query in queries budgets i.. and then asks the rate; each level
 * keeps the window it counted in, to give it back if a later step refuses.
 */
static enum quota_verdict admit_from(struct quota_tenant *t, size_t i, uint64_t now_us, uint64_t wall_s,
				     uint64_t *wait_us, const struct cfg_budget **which)
{
	while (i < t->cfg->nbudgets && t->budgets[i].cfg->metric != CFG_METRIC_QUERIES)
		i++;
	if (i == t->cfg->nbudgets)
		return rate_admit(t, now_us, wait_us);
	struct quota_budget *b = &t->budgets[i];
	uint64_t tag;
	if (!budget_take(b, wall_s, &tag)) {
		*which = b->cfg;
		return QUOTA_BUDGET;
	}
	enum quota_verdict v = admit_from(t, i + 1, now_us, wall_s, wait_us, which);
	if ((v == QUOTA_RATE || v == QUOTA_BUDGET) && tag != UINT64_MAX)
		budget_untake(b, tag);
	return v;
}

enum quota_verdict quota_admit(struct quota_tenant *t, struct quota_count *count, uint64_t now_us, uint64_t wall_s,
			       uint64_t *wait_us, const struct cfg_budget **which)
{
	uint64_t wait = 0;
	const struct cfg_budget *hit = NULL;
	enum quota_verdict v = QUOTA_OK;
	/* Read-only checks first, so a spent bytes or rows budget costs no count and undo. */
	for (size_t i = 0; t->metered & ~(1u << CFG_METRIC_QUERIES) && i < t->cfg->nbudgets; i++) {
		struct quota_budget *b = &t->budgets[i];
		if (b->cfg->metric != CFG_METRIC_QUERIES && budget_spent(b, wall_s)) {
			hit = b->cfg;
			v = QUOTA_BUDGET;
			break;
		}
	}
	if (v == QUOTA_OK)
		v = admit_from(t, 0, now_us, wall_s, &wait, &hit);
	if (v == QUOTA_OK || v == QUOTA_DELAY)
		atomic_fetch_add_explicit(&count->queries, 1, RELAXED);
	else
		atomic_fetch_add_explicit(&count->rejected, 1, RELAXED);
	if (wait_us)
		*wait_us = wait;
	if (which)
		*which = hit;
	return v;
}

void quota_add(struct quota_tenant *t, struct quota_count *count, enum cfg_metric m, uint64_t amount,
	       uint64_t wall_s)
{
	switch (m) {
	case CFG_METRIC_QUERIES: atomic_fetch_add_explicit(&count->queries, amount, RELAXED); break;
	case CFG_METRIC_BYTES_OUT: atomic_fetch_add_explicit(&count->bytes_out, amount, RELAXED); break;
	case CFG_METRIC_ROWS: atomic_fetch_add_explicit(&count->rows, amount, RELAXED); break;
	case CFG_METRIC_SERVER_TIME: atomic_fetch_add_explicit(&count->server_us, amount, RELAXED); break;
	}
	for (size_t i = 0; t->metered & 1u << m && i < t->cfg->nbudgets; i++) {
		struct quota_budget *b = &t->budgets[i];
		if (b->cfg->metric != m)
			continue;
		uint64_t index = quota_window_index(b->cfg->per, wall_s);
		uint64_t w = atomic_load_explicit(&b->word, RELAXED), next;
		do {
			uint64_t base = word_base(w, index), used = word_used(base);
			used = amount > QUOTA_USED_MAX - used ? QUOTA_USED_MAX : used + amount;
			next = (base & ~QUOTA_USED_MAX) | used;
		} while (next != w && !atomic_compare_exchange_weak_explicit(&b->word, &w, next, RELAXED, RELAXED));
	}
}

void quota_totals(const struct quota_tenant *t, struct quota_totals *out)
{
	*out = (struct quota_totals){ 0 };
	for (size_t i = 0; i < t->ncounts; i++) {
		const struct quota_count *n = &t->counts[i];
		out->queries += atomic_load_explicit(&n->queries, RELAXED);
		out->rejected += atomic_load_explicit(&n->rejected, RELAXED);
		out->rows += atomic_load_explicit(&n->rows, RELAXED);
		out->bytes_out += atomic_load_explicit(&n->bytes_out, RELAXED);
		out->server_us += atomic_load_explicit(&n->server_us, RELAXED);
	}
}

uint64_t quota_used(const struct quota_tenant *t, size_t i, uint64_t wall_s)
{
	const struct quota_budget *b = &t->budgets[i];
	uint64_t w = atomic_load_explicit(&b->word, RELAXED);
	uint64_t index = quota_window_index(b->cfg->per, wall_s);
	return word_tag(w) == (index & TAG_MASK) ? word_used(w) : 0;
}

void quota_roll(struct quota *q, uint64_t wall_s)
{
	for (size_t i = 0; i < q->ntenants; i++) {
		struct quota_tenant *t = &q->tenants[i];
		for (size_t j = 0; j < t->cfg->nbudgets; j++) {
			struct quota_budget *b = &t->budgets[j];
			uint64_t index = quota_window_index(b->cfg->per, wall_s);
			uint64_t w = atomic_load_explicit(&b->word, RELAXED), next;
			do
				next = word_base(w, index);
			while (next != w && !atomic_compare_exchange_weak_explicit(&b->word, &w, next, RELAXED, RELAXED));
		}
	}
}
