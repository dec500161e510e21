/* A worker thread: one io_uring, its buffer ring, its connections, pools and timers. */
#pragma once

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/bufring.h"
#include "lib/ring.h"
#include "quota/rules.h"

struct conn;
struct rt;
struct pool;
struct client;
struct quota_tenant;

/* BackendKeyData pids we give out: worker in bits 20..26, slot below. */
#define WORKER_MAX        128
#define WORKER_SLOT_BITS  20
#define WORKER_SLOT_MAX   (1u << WORKER_SLOT_BITS)

/* A tenant as one worker sees it: the shared usage, and what is this thread's own. */
struct worker_tenant {
	struct quota_tenant *q;
	struct quota_count *count;             /* this worker's totals of the tenant */
	struct quota_rules rules;
	struct client *wait_head, *wait_tail;  /* clients waiting for a max_server_connections slot */
};

/* A deadline of a connection, in the worker's min-heap. */
struct worker_timer {
	uint64_t at;               /* CLOCK_MONOTONIC ms */
	uint32_t slot, gen;
};

struct worker {
	int      id;
	struct rt *rt;
	pthread_t thread;
	struct io_uring ring;
	struct bufring br;

	struct conn **conns;       /* slot -> connection */
	uint32_t *gens;            /* slot -> generation of its last owner */
	uint32_t *free_slots;
	uint32_t  nfree, top, cap;

	struct conn *flush_head;   /* connections with sends to submit this iteration */
	struct conn *starved_head; /* connections whose recv ran out of buffers */
	struct conn *reap_head;    /* closing connections to free once idle */
	struct pool *pools;        /* this worker's pools, keyed by (database, user) */
	struct worker_tenant *tenants;  /* one per tenant of the config, in its order */
	struct conn_iov *iovs;     /* sendmsg vectors of SQEs not yet submitted */
	uint32_t  iovs_used;

	uint64_t now;              /* CLOCK_MONOTONIC ms, refreshed each iteration */
	uint64_t now_us;           /* the same in µs */
	uint64_t wall;             /* CLOCK_REALTIME s, the same moment (only with tenants) */
	uint32_t nclients;
	uint32_t nservers;
	bool     stopping;
	uint64_t stop_deadline;
	struct __kernel_timespec tick_ts;
	struct worker_timer *timers;  /* min-heap by `at` */
	uint32_t  ntimers, timers_cap;
	uint64_t  wake_armed;      /* deadline of the OP_WAKE in flight, 0: none */
	struct __kernel_timespec wake_ts;
	int      start_err;        /* ring set-up result, read after the start barrier */
	pthread_barrier_t *started;
};

/*
 * Starts the thread, which creates its ring and buffer ring and then waits on
 * `started`; after the barrier, w->start_err tells whether it runs. Main thread.
 */
int worker_start(struct worker *w, struct rt *rt, int id, pthread_barrier_t *started)
	__attribute__((warn_unused_result));
void worker_join(struct worker *w);

/* A free SQE, submitting what is queued first if the SQ is full. Never NULL. */
struct io_uring_sqe *worker_sqe(struct worker *w);
/* Scratch for one sendmsg's header and vector, valid until the next submit. */
struct conn_iov *worker_iov(struct worker *w);
/* Slot table: a slot and generation for c, or -ENOMEM. */
int worker_slot_alloc(struct worker *w, struct conn *c) __attribute__((warn_unused_result));
void worker_slot_free(struct worker *w, struct conn *c);
struct conn *worker_conn(struct worker *w, uint32_t slot);
/* c has sends queued: submit them at the end of this iteration. */
void worker_flush_later(struct worker *w, struct conn *c);
void worker_add_starved(struct worker *w, struct conn *c);
/* c is closing: free it at the end of an iteration once nothing is in flight. */
void worker_reap_later(struct worker *w, struct conn *c);
/*
 * Posts a completion (op, slot, gen, res) on worker `to`'s ring with MSG_RING.
 * Any thread that owns `ring`; the message carries integers only. Only a
 * failure completes on `ring` (as OP_IGNORE unless the caller re-tags the
 * returned SQE).
 */
struct io_uring_sqe *worker_post(struct io_uring *ring, struct worker *to, enum ring_op op,
				 uint32_t slot, uint32_t gen, int32_t res);
/*
 * Calls c->ops->on_timer at or soon after at (ms, CLOCK_MONOTONIC), to the
 * millisecond rather than the tick's 100 ms. Nothing is called once c is freed.
 */
void worker_timer_at(struct worker *w, struct conn *c, uint64_t at);
