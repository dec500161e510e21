/* What lib/client.c and lib/client_tenant.c share: the client object and the calls between them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/bytes.h"
#include "lib/conn.h"
#include "lib/rt.h"
#include "lib/worker.h"
#include "pool/pool.h"
#include "pool/server.h"
#include "pool/stmt.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "lib/auth.h"

/*
 * STARTUP, AUTH: logging in. IDLE: logged in, holding no server. WAIT: queued
 * for a server. SETUP: the server runs our SETs of its startup parameters.
 * DELAY: a query held back by its tenant's rate limit (with or without a
 * server). LINKED: relaying. Order matters: states from WAIT on are logged
 * sessions.
 */
#define CLIENT_STATES(X) X(STARTUP) X(AUTH) X(WAIT) X(SETUP) X(IDLE) X(DELAY) X(LINKED) X(CLOSED)
#define CLIENT_STATE_ENUM(name) CL_##name,
enum client_state { CLIENT_STATES(CLIENT_STATE_ENUM) };
#undef CLIENT_STATE_ENUM

/*
 * Bytes a client may send before it has a server. Logging in, that is the
 * limit; queued for a server, reading pauses there (backpressure) and only
 * what was already in flight may pass it, up to the hard limit.
 */
#define CLIENT_IN_MAX (64u * 1024)
#define CLIENT_IN_HARD_MAX (1024u * 1024)
#define CLIENT_AUTH_MSG_MAX 8192u

/*
 * What a client of a tenant keeps for its guardrails. Apart from struct
 * client, so that the many clients of no tenant do not pay its memory.
 */
struct client_guard {
	bool counted;                 /* counted in the tenant's clients */
	bool tslot;                   /* holds one of its max_server_connections */
	bool tqueued;                 /* waiting on the worker's queue for such a slot */
	bool admitted;                /* the next Query/Execute passed admission already (it was delayed) */
	bool checked;                 /* the next Query passed the rules already (checked before a server) */
	bool timeout_sent;            /* the running statement was canceled already */
	struct client *tprev, *tnext; /* the tenant's slot queue on this worker */
	uint64_t twait_since;
	uint64_t delay_until;         /* ms */
	uint64_t busy_since_us;       /* the server works for us since: server_time */
	uint64_t acc_rows, acc_bytes; /* usage not yet added to the tenant's */
	uint64_t drop_left;           /* bytes of a refused message still to cut from the stream */
	uint64_t stmt_since;          /* ms: the server works on our oldest request since (query_timeout) */
	uint64_t txn_idle_since;      /* ms: idle inside a transaction since (idle_transaction_timeout) */
};

struct client {
	struct conn c;
	enum client_state st;
	struct pool_waiter wt;
	struct server_link link;
	struct pool *pool;
	struct server *srv;
	struct auth_state auth;
	struct frame fr;              /* client -> server stream, once linked */
	struct stmt_map stmts;        /* transaction pooling: the client's statement names */
	struct bytes coll;            /* a Parse/Bind/Describe/Close being gathered across chunks */
	uint32_t coll_left;
	uint8_t held[5];              /* a message header cut by a chunk's end, not forwarded yet */
	uint8_t nheld;
	struct server_param *opts;    /* settings from the `options` startup parameter */
	uint32_t nopts;
	struct server_param *set;     /* tracked parameters the client SET (as the server reported them) */
	uint32_t nset;
	uint64_t setup_mask;          /* tracked parameters (by index) the running setup query sets */
	const char **want;            /* client_wanted of each tracked parameter, or NULL: to be built */
	const struct pool_params *want_pp;  /* the pool's parameters when want was built */
	struct bytes in;              /* gathered bytes before the relay starts */
	uint8_t *pkt;                 /* the startup packet: user, db and parameters point into it */
	uint32_t pktlen;
	const char *user, *db;
	const struct cfg_db *d;
	uint32_t key;                 /* BackendKeyData secret */
	uint64_t since, state_since;
	/* Tenant guardrails: both NULL, or both set (the guard allocated with the tenant found). */
	struct worker_tenant *tenant;
	struct client_guard *guard;
	bool over_limit;
	bool welcomed;                /* got ParameterStatus..ReadyForQuery: logged in */
	char addr[64];
	char id[16];
};

static inline struct client *client_of(struct conn *c)
{
	return (struct client *)c;
}

static inline struct client *client_of_link(struct server_link *l)
{
	return (struct client *)((char *)l - offsetof(struct client, link));
}

static inline const struct cfg *client_cfg(const struct client *cl)
{
	return cl->c.w->rt->cfg;
}

/* lib/client.c */
void client_set_state(struct client *cl, enum client_state st);
void client_send(struct client *cl, const struct wbuf *w);
void client_send_error(struct client *cl, const char *severity, const char *sqlstate,
		       const char *message, const char *hint);
void client_fatal(struct client *cl, const char *sqlstate, const char *message);
/* Whole messages p[0..n), already checked, that the proxy answers itself: the framer walks past them. */
void client_walk(struct client *cl, const uint8_t *p, size_t n);
/* Client -> server bytes of a linked client (copy: p is not a ring buffer's). */
void client_relay(struct client *cl, uint16_t bid, const uint8_t *p, size_t n, bool copy);
/* A CancelRequest to the backend of the server the client holds; ours: the proxy's own. */
void client_cancel_server(struct client *cl, bool ours);
/* What a tracked parameter should be for this client. */
const char *client_wanted(const struct client *cl, const char *name);

/* lib/client_tenant.c */
enum client_verdict { CLIENT_PASS, CLIENT_REFUSED, CLIENT_DELAYED };
const struct cfg_tenant *client_tcfg(const struct client *cl);
/* Admission of one Query or Execute: budgets, then rate. DELAYED sets delay_until; REFUSED fills err. */
enum client_verdict client_admit(struct client *cl, struct wbuf *err);
/* Deny/allow on a Query's or Parse's text; false with the ErrorResponse in err. */
bool client_rules_pass(struct client *cl, const char *sql, size_t n, struct wbuf *err);
/* A FunctionCall of a tenant with rules: refused (err filled). */
void client_refuse_call(struct client *cl, struct wbuf *err);
void client_on_usage(struct server_link *l, uint32_t rows, size_t bytes, uint32_t readies);
size_t client_on_result_limit(struct server_link *l, bool rows, uint8_t *buf, size_t cap);
void client_tenant_timeouts(struct client *cl);
/* Asks the pool for a server once the tenant lets the client hold one more (state WAIT). */
void client_acquire(struct client *cl);
void client_tenant_dequeue(struct client *cl);
void client_tenant_flush(struct client *cl, bool server_done);
/* Gives back the client's max_server_connections slot, if it holds one. */
void client_tenant_give(struct client *cl);
void client_tenant_tick(struct client *cl);
/* Holds back the stream from a rate-limited message on (rest may point into cl->in). */
void client_delay(struct client *cl, const uint8_t *rest, size_t n, uint64_t at);
void client_on_timer(struct conn *c);
/* No server held: a lone whole Query judged before one is taken. True when answered or delayed. */
bool client_guard_idle(struct client *cl, const uint8_t *p, size_t n);
