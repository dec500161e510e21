/* Per-tenant limits and usage, shared by all workers and kept with C11 atomics only. */
#pragma once

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cfg.h"

/*
 * Budgets live in one 64-bit word each: the low 16 bits of the window's index
 * (minutes, hours or days since the epoch, UTC) over 48 bits of usage. A
 * window rolls over by compare-and-swap of the whole word, so a reset can
 * never lose or double an increment. Tags repeat every 65,536 windows; the
 * periodic save (quota_roll) touches every word each second, so a stale word
 * is never mistaken for a current one.
 */
#define QUOTA_USED_BITS 48
#define QUOTA_USED_MAX  ((UINT64_C(1) << QUOTA_USED_BITS) - 1)

struct quota_budget {
	const struct cfg_budget *cfg;
	_Atomic uint64_t word;
};

/*
 * Totals since start, for the log line. Each worker counts in its own block,
 * on its own cache line: counting never moves a line between cores. Readers
 * add the blocks up (quota_totals).
 */
struct quota_count {
	alignas(64) atomic_uint_fast64_t queries;
	atomic_uint_fast64_t rejected, rows, bytes_out, server_us;
};

struct quota_totals {
	uint64_t queries, rejected, rows, bytes_out, server_us;
};

struct quota_tenant {
	const struct cfg_tenant *cfg;
	atomic_uint clients;
	atomic_uint servers;
	/*
	 * Rate: GCRA, the token bucket as one number. tat is the theoretical
	 * arrival time of the next query, on CLOCK_MONOTONIC but in ticks of
	 * 1/k µs (k = qps / gcd(qps, 10^6) when that is <= 1000, so that 3 qps
	 * is exact; else 1000, nanoseconds): despite its name, not µs. A query at
	 * now conforms when tat - now <= (burst - 1) * interval, and moves tat to
	 * max(tat, now) + interval. One CAS per query, and exact: no overshoot.
	 */
	_Atomic uint64_t tat_us;
	struct quota_budget *budgets;     /* cfg->nbudgets */
	unsigned metered;                 /* bit (1 << metric) set: some budget counts that metric */
	struct quota_count *counts;       /* one per counting thread (worker) */
	size_t ncounts;
};

/* Every tenant of a configuration, in its order. */
struct quota {
	struct quota_tenant *tenants;
	size_t ntenants;
};

/*
 * Builds zeroed state for every tenant of c (c must outlive it), with ncounts
 * (>= 1) count blocks per tenant. NULL only on out of memory.
 */
struct quota *quota_new(const struct cfg *c, size_t ncounts);
void quota_free(struct quota *q);

/* One more client; false (and not counted) when that would pass max_client_connections. */
bool quota_client_enter(struct quota_tenant *t);
void quota_client_leave(struct quota_tenant *t);
/* One more server connection held; false (not counted) at max_server_connections. */
bool quota_server_take(struct quota_tenant *t);
void quota_server_give(struct quota_tenant *t);

enum quota_verdict {
	QUOTA_OK,       /* run it now */
	QUOTA_DELAY,    /* its rate slot is reserved: run it after *wait_us */
	QUOTA_RATE,     /* over queries_per_second (reject, or a wait past max_delay) */
	QUOTA_BUDGET,   /* a budget is spent: *which says which */
};

/*
 * Admits one query at now_us (CLOCK_MONOTONIC, µs) and wall_s (CLOCK_REALTIME,
 * s). Budgets are checked first (one of any metric at or over its limit
 * refuses; a queries budget is counted here, exactly, by CAS, and given back
 * if the rate then refuses), then the rate. A budget limit of 0 is none.
 * QUOTA_DELAY only with rate_limit_action delay and a wait <= max_delay.
 * The query counts in count's `queries`, a refusal in its `rejected`. wait_us
 * and which may be NULL. Any thread (count: one of t->counts, the caller's).
 */
enum quota_verdict quota_admit(struct quota_tenant *t, struct quota_count *count, uint64_t now_us, uint64_t wall_s,
			       uint64_t *wait_us, const struct cfg_budget **which);

/* Adds usage of a metric other than queries to its budgets (saturating) and to count's totals. Any thread. */
void quota_add(struct quota_tenant *t, struct quota_count *count, enum cfg_metric m, uint64_t amount,
	       uint64_t wall_s);
/* The count blocks of t added up. */
void quota_totals(const struct quota_tenant *t, struct quota_totals *out);

/* Usage of budget i in the window containing wall_s (0 when its word is of another window). */
uint64_t quota_used(const struct quota_tenant *t, size_t i, uint64_t wall_s);
/* Seconds from wall_s until the window containing it ends. */
uint64_t quota_window_left(enum cfg_window per, uint64_t wall_s);
/* Index of the window containing wall_s: minutes, hours or days since the epoch. */
uint64_t quota_window_index(enum cfg_window per, uint64_t wall_s);
const char *quota_metric_name(enum cfg_metric m);   /* "queries", "bytes_out", "rows", "server_time" */
const char *quota_window_name(enum cfg_window per); /* "minute", "hour", "day" */

/* Rolls every budget word of an older window over to the current one (the saver calls it each second). */
void quota_roll(struct quota *q, uint64_t wall_s);

/*
 * Usage of current windows to path, atomically: written to path.tmp, then
 * renamed over path. 0 or -errno.
 */
int quota_save(const struct quota *q, const char *path, uint64_t wall_s) __attribute__((warn_unused_result));
/*
 * Reads usage back. Entries of tenants or budgets no longer configured, and of
 * windows other than the current one, are skipped. A missing file is -ENOENT; a corrupt one
 * is -EINVAL with a reason in why, and nothing of it is applied. 0 or -errno.
 */
int quota_load(struct quota *q, const char *path, uint64_t wall_s, char *why, size_t why_size)
	__attribute__((warn_unused_result));

/*
 * "acme: clients 3/200, servers 2/8, queries 5012 (rejected 3), queries/day 1234/1000000, ..."
 * for the periodic log line ("-" for no limit); cut short to fit, always terminated.
 */
void quota_describe(const struct quota_tenant *t, uint64_t wall_s, char *buf, size_t size);
