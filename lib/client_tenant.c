/* Clients of tenants: admission of each query, deny/allow rules, connection slots, delays and usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/client_int.h"
#include "lib/log.h"
#include "lib/rt.h"
#include "lib/worker.h"
#include "pool/pool.h"
#include "pool/server.h"
#include "proto/msg.h"
#include "proto/sqlstate.h"
#include "quota/tenant.h"

const struct cfg_tenant *client_tcfg(const struct client *cl)
{
	return cl->tenant->q->cfg;
}

/*
 * Admission of one Query or Execute against the tenant's budgets and rate.
 * CLIENT_DELAYED sets delay_until (the rate slot is reserved); CLIENT_REFUSED
 * writes the ErrorResponse into err.
 */
enum client_verdict client_admit(struct client *cl, struct wbuf *err)
{
	const struct cfg_tenant *t = client_tcfg(cl);
	const struct worker *w = cl->c.w;
	uint64_t wait_us = 0, wall = w->wall;
	const struct cfg_budget *b = NULL;
	char msg[320], hint[200];
	switch (quota_admit(cl->tenant->q, cl->tenant->count, w->now_us, wall, &wait_us, &b)) {
	case QUOTA_OK:
		return CLIENT_PASS;
	case QUOTA_DELAY:
		cl->guard->delay_until = w->now + (wait_us + 999) / 1000;
		return CLIENT_DELAYED;
	case QUOTA_RATE:
		if (t->rate_limit_action == CFG_RATE_REJECT)
			snprintf(msg, sizeof msg,
				 "query rate limit of tenant \"%s\" exceeded (queries_per_second is %u, burst %u)",
				 t->name, t->queries_per_second, t->burst);
		else
			snprintf(msg, sizeof msg,
				 "query rate limit of tenant \"%s\" exceeded: the query would wait longer than "
				 "max_delay (%.3gs; queries_per_second is %u)",
				 t->name, (double)t->max_delay / 1000.0, t->queries_per_second);
		snprintf(hint, sizeof hint, "The tenant may run %u queries per second; retry later.",
			 t->queries_per_second);
		break;
	case QUOTA_BUDGET:
		snprintf(msg, sizeof msg, "budget of tenant \"%s\" exhausted: %s per %s is limited to %llu",
			 t->name, quota_metric_name(b->metric), quota_window_name(b->per),
			 (unsigned long long)b->limit);
		snprintf(hint, sizeof hint, "The budget resets when the UTC %s ends, in %llu s.",
			 quota_window_name(b->per), (unsigned long long)quota_window_left(b->per, wall));
		break;
	}
	msg_error(err, "ERROR", SQLSTATE_LIMIT_EXCEEDED, msg, NULL, hint);
	return CLIENT_REFUSED;
}

/* The deny/allow rules on a Query's or Parse's text; false with the ErrorResponse in err. */
bool client_rules_pass(struct client *cl, const char *sql, size_t n, struct wbuf *err)
{
	const char *stmt;
	enum quota_rule why;
	if (quota_rules_pass(&cl->tenant->rules, sql, n, &stmt, &why))
		return true;
	static const char *const because[] = {
		[QUOTA_RULE_DENY] = "it matches a deny rule",
		[QUOTA_RULE_ALLOW] = "it matches no allow rule",
		[QUOTA_RULE_READ_ONLY] = "the tenant is read-only and this could make it read-write",
	};
	char msg[320];
	snprintf(msg, sizeof msg, "statement refused for tenant \"%s\": %s", client_tcfg(cl)->name, because[why]);
	atomic_fetch_add_explicit(&cl->tenant->count->rejected, 1, memory_order_relaxed);
	log_info("%s %s/%s tenant %s refused: %.200s", cl->id, cl->db, cl->user, client_tcfg(cl)->name, stmt);
	msg_error(err, "ERROR", SQLSTATE_INSUFFICIENT_PRIVILEGE, msg, NULL, NULL);
	return false;
}

void client_refuse_call(struct client *cl, struct wbuf *err)
{
	char msg[320];
	snprintf(msg, sizeof msg, "function calls (FunctionCall messages) are refused for tenant \"%s\", "
		 "which has deny/allow or read_only rules", client_tcfg(cl)->name);
	atomic_fetch_add_explicit(&cl->tenant->count->rejected, 1, memory_order_relaxed);
	msg_error(err, "ERROR", SQLSTATE_INSUFFICIENT_PRIVILEGE, msg, NULL, "Call the function from SQL instead.");
}

/* Usage the server relayed: added to the tenant's at each ReadyForQuery, not per chunk. */
void client_on_usage(struct server_link *l, uint32_t rows, size_t bytes, uint32_t readies)
{
	struct client *cl = client_of_link(l);
	cl->guard->acc_rows += rows;
	cl->guard->acc_bytes += bytes;
	if (!readies)
		return;
	const struct server *s = cl->srv;
	client_tenant_flush(cl, s && s->txn.pending == 0);
	/* The next request starts its query_timeout now; idle in a transaction starts its own clock. */
	uint64_t now = cl->c.w->now;
	cl->guard->stmt_since = s && s->txn.pending ? now : 0;
	cl->guard->timeout_sent = false;
	cl->guard->txn_idle_since = s && !s->txn.pending && s->txn.status != 'I' ? now : 0;
}

