/* Client connections: startup packet, authentication, a server from the pool, relay, and the goodbye. */
#include "lib/client.h"
#include "lib/client_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/auth.h"
#include "lib/bytes.h"
#include "lib/cancel.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/rt.h"
#include "lib/worker.h"
#include "pool/pool.h"
#include "pool/server.h"
#include "pool/stmt.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/options.h"
#include "proto/sqlstate.h"
#include "quota/tenant.h"

#define CLIENT_STATE_NAME(name) #name,
static const char *const client_state_names[] = { CLIENT_STATES(CLIENT_STATE_NAME) };
#undef CLIENT_STATE_NAME


void client_set_state(struct client *cl, enum client_state st)
{
	log_debug("%s %s -> %s", cl->id, client_state_names[cl->st], client_state_names[st]);
	cl->st = st;
	cl->state_since = cl->c.w->now;
}

void client_send(struct client *cl, const struct wbuf *w)
{
	if (w->overflow)
		die("client message overflow");
	conn_send_copy(&cl->c, w->p, w->len);
}

void client_send_error(struct client *cl, const char *severity, const char *sqlstate,
			      const char *message, const char *hint)
{
	uint8_t buf[1024];
	struct wbuf w = wbuf_on(buf, sizeof buf);
	msg_error(&w, severity, sqlstate, message, NULL, hint);
	if (w.overflow) {
		w = wbuf_on(buf, sizeof buf);
		msg_error(&w, severity, sqlstate, "error message too long", NULL, NULL);
	}
	client_send(cl, &w);
}

/* Leaves: the server goes back (reset) or is closed, the socket closes after what is queued. */
static void client_close(struct client *cl, const char *why)
{
	if (cl->st == CL_CLOSED)
		return;
	if (cl->tenant)
		client_tenant_flush(cl, cl->srv != NULL);
	if (cl->srv) {
		struct server *s = cl->srv;
		cl->srv = NULL;
		/* A client that stopped mid-message leaves the server in an unknown state. */
		server_unlink(s, !cl->fr.left && !cl->fr.have);
	}
	if (cl->pool)
		pool_cancel_wait(cl->pool, &cl->wt);
	if (cl->tenant) {
		client_tenant_dequeue(cl);
		client_tenant_give(cl);
	}
	if (cl->welcomed)
		log_info("%s %s/%s@%s disconnect after %.3fs: %s", cl->id, cl->db, cl->user, cl->addr,
			 (double)(cl->c.w->now - cl->since) / 1000.0, why);
	else
		log_debug("%s @%s closed during login: %s", cl->id, cl->addr, why);
	client_set_state(cl, CL_CLOSED);
	conn_close_flushed(&cl->c, 2000);
}

void client_fatal(struct client *cl, const char *sqlstate, const char *message)
{
	if (cl->st == CL_CLOSED)
		return;
	client_send_error(cl, "FATAL", sqlstate, message, NULL);
	client_close(cl, message);
}

static void client_gather(struct client *cl, const uint8_t *p, size_t n)
{
	bool queued = cl->st == CL_WAIT || cl->st == CL_SETUP || cl->st == CL_DELAY;
	if (!bytes_append(&cl->in, p, n, queued ? CLIENT_IN_HARD_MAX : CLIENT_IN_MAX)) {
		client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, "too much data before the session started");
		return;
	}
	if (queued && cl->in.len >= CLIENT_IN_MAX)
		conn_recv_pause(&cl->c);
}

static uint32_t client_pid(const struct client *cl)
{
	return (uint32_t)cl->c.w->id << WORKER_SLOT_BITS | cl->c.slot;
}

/* --- the session: relay and server events --- */

static bool client_is_tx(const struct client *cl)
{
	return cl->pool->d->pool_mode == CFG_POOL_TRANSACTION;
}

/* Forwards p[0..n) to the server: from the ring buffer in place, or as a copy. */
static void client_forward(struct client *cl, int bid, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	if (bid >= 0)
		conn_send_buf(&cl->srv->c, (uint16_t)bid, p, n);
	else
		conn_send_copy(&cl->srv->c, p, n);
}

/* A NUL-terminated string at *p within end; advances *p past it. NULL if unterminated. */
static const char *client_cstr(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
	if (!nul)
		return NULL;
	const char *str = (const char *)*p;
	*p = nul + 1;
	return str;
}

/* The query text of a whole Query or Parse message m[0..len), and its length. NULL if malformed. */
static const char *client_sql_of(const uint8_t *m, size_t len, size_t *n)
{
	const uint8_t *p = m + 5, *end = m + len;
	if (m[0] == 'P' && !client_cstr(&p, end))
		return NULL;
	*n = (size_t)(end - p);
	return (const char *)p;
}

