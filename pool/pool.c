/* Per-worker pools: idle servers (LIFO), waiting clients (FIFO), and the global cap shared through atomics. */
#include "pool/pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/rt.h"
#include "lib/worker.h"
#include "pool/server.h"
#include "proto/sqlstate.h"

#define POOL_NEED_RETRY_MS 200
#define POOL_LEASE_MS      100   /* a server serves its worker this long before it pays a debt */

/*
 * The registry is written under a lock only when a worker first meets a
 * (database, user) pair; readers index it by id without locking, which is
 * safe because entries are never moved or freed while workers run.
 */
struct pool_caps {
	pthread_mutex_t lock;
	uint32_t n;
	struct pool_cap *_Atomic v[POOL_CAPS_MAX];
};

static void pool_params_free(struct pool_params *pp);

struct pool_caps *pool_caps_new(void)
{
	struct pool_caps *caps = calloc(1, sizeof *caps);
	if (!caps)
		return NULL;
	pthread_mutex_init(&caps->lock, NULL);
	return caps;
}

void pool_caps_free(struct pool_caps *caps)
{
	if (!caps)
		return;
	for (uint32_t i = 0; i < caps->n; i++) {
		struct pool_cap *cap = atomic_load(&caps->v[i]);
		pool_params_free(atomic_load(&cap->params));
		free(cap->db);
		free(cap->user);
		free(cap);
	}
	pthread_mutex_destroy(&caps->lock);
	free(caps);
}

static struct pool_cap *pool_cap_get(struct pool_caps *caps, const char *db, const char *user,
				     uint32_t size)
{
	struct pool_cap *found = NULL;
	pthread_mutex_lock(&caps->lock);
	for (uint32_t i = 0; i < caps->n && !found; i++) {
		struct pool_cap *cap = atomic_load(&caps->v[i]);
		if (strcmp(cap->db, db) == 0 && strcmp(cap->user, user) == 0)
			found = cap;
	}
	if (!found && caps->n < POOL_CAPS_MAX) {
		found = calloc(1, sizeof *found);
		if (found) {
			found->db = strdup(db);
			found->user = strdup(user);
			found->size = size;
			found->id = caps->n;
			if (!found->db || !found->user)
				die("out of memory");
			atomic_store(&caps->v[caps->n], found);
			caps->n++;
		}
	}
	pthread_mutex_unlock(&caps->lock);
	return found;
}

static struct pool *pool_by_cap(struct worker *w, uint32_t id)
{
	for (struct pool *p = w->pools; p; p = p->next)
		if (p->cap->id == id)
			return p;
	return NULL;
}

static void pool_broadcast(struct pool *p, enum ring_op op)
{
	struct rt *rt = p->w->rt;
	for (uint32_t i = 0; i < rt->nworkers; i++)
		if (&rt->workers[i] != p->w)
			worker_post(&p->w->ring, &rt->workers[i], op, p->cap->id, 0, 0);
}

static int pool_resolve(struct pool *p, const char **why)
{
	const struct cfg_db *d = p->d;
	if (d->host[0] == '/') {
		struct sockaddr_un *sun = (struct sockaddr_un *)&p->addr;
		sun->sun_family = AF_UNIX;
		int n = snprintf(sun->sun_path, sizeof sun->sun_path, "%s/.s.PGSQL.%u", d->host, d->port);
		if (n < 0 || (size_t)n >= sizeof sun->sun_path) {
			*why = "unix socket path too long";
			return -ENAMETOOLONG;
		}
		p->addrlen = sizeof *sun;
		p->family = AF_UNIX;
		return 0;
	}
	/* Blocking, but only once per pool and worker; numeric hosts never touch DNS. */
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	char port[8];
	snprintf(port, sizeof port, "%u", d->port);
	int ret = getaddrinfo(d->host, port, &hints, &res);
	if (ret) {
		*why = gai_strerror(ret);
		return -EHOSTUNREACH;
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addrlen = res->ai_addrlen;
	p->family = res->ai_family;
	freeaddrinfo(res);
	return 0;
}

struct pool *pool_get(struct worker *w, const char *db, const char *user,
		      const struct cfg_db *d, const char **why)
{
	for (struct pool *p = w->pools; p; p = p->next)
		if (strcmp(p->db, db) == 0 && strcmp(p->user, user) == 0)
			return p;

	struct pool *p = calloc(1, sizeof *p);
	if (!p)
		die("out of memory");
	p->w = w;
	p->d = d;
	p->db = strdup(db);
	p->user = strdup(user);
	if (!p->db || !p->user)
		die("out of memory");
	p->server_db = d->dbname ? d->dbname : p->db;
	p->server_user = d->user ? d->user : p->user;
	p->server_auth = auth_find(w->rt->auth, p->server_user);
	p->server_password = d->password ? d->password : p->server_auth ? p->server_auth->plain : NULL;
	p->cap = pool_cap_get(w->rt->caps, db, user, d->pool_size);
	if (!p->cap || pool_resolve(p, why) < 0) {
		if (!p->cap)
			*why = "too many pools";
		free(p->db);
		free(p->user);
		free(p);
		return NULL;
	}
	p->next = w->pools;
	w->pools = p;
	return p;
}

/* Reserves one server of the global cap. */
static bool pool_reserve(struct pool *p)
{
	unsigned n = atomic_load_explicit(&p->cap->servers, memory_order_relaxed);
	do {
		if (n >= p->cap->size)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&p->cap->servers, &n, n + 1,
							memory_order_acq_rel, memory_order_relaxed));
	return true;
}