/* A result passed max_rows or max_result_bytes: the server's statement is canceled, the client told. */
size_t client_on_result_limit(struct server_link *l, bool rows, uint8_t *buf, size_t cap)
{
	struct client *cl = client_of_link(l);
	const struct cfg_tenant *t = client_tcfg(cl);
	client_cancel_server(cl, true);
	atomic_fetch_add_explicit(&cl->tenant->count->rejected, 1, memory_order_relaxed);
	char msg[320];
	if (rows)
		snprintf(msg, sizeof msg, "result too large for tenant \"%s\": more than %llu rows (max_rows)",
			 t->name, (unsigned long long)t->max_rows);
	else
		snprintf(msg, sizeof msg, "result too large for tenant \"%s\": more than %llu bytes (max_result_bytes)",
			 t->name, (unsigned long long)t->max_result_bytes);
	struct wbuf w = wbuf_on(buf, cap);
	msg_error(&w, "ERROR", SQLSTATE_PROGRAM_LIMIT_EXCEEDED, msg, NULL,
		  "The statement was canceled; ask for fewer rows, or page through them.");
	if (w.overflow)
		die("result limit message too long");
	return w.len;
}

/* Tick: query_timeout and idle_transaction_timeout of a linked client. */
void client_tenant_timeouts(struct client *cl)
{
	const struct cfg_tenant *t = client_tcfg(cl);
	struct server *s = cl->srv;
	uint64_t now = cl->c.w->now;
	if (!s || cl->st != CL_LINKED)
		return;
	if (t->query_timeout && cl->guard->stmt_since && !cl->guard->timeout_sent && s->txn.pending &&
	    now - cl->guard->stmt_since >= t->query_timeout) {
		char msg[320];
		snprintf(msg, sizeof msg, "canceling statement of tenant \"%s\": it ran longer than query_timeout (%.3gs)",
			 t->name, (double)t->query_timeout / 1000.0);
		uint8_t buf[512];
		struct wbuf w = wbuf_on(buf, sizeof buf);
		msg_error(&w, "ERROR", SQLSTATE_QUERY_CANCELED, msg, NULL, NULL);
		server_replace_error(s, w.p, w.len);
		client_cancel_server(cl, true);
		cl->guard->timeout_sent = true;
		atomic_fetch_add_explicit(&cl->tenant->count->rejected, 1, memory_order_relaxed);
		log_info("%s %s/%s tenant %s: query_timeout, statement canceled", cl->id, cl->db, cl->user, t->name);
		return;
	}
	if (t->idle_transaction_timeout && cl->guard->txn_idle_since && !s->txn.pending && s->txn.status != 'I' &&
	    !cl->fr.left && !cl->fr.have && now - cl->guard->txn_idle_since >= t->idle_transaction_timeout) {
		char msg[320];
		snprintf(msg, sizeof msg,
			 "terminating connection of tenant \"%s\": idle in a transaction longer than "
			 "idle_transaction_timeout (%.3gs)", t->name, (double)t->idle_transaction_timeout / 1000.0);
		client_fatal(cl, SQLSTATE_IDLE_IN_TRANSACTION, msg);
	}
}

/* Usage not yet added goes to the tenant: at each ReadyForQuery, and when the client leaves (server_done: its server time too). */
void client_tenant_flush(struct client *cl, bool server_done)
{
	struct worker_tenant *t = cl->tenant;
	struct client_guard *g = cl->guard;
	uint64_t wall = cl->c.w->wall;
	if (g->acc_rows)
		quota_add(t->q, t->count, CFG_METRIC_ROWS, g->acc_rows, wall);
	if (g->acc_bytes)
		quota_add(t->q, t->count, CFG_METRIC_BYTES_OUT, g->acc_bytes, wall);
	g->acc_rows = g->acc_bytes = 0;
	if (server_done && g->busy_since_us) {
		quota_add(t->q, t->count, CFG_METRIC_SERVER_TIME, cl->c.w->now_us - g->busy_since_us, wall);
		g->busy_since_us = 0;
	}
}

/* Tenant connection slots: a client takes one before asking its pool for a server. */
void client_tenant_dequeue(struct client *cl)
{
	struct worker_tenant *t = cl->tenant;
	struct client_guard *g = cl->guard;
	if (!g->tqueued)
		return;
	if (g->tprev)
		g->tprev->guard->tnext = g->tnext;
	else
		t->wait_head = g->tnext;
	if (g->tnext)
		g->tnext->guard->tprev = g->tprev;
	else
		t->wait_tail = g->tprev;
	g->tprev = g->tnext = NULL;
	g->tqueued = false;
}