/* A query text (of a Query or a Parse) whose first word is LISTEN, after blanks and -- comments. */
static bool client_is_listen(const uint8_t *sql, size_t n)
{
	size_t i = 0;
	for (;;) {
		while (i < n && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r'))
			i++;
		if (i + 1 < n && sql[i] == '-' && sql[i + 1] == '-') {
			while (i < n && sql[i] != '\n')
				i++;
			continue;
		}
		break;
	}
	return n - i > 6 && strncasecmp((const char *)sql + i, "listen", 6) == 0 &&
	       (sql[i + 6] == ' ' || sql[i + 6] == '\t' || sql[i + 6] == '\n' || sql[i + 6] == '\r');
}

/*
 * LISTEN cannot work when the server changes after each transaction. The
 * Query or Parse is refused where it stands (server_refuse): the server runs
 * one that fails instead, and the client gets 0A000 in its place among the
 * replies, whatever it has in flight.
 */
static void client_refuse_listen(struct client *cl, uint8_t type)
{
	uint8_t buf[256];
	struct wbuf err = wbuf_on(buf, sizeof buf);
	msg_error(&err, "ERROR", SQLSTATE_FEATURE_NOT_SUPPORTED,
		  "LISTEN is not supported with transaction pooling (ringbouncer)", NULL,
		  "Use a database with pool_mode: session for LISTEN/NOTIFY.");
	server_refuse(cl->srv, type, err.p, err.len);
}

/*
 * Transaction pooling: one whole Parse, Bind, Describe or Close at m[0..len),
 * in ring buffer bid (or a copy when bid < 0). Named statements are mapped to
 * content-derived names that every server of the pool shares; unnamed ones
 * pass untouched. Returns false after failing the client.
 */
static bool client_statement_msg(struct client *cl, int bid, const uint8_t *m, size_t len)
{
	struct server *s = cl->srv;
	struct stmt_table *table = &cl->pool->stmts;
	const uint8_t *p = m + 5, *end = m + len;
	uint8_t type = m[0];
	server_note_request(s, type);
	if (type == 'P') {
		const char *name = client_cstr(&p, end);
		const uint8_t *nul = name ? memchr(p, 0, (size_t)(end - p)) : NULL;
		if (!nul)
			goto bad;
		if (client_is_listen(p, (size_t)(nul - p))) {
			client_refuse_listen(cl, 'P');
			return true;
		}
		if (!*name) {
			client_forward(cl, bid, m, len);
			server_expect(s, '1', NULL);
			return true;
		}
		if (stmt_map_get(&cl->stmts, name)) {
			/* As PostgreSQL answers, in order: the name is taken until the client closes it. */
			uint8_t buf[512];
			char msg[160];
			struct wbuf err = wbuf_on(buf, sizeof buf);
			snprintf(msg, sizeof msg, "prepared statement \"%.100s\" already exists", name);
			msg_error(&err, "ERROR", SQLSTATE_DUPLICATE_PSTATEMENT, msg, NULL, NULL);
			server_refuse(s, 'P', err.p, err.len);
			return true;
		}
		struct stmt *st = stmt_get(table, p, (uint32_t)(end - p));
		stmt_map_set(&cl->stmts, table, name, st);
		server_parse(s, st);
		return true;
	}
	if (type == 'B') {
		const char *portal = client_cstr(&p, end);
		const uint8_t *at = p;
		const char *name = portal ? client_cstr(&p, end) : NULL;
		if (!name)
			goto bad;
		struct stmt *st = *name ? stmt_map_get(&cl->stmts, name) : NULL;
		if (!st) {
			/* Unnamed, or unknown: the server says "does not exist" itself. */
			client_forward(cl, bid, m, len);
			return true;
		}
		server_prepare(s, st);
		conn_send_named(&s->c, 'B', m + 5, (size_t)(at - (m + 5)), st->name, p, (size_t)(end - p));
		return true;
	}
	/* Describe and Close: a kind byte ('S' statement, 'P' portal), then the name. */
	if (len < 7)
		goto bad;
	uint8_t kind = *p++;
	const char *name = client_cstr(&p, end);
	if (!name)
		goto bad;
	struct stmt *st = kind == 'S' && *name ? stmt_map_get(&cl->stmts, name) : NULL;
	if (type == 'D') {
		if (!st) {
			client_forward(cl, bid, m, len);
			return true;
		}
		server_prepare(s, st);
		conn_send_named(&s->c, 'D', &kind, 1, st->name, p, 0);
		return true;
	}
	/* Close: the server keeps shared statements; closing a name it never had answers the same. */
	if (st) {
		stmt_map_del(&cl->stmts, table, name);
		conn_send_named(&s->c, 'C', &kind, 1, "rb_closed", p, 0);
	} else {
		client_forward(cl, bid, m, len);
	}
	server_expect(s, '3', NULL);
	return true;
bad:
	client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, "malformed extended-protocol message");
	return false;
}

static bool client_is_statement_msg(uint8_t type)
{
	return type == 'P' || type == 'B' || type == 'D' || type == 'C';
}

/* Lets the framer walk k body bytes the relay handles itself. */
static void client_skip(struct client *cl, const uint8_t *p, size_t k)
{
	size_t used;
	struct frame_msg m;
	if (k && (frame_next(&cl->fr, p, k, &used, &m) != FRAME_MORE || used != k))
		die("framer lost a message the relay took whole");
}

/* The framer walks whole messages the proxy answers itself, so stream offsets stay true. */
void client_walk(struct client *cl, const uint8_t *p, size_t n)
{
	for (size_t done = 0; done < n;) {
		size_t used;
		struct frame_msg m;
		if (frame_next(&cl->fr, p + done, n - done, &used, &m) == FRAME_BAD)
			die("framer refused checked messages");
		done += used;
	}
}

/*
 * A message the relay looks at whole, at m[0..len) in ring buffer bid (or a
 * copy when bid < 0): a Query or Parse under a tenant's deny/allow rules, or
 * a statement message in transaction pooling. False after failing the client.
 */
static bool client_whole_msg(struct client *cl, int bid, const uint8_t *m, size_t len)
{
	struct server *s = cl->srv;
	uint8_t type = m[0];
	if ((type == 'Q' || type == 'P') && cl->tenant && quota_rules_any(&cl->tenant->rules)) {
		bool checked = cl->guard->checked && type == 'Q';
		cl->guard->checked = false;
		size_t n;
		const char *sql = client_sql_of(m, len, &n);
		if (!sql) {
			client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, "malformed Parse message");
			return false;
		}
		uint8_t buf[1024];
		struct wbuf err = wbuf_on(buf, sizeof buf);
		if (!checked && !client_rules_pass(cl, sql, n, &err)) {
			server_refuse(s, type, err.p, err.len);
			return true;
		}
	}
	if (client_is_tx(cl) && client_is_statement_msg(type))
		return client_statement_msg(cl, bid, m, len);
	if (client_is_tx(cl) && type == 'Q' && len > 5 && client_is_listen(m + 5, len - 5)) {
		client_refuse_listen(cl, 'Q');
		return true;
	}
	server_note_request(s, type);
	client_forward(cl, bid, m, len);
	return true;
}

/* The gathered message is complete: handle it. False after failing the client. */
static bool client_gathered(struct client *cl)
{
	bool ok = client_whole_msg(cl, -1, cl->coll.p, cl->coll.len);
	bytes_free(&cl->coll);
	return ok;
}

/* Whether the relay must see a message of this type whole before it goes on (rules: the tenant has some). */
static bool client_wants_whole(bool tx, bool rules, uint8_t type)
{
	if (tx && client_is_statement_msg(type))
		return true;
	return rules && (type == 'Q' || type == 'P');
}

/*
 * Client -> server relay. Bytes go from the receive buffer in place, except
 * the messages looked at whole (gathered when cut by a chunk's end): in
 * transaction pooling Parse/Bind/Describe/Close, rewritten when they name a
 * statement; under a tenant's rules Query and Parse. A tenant's Query,
 * Execute or FunctionCall is admitted first, and may be refused (cut from
 * the stream) or delayed (the rest of the stream held back).
 */
