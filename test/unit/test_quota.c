/* Unit test of quota/tenant.h: GCRA rate, budgets and their windows, connection counters, saved state. */
#include "quota/tenant.h"
#include "test/unit/check.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 8
#define DAY      UINT64_C(86400)
/* A wall clock well into the 2020s, at the start of a day. */
#define WALL0    (DAY * 19000)

static struct cfg_tenant tenant(const char *name, uint32_t qps, uint32_t burst, enum cfg_rate_action action,
				uint64_t max_delay_ms)
{
	return (struct cfg_tenant){
		.name = (char *)name,
		.queries_per_second = qps,
		.burst = burst,
		.rate_limit_action = action,
		.max_delay = max_delay_ms,
	};
}

/* The totals of t's count blocks. */
static struct quota_totals totals(const struct quota_tenant *t)
{
	struct quota_totals sum;
	quota_totals(t, &sum);
	return sum;
}

/* A configuration of one tenant, and its quota (a count block per thread). */
struct one {
	struct cfg cfg;
	struct quota *q;
	struct quota_tenant *t;
};

static void one_init(struct one *o, struct cfg_tenant *t)
{
	memset(o, 0, sizeof *o);
	o->cfg.tenants = t;
	o->cfg.ntenants = 1;
	o->q = quota_new(&o->cfg, NTHREADS);
	CHECK(o->q != NULL);
	o->t = &o->q->tenants[0];
	CHECK(o->t->cfg == t && o->t->ncounts == NTHREADS);
}

static enum quota_verdict admit(struct quota_tenant *t, uint64_t now_us, uint64_t *wait)
{
	const struct cfg_budget *which;
	return quota_admit(t, t->counts, now_us, WALL0, wait, &which);
}

static void test_gcra_burst(void)
{
	struct cfg_tenant c = tenant("acme", 10, 5, CFG_RATE_REJECT, 0);
	struct one o;
	one_init(&o, &c);
	uint64_t now = 5000000, wait = 1;
	for (int i = 0; i < 5; i++)
		CHECK(admit(o.t, now, &wait) == QUOTA_OK && wait == 0);
	CHECK(admit(o.t, now, &wait) == QUOTA_RATE);
	/* Then exactly one per 100 ms: not a microsecond early. */
	for (int i = 1; i <= 100; i++) {
		CHECK(admit(o.t, now + i * 100000 - 1, &wait) == QUOTA_RATE);
		CHECK(admit(o.t, now + i * 100000, &wait) == QUOTA_OK);
		CHECK(admit(o.t, now + i * 100000, &wait) == QUOTA_RATE);
	}
	CHECK(totals(o.t).queries == 105 && totals(o.t).rejected == 201);
	/* Idle for a long time: the burst comes back, and no more than the burst. */
	now += 3600 * UINT64_C(1000000);
	for (int i = 0; i < 5; i++)
		CHECK(admit(o.t, now, &wait) == QUOTA_OK);
	CHECK(admit(o.t, now, &wait) == QUOTA_RATE);
	quota_free(o.q);
}

static void test_gcra_delay(void)
{
	struct cfg_tenant c = tenant("acme", 10, 1, CFG_RATE_DELAY, 350);
	struct one o;
	one_init(&o, &c);
	uint64_t now = 1000, wait = 1;
	CHECK(admit(o.t, now, &wait) == QUOTA_OK && wait == 0);
	CHECK(admit(o.t, now, &wait) == QUOTA_DELAY && wait == 100000);
	CHECK(admit(o.t, now, &wait) == QUOTA_DELAY && wait == 200000);
	CHECK(admit(o.t, now, &wait) == QUOTA_DELAY && wait == 300000);
	/* Past max_delay: refused, and no slot is taken. */
	CHECK(admit(o.t, now, &wait) == QUOTA_RATE);
	CHECK(admit(o.t, now, &wait) == QUOTA_RATE);
	CHECK(admit(o.t, now + 50000, &wait) == QUOTA_DELAY && wait == 350000);
	CHECK(totals(o.t).queries == 5 && totals(o.t).rejected == 2);
	quota_free(o.q);

	/* 3 per second: waits are whole microseconds, rounded up, of exact thirds. */
	c = tenant("acme", 3, 1, CFG_RATE_DELAY, 1000);
	one_init(&o, &c);
	CHECK(admit(o.t, 0, &wait) == QUOTA_OK);
	CHECK(admit(o.t, 0, &wait) == QUOTA_DELAY && wait == 333334);
	CHECK(admit(o.t, 0, &wait) == QUOTA_DELAY && wait == 666667);
	CHECK(admit(o.t, 0, &wait) == QUOTA_DELAY && wait == 1000000);
	CHECK(admit(o.t, 0, &wait) == QUOTA_RATE);
	CHECK(admit(o.t, 333333, &wait) == QUOTA_RATE);
	CHECK(admit(o.t, 333334, &wait) == QUOTA_DELAY && wait == 1000000);
	quota_free(o.q);

	/* No queries_per_second: no rate at all. */
	c = tenant("acme", 0, 0, CFG_RATE_REJECT, 0);
	one_init(&o, &c);
	for (int i = 0; i < 1000; i++)
		CHECK(admit(o.t, 0, &wait) == QUOTA_OK);
	quota_free(o.q);
}