/* Asks the pool for a server, once the tenant lets the client hold one more. */
void client_acquire(struct client *cl)
{
	struct worker_tenant *t = cl->tenant;
	struct client_guard *g = cl->guard;
	client_set_state(cl, CL_WAIT);
	if (t && !g->tslot) {
		/* Behind those already waiting here: a freed slot is theirs first. */
		if (t->wait_head || !quota_server_take(t->q)) {
			g->tqueued = true;
			g->twait_since = cl->c.w->now;
			g->tprev = t->wait_tail;
			g->tnext = NULL;
			if (t->wait_tail)
				t->wait_tail->guard->tnext = cl;
			else
				t->wait_head = cl;
			t->wait_tail = cl;
			return;
		}
		g->tslot = true;
	}
	pool_acquire(cl->pool, &cl->wt);
}

/* Waiters of this worker take the slots free now, in order. */
static void client_tenant_serve(struct worker_tenant *t)
{
	while (t->wait_head && quota_server_take(t->q)) {
		struct client *cl = t->wait_head;
		client_tenant_dequeue(cl);
		cl->guard->tslot = true;
		pool_acquire(cl->pool, &cl->wt);
	}
}

void client_tenant_give(struct client *cl)
{
	if (!cl->guard->tslot)
		return;
	cl->guard->tslot = false;
	quota_server_give(cl->tenant->q);
	client_tenant_serve(cl->tenant);
}

/* A client waiting for a tenant slot: slots freed on other workers are seen here, each tick. */
void client_tenant_tick(struct client *cl)
{
	struct worker_tenant *t = cl->tenant;
	uint64_t limit = client_cfg(cl)->query_wait_timeout;
	if (t->wait_head == cl)
		client_tenant_serve(t);
	if (!cl->guard->tqueued || !limit || cl->c.w->now - cl->guard->twait_since < limit)
		return;
	client_tenant_dequeue(cl);
	char msg[320];
	snprintf(msg, sizeof msg,
		 "no server connection available for tenant \"%s\" after %.1fs (max_server_connections is %u; "
		 "query_wait_timeout)", client_tcfg(cl)->name, (double)(cl->c.w->now - cl->guard->twait_since) / 1000.0,
		 client_tcfg(cl)->max_server_connections);
	client_fatal(cl, SQLSTATE_TOO_MANY_CONNECTIONS, msg);
}

/*
 * Holds back the rest of the stream from a rate-limited message on: its held
 * header bytes and rest[0..n), with the framer wound back to the message's
 * start at stream offset at. rest may point into cl->in.
 */
void client_delay(struct client *cl, const uint8_t *rest, size_t n, uint64_t at)
{
	struct bytes keep = { 0 };
	if (!bytes_append(&keep, cl->held, cl->nheld, CLIENT_IN_HARD_MAX) ||
	    !bytes_append(&keep, rest, n, CLIENT_IN_HARD_MAX))
		die("out of memory");
	cl->nheld = 0;
	bytes_free(&cl->in);
	cl->in = keep;
	cl->fr = (struct frame){ .pos = at };
	cl->guard->admitted = true;
	client_set_state(cl, CL_DELAY);
	worker_timer_at(cl->c.w, &cl->c, cl->guard->delay_until);
	if (cl->in.len >= CLIENT_IN_MAX)
		conn_recv_pause(&cl->c);
}

void client_on_timer(struct conn *c)
{
	struct client *cl = client_of(c);
	if (cl->st != CL_DELAY || c->w->now < cl->guard->delay_until)
		return;
	if (!cl->srv) {
		client_acquire(cl);
		return;
	}
	client_set_state(cl, CL_LINKED);
	uint32_t n = cl->in.len;
	cl->in.len = 0;
	client_relay(cl, 0, cl->in.p, n, true);
	if (!cl->in.len)
		bytes_free(&cl->in);
	if (cl->st == CL_LINKED && !cl->c.recv_wanted && conn_queued(&cl->srv->c) <= CONN_HIGH_WATER)
		conn_recv_start(&cl->c);
}

/*
 * Transaction pooling, no server held: a chunk that is one whole Query is
 * judged before a server is taken, so a refused query costs none. Returns
 * true when it was answered (refused) or held back (delayed).
 */
bool client_guard_idle(struct client *cl, const uint8_t *p, size_t n)
{
	if (n < 6 || p[0] != 'Q' || 1 + (size_t)msg_get32(p + 1) != n || cl->guard->admitted || cl->in.len)
		return false;
	uint8_t buf[1024];
	struct wbuf err = wbuf_on(buf, sizeof buf);
	bool rules = quota_rules_any(&cl->tenant->rules);
	if (rules && !client_rules_pass(cl, (const char *)p + 5, n - 5, &err))
		goto refused;
	cl->guard->checked = rules;
	switch (client_admit(cl, &err)) {
	case CLIENT_PASS:
		cl->guard->admitted = true;
		return false;
	case CLIENT_DELAYED:
		client_delay(cl, p, n, cl->fr.pos);
		return true;
	case CLIENT_REFUSED:
		break;
	}
refused:
	cl->guard->checked = false;
	client_walk(cl, p, n);
	msg_ready(&err, 'I');
	client_send(cl, &err);
	return true;
}
