/* The worker loop: one submit per iteration, completions dispatched by op, sends flushed in batches. */
#include "lib/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "lib/client.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/rt.h"
#include "pool/pool.h"
#include "quota/tenant.h"

#define WORKER_RING_ENTRIES 4096
#define WORKER_BUF_COUNT    1024
#define WORKER_BUF_INITIAL  64    /* provided at start; grows under load (lib/bufring.h) */
#define WORKER_BUF_SIZE     (16 * 1024)
#define WORKER_TICK_MS      100
#define WORKER_IOVS         256   /* sendmsg vectors between two submits */

/*
 * Once per iteration, not per message: the clocks a tenant's accounting reads
 * (server time, rate, budget windows) cost nothing per query. The wall clock
 * is only wanted by tenants.
 */
static void worker_clock(struct worker *w)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w->now_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	w->now = w->now_us / 1000;
	if (w->tenants)
		w->wall = (uint64_t)time(NULL);
}

/* Every SQE queued so far goes to the kernel, which copies their vectors: the scratch is free again. */
static void worker_submit(struct worker *w)
{
	io_uring_submit(&w->ring);
	w->iovs_used = 0;
}

struct io_uring_sqe *worker_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	if (sqe)
		return sqe;
	worker_submit(w);
	sqe = io_uring_get_sqe(&w->ring);
	if (!sqe)
		die("no SQE after submit");
	return sqe;
}

struct conn_iov *worker_iov(struct worker *w)
{
	/* Only full after WORKER_IOVS sends in one iteration; their SQEs are all queued. */
	if (w->iovs_used == WORKER_IOVS)
		worker_submit(w);
	return &w->iovs[w->iovs_used++];
}

int worker_slot_alloc(struct worker *w, struct conn *c)
{
	uint32_t slot;
	if (w->nfree) {
		slot = w->free_slots[--w->nfree];
	} else {
		if (w->top == w->cap) {
			uint32_t ncap = w->cap ? w->cap * 2 : 1024;
			if (ncap > WORKER_SLOT_MAX)
				return -ENOMEM;
			struct conn **nc = realloc(w->conns, ncap * sizeof *nc);
			if (!nc)
				return -ENOMEM;
			w->conns = nc;
			uint32_t *ng = realloc(w->gens, ncap * sizeof *ng);
			if (!ng)
				return -ENOMEM;
			w->gens = ng;
			uint32_t *nf = realloc(w->free_slots, ncap * sizeof *nf);
			if (!nf)
				return -ENOMEM;
			w->free_slots = nf;
			memset(w->gens + w->cap, 0, (ncap - w->cap) * sizeof *ng);
			w->cap = ncap;
		}
		slot = w->top++;
	}
	w->conns[slot] = c;
	c->slot = slot;
	c->gen = ++w->gens[slot] & RING_GEN_MASK;
	return 0;
}

void worker_slot_free(struct worker *w, struct conn *c)
{
	must(w->conns[c->slot] == c);
	w->conns[c->slot] = NULL;
	w->free_slots[w->nfree++] = c->slot;
}

struct conn *worker_conn(struct worker *w, uint32_t slot)
{
	return slot < w->top ? w->conns[slot] : NULL;
}

void worker_flush_later(struct worker *w, struct conn *c)
{
	if (c->queued_flush)
		return;
	c->queued_flush = true;
	c->next_flush = w->flush_head;
	w->flush_head = c;
}

void worker_add_starved(struct worker *w, struct conn *c)
{
	bufring_starved(&w->br);
	c->next_starved = w->starved_head;
	w->starved_head = c;
}

void worker_reap_later(struct worker *w, struct conn *c)
{
	if (c->reaping)
		return;
	c->reaping = true;
	c->next_reap = w->reap_head;
	w->reap_head = c;
}

/*
 * Runs after sends and starved re-arms, so a freed connection is on no list.
 * Connections still waiting for completions stay listed for a later pass.
 */
static void worker_reap(struct worker *w)
{
	struct conn *list = w->reap_head, *keep = NULL;
	w->reap_head = NULL;
	while (list) {
		struct conn *c = list;
		list = c->next_reap;
		if (c->inflight) {
			c->next_reap = keep;
			keep = c;
			continue;
		}
		conn_reap(c);
	}
	/* on_free may have queued more: keep them too. */
	while (keep) {
		struct conn *c = keep;
		keep = c->next_reap;
		c->next_reap = w->reap_head;
		w->reap_head = c;
	}
}

struct io_uring_sqe *worker_post(struct io_uring *ring, struct worker *to, enum ring_op op,
				 uint32_t slot, uint32_t gen, int32_t res)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
		if (!sqe)
			die("no SQE after submit");
	}
	io_uring_prep_msg_ring(sqe, to->ring.ring_fd, (uint32_t)res, ring_ud(op, slot, gen), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, ring_ud(OP_IGNORE, 0, 0));
	return sqe;
}