void client_relay(struct client *cl, uint16_t bid, const uint8_t *p, size_t n, bool copy)
{
	struct server *s = cl->srv;
	int b = copy ? -1 : bid;
	bool tx = client_is_tx(cl);
	bool hold = tx || cl->tenant;
	bool rules = cl->tenant && quota_rules_any(&cl->tenant->rules);
	uint64_t base = cl->fr.pos;
	size_t off = 0, from = 0;

	struct client_guard *g = cl->guard;
	if (g && !g->busy_since_us)
		g->busy_since_us = cl->c.w->now_us;
	if (g && !g->stmt_since)
		g->stmt_since = cl->c.w->now;
	if (g && g->drop_left) {
		size_t k = n < cl->guard->drop_left ? n : (size_t)cl->guard->drop_left;
		client_skip(cl, p, k);
		cl->guard->drop_left -= k;
		off = from = k;
	}
	if (cl->coll_left) {
		size_t k = n < cl->coll_left ? n : cl->coll_left;
		client_skip(cl, p, k);
		if (!bytes_append(&cl->coll, p, k, FRAME_MAX_LEN))
			die("gathered message too large");
		cl->coll_left -= (uint32_t)k;
		off = from = k;
		if (cl->coll_left || !client_gathered(cl))
			return;
	}
	while (off < n) {
		size_t used;
		struct frame_msg m;
		int rc = frame_next(&cl->fr, p + off, n - off, &used, &m);
		off += used;
		if (rc == FRAME_BAD) {
			client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length");
			return;
		}
		if (rc == FRAME_MORE)
			break;
		/* Where the message starts in p; bytes held from the last chunk come first. */
		size_t start = m.at >= base ? (size_t)(m.at - base) : 0;
		if (m.type == 'X') {
			/* Terminate is ours: the server stays for the next client. */
			client_forward(cl, b, p + from, start - from);
			cl->fr.left = cl->fr.have = 0;
			if (m.at < base && !cl->nheld)
				cl->fr.have = 1; /* a split Terminate reached the server: not clean */
			cl->nheld = 0;
			client_close(cl, "client closed the session");
			return;
		}
		if (cl->tenant && (m.type == 'Q' || m.type == 'E' || m.type == 'F')) {
			uint8_t buf[1024];
			struct wbuf err = wbuf_on(buf, sizeof buf);
			enum client_verdict v = CLIENT_PASS;
			if (cl->guard->admitted)
				cl->guard->admitted = false;
			else
				v = client_admit(cl, &err);
			/* A FunctionCall names its function by OID: no rule can judge it. */
			if (v == CLIENT_PASS && m.type == 'F' && rules) {
				client_refuse_call(cl, &err);
				v = CLIENT_REFUSED;
			}
			if (v != CLIENT_PASS)
				client_forward(cl, b, p + from, start - from);
			if (v == CLIENT_DELAYED) {
				client_delay(cl, p + start, n - start, m.at);
				return;
			}
			if (v == CLIENT_REFUSED) {
				/* The message never reaches the server: cut it, here and in later chunks. */
				cl->nheld = 0;
				server_refuse(s, m.type, err.p, err.len);
				size_t end = (size_t)(m.at + 1 + m.len - base);
				size_t stop = end < n ? end : n;
				client_skip(cl, p + off, stop - off);
				cl->guard->drop_left = end - stop;
				off = from = stop;
				continue;
			}
		}
		if (!client_wants_whole(tx, rules, m.type)) {
			if (tx && m.type == 'Q' && !cl->nheld && m.len > 4 && n - start >= 1 + (size_t)m.len &&
			    client_is_listen(p + start + 5, m.len - 4)) {
				client_forward(cl, b, p + from, start - from);
				size_t total = 1 + (size_t)m.len;
				client_skip(cl, p + off, total - (off - start));
				off = from = start + total;
				client_refuse_listen(cl, 'Q');
				continue;
			}
			if (cl->nheld) {
				client_forward(cl, -1, cl->held, cl->nheld);
				cl->nheld = 0;
			}
			server_note_request(s, m.type);
			continue;
		}
		client_forward(cl, b, p + from, start - from);
		size_t total = 1 + (size_t)m.len, in_chunk = n - start;
		size_t want = total - cl->nheld;
		if (!cl->nheld && in_chunk >= total) {
			/* Whole and in place: the common case. */
			client_skip(cl, p + off, total - (off - start));
			off = from = start + total;
			if (!client_whole_msg(cl, b, p + start, total))
				return;
			continue;
		}
		/* Cut: gather it, held header bytes first. */
		size_t k = in_chunk < want ? in_chunk : want;
		if (!bytes_append(&cl->coll, cl->held, cl->nheld, FRAME_MAX_LEN) ||
		    !bytes_append(&cl->coll, p + start, k, FRAME_MAX_LEN))
			die("gathered message too large");
		cl->nheld = 0;
		client_skip(cl, p + off, k - (off - start));
		off = from = start + k;
		cl->coll_left = (uint32_t)(want - k);
		if (cl->coll_left || !client_gathered(cl))
			return;
	}
	size_t end = n;
	if (hold && cl->fr.have) {
		/* A header cut here may turn out to need rewriting or refusing: hold it back (at most 5 bytes). */
		size_t h = cl->fr.have;
		size_t cut = h - cl->nheld;
		size_t in_chunk = cut < n ? cut : n;
		memcpy(cl->held + cl->nheld, p + n - in_chunk, in_chunk);
		cl->nheld = (uint8_t)h;
		end = n - in_chunk;
	}
	if (end > from)
		client_forward(cl, b, p + from, end - from);
	if (conn_queued(&s->c) > CONN_HIGH_WATER)
		conn_recv_pause(&cl->c);
}

/*
 * Transaction pooling, no server held: a chunk that is only named Parses and
 * one Sync (what PQprepare sends) is answered here. The statements are
 * recorded and prepared on whichever server first needs them, so preparing
 * never waits for a server; a bad query then fails at its first Bind instead.
 * Returns false, untouched, for anything else.
 */