/*
 * Burst 2, then query k of a rate of qps is first admitted at ceil(k * 1e6 / qps)
 * µs after the start. (The tolerance of one interval absorbs the rounding of
 * arrivals to whole µs; with none, GCRA restarts from each late arrival, as it
 * should, and the schedule is that of whole µs.)
 */
static void check_exact_rate(uint32_t qps, uint64_t start, uint64_t n)
{
	struct cfg_tenant c = tenant("acme", qps, 2, CFG_RATE_REJECT, 0);
	struct one o;
	one_init(&o, &c);
	uint64_t wait;
	int bad = 0;
	CHECK(admit(o.t, start, &wait) == QUOTA_OK);
	for (uint64_t k = 0; k < n; k++) {
		uint64_t at = start + (k * 1000000 + qps - 1) / qps;
		if (k && admit(o.t, at - 1, &wait) != QUOTA_RATE)
			bad++;
		if (admit(o.t, at, &wait) != QUOTA_OK)
			bad++;
	}
	CHECK(bad == 0);
	quota_free(o.q);
}

static void test_gcra_exact(void)
{
	/* A day of 3 qps and of 7 qps, a quarter-million seconds of 1 qps: no drift. */
	check_exact_rate(3, UINT64_C(1000000000000), 3 * DAY);
	check_exact_rate(7, 12345, 7 * DAY);
	check_exact_rate(1, 0, 250000);
	check_exact_rate(1024, 1, 100000);

	/* A rate finer than the clock's ticks can express is never exceeded (qps prime, > 1000). */
	struct cfg_tenant c = tenant("acme", 999983, 10, CFG_RATE_REJECT, 0);
	struct one o;
	one_init(&o, &c);
	uint64_t n = 0, wait;
	for (uint64_t us = 0; us < 1000000; us++) {
		while (admit(o.t, us, &wait) == QUOTA_OK)
			n++;
	}
	CHECK(n <= 999983 + 10 && n >= 999983 / 100 * 99);
	quota_free(o.q);
}

/* Threads that share a fake clock, each advancing it by step per call. */
struct hammer {
	struct quota_tenant *t;
	atomic_uint next;          /* the count block of the next thread to start */
	_Atomic uint64_t clock;
	uint64_t step, calls, wall;
	atomic_ulong ok, delayed, rate, budget;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	struct quota_count *count = &h->t->counts[atomic_fetch_add(&h->next, 1)];
	for (uint64_t i = 0; i < h->calls; i++) {
		uint64_t now = atomic_fetch_add(&h->clock, h->step) + h->step, wait;
		const struct cfg_budget *which;
		switch (quota_admit(h->t, count, now, h->wall, &wait, &which)) {
		case QUOTA_OK: atomic_fetch_add(&h->ok, 1); break;
		case QUOTA_DELAY: atomic_fetch_add(&h->delayed, 1); break;
		case QUOTA_RATE: atomic_fetch_add(&h->rate, 1); break;
		case QUOTA_BUDGET: atomic_fetch_add(&h->budget, 1); break;
		}
	}
	return NULL;
}

static void hammer(struct hammer *h)
{
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&th[i], NULL, hammer_run, h) == 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
}