static void worker_arm_tick(struct worker *w)
{
	w->tick_ts = (struct __kernel_timespec){ .tv_nsec = WORKER_TICK_MS * 1000000L };
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ring_ud(OP_TICK, 0, 0));
}

void worker_timer_at(struct worker *w, struct conn *c, uint64_t at)
{
	if (w->ntimers == w->timers_cap)
		w->timers = bytes_grow_array(w->timers, &w->timers_cap, sizeof *w->timers, 64);
	uint32_t i = w->ntimers++;
	while (i && w->timers[(i - 1) / 2].at > at) {
		w->timers[i] = w->timers[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	w->timers[i] = (struct worker_timer){ .at = at, .slot = c->slot, .gen = c->gen };
}

static struct worker_timer worker_timer_pop(struct worker *w)
{
	struct worker_timer top = w->timers[0], last = w->timers[--w->ntimers];
	uint32_t i = 0, n = w->ntimers;
	for (;;) {
		uint32_t k = 2 * i + 1;
		if (k >= n)
			break;
		if (k + 1 < n && w->timers[k + 1].at < w->timers[k].at)
			k++;
		if (w->timers[k].at >= last.at)
			break;
		w->timers[i] = w->timers[k];
		i = k;
	}
	if (n)
		w->timers[i] = last;
	return top;
}

/* Fires what is due, then makes sure one OP_WAKE is armed for the soonest deadline left. */
static void worker_run_timers(struct worker *w)
{
	while (w->ntimers && w->timers[0].at <= w->now) {
		struct worker_timer t = worker_timer_pop(w);
		struct conn *c = worker_conn(w, t.slot);
		if (c && c->gen == t.gen && !c->closing && c->ops->on_timer)
			c->ops->on_timer(c);
	}
	if (!w->ntimers || (w->wake_armed && w->wake_armed <= w->timers[0].at))
		return;
	uint64_t in = w->timers[0].at - w->now;
	w->wake_ts = (struct __kernel_timespec){ .tv_sec = (long long)(in / 1000),
						 .tv_nsec = (long long)(in % 1000) * 1000000 };
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_timeout(sqe, &w->wake_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ring_ud(OP_WAKE, 0, 0));
	w->wake_armed = w->timers[0].at;
}

static void worker_tick(struct worker *w)
{
	for (uint32_t i = 0; i < w->top; i++) {
		struct conn *c = w->conns[i];
		if (!c || c->closing)
			continue;
		if (c->flush_close && w->now >= c->close_by) {
			conn_close(c);
			continue;
		}
		if (c->ops->on_tick)
			c->ops->on_tick(c);
	}
	pool_tick(w);
	if (w->stopping && w->now >= w->stop_deadline)
		client_stop_all(w, true);
	worker_arm_tick(w);
}

static void worker_begin_stop(struct worker *w)
{
	if (w->stopping)
		return;
	w->stopping = true;
	w->stop_deadline = w->now + w->rt->cfg->shutdown_timeout;
	client_stop_all(w, false);
}

static void worker_on_conn_cqe(struct worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	struct conn *c = worker_conn(w, ring_ud_slot(ud));
	if (!c || c->gen != ring_ud_gen(ud)) {
		/* Stale: its owner is gone. A buffer it carries still goes home. */
		if (cqe->flags & IORING_CQE_F_BUFFER) {
			uint16_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			bufring_take(&w->br, bid);
			bufring_put(&w->br, bid);
		}
		log_warn("stale %s completion for slot %u", ring_op_name(ring_ud_op(ud)), ring_ud_slot(ud));
		return;
	}
	switch (ring_ud_op(ud)) {
	case OP_RECV:    conn_on_recv(c, cqe->res, cqe->flags); break;
	case OP_SEND:    conn_on_send(c, cqe->res); break;
	case OP_CONNECT: conn_on_connect(c, cqe->res); break;
	default:         die("op %d is not a connection op", (int)ring_ud_op(ud));
	}
}

static void worker_dispatch(struct worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	switch (ring_ud_op(ud)) {
	case OP_RECV:
	case OP_SEND:
	case OP_CONNECT:
		worker_on_conn_cqe(w, cqe);
		break;
	case OP_TICK:
		worker_tick(w);
		break;
	case OP_WAKE:
		w->wake_armed = 0;  /* worker_run_timers arms the next one */
		break;
	case OP_NEW_CLIENT:
		client_accept(w, cqe->res);
		break;
	case OP_SHUTDOWN:
		worker_begin_stop(w);
		break;
	case OP_CANCEL:
		client_cancel_local(w, ring_ud_slot(ud), (uint32_t)cqe->res);
		break;
	case OP_POOL_FREED:
		pool_on_freed(w, ring_ud_slot(ud));
		break;
	case OP_POOL_NEED:
		pool_on_need(w, ring_ud_slot(ud));
		break;
	case OP_IGNORE:
		if (cqe->res < 0 && cqe->res != -ENOENT && cqe->res != -EALREADY)
			log_debug("async op failed: %s", strerror(-cqe->res));
		break;
	default:
		log_error("unexpected completion op %d", (int)ring_ud_op(ud));
	}
}

static void worker_flush(struct worker *w)
{
	worker_run_timers(w);
	while (w->flush_head) {
		struct conn *c = w->flush_head;
		w->flush_head = c->next_flush;
		conn_submit_sends(c);
	}
	bufring_publish(&w->br);
	/* Of the buffers provided so far: the ring may still grow, see bufring_starved. */
	bool room = w->br.in_ring > w->br.active / 8;
	struct conn *list = w->starved_head, *keep = NULL;
	w->starved_head = NULL;
	while (list) {
		struct conn *c = list;
		list = c->next_starved;
		if (room || c->closing) {
			conn_rearm_starved(c);
		} else {
			c->next_starved = keep;
			keep = c;
		}
	}
	w->starved_head = keep;
	worker_reap(w);
}

static bool worker_done(const struct worker *w)
{
	return w->stopping && w->top == w->nfree;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[8];
	snprintf(name, sizeof name, "w%d", w->id);
	log_set_thread(name);

	worker_clock(w);
	worker_arm_tick(w);
	while (!worker_done(w)) {
		worker_flush(w);
		int ret = io_uring_submit_and_wait(&w->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			die("io_uring_submit_and_wait: %s", strerror(-ret));
		w->iovs_used = 0;
		worker_clock(w);
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			worker_dispatch(w, cqe);
			seen++;
		}
		io_uring_cq_advance(&w->ring, seen);
	}
	pool_destroy_all(w);
	log_debug("worker stopped");
	return NULL;
}

static void worker_tenants_init(struct worker *w)
{
	const struct cfg *cfg = w->rt->cfg;
	if (!cfg->ntenants)
		return;
	w->tenants = calloc(cfg->ntenants, sizeof *w->tenants);
	if (!w->tenants)
		die("out of memory");
	for (size_t i = 0; i < cfg->ntenants; i++) {
		w->tenants[i].q = &w->rt->quota->tenants[i];
		w->tenants[i].count = &w->tenants[i].q->counts[w->id];
		if (quota_rules_init(&w->tenants[i].rules, &cfg->tenants[i]) < 0)
			die("tenant %s: a deny/allow pattern does not compile", cfg->tenants[i].name);
	}
}

static void worker_tenants_free(struct worker *w)
{
	for (size_t i = 0; w->tenants && i < w->rt->cfg->ntenants; i++)
		quota_rules_free(&w->tenants[i].rules);
	free(w->tenants);
	w->tenants = NULL;
}

static int worker_setup(struct worker *w)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			 IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
		.cq_entries = WORKER_RING_ENTRIES * 4,
	};
	int ret = io_uring_queue_init_params(WORKER_RING_ENTRIES, &w->ring, &p);
	if (ret < 0)
		return ret;
	if (!(p.features & IORING_FEAT_SUBMIT_STABLE)) {
		io_uring_queue_exit(&w->ring);
		return -EOPNOTSUPP;
	}
	w->iovs = calloc(WORKER_IOVS, sizeof *w->iovs);
	if (!w->iovs) {
		io_uring_queue_exit(&w->ring);
		return -ENOMEM;
	}
	worker_tenants_init(w);
	ret = bufring_init(&w->br, &w->ring, 0, WORKER_BUF_COUNT, WORKER_BUF_INITIAL,
			   WORKER_BUF_SIZE);
	if (ret < 0) {
		free(w->iovs);
		io_uring_queue_exit(&w->ring);
	}
	return ret;
}

/* The ring is made by the thread that will submit to it: SINGLE_ISSUER binds it to its creator. */
static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	w->start_err = worker_setup(w);
	pthread_barrier_wait(w->started);
	if (w->start_err)
		return NULL;
	return worker_main(w);
}

int worker_start(struct worker *w, struct rt *rt, int id, pthread_barrier_t *started)
{
	w->id = id;
	w->rt = rt;
	w->started = started;
	int ret = pthread_create(&w->thread, NULL, worker_thread, w);
	return -ret;
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
	if (w->start_err)
		return;
	bufring_destroy(&w->br, &w->ring);
	io_uring_queue_exit(&w->ring);
	free(w->iovs);
	free(w->timers);
	worker_tenants_free(w);
	free(w->conns);
	free(w->gens);
	free(w->free_slots);
}