static bool client_local_prepare(struct client *cl, const uint8_t *p, size_t n)
{
	size_t off = 0;
	uint32_t nparse = 0;
	if (cl->in.len)
		return false; /* bytes from before go first */
	bool rules = cl->tenant && quota_rules_any(&cl->tenant->rules);
	for (;;) {
		if (n - off < 5)
			return false;
		uint32_t len = msg_get32(p + off + 1);
		if (len < 4 || len > n - off - 1)
			return false;
		if (p[off] == 'S') {
			if (off + 1 + len != n || !nparse)
				return false;
			break;
		}
		if (p[off] != 'P' || len < 5 || p[off + 5] == 0)
			return false;
		const uint8_t *q = p + off + 5, *end = p + off + 1 + len;
		const char *name = client_cstr(&q, end);
		if (!name || !memchr(q, 0, (size_t)(end - q)) || stmt_map_get(&cl->stmts, name))
			return false; /* a taken name is refused by the relay, in order */
		/* A statement a tenant's rules refuse is refused (counted, logged) where it stands, by the relay. */
		const char *stmt;
		enum quota_rule why;
		if (rules && !quota_rules_pass(&cl->tenant->rules, (const char *)q, (size_t)(end - q), &stmt, &why))
			return false;
		nparse++;
		off += 1 + len;
	}
	for (off = 0; p[off] == 'P'; off += 1 + msg_get32(p + off + 1)) {
		const uint8_t *q = p + off + 5, *end = p + off + 1 + msg_get32(p + off + 1);
		const char *name = client_cstr(&q, end);
		struct stmt *st = stmt_get(&cl->pool->stmts, q, (uint32_t)(end - q));
		stmt_map_set(&cl->stmts, &cl->pool->stmts, name, st);
	}
	client_walk(cl, p, n);
	uint8_t reply[5 * 64 + 6];
	struct wbuf w = wbuf_on(reply, sizeof reply);
	for (uint32_t i = 0; i < nparse; i++) {
		if (w.len + 5 + 6 > w.cap) {
			client_send(cl, &w);
			w = wbuf_on(reply, sizeof reply);
		}
		msg_empty(&w, '1');
	}
	msg_ready(&w, 'I');
	client_send(cl, &w);
	return true;
}

/* A parameter the startup packet itself carries, or NULL. */
static const char *client_explicit_value(const struct client *cl, const char *want)
{
	const char *name, *value;
	for (size_t off = 0; startup_next(cl->pkt, cl->pktlen, &off, &name, &value);)
		if (strcasecmp(name, want) == 0)
			return value;
	return NULL;
}

/* A startup setting: the parameter itself, else a setting in `options` (PostgreSQL's order). */
static const char *client_startup_value(const struct client *cl, const char *want)
{
	const char *value = client_explicit_value(cl, want);
	if (value)
		return value;
	for (uint32_t i = 0; i < cl->nopts; i++)
		if (strcasecmp(cl->opts[i].name, want) == 0)
			return cl->opts[i].value;
	return NULL;
}

/* The value the client sees for a reported parameter: what it asked for at startup, if it did. */
static const char *client_param_value(const struct client *cl, const struct server_param *p)
{
	const char *v = client_startup_value(cl, p->name);
	return v ? v : p->value;
}

/* ParameterStatus.. BackendKeyData, ReadyForQuery: the end of the login as the client sees it. */
static void client_welcome(struct client *cl, const struct server_param *params, uint32_t n)
{
	size_t need = 32;
	for (uint32_t i = 0; i < n; i++)
		need += 7 + strlen(params[i].name) + strlen(client_param_value(cl, &params[i]));
	uint8_t *buf = malloc(need);
	if (!buf)
		die("out of memory");
	struct wbuf w = wbuf_on(buf, need);
	for (uint32_t i = 0; i < n; i++)
		msg_param_status(&w, params[i].name, client_param_value(cl, &params[i]));
	msg_backend_key(&w, client_pid(cl), cl->key);
	msg_ready(&w, 'I');
	client_send(cl, &w);
	free(buf);
	cl->welcomed = true;
	log_info("%s %s/%s@%s login ok", cl->id, cl->db, cl->user, cl->addr);
}

static void client_on_txn_done(struct server_link *l);

/* The server is ready for the client's traffic: bytes that came early go first, in order. */
static void client_linked(struct client *cl)
{
	bool login = !cl->welcomed;
	if (login)
		client_welcome(cl, cl->srv->params, cl->srv->nparams);
	client_set_state(cl, CL_LINKED);
	if (cl->in.len) {
		uint32_t n = cl->in.len;
		cl->in.len = 0;
		client_relay(cl, 0, cl->in.p, n, true);
		/* Paused while queued with a full buffer: the server takes the rest now. */
		if (cl->st == CL_LINKED && !cl->c.recv_wanted && conn_queued(&cl->srv->c) <= CONN_HIGH_WATER)
			conn_recv_start(&cl->c);
	} else if (login && cl->pool->d->pool_mode == CFG_POOL_TRANSACTION) {
		/* Logged in through a fresh server and asked for nothing yet: no need to hold it. */
		client_on_txn_done(&cl->link);
	}
}

/* Appends "SET name = 'value';" to sql, quoting value. False when it does not fit. */
static bool client_append_set(char *sql, size_t cap, size_t *len, const char *name, const char *value)
{
	int n = snprintf(sql + *len, cap - *len, "SET %s = '", name);
	if (n < 0 || (size_t)n >= cap - *len)
		return false;
	*len += (size_t)n;
	for (const char *q = value; *q; q++) {
		if (*len + 3 >= cap)
			return false;
		if (*q == '\'')
			sql[(*len)++] = '\'';
		sql[(*len)++] = *q;
	}
	n = snprintf(sql + *len, cap - *len, "';");
	if (n < 0 || (size_t)n >= cap - *len)
		return false;
	*len += (size_t)n;
	return true;
}


/* What a tracked parameter should be for this client: its SET, its startup value, or the pool's default. */
const char *client_wanted(const struct client *cl, const char *name)
{
	for (uint32_t i = 0; i < cl->nset; i++)
		if (strcasecmp(cl->set[i].name, name) == 0)
			return cl->set[i].value;
	const char *v = client_startup_value(cl, name);
	if (v)
		return v;
	const struct pool_params *pp = pool_params(cl->pool);
	for (uint32_t i = 0; pp && i < pp->n; i++)
		if (strcasecmp(pp->v[i].name, name) == 0)
			return pp->v[i].value;
	return NULL;
}