static void pool_unreserve(struct pool *p)
{
	atomic_fetch_sub_explicit(&p->cap->servers, 1, memory_order_acq_rel);
	/* Someone on another worker may be waiting for exactly this room. */
	if (atomic_load_explicit(&p->cap->waiting, memory_order_acquire) > p->nwaiting)
		pool_broadcast(p, OP_POOL_FREED);
}

static struct pool_waiter *pool_pop_waiter(struct pool *p)
{
	struct pool_waiter *wt = p->wait_head;
	if (!wt)
		return NULL;
	p->wait_head = wt->next;
	if (!p->wait_head)
		p->wait_tail = NULL;
	wt->next = NULL;
	wt->queued = false;
	p->nwaiting--;
	atomic_fetch_sub_explicit(&p->cap->waiting, 1, memory_order_acq_rel);
	p->waits++;
	p->wait_ms += p->w->now - wt->since;
	return wt;
}

/*
 * Sharing the cap between workers. Each worker has a share, pool_size divided
 * by the worker count. A worker may hold more while nobody else needs room;
 * one below its share that finds the cap full posts NEED, and a worker above
 * its share then owes a server, which it closes when that server next frees
 * once its lease is over (POOL_LEASE_MS), and no worker at its share grows
 * into room while others' clients wait.
 * Only NEED closes servers, so a balanced pool never churns connections.
 */
static uint32_t pool_share(const struct pool *p)
{
	return p->cap->size / p->w->rt->nworkers;
}

static bool pool_lease_over(const struct pool *p, const struct server *s)
{
	return p->w->now - s->created >= POOL_LEASE_MS;
}

/* Every waiter gets the failure: nothing can serve them soon. */
static void pool_fail_waiters(struct pool *p, const char *sqlstate, const char *why)
{
	struct pool_waiter *wt;
	while ((wt = pool_pop_waiter(p)))
		wt->fail(wt, sqlstate, why);
}

/*
 * A server login failed: for server_login_retry no new one is tried, and then
 * one at a time until one succeeds, so a PostgreSQL that refuses logins (down,
 * at max_connections, a bad password) is asked about once per
 * server_login_retry for as long as clients wait, however many they are.
 */
static void pool_login_failed(struct pool *p, const char *sqlstate, const char *why)
{
	snprintf(p->last_error, sizeof p->last_error, "%s", why);
	snprintf(p->last_sqlstate, sizeof p->last_sqlstate, "%s", sqlstate);
	p->retry_at = p->w->now + p->w->rt->cfg->server_login_retry;
	p->probing = true;
	/* Nothing else can serve the waiters soon: tell them why. */
	if (p->nservers == 0)
		pool_fail_waiters(p, p->last_sqlstate, p->last_error);
}

/*
 * Opens servers while clients wait and the cap has room; otherwise asks other
 * workers for room. told: this worker was told room freed (POOL_FREED), which
 * breaks the tie when every worker has waiters and none has its share.
 */
static void pool_grow(struct pool *p, bool told)
{
	if (p->w->now < p->retry_at) {
		/* Clients wait for the next try (pool_tick); room freed meanwhile is still ours to take. */
		p->told_later |= told;
		return;
	}
	told |= p->told_later;
	p->told_later = false;
	while (p->nwaiting > p->nconnecting) {
		if (p->probing && p->nconnecting)
			return;
		/* Room freed while other workers' clients wait is theirs, once we have our share. */
		bool others_wait = atomic_load_explicit(&p->cap->waiting, memory_order_acquire) > p->nwaiting;
		bool yield = !told && others_wait && p->nservers >= pool_share(p);
		told = false;
		if (yield || !pool_reserve(p)) {
			/* A cap smaller than the worker count has a share of 0: then any worker may ask. */
			uint32_t want = pool_share(p) ? pool_share(p) : 1;
			if (!p->need_posted && p->nservers < want) {
				p->need_posted = true;
				p->need_at = p->w->now;
				pool_broadcast(p, OP_POOL_NEED);
			}
			return;
		}
		int ret = server_connect(p);
		if (ret < 0) {
			atomic_fetch_sub_explicit(&p->cap->servers, 1, memory_order_acq_rel);
			char why[128];
			snprintf(why, sizeof why, "cannot open a server connection: %s", strerror(-ret));
			pool_login_failed(p, SQLSTATE_CONNECTION_FAILURE, why);
			return;
		}
		p->nconnecting++;
		p->nservers++;
	}
}