static void test_gcra_threads(void)
{
	/* 1000 qps, burst 50; 8 threads x 10,000 calls, 100 µs apart: 8 s of fake time. */
	struct cfg_tenant c = tenant("acme", 1000, 50, CFG_RATE_REJECT, 0);
	struct one o;
	one_init(&o, &c);
	struct hammer h = { .t = o.t, .step = 100, .calls = 10000, .wall = WALL0 };
	hammer(&h);
	uint64_t elapsed_us = atomic_load(&h.clock), ok = atomic_load(&h.ok);
	uint64_t most = 50 + elapsed_us / 1000 + 1;
	CHECK(ok <= most);
	CHECK(ok >= most * 9 / 10);
	CHECK(ok + atomic_load(&h.rate) == NTHREADS * h.calls);
	CHECK(totals(o.t).queries == ok && totals(o.t).rejected == atomic_load(&h.rate));
	quota_free(o.q);

	/* Delay mode: what is admitted, now or later, still fits the rate up to the latest slot. */
	c = tenant("acme", 1000, 10, CFG_RATE_DELAY, 20);
	one_init(&o, &c);
	h = (struct hammer){ .t = o.t, .step = 100, .calls = 10000, .wall = WALL0 };
	hammer(&h);
	elapsed_us = atomic_load(&h.clock) + 20000;
	uint64_t admitted = atomic_load(&h.ok) + atomic_load(&h.delayed);
	CHECK(admitted <= 10 + elapsed_us / 1000 + 1);
	CHECK(admitted >= atomic_load(&h.clock) / 1000 * 9 / 10);
	CHECK(atomic_load(&h.delayed) > 0 && atomic_load(&h.rate) > 0);
	CHECK(totals(o.t).queries == admitted);
	quota_free(o.q);
}

static void test_budget_threads(void)
{
	/* Exactly the limit is admitted in a window, however many threads ask. */
	struct cfg_budget b = { .metric = CFG_METRIC_QUERIES, .per = CFG_WINDOW_DAY, .limit = 10000 };
	struct cfg_tenant c = tenant("acme", 0, 0, CFG_RATE_REJECT, 0);
	c.budgets = &b;
	c.nbudgets = 1;
	struct one o;
	one_init(&o, &c);
	struct hammer h = { .t = o.t, .step = 1, .calls = 2000, .wall = WALL0 + 100 };
	hammer(&h);
	CHECK(atomic_load(&h.ok) == 10000 && atomic_load(&h.budget) == NTHREADS * 2000 - 10000);
	CHECK(quota_used(o.t, 0, WALL0 + 100) == 10000);
	const struct cfg_budget *which = NULL;
	uint64_t wait;
	CHECK(quota_admit(o.t, o.t->counts, 0, WALL0 + DAY - 1, &wait, &which) == QUOTA_BUDGET && which == &b);
	CHECK(quota_admit(o.t, o.t->counts, 0, WALL0 + DAY, &wait, &which) == QUOTA_OK && which == NULL);
	quota_free(o.q);

	/* With a rate too: queries refused by the rate are not left counted in the budget. */
	struct cfg_budget bb[2] = {
		{ .metric = CFG_METRIC_QUERIES, .per = CFG_WINDOW_HOUR, .limit = 100000 },
		{ .metric = CFG_METRIC_QUERIES, .per = CFG_WINDOW_DAY, .limit = 3000 },
	};
	c = tenant("acme", 1000, 100, CFG_RATE_REJECT, 0);
	c.budgets = bb;
	c.nbudgets = 2;
	one_init(&o, &c);
	h = (struct hammer){ .t = o.t, .step = 500, .calls = 2000, .wall = WALL0 };
	hammer(&h);
	uint64_t ok = atomic_load(&h.ok);
	CHECK(ok == 3000);
	CHECK(atomic_load(&h.rate) > 0 && atomic_load(&h.budget) > 0);
	CHECK(quota_used(o.t, 0, WALL0) == ok && quota_used(o.t, 1, WALL0) == ok);
	quota_free(o.q);
}

struct adder {
	struct quota_tenant *t;
	atomic_uint next;
	uint64_t wall;
};