/*
 * client_wanted of tracked parameter i. Built once, not per link: the answer
 * changes only when the client's SETs do (client_on_param drops it) or its
 * pool first publishes parameters.
 */
static const char *client_wanted_at(struct client *cl, size_t i)
{
	const struct pool_params *pp = pool_params(cl->pool);
	if (!cl->want || cl->want_pp != pp) {
		const struct cfg *cfg = client_cfg(cl);
		if (!cl->want && !(cl->want = malloc(cfg->ntrack_parameters * sizeof *cl->want + 1)))
			die("out of memory");
		for (size_t j = 0; j < cfg->ntrack_parameters; j++)
			cl->want[j] = client_wanted(cl, cfg->track_parameters[j]);
		cl->want_pp = pp;
	}
	return cl->want[i];
}

/*
 * A read_only tenant's server defaults to read-only transactions (and its
 * statements cannot switch that off: quota/rules.c); anyone else landing on
 * such a server gets the server's own default back.
 */
static bool client_read_only_sql(struct client *cl, char *sql, size_t cap, size_t *len)
{
	static const char name[] = "default_transaction_read_only";
	const char *have = server_default_read_only(cl->srv);
	if (cl->tenant && client_tcfg(cl)->read_only)
		return (have && strcmp(have, "on") == 0) || client_append_set(sql, cap, len, name, "on");
	if (!have || strcmp(have, "on") != 0 || cfg_is_tracked(client_cfg(cl), name))
		return true;
	const char *want = client_wanted(cl, name);
	if (want && strcmp(want, "on") == 0)
		return true;
	int n = snprintf(sql + *len, cap - *len, "RESET %s;", name);
	if (n < 0 || (size_t)n >= cap - *len)
		return false;
	*len += (size_t)n;
	return true;
}

/*
 * The SETs that make the linked server look as this client expects. Session
 * pooling: every startup parameter, once. Transaction pooling: the tracked
 * parameters, each time the client lands on a server that differs.
 */
static bool client_setup_sql(struct client *cl, char *sql, size_t cap, const char **bad)
{
	size_t len = 0;
	sql[0] = 0;
	cl->setup_mask = 0;
	if (client_is_tx(cl)) {
		/* Evictions take at most half: the parameters must fit after them. */
		server_evict_sql(cl->srv, sql, cap / 2, &len);
		const struct cfg *cfg = client_cfg(cl);
		for (size_t i = 0; i < cfg->ntrack_parameters && i < 64; i++) {
			const char *name = cfg->track_parameters[i];
			const struct server_param *sp = server_tracked(cl->srv, i);
			const char *want = client_wanted_at(cl, i), *have = sp ? sp->value : NULL;
			if (!want && sp && sp->noted) {
				/* Another client's value, which PostgreSQL would not report: back to the default. */
				int n = snprintf(sql + len, cap - len, "RESET %s;", name);
				if (n < 0 || (size_t)n >= cap - len)
					goto toolong;
				len += (size_t)n;
				cl->setup_mask |= 1ull << i;
				continue;
			}
			if (!want || (have && strcmp(have, want) == 0))
				continue;
			if (!client_append_set(sql, cap, &len, name, want))
				goto toolong;
			cl->setup_mask |= 1ull << i;
		}
		if (!client_read_only_sql(cl, sql, cap, &len))
			goto toolong;
		return true;
	}
	const char *name, *value;
	for (size_t off = 0; startup_next(cl->pkt, cl->pktlen, &off, &name, &value);) {
		if (!strcmp(name, "user") || !strcmp(name, "database") || !strcmp(name, "options") ||
		    !strncmp(name, "_pq_.", 5))
			continue;
		const char *have = server_param(cl->srv, name);
		if (have && strcmp(have, value) == 0)
			continue;
		for (const char *q = name; *q; q++) {
			if (!isalnum((unsigned char)*q) && *q != '_' && *q != '.') {
				*bad = name;
				return false;
			}
		}
		if (!client_append_set(sql, cap, &len, name, value))
			goto toolong;
	}
	for (uint32_t i = 0; i < cl->nopts; i++) {
		const char *have = server_param(cl->srv, cl->opts[i].name);
		if (client_explicit_value(cl, cl->opts[i].name) || (have && strcmp(have, cl->opts[i].value) == 0))
			continue;
		if (!client_append_set(sql, cap, &len, cl->opts[i].name, cl->opts[i].value))
			goto toolong;
	}
	if (!client_read_only_sql(cl, sql, cap, &len))
		goto toolong;
	return true;
toolong:
	*bad = "startup parameters too long";
	return false;
}

/* The server reported a tracked parameter's new value: the client keeps it across servers. */
static void client_on_param(struct server_link *l, const char *name, const char *value)
{
	struct client *cl = client_of_link(l);
	if (cl->tenant && client_tcfg(cl)->read_only && strcasecmp(name, "default_transaction_read_only") == 0 &&
	    strcmp(value, "on") != 0) {
		/* The rules refuse every statement known to do this; one that got past them ends the session. */
		char msg[256];
		snprintf(msg, sizeof msg, "tenant \"%s\" is read-only: default_transaction_read_only cannot be changed",
			 client_tcfg(cl)->name);
		client_fatal(cl, SQLSTATE_READ_ONLY_TRANSACTION, msg);
		return;
	}
	if (!client_is_tx(cl) || !cfg_is_tracked(client_cfg(cl), name))
		return;
	uint32_t i = 0;
	while (i < cl->nset && strcasecmp(cl->set[i].name, name) != 0)
		i++;
	if (i < cl->nset && strcmp(cl->set[i].value, value) == 0)
		return;
	/* cl->want points into the values about to change. */
	free(cl->want);
	cl->want = NULL;
	char *v = strdup(value);
	if (!v)
		die("out of memory");
	if (i < cl->nset) {
		free(cl->set[i].value);
		cl->set[i].value = v;
		return;
	}
	struct server_param *ns = realloc(cl->set, (cl->nset + 1) * sizeof *ns);
	if (!ns || !(ns[cl->nset].name = strdup(name)))
		die("out of memory");
	cl->set = ns;
	ns[cl->nset].value = v;
	ns[cl->nset].noted = false;
	cl->nset++;
}