void pool_acquire(struct pool *p, struct pool_waiter *wt)
{
	if (p->idle) {
		struct server *s = p->idle;
		p->idle = s->next_idle;
		s->next_idle = NULL;
		p->nidle--;
		p->nlinked++;
		wt->ready(wt, s);
		return;
	}
	wt->next = NULL;
	wt->since = p->w->now;
	wt->queued = true;
	if (p->wait_tail)
		p->wait_tail->next = wt;
	else
		p->wait_head = wt;
	p->wait_tail = wt;
	p->nwaiting++;
	atomic_fetch_add_explicit(&p->cap->waiting, 1, memory_order_acq_rel);
	pool_grow(p, false);
}

void pool_cancel_wait(struct pool *p, struct pool_waiter *wt)
{
	if (!wt->queued)
		return;
	struct pool_waiter **pp = &p->wait_head, *prev = NULL;
	while (*pp && *pp != wt) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		die("waiter not in its pool's queue");
	*pp = wt->next;
	if (p->wait_tail == wt)
		p->wait_tail = prev;
	wt->next = NULL;
	wt->queued = false;
	p->waits++;
	p->wait_ms += p->w->now - wt->since;
	p->nwaiting--;
	atomic_fetch_sub_explicit(&p->cap->waiting, 1, memory_order_acq_rel);
}

static void pool_remove_idle(struct pool *p, struct server *s)
{
	for (struct server **pp = &p->idle; *pp; pp = &(*pp)->next_idle) {
		if (*pp == s) {
			*pp = s->next_idle;
			s->next_idle = NULL;
			p->nidle--;
			return;
		}
	}
}

static void pool_params_free(struct pool_params *pp)
{
	if (!pp)
		return;
	server_params_free(pp->v, pp->n);
	free(pp);
}

/* A fresh server's parameters, before any client's SET: what later logins on every worker are told. */
static void pool_remember_params(struct pool *p, const struct server *s)
{
	if (atomic_load_explicit(&p->cap->params, memory_order_acquire) || !s->nparams)
		return;
	struct pool_params *pp = calloc(1, sizeof *pp);
	if (!pp || !(pp->v = calloc(s->nparams, sizeof *pp->v)))
		die("out of memory");
	for (uint32_t i = 0; i < s->nparams; i++) {
		pp->v[i].name = strdup(s->params[i].name);
		pp->v[i].value = strdup(s->params[i].value);
		if (!pp->v[i].name || !pp->v[i].value)
			die("out of memory");
	}
	pp->n = s->nparams;
	struct pool_params *none = NULL;
	/* Another worker may have published first: its set is as good as ours. */
	if (!atomic_compare_exchange_strong_explicit(&p->cap->params, &none, pp,
						     memory_order_acq_rel, memory_order_acquire))
		pool_params_free(pp);
}

const struct pool_params *pool_params(const struct pool *p)
{
	return atomic_load_explicit(&p->cap->params, memory_order_acquire);
}

static void pool_server_ready_one(struct server *s);

/*
 * Handing a server to a waiter can make that client give it back at once
 * (transaction pooling), which would hand it to the next waiter from inside
 * this call, as deep as the queue is long. Re-entries are queued and served
 * by the outermost call instead.
 */
void pool_server_ready(struct server *s)
{
	struct pool *p = s->pool;
	/* A probe's login worked: the clients still waiting need not wait for the tick. */
	bool probed = p->probing && s->st == SV_LOGIN;
	s->next_idle = p->ready_later;
	p->ready_later = s;
	if (p->readying)
		return;
	p->readying = true;
	while (p->ready_later) {
		struct server *next = p->ready_later;
		p->ready_later = next->next_idle;
		next->next_idle = NULL;
		pool_server_ready_one(next);
	}
	p->readying = false;
	if (probed && !p->w->stopping)
		pool_grow(p, false);
}