static void *adder_run(void *arg)
{
	struct adder *a = arg;
	struct quota_count *count = &a->t->counts[atomic_fetch_add(&a->next, 1)];
	for (uint64_t i = 1; i <= 5000; i++)
		quota_add(a->t, count, CFG_METRIC_BYTES_OUT, i, a->wall);
	return NULL;
}

static void test_windows(void)
{
	/* Window arithmetic, UTC-aligned. */
	CHECK(quota_window_index(CFG_WINDOW_MINUTE, 119) == 1 && quota_window_index(CFG_WINDOW_MINUTE, 120) == 2);
	CHECK(quota_window_index(CFG_WINDOW_HOUR, 7199) == 1 && quota_window_index(CFG_WINDOW_DAY, WALL0) == 19000);
	CHECK(quota_window_left(CFG_WINDOW_MINUTE, 0) == 60 && quota_window_left(CFG_WINDOW_MINUTE, 59) == 1);
	CHECK(quota_window_left(CFG_WINDOW_MINUTE, 60) == 60 && quota_window_left(CFG_WINDOW_MINUTE, 61) == 59);
	CHECK(quota_window_left(CFG_WINDOW_HOUR, 3599) == 1 && quota_window_left(CFG_WINDOW_HOUR, 3600) == 3600);
	CHECK(quota_window_left(CFG_WINDOW_DAY, WALL0 - 1) == 1 && quota_window_left(CFG_WINDOW_DAY, WALL0) == DAY);
	CHECK(strcmp(quota_metric_name(CFG_METRIC_SERVER_TIME), "server_time") == 0);
	CHECK(strcmp(quota_window_name(CFG_WINDOW_HOUR), "hour") == 0);

	struct cfg_budget b[3] = {
		{ .metric = CFG_METRIC_QUERIES, .per = CFG_WINDOW_MINUTE, .limit = 5 },
		{ .metric = CFG_METRIC_ROWS, .per = CFG_WINDOW_MINUTE, .limit = 100 },
		{ .metric = CFG_METRIC_BYTES_OUT, .per = CFG_WINDOW_HOUR, .limit = 0 },
	};
	struct cfg_tenant c = tenant("acme", 0, 0, CFG_RATE_REJECT, 0);
	c.budgets = b;
	c.nbudgets = 3;
	struct one o;
	one_init(&o, &c);
	const struct cfg_budget *which;
	uint64_t wait, w = WALL0 + 120;

	/* Usage of minute k is not seen in minute k + 1. */
	for (int i = 0; i < 5; i++)
		CHECK(quota_admit(o.t, o.t->counts, 0, w + 59, &wait, &which) == QUOTA_OK);
	CHECK(quota_admit(o.t, o.t->counts, 0, w + 59, &wait, &which) == QUOTA_BUDGET && which == &b[0]);
	CHECK(quota_used(o.t, 0, w) == 5 && quota_used(o.t, 0, w + 60) == 0);
	CHECK(quota_admit(o.t, o.t->counts, 0, w + 60, &wait, &which) == QUOTA_OK);
	CHECK(quota_used(o.t, 0, w + 60) == 1 && quota_used(o.t, 0, w) == 0);

	/* A spent budget of another metric refuses queries until its window ends. */
	quota_add(o.t, o.t->counts, CFG_METRIC_ROWS, 99, w + 60);
	CHECK(quota_admit(o.t, o.t->counts, 0, w + 60, &wait, &which) == QUOTA_OK);
	quota_add(o.t, o.t->counts, CFG_METRIC_ROWS, 1, w + 60);
	CHECK(quota_admit(o.t, o.t->counts, 0, w + 60, &wait, &which) == QUOTA_BUDGET && which == &b[1]);
	CHECK(quota_used(o.t, 0, w + 60) == 2);
	CHECK(quota_admit(o.t, o.t->counts, 0, w + 120, &wait, &which) == QUOTA_OK);
	CHECK(totals(o.t).rows == 100 && totals(o.t).rejected == 2);

	/* A thread whose clock is a moment behind counts into the window already begun. */
	quota_add(o.t, o.t->counts, CFG_METRIC_ROWS, 7, w + 180);
	quota_add(o.t, o.t->counts, CFG_METRIC_ROWS, 1, w + 179);
	CHECK(quota_used(o.t, 1, w + 180) == 8);

	/* quota_roll resets words of older windows. */
	quota_roll(o.q, w + 240);
	CHECK(quota_used(o.t, 1, w + 240) == 0 && quota_used(o.t, 1, w + 180) == 0);
	CHECK(atomic_load(&o.t->budgets[1].word) >> QUOTA_USED_BITS ==
	      (quota_window_index(CFG_WINDOW_MINUTE, w + 240) & 0xFFFF));

	/* quota_add from many threads sums exactly, in budgets and totals. */
	pthread_t th[NTHREADS];
	struct adder a = { .t = o.t, .wall = WALL0 + 7200 };
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&th[i], NULL, adder_run, &a) == 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	uint64_t sum = NTHREADS * UINT64_C(5000) * 5001 / 2;
	CHECK(quota_used(o.t, 2, WALL0 + 7200) == sum && totals(o.t).bytes_out == sum);

	/* Usage saturates at QUOTA_USED_MAX and never spills into the window tag; totals go on. */
	quota_add(o.t, o.t->counts, CFG_METRIC_BYTES_OUT, QUOTA_USED_MAX - sum - 5, WALL0 + 7200);
	CHECK(quota_used(o.t, 2, WALL0 + 7200) == QUOTA_USED_MAX - 5);
	quota_add(o.t, o.t->counts, CFG_METRIC_BYTES_OUT, 10, WALL0 + 7200);
	CHECK(quota_used(o.t, 2, WALL0 + 7200) == QUOTA_USED_MAX);
	quota_add(o.t, o.t->counts, CFG_METRIC_BYTES_OUT, UINT64_MAX, WALL0 + 7200);
	CHECK(quota_used(o.t, 2, WALL0 + 7200) == QUOTA_USED_MAX);
	CHECK(atomic_load(&o.t->budgets[2].word) >> QUOTA_USED_BITS ==
	      (quota_window_index(CFG_WINDOW_HOUR, WALL0 + 7200) & 0xFFFF));
	CHECK(totals(o.t).bytes_out == QUOTA_USED_MAX + 5 + UINT64_MAX);
	quota_free(o.q);
}