static void client_on_server(struct pool_waiter *wt, struct server *s)
{
	struct client *cl = (struct client *)((char *)wt - offsetof(struct client, wt));
	cl->srv = s;
	server_link(s, &cl->link);
	char sql[4096];
	const char *bad = NULL;
	if (!client_setup_sql(cl, sql, sizeof sql, &bad)) {
		char msg[200];
		snprintf(msg, sizeof msg, "unsupported startup parameter: %s", bad);
		client_fatal(cl, SQLSTATE_FEATURE_NOT_SUPPORTED, msg);
		return;
	}
	if (!sql[0]) {
		client_linked(cl);
		return;
	}
	client_set_state(cl, CL_SETUP);
	server_setup_query(s, sql);
}

static void client_on_setup_done(struct server_link *l, const char *sqlstate, const char *message)
{
	struct client *cl = client_of_link(l);
	if (sqlstate) {
		client_fatal(cl, sqlstate, message);
		return;
	}
	/* What PostgreSQL does not report (search_path), the server remembers we set. */
	const struct cfg *cfg = client_cfg(cl);
	for (size_t i = 0; i < cfg->ntrack_parameters && i < 64; i++) {
		const char *name = cfg->track_parameters[i];
		const struct server_param *sp = server_tracked(cl->srv, i);
		if (!(cl->setup_mask >> i & 1) || (sp && !sp->noted))
			continue;
		const char *want = client_wanted_at(cl, i);
		if (want)
			server_note_param(cl->srv, name, want);
		else
			server_forget_param(cl->srv, name);
	}
	client_linked(cl);
}

static void client_on_server_fail(struct pool_waiter *wt, const char *sqlstate, const char *message)
{
	struct client *cl = (struct client *)((char *)wt - offsetof(struct client, wt));
	client_fatal(cl, sqlstate, message);
}

/* Transaction pooling: between transactions the client holds no server. */
static void client_on_txn_done(struct server_link *l)
{
	struct client *cl = client_of_link(l);
	if (cl->st != CL_LINKED || cl->pool->d->pool_mode != CFG_POOL_TRANSACTION ||
	    cl->fr.left || cl->fr.have)
		return;
	struct server *s = cl->srv;
	cl->srv = NULL;
	client_set_state(cl, CL_IDLE);
	/* Paused because that server's queue was full: with no server, nothing holds it back. */
	conn_recv_start(&cl->c);
	server_release(s);
	if (cl->tenant)
		client_tenant_give(cl);
}

static void client_on_server_lost(struct server_link *l, const char *why, bool at_boundary)
{
	struct client *cl = client_of_link(l);
	cl->srv = NULL;
	if (cl->tenant)
		client_tenant_give(cl);
	if (at_boundary)
		client_send_error(cl, "FATAL", SQLSTATE_CONNECTION_FAILURE, why, NULL);
	client_close(cl, why);
}

/* --- login --- */

static void client_authed(struct client *cl)
{
	uint8_t buf[16];
	struct wbuf w = wbuf_on(buf, sizeof buf);
	msg_auth(&w, AUTH_OK, NULL, 0);
	client_send(cl, &w);

	if (cl->tenant) {
		const struct cfg_tenant *t = client_tcfg(cl);
		if (!quota_client_enter(cl->tenant->q)) {
			char msg[256];
			snprintf(msg, sizeof msg, "too many client connections for tenant \"%s\" (max_client_connections is %u)",
				 t->name, t->max_client_connections);
			client_fatal(cl, SQLSTATE_TOO_MANY_CONNECTIONS, msg);
			return;
		}
		cl->guard->counted = true;
		cl->link.usage = client_on_usage;
		cl->link.max_rows = t->max_rows;
		cl->link.max_bytes = t->max_result_bytes;
		cl->link.result_limit = client_on_result_limit;
	}
	const char *why = "unknown";
	cl->pool = pool_get(cl->c.w, cl->db, cl->user, cl->d, &why);
	if (!cl->pool) {
		char msg[256];
		snprintf(msg, sizeof msg, "cannot reach database \"%s\": %s", cl->db, why);
		client_fatal(cl, SQLSTATE_CONNECTION_FAILURE, msg);
		return;
	}
	if (cl->auth.have_client_key && !cl->pool->have_client_key) {
		memcpy(cl->pool->client_key, cl->auth.client_key, sizeof cl->pool->client_key);
		cl->pool->have_client_key = true;
	}
	auth_state_clear(&cl->auth);
	const struct pool_params *pp = pool_params(cl->pool);
	if (pp) {
		/* As PgBouncer does: the login ends now, a server comes with the first query. */
		client_welcome(cl, pp->v, pp->n);
		client_set_state(cl, CL_IDLE);
		/* An idle client should cost little memory: the login buffer goes. */
		if (!cl->in.len)
			bytes_free(&cl->in);
		else
			client_acquire(cl); /* it sent its first query along with the login */
		return;
	}
	/* The pool's first login: the client's ParameterStatus come from a real server. */
	client_acquire(cl);
}

static void client_auth_failed(struct client *cl, const char *why)
{
	char msg[256];
	if (why) {
		client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, why);
		return;
	}
	snprintf(msg, sizeof msg, "password authentication failed for user \"%s\"", cl->user);
	client_fatal(cl, SQLSTATE_INVALID_PASSWORD, msg);
}

/* Keeps the settings of the `options` startup parameter; false after refusing the login. */
static bool client_parse_options(struct client *cl, const char *opts)
{
	char name[256], value[1024];
	const char *why = NULL;
	int r;
	while ((r = options_next(&opts, name, sizeof name, value, sizeof value, &why)) == 1) {
		struct server_param *no = realloc(cl->opts, (cl->nopts + 1) * sizeof *no);
		if (!no)
			die("out of memory");
		cl->opts = no;
		no[cl->nopts] = (struct server_param){ .name = strdup(name), .value = strdup(value) };
		if (!no[cl->nopts].name || !no[cl->nopts].value)
			die("out of memory");
		cl->nopts++;
	}
	if (r < 0) {
		char msg[200];
		snprintf(msg, sizeof msg, "unsupported startup options: %s", why);
		client_fatal(cl, SQLSTATE_FEATURE_NOT_SUPPORTED, msg);
		return false;
	}
	return true;
}

