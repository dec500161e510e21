/* Lock-free connection counts shared by all workers: max_client_connections (tenants have quota/tenant.h). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct quota_conns {
	atomic_uint n;
	uint32_t max;
};

/* Counts one more connection; false when that passes max (it is counted all the same). */
static inline bool quota_conn_enter(struct quota_conns *q)
{
	return atomic_fetch_add_explicit(&q->n, 1, memory_order_relaxed) + 1 <= q->max;
}

static inline void quota_conn_leave(struct quota_conns *q)
{
	atomic_fetch_sub_explicit(&q->n, 1, memory_order_relaxed);
}