/* Threads entering and leaving; inside counts those in, top the most seen at once. */
struct gate {
	struct quota_tenant *t;
	bool servers;
	atomic_uint inside, top, refused;
};

static void *gate_run(void *arg)
{
	struct gate *g = arg;
	for (int i = 0; i < 20000; i++) {
		if (!(g->servers ? quota_server_take(g->t) : quota_client_enter(g->t))) {
			atomic_fetch_add(&g->refused, 1);
			continue;
		}
		unsigned n = atomic_fetch_add(&g->inside, 1) + 1, top = atomic_load(&g->top);
		while (n > top && !atomic_compare_exchange_weak(&g->top, &top, n))
			;
		atomic_fetch_sub(&g->inside, 1);
		if (g->servers)
			quota_server_give(g->t);
		else
			quota_client_leave(g->t);
	}
	return NULL;
}

static void test_counters(void)
{
	struct cfg_tenant c = tenant("acme", 0, 0, CFG_RATE_REJECT, 0);
	c.max_client_connections = 3;
	c.max_server_connections = 2;
	struct one o;
	one_init(&o, &c);
	for (int servers = 0; servers < 2; servers++) {
		struct gate g = { .t = o.t, .servers = servers };
		pthread_t th[NTHREADS];
		for (int i = 0; i < NTHREADS; i++)
			CHECK(pthread_create(&th[i], NULL, gate_run, &g) == 0);
		for (int i = 0; i < NTHREADS; i++)
			pthread_join(th[i], NULL);
		CHECK(atomic_load(&g.top) >= 1 && atomic_load(&g.top) <= (servers ? 2u : 3u));
		CHECK(atomic_load(&o.t->clients) == 0 && atomic_load(&o.t->servers) == 0);
	}
	CHECK(quota_client_enter(o.t) && quota_client_enter(o.t) && quota_client_enter(o.t));
	CHECK(!quota_client_enter(o.t) && atomic_load(&o.t->clients) == 3);
	quota_client_leave(o.t);
	CHECK(quota_client_enter(o.t));
	CHECK(quota_server_take(o.t) && quota_server_take(o.t) && !quota_server_take(o.t));
	quota_free(o.q);

	/* 0 is no limit. */
	c.max_client_connections = 0;
	one_init(&o, &c);
	for (int i = 0; i < 1000; i++)
		CHECK(quota_client_enter(o.t));
	quota_free(o.q);
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void test_state(void)
{
	char dir[] = "/tmp/rb-quota-XXXXXX", path[64], missing[96], why[256];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/state", dir);
	snprintf(missing, sizeof missing, "%s/nothing/state", dir);

	struct cfg_budget b1[2] = {
		{ .metric = CFG_METRIC_QUERIES, .per = CFG_WINDOW_DAY, .limit = 1000000 },
		{ .metric = CFG_METRIC_BYTES_OUT, .per = CFG_WINDOW_HOUR, .limit = UINT64_C(10737418240) },
	};
	struct cfg_budget b2[2] = {
		{ .metric = CFG_METRIC_ROWS, .per = CFG_WINDOW_MINUTE, .limit = 500 },
		{ .metric = CFG_METRIC_SERVER_TIME, .per = CFG_WINDOW_DAY, .limit = 0 },
	};
	struct cfg_tenant t[2] = {
		tenant("acme", 0, 0, CFG_RATE_REJECT, 0),
		tenant("big corp\n%x \xc3\xa9", 0, 0, CFG_RATE_REJECT, 0),
	};
	t[0].budgets = b1, t[0].nbudgets = 2, t[0].max_client_connections = 200, t[0].max_server_connections = 8;
	t[1].budgets = b2, t[1].nbudgets = 2;
	struct cfg cfg = { .tenants = t, .ntenants = 2 };
	uint64_t w = WALL0 + 3 * 3600 + 5 * 60 + 7, wait;
	const struct cfg_budget *which;

	struct quota *q = quota_new(&cfg, 1);
	for (int i = 0; i < 1234; i++)
		CHECK(quota_admit(&q->tenants[0], q->tenants[0].counts, 0, w, &wait, &which) == QUOTA_OK);
	quota_add(&q->tenants[0], q->tenants[0].counts, CFG_METRIC_BYTES_OUT, 10485760, w);
	quota_add(&q->tenants[1], q->tenants[1].counts, CFG_METRIC_ROWS, 42, w);
	quota_add(&q->tenants[1], q->tenants[1].counts, CFG_METRIC_SERVER_TIME, 1000000, w);
	CHECK(quota_save(q, path, w) == 0);
	CHECK(quota_save(q, missing, w) == -ENOENT);

	/* The file: the header, escaped names, nothing left in path.tmp. */
	char text[1024] = "", tmp[80];
	FILE *f = fopen(path, "r");
	CHECK(f && fread(text, 1, sizeof text - 1, f) > 0);
	if (f)
		fclose(f);
	CHECK(strncmp(text, "ringbouncer-quota 1\nacme queries day 19000 1234\n", 48) == 0);
	CHECK(strstr(text, "\nbig%20corp%0A%25x%20%C3%A9 rows minute ") != NULL);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	CHECK(access(tmp, F_OK) != 0);

	/* Loaded into a fresh quota, usage is back; loading twice does not double it. */
	struct quota *r = quota_new(&cfg, 1);
	CHECK(quota_load(r, path, w + 1, why, sizeof why) == 0);
	CHECK(quota_load(r, path, w + 1, why, sizeof why) == 0);
	CHECK(quota_used(&r->tenants[0], 0, w) == 1234 && quota_used(&r->tenants[0], 1, w) == 10485760);
	CHECK(quota_used(&r->tenants[1], 0, w) == 42 && quota_used(&r->tenants[1], 1, w) == 1000000);
	quota_free(r);

	/* An hour later only the day budgets are of the current window. */
	r = quota_new(&cfg, 1);
	CHECK(quota_load(r, path, w + 3600, why, sizeof why) == 0);
	CHECK(quota_used(&r->tenants[0], 0, w + 3600) == 1234 && quota_used(&r->tenants[0], 1, w + 3600) == 0);
	CHECK(quota_used(&r->tenants[1], 0, w + 3600) == 0 && quota_used(&r->tenants[1], 1, w + 3600) == 1000000);
	quota_free(r);

	/* Unknown tenants and budgets are skipped; corrupt files apply nothing. */
	static const struct {
		const char *text;
		int rc;
		const char *why;
	} cases[] = {
		{ "ringbouncer-quota 1\nghost queries day 19000 5\nacme rows day 19000 5\nacme queries day 19000 7\n", 0, NULL },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme queries day 19000 8", -EINVAL, "line 3: truncated" },
		{ "ringbouncer-quota 2\nacme queries day 19000 7\n", -EINVAL, "line 1: bad header" },
		{ "", -EINVAL, "line 1: empty file" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme queries day 19000 x7\n", -EINVAL, "line 3: bad usage" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme queries day -1 7\n", -EINVAL, "line 3: bad window index" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme queries day 19000\n", -EINVAL, "line 3: expected 5" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme  queries day 19000 7\n", -EINVAL, "line 3: too many" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nac%2 queries day 19000 7\n", -EINVAL, "line 3: bad tenant" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nac:me queries day 19000 7\n", -EINVAL, "line 3: bad tenant" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nac%00me queries day 19000 7\n", -EINVAL, "line 3: bad tenant" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme queries day 18446744073709551616 7\n", -EINVAL,
		  "line 3: bad window index" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme queries day 000000000000000000019000 7\n", -EINVAL,
		  "line 3: bad window index" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme tuples day 19000 7\n", -EINVAL, "line 3: unknown metric" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\nacme queries week 19000 7\n", -EINVAL, "line 3: unknown window" },
		{ "ringbouncer-quota 1\nacme queries day 19000 281474976710656\n", -EINVAL, "line 2: bad usage" },
		{ "ringbouncer-quota 1\nacme queries day 19000 7\r\n", -EINVAL, "line 2: bad usage" },
		{ "ringbouncer-quota 1\n\n", -EINVAL, "line 2: expected 5" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		CHECK(write_text(path, cases[i].text) == 0);
		r = quota_new(&cfg, 1);
		why[0] = 0;
		int rc = quota_load(r, path, w, why, sizeof why);
		CHECK(rc == cases[i].rc);
		if (rc != cases[i].rc || (cases[i].why && !strstr(why, cases[i].why)))
			fprintf(stderr, "case %zu: rc %d, why \"%s\"\n", i, rc, why);
		CHECK(!cases[i].why || strstr(why, cases[i].why));
		CHECK(quota_used(&r->tenants[0], 0, w) == (rc == 0 ? 7 : 0));
		quota_free(r);
	}

	/* A name that needs every escape round-trips. */
	snprintf(text, sizeof text, "ringbouncer-quota 1\nbig%%20corp%%0a%%25x%%20%%C3%%a9 rows minute %llu 3\n",
		 (unsigned long long)quota_window_index(CFG_WINDOW_MINUTE, w));
	CHECK(write_text(path, text) == 0);
	r = quota_new(&cfg, 1);
	CHECK(quota_load(r, path, w, why, sizeof why) == 0);
	CHECK(quota_used(&r->tenants[1], 0, w) == 3);
	quota_free(r);

	CHECK(quota_load(q, missing, w, why, sizeof why) == -ENOENT);

	/* The log line, and a buffer too small for it. */
	char line[256], small[12];
	quota_describe(&q->tenants[0], w, line, sizeof line);
	CHECK(strcmp(line, "acme: clients 0/200, servers 0/8, queries 1234 (rejected 0), queries/day 1234/1000000, "
			   "bytes_out/hour 10485760/10737418240") == 0);
	quota_describe(&q->tenants[1], w, line, sizeof line);
	CHECK(strstr(line, "clients 0/-, servers 0/-") && strstr(line, "server_time/day 1000000/-"));
	memset(small, 'x', sizeof small);
	quota_describe(&q->tenants[0], w, small, 8);
	CHECK(strcmp(small, "acme: c") == 0 && small[8] == 'x');
	quota_describe(&q->tenants[0], w, small, 1);
	CHECK(small[0] == 0 && small[1] == 'c');
	quota_free(q);

	unlink(path);
	CHECK(rmdir(dir) == 0);
}

int main(void)
{
	test_gcra_burst();
	test_gcra_delay();
	test_gcra_exact();
	test_gcra_threads();
	test_budget_threads();
	test_windows();
	test_counters();
	test_state();
	return check_summary();
}