static void client_start_auth(struct client *cl, const struct startup *sp)
{
	const struct cfg *cfg = client_cfg(cl);
	char msg[256];
	if (cl->over_limit) {
		snprintf(msg, sizeof msg, "no more connections allowed (max_client_connections is %u)",
			 cfg->max_client_connections);
		client_fatal(cl, SQLSTATE_TOO_MANY_CONNECTIONS, msg);
		return;
	}
	if (cl->c.w->stopping) {
		client_fatal(cl, SQLSTATE_CANNOT_CONNECT_NOW, "the proxy is shutting down");
		return;
	}
	if (startup_get(sp, "replication")) {
		client_fatal(cl, SQLSTATE_FEATURE_NOT_SUPPORTED, "replication connections are not supported");
		return;
	}
	const char *opts = startup_get(sp, "options");
	if (opts && !client_parse_options(cl, opts))
		return;
	cl->user = startup_get(sp, "user");
	cl->db = startup_get(sp, "database");
	if (!cl->db || !*cl->db)
		cl->db = cl->user;
	cl->d = cfg_find_db(cfg, cl->db);
	if (!cl->d) {
		snprintf(msg, sizeof msg, "database \"%s\" does not exist", cl->db);
		client_fatal(cl, SQLSTATE_INVALID_CATALOG_NAME, msg);
		return;
	}
	const struct cfg_tenant *t = cfg_find_tenant(cfg, cl->user, cl->db);
	if (t) {
		cl->tenant = &cl->c.w->tenants[t - cfg->tenants];
		cl->guard = calloc(1, sizeof *cl->guard);
		if (!cl->guard)
			die("out of memory");
	}
	const struct auth_user *u = auth_find(cl->c.w->rt->auth, cl->user);
	uint8_t buf[256];
	struct wbuf w = wbuf_on(buf, sizeof buf);
	switch (auth_begin(&cl->auth, cfg->auth_method, u, cl->user, &w)) {
	case AUTH_PASS:
		client_authed(cl);
		return;
	case AUTH_FAIL:
		snprintf(msg, sizeof msg, "no such user: \"%s\"", cl->user);
		client_fatal(cl, SQLSTATE_INVALID_AUTH_SPEC, msg);
		return;
	case AUTH_CONTINUE:
		client_send(cl, &w);
		client_set_state(cl, CL_AUTH);
		return;
	}
}

/* A whole startup-phase packet at cl->in[0..len). */
static void client_on_startup(struct client *cl, uint32_t len)
{
	struct startup sp;
	const char *why = NULL;
	if (msg_parse_startup(cl->in.p, len, &sp, &why) < 0) {
		client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, why ? why : "invalid startup packet");
		return;
	}
	uint8_t b[8];
	struct wbuf w = wbuf_on(b, sizeof b);
	switch (sp.code) {
	case PROTO_SSL_CODE:
	case PROTO_GSSENC_CODE:
		/* Encryption is not offered (yet): 'N', and the client goes on in clear. */
		msg_byte(&w, 'N');
		client_send(cl, &w);
		bytes_consume(&cl->in, len);
		return;
	case PROTO_CANCEL_CODE: {
		struct rt *rt = cl->c.w->rt;
		uint32_t owner = sp.pid >> WORKER_SLOT_BITS;
		uint32_t slot = sp.pid & (WORKER_SLOT_MAX - 1);
		if (owner == (uint32_t)cl->c.w->id)
			client_cancel_local(cl->c.w, slot, sp.key);
		else if (owner < rt->nworkers)
			worker_post(&cl->c.w->ring, &rt->workers[owner], OP_CANCEL, slot, 0, (int32_t)sp.key);
		client_close(cl, "cancel request");
		return;
	}
	default:
		break;
	}
	/* Keep the packet: the parameters point into it for the whole session. */
	cl->pkt = malloc(len);
	if (!cl->pkt)
		die("out of memory");
	memcpy(cl->pkt, cl->in.p, len);
	bytes_consume(&cl->in, len);
	cl->pktlen = len;
	if (msg_parse_startup(cl->pkt, len, &sp, &why) < 0)
		die("startup packet parsed once but not twice");
	client_start_auth(cl, &sp);
}

static void client_on_login_bytes(struct client *cl)
{
	while (cl->st == CL_STARTUP || cl->st == CL_AUTH) {
		if (cl->st == CL_STARTUP) {
			if (cl->in.len < 4)
				return;
			uint32_t len = msg_get32(cl->in.p);
			if (len < 8 || len > PROTO_STARTUP_MAX) {
				client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, "invalid length of startup packet");
				return;
			}
			if (cl->in.len < len)
				return;
			client_on_startup(cl, len);
			continue;
		}
		if (cl->in.len < 5)
			return;
		uint32_t len = msg_get32(cl->in.p + 1);
		if (cl->in.p[0] != 'p') {
			client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, "expected a password message");
			return;
		}
		if (len < 4 || len > CLIENT_AUTH_MSG_MAX) {
			client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, "invalid password message length");
			return;
		}
		if (cl->in.len < 1 + len)
			return;
		uint8_t buf[1024];
		struct wbuf w = wbuf_on(buf, sizeof buf);
		const char *why = NULL;
		enum auth_result r = auth_step(&cl->auth, cl->in.p + 5, len - 4, &w, &why);
		bytes_consume(&cl->in, 1 + len);
		if (r == AUTH_FAIL) {
			client_auth_failed(cl, why);
			return;
		}
		if (w.len)
			client_send(cl, &w);
		if (r == AUTH_PASS)
			client_authed(cl);
	}
}

/* --- connection callbacks --- */

static void client_on_data(struct conn *c, uint16_t bid, const uint8_t *p, size_t n)
{
	struct client *cl = client_of(c);
	switch (cl->st) {
	case CL_LINKED:
		client_relay(cl, bid, p, n, false);
		return;
	case CL_STARTUP:
	case CL_AUTH:
		client_gather(cl, p, n);
		client_on_login_bytes(cl);
		return;
	case CL_WAIT:
	case CL_SETUP:
	case CL_DELAY:
		client_gather(cl, p, n);
		return;
	case CL_IDLE:
		/* A session that only says goodbye never needs a server. */
		if (p[0] == 'X') {
			client_close(cl, "client closed the session");
			return;
		}
		if (client_is_tx(cl) && client_local_prepare(cl, p, n))
			return;
		if (cl->tenant && client_guard_idle(cl, p, n))
			return;
		client_acquire(cl);
		/* With an idle server at hand the link is made at once: relay in place. */
		if (cl->st == CL_LINKED)
			client_relay(cl, bid, p, n, false);
		else if (cl->st == CL_WAIT || cl->st == CL_SETUP)
			client_gather(cl, p, n);
		return;
	case CL_CLOSED:
		return;
	}
}