static void pool_server_ready_one(struct server *s)
{
	struct pool *p = s->pool;
	/*
	 * A debt is paid with a server that has served here for POOL_LEASE_MS
	 * (one still in its lease pays later from the idle list: pool_pay_idle).
	 * A fresh server serves first, or nobody ever would; and with fewer
	 * servers than workers, paying at every release would hand the servers
	 * from worker to worker at each transaction (a login each time: a few
	 * hundred transactions a second in all).
	 */
	bool served = s->st != SV_LOGIN && pool_lease_over(p, s);
	if (s->st == SV_LOGIN) {
		p->nconnecting--;
		p->probing = false;
		pool_remember_params(p, s);
	}
	else if (s->st == SV_LINKED || s->st == SV_RESET)
		p->nlinked--;
	s->st = SV_IDLE;
	s->idle_since = s->state_since = p->w->now;
	p->need_posted = false;

	const struct cfg *cfg = p->w->rt->cfg;
	bool stopping = p->w->stopping;
	bool too_old = cfg->server_lifetime && p->w->now - s->created >= cfg->server_lifetime;
	bool pay = p->owed && served;
	if (pay || stopping || too_old) {
		const char *why = pay ? "room for another worker" : stopping ? "shutdown" : "server_lifetime";
		server_close(s, why);
		return;
	}
	struct pool_waiter *wt = pool_pop_waiter(p);
	if (wt) {
		p->nlinked++;
		wt->ready(wt, s);
		return;
	}
	s->next_idle = p->idle;
	p->idle = s;
	p->nidle++;
}

void pool_server_gone(struct server *s, const char *sqlstate, const char *why)
{
	struct pool *p = s->pool;
	/* Called before the server turns SV_CLOSED: its state says which count it is in. */
	switch (s->st) {
	case SV_IDLE:       pool_remove_idle(p, s); break;
	case SV_CONNECTING:
	case SV_LOGIN:      p->nconnecting--; break;
	case SV_LINKED:
	case SV_RESET:      p->nlinked--; break;
	case SV_CLOSED:     die("server gone twice");
	}
	p->nservers--;
	/* Whatever closed it, its room in the cap is what another worker asked for. */
	if (p->owed)
		p->owed--;
	pool_unreserve(p);

	if (sqlstate && why)
		pool_login_failed(p, sqlstate, why);
	if (!p->w->stopping)
		pool_grow(p, false);
}

/* An idle server whose lease is over, or NULL. */
static struct server *pool_idle_past_lease(const struct pool *p)
{
	struct server *s = p->idle;
	while (s && !pool_lease_over(p, s))
		s = s->next_idle;
	return s;
}

/* Debts are paid with idle servers past their lease (pool_server_ready_one pays with busy ones). */
static void pool_pay_idle(struct pool *p)
{
	struct server *s;
	while (p->owed && (s = pool_idle_past_lease(p)))
		server_close(s, "room for another worker");
}

void pool_tick(struct worker *w)
{
	for (struct pool *p = w->pools; p; p = p->next) {
		pool_pay_idle(p);
		/*
		 * A NEED can cross a release on the way, and room a worker yielded to
		 * others' waiters can outlive them: look again rather than wait for
		 * query_wait_timeout.
		 */
		if (p->need_posted && p->nwaiting && w->now - p->need_at >= POOL_NEED_RETRY_MS)
			p->need_posted = false;
		if (p->nwaiting > p->nconnecting && !w->stopping)
			pool_grow(p, false);
	}
	uint64_t limit = w->rt->cfg->query_wait_timeout;
	if (!limit)
		return;
	for (struct pool *p = w->pools; p; p = p->next) {
		while (p->wait_head && w->now - p->wait_head->since >= limit) {
			struct pool_waiter *wt = pool_pop_waiter(p);
			char msg[256];
			snprintf(msg, sizeof msg,
				 "no server connection available in pool %s/%s after %.1fs (query_wait_timeout)",
				 p->db, p->user, (double)(w->now - wt->since) / 1000.0);
			wt->fail(wt, SQLSTATE_TOO_MANY_CONNECTIONS, msg);
		}
	}
}

void pool_on_freed(struct worker *w, uint32_t cap_id)
{
	struct pool *p = pool_by_cap(w, cap_id);
	if (!p || w->stopping)
		return;
	/* If another worker was quicker to take the room, ask again. */
	p->need_posted = false;
	pool_grow(p, true);
}

void pool_on_need(struct worker *w, uint32_t cap_id)
{
	struct pool *p = pool_by_cap(w, cap_id);
	if (!p)
		return;
	if (p->nservers > pool_share(p) + p->owed) {
		p->owed++;
		pool_pay_idle(p);
		return;
	}
	/*
	 * At its share, a worker still gives idle room nobody here wants, once
	 * the server's lease is over; a NEED still unmet comes again.
	 */
	struct server *s = p->nwaiting ? NULL : pool_idle_past_lease(p);
	if (s)
		server_close(s, "room for another worker");
}

void pool_close_idle(struct worker *w)
{
	for (struct pool *p = w->pools; p; p = p->next)
		while (p->idle)
			server_close(p->idle, "shutdown");
}

void pool_destroy_all(struct worker *w)
{
	while (w->pools) {
		struct pool *p = w->pools;
		w->pools = p->next;
		stmt_table_free(&p->stmts);
		free(p->db);
		free(p->user);
		free(p);
	}
}