static void client_on_eof(struct conn *c, int res)
{
	struct client *cl = client_of(c);
	client_close(cl, res == 0 ? "client closed the connection" : strerror(-res));
}

static void client_on_drain(struct conn *c)
{
	struct client *cl = client_of(c);
	if (cl->st == CL_LINKED && cl->srv)
		conn_recv_start(&cl->srv->c);
}

static void client_on_tick(struct conn *c)
{
	struct client *cl = client_of(c);
	struct worker *w = c->w;
	const struct cfg *cfg = client_cfg(cl);
	if ((cl->st == CL_STARTUP || cl->st == CL_AUTH) && cfg->client_login_timeout &&
	    w->now - cl->since >= cfg->client_login_timeout) {
		client_fatal(cl, SQLSTATE_PROTOCOL_VIOLATION, "client_login_timeout: login not finished in time");
		return;
	}
	bool idle = cl->st == CL_IDLE ||
		    (cl->st == CL_LINKED && cl->srv && server_is_clean(cl->srv) && !cl->fr.left && !cl->fr.have);
	if (w->stopping && idle) {
		client_fatal(cl, SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to proxy shutdown");
		return;
	}
	if (cl->guard && cl->guard->tqueued)
		client_tenant_tick(cl);
	else if (cl->tenant)
		client_tenant_timeouts(cl);
}

static void client_on_free(struct conn *c)
{
	struct client *cl = client_of(c);
	struct worker *w = c->w;
	quota_conn_leave(&w->rt->clients);
	if (cl->guard && cl->guard->counted)
		quota_client_leave(cl->tenant->q);
	free(cl->guard);
	w->nclients--;
	auth_state_clear(&cl->auth);
	bytes_free(&cl->in);
	bytes_free(&cl->coll);
	if (cl->pool)
		stmt_map_free(&cl->stmts, &cl->pool->stmts);
	server_params_free(cl->set, cl->nset);
	free(cl->want);
	server_params_free(cl->opts, cl->nopts);
	free(cl->pkt);
	free(cl);
	if (w->stopping && w->nclients == 0)
		pool_close_idle(w);
}

static void client_on_connect(struct conn *c, int res)
{
	(void)c, (void)res;
	die("clients never connect");
}

static const struct conn_ops client_ops = {
	.on_data = client_on_data,
	.on_eof = client_on_eof,
	.on_connect = client_on_connect,
	.on_drain = client_on_drain,
	.on_tick = client_on_tick,
	.on_timer = client_on_timer,
	.on_free = client_on_free,
};

static void client_describe_peer(struct client *cl)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getpeername(cl->c.fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(cl->addr, sizeof cl->addr, "?");
		return;
	}
	char host[INET6_ADDRSTRLEN];
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(cl->addr, sizeof cl->addr, "%s:%u", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(cl->addr, sizeof cl->addr, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(cl->addr, sizeof cl->addr, "unix");
	}
}

void client_accept(struct worker *w, int fd)
{
	if (fd < 0) {
		log_warn("hand-off failed: %s", strerror(-fd));
		return;
	}
	struct rt *rt = w->rt;
	bool within = quota_conn_enter(&rt->clients);
	struct client *cl = calloc(1, sizeof *cl);
	if (!cl)
		die("out of memory");
	if (conn_open(&cl->c, w, fd, &client_ops) < 0) {
		log_error("no connection slot for a new client");
		quota_conn_leave(&rt->clients);
		close(fd);
		free(cl);
		return;
	}
	w->nclients++;
	cl->over_limit = !within;
	cl->since = cl->state_since = w->now;
	cl->wt.ready = client_on_server;
	cl->wt.fail = client_on_server_fail;
	cl->link.peer = &cl->c;
	cl->link.lost = client_on_server_lost;
	cl->link.setup_done = client_on_setup_done;
	cl->link.txn_done = client_on_txn_done;
	cl->link.param = client_on_param;
	if (getrandom(&cl->key, sizeof cl->key, 0) != sizeof cl->key)
		die("getrandom failed");
	snprintf(cl->id, sizeof cl->id, "c%u.%u", cl->c.slot, cl->c.gen);
	client_describe_peer(cl);
	log_debug("%s accepted from %s", cl->id, cl->addr);
	conn_recv_start(&cl->c);
}

void client_cancel_local(struct worker *w, uint32_t slot, uint32_t key)
{
	struct conn *c = worker_conn(w, slot);
	if (!c || c->ops != &client_ops || c->closing)
		return;
	struct client *cl = client_of(c);
	/* A wrong key is ignored, as PostgreSQL does. */
	if (cl->key != key || !cl->srv || cl->st != CL_LINKED || !cl->srv->be_pid)
		return;
	log_info("%s %s/%s cancel request for backend %u", cl->id, cl->db, cl->user, cl->srv->be_pid);
	client_cancel_server(cl, false);
}

void client_cancel_server(struct client *cl, bool ours)
{
	struct pool *p = cl->pool;
	struct server *s = cl->srv;
	if (!s || !s->be_pid)
		return;
	/* Ours may land after the statement ended: that server must not serve anyone else. */
	if (ours)
		s->canceled = true;
	cancel_send(cl->c.w, &p->addr, p->addrlen, p->family, s->be_pid, s->be_key);
}

void client_stop_all(struct worker *w, bool force)
{
	for (uint32_t i = 0; i < w->top; i++) {
		struct conn *c = w->conns[i];
		if (!c || c->ops != &client_ops || c->closing)
			continue;
		struct client *cl = client_of(c);
		bool idle = cl->st < CL_WAIT || cl->st == CL_IDLE ||
			    (cl->srv && server_is_clean(cl->srv) && !cl->fr.left && !cl->fr.have);
		/* An ErrorResponse may only go between the server's messages, never inside one. */
		bool between = !cl->srv || (!cl->srv->fr.left && !cl->srv->fr.have);
		if (idle || (force && between))
			client_fatal(cl, SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to proxy shutdown");
		else if (force)
			client_close(cl, "shutdown_timeout");
	}
	if (w->nclients == 0)
		pool_close_idle(w);
}
