/* Server connections: connect, PostgreSQL login (cleartext, md5, SCRAM), relay framing, setup and reset. */
#include "pool/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/rt.h"
#include "lib/worker.h"
#include "pool/pool.h"
#include "proto/md5.h"
#include "proto/msg.h"
#include "proto/scram.h"
#include "proto/sqlstate.h"

#define SERVER_IN_MAX (64u * 1024)

#define SERVER_STATE_NAME(name) #name,
static const char *const server_state_names[] = { SERVER_STATES(SERVER_STATE_NAME) };
#undef SERVER_STATE_NAME

const char *server_state_name(enum server_state st)
{
	return server_state_names[st];
}

static struct server *server_of(struct conn *c)
{
	return (struct server *)c;
}

static const struct cfg *server_cfg(const struct server *s)
{
	return s->c.w->rt->cfg;
}

static void server_set_state(struct server *s, enum server_state st)
{
	log_debug("%s %s/%s %s -> %s", s->id, s->pool->db, s->pool->user,
		  server_state_name(s->st), server_state_name(st));
	s->st = st;
	s->state_since = s->c.w->now;
}

static void server_send(struct server *s, const struct wbuf *w)
{
	if (w->overflow)
		die("server message overflow");
	conn_send_copy(&s->c, w->p, w->len);
}

const char *server_param(const struct server *s, const char *name)
{
	for (uint32_t i = 0; i < s->nparams; i++)
		if (strcasecmp(s->params[i].name, name) == 0)
			return s->params[i].value;
	return NULL;
}

#define SERVER_NO_PARAM UINT16_MAX

void server_params_free(struct server_param *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

/*
 * Where each tracked parameter, and after them default_transaction_read_only,
 * sits in s->params: looked up again only after the parameters change, not at
 * every link.
 */
const struct server_param *server_tracked(struct server *s, size_t i)
{
	const struct cfg *cfg = s->c.w->rt->cfg;
	size_t n = cfg->ntrack_parameters;
	if (s->trk_gen != s->params_gen || !s->trk) {
		if (!s->trk && !(s->trk = malloc((n + 1) * sizeof *s->trk)))
			die("out of memory");
		for (size_t j = 0; j <= n; j++) {
			const char *name = j < n ? cfg->track_parameters[j] : "default_transaction_read_only";
			s->trk[j] = SERVER_NO_PARAM;
			for (uint32_t k = 0; k < s->nparams && k < SERVER_NO_PARAM; k++) {
				if (strcasecmp(s->params[k].name, name) == 0) {
					s->trk[j] = (uint16_t)k;
					break;
				}
			}
		}
		s->trk_gen = s->params_gen;
	}
	return s->trk[i] == SERVER_NO_PARAM ? NULL : &s->params[s->trk[i]];
}

const char *server_default_read_only(struct server *s)
{
	const struct server_param *p = server_tracked(s, s->c.w->rt->cfg->ntrack_parameters);
	return p ? p->value : NULL;
}

static void server_set_param_as(struct server *s, const char *name, const char *value, bool noted)
{
	for (uint32_t i = 0; i < s->nparams; i++) {
		if (strcmp(s->params[i].name, name) == 0) {
			char *v = strdup(value);
			if (!v)
				die("out of memory");
			free(s->params[i].value);
			s->params[i].value = v;
			s->params[i].noted = noted;
			return;
		}
	}
	struct server_param *np = realloc(s->params, (s->nparams + 1) * sizeof *np);
	if (!np)
		die("out of memory");
	s->params = np;
	np[s->nparams].name = strdup(name);
	np[s->nparams].value = strdup(value);
	np[s->nparams].noted = noted;
	if (!np[s->nparams].name || !np[s->nparams].value)
		die("out of memory");
	s->nparams++;
	s->params_gen++;      /* a new entry: the index may now find it */
}

/* A linked client hears first, so it never reaches a server that is going away. */
static void server_drop_link(struct server *s, const char *why)
{
	struct server_link *l = s->link;
	if (!l)
		return;
	s->link = NULL;
	bool boundary = s->in_setup || (s->fr.left == 0 && s->fr.have == 0);
	l->lost(l, why, boundary);
}

static void server_set_param(struct server *s, const char *name, const char *value)
{
	server_set_param_as(s, name, value, false);
}

void server_note_param(struct server *s, const char *name, const char *value)
{
	server_set_param_as(s, name, value, true);
}

void server_forget_param(struct server *s, const char *name)
{
	for (uint32_t i = 0; i < s->nparams; i++) {
		if (strcasecmp(s->params[i].name, name) == 0 && s->params[i].noted) {
			s->params_gen++;  /* entries move: the index is stale */
			free(s->params[i].name);
			free(s->params[i].value);
			s->params[i] = s->params[--s->nparams];
			return;
		}
	}
}

/* A whole ParameterStatus body: the server's table, and the linked client if any. */
static void server_param_msg(struct server *s, const uint8_t *body, size_t n)
{
	const char *name, *value;
	if (msg_parse_param_status(body, n, &name, &value) < 0)
		return;
	server_set_param(s, name, value);
	if (s->link && s->link->param && (s->st == SV_LINKED))
		s->link->param(s->link, name, value);
}

/* Failure before the server ever became ready: the pool tells its waiters. */
static void server_fail(struct server *s, const char *sqlstate, const char *why)
{
	if (s->st == SV_CLOSED)
		return;
	server_drop_link(s, why);
	log_warn("%s %s/%s: %s", s->id, s->pool->db, s->pool->user, why);
	bool before_ready = s->st == SV_CONNECTING || s->st == SV_LOGIN;
	pool_server_gone(s, before_ready ? sqlstate : NULL, before_ready ? why : NULL);
	server_set_state(s, SV_CLOSED);
	conn_close(&s->c);
}

void server_close(struct server *s, const char *why)
{
	if (s->st == SV_CLOSED)
		return;
	log_debug("%s %s/%s closing: %s", s->id, s->pool->db, s->pool->user, why);
	server_drop_link(s, why);
	bool polite = s->st != SV_CONNECTING && s->st != SV_LOGIN;
	pool_server_gone(s, NULL, NULL);
	server_set_state(s, SV_CLOSED);
	if (polite) {
		uint8_t x[5];
		struct wbuf w = wbuf_on(x, sizeof x);
		msg_terminate(&w);
		server_send(s, &w);
		conn_close_flushed(&s->c, 1000);
	} else {
		conn_close(&s->c);
	}
}

static int server_scram_keys(struct server *s, struct scram_keys *k)
{
	struct pool *p = s->pool;
	const struct scram_client *sc = s->scram;
	if (p->keys_cached && p->keys_iterations == sc->iterations &&
	    p->keys_salt_len == sc->salt_len && memcmp(p->keys_salt, sc->salt, sc->salt_len) == 0) {
		*k = p->keys;
		return 0;
	}
	if (p->server_password) {
		if (scram_keys_derive(p->server_password, sc->salt, sc->salt_len, sc->iterations, k) < 0)
			return -EINVAL;
	} else if (p->server_auth && p->server_auth->has_scram && p->have_client_key &&
		   p->server_auth->scram.iterations == sc->iterations &&
		   p->server_auth->scram.salt_len == sc->salt_len &&
		   memcmp(p->server_auth->scram.salt, sc->salt, sc->salt_len) == 0) {
		/* The client proved the key of the same secret the server holds. */
		memcpy(k->client_key, p->client_key, SCRAM_KEY_LEN);
		memcpy(k->server_key, p->server_auth->scram.server_key, SCRAM_KEY_LEN);
	} else {
		return -EACCES;
	}
	p->keys = *k;
	p->keys_cached = true;
	p->keys_iterations = sc->iterations;
	p->keys_salt_len = sc->salt_len;
	memcpy(p->keys_salt, sc->salt, sc->salt_len);
	return 0;
}

static bool sasl_offers(const uint8_t *data, size_t n, const char *mech)
{
	size_t i = 0;
	while (i < n && data[i]) {
		const char *name = (const char *)data + i;
		size_t len = strnlen(name, n - i);
		if (len == n - i)
			return false;
		if (strcmp(name, mech) == 0)
			return true;
		i += len + 1;
	}
	return false;
}

/* One 'R' message during login. 0, or -1 after failing the server. */
static int server_auth(struct server *s, const uint8_t *body, size_t n)
{
	struct pool *p = s->pool;
	uint32_t code;
	const uint8_t *data;
	size_t dn;
	uint8_t out[1024];
	struct wbuf w = wbuf_on(out, sizeof out);
	char buf[SCRAM_MSG_MAX];
	size_t blen = 0;
	const char *why = NULL;

	if (msg_parse_auth(body, n, &code, &data, &dn) < 0) {
		server_fail(s, SQLSTATE_PROTOCOL_VIOLATION, "malformed authentication request from server");
		return -1;
	}
	switch (code) {
	case AUTH_OK:
		return 0;
	case AUTH_CLEARTEXT:
		if (!p->server_password)
			goto no_password;
		msg_password(&w, p->server_password);
		break;
	case AUTH_MD5: {
		char secret[MD5_PASSWD_LEN + 1], salted[MD5_PASSWD_LEN + 1];
		if (dn != 4) {
			server_fail(s, SQLSTATE_PROTOCOL_VIOLATION, "malformed md5 request from server");
			return -1;
		}
		if (p->server_password)
			md5_secret(p->server_user, p->server_password, secret);
		else if (p->server_auth && p->server_auth->has_md5)
			memcpy(secret, p->server_auth->md5, sizeof secret);
		else
			goto no_password;
		md5_salted(secret, data, salted);
		msg_password(&w, salted);
		break;
	}
	case AUTH_SASL: {
		if (!sasl_offers(data, dn, "SCRAM-SHA-256")) {
			server_fail(s, SQLSTATE_FEATURE_NOT_SUPPORTED, "server offers no SASL mechanism we support");
			return -1;
		}
		uint8_t nonce[SCRAM_NONCE_RAW];
		if (getrandom(nonce, sizeof nonce, 0) != sizeof nonce)
			die("getrandom failed");
		free(s->scram);
		s->scram = calloc(1, sizeof *s->scram);
		if (!s->scram)
			die("out of memory");
		if (scram_client_first(s->scram, nonce, buf, &blen) < 0)
			die("SCRAM client-first does not fit");
		msg_sasl_initial(&w, "SCRAM-SHA-256", buf, blen);
		break;
	}
	case AUTH_SASL_CONTINUE: {
		struct scram_keys keys;
		if (!s->scram || scram_client_parse_first(s->scram, data, dn, &why) < 0) {
			server_fail(s, SQLSTATE_PROTOCOL_VIOLATION, why ? why : "unexpected SASL continue");
			return -1;
		}
		if (server_scram_keys(s, &keys) < 0)
			goto no_password;
		if (scram_client_final(s->scram, &keys, buf, &blen) < 0)
			die("SCRAM client-final does not fit");
		msg_sasl_response(&w, buf, blen);
		break;
	}
	case AUTH_SASL_FINAL:
		if (!s->scram || scram_client_verify(s->scram, data, dn, &why) < 0) {
			server_fail(s, SQLSTATE_INVALID_PASSWORD, "server's SCRAM signature is wrong");
			return -1;
		}
		return 0;
	default: {
		char msg[96];
		snprintf(msg, sizeof msg, "server asks for unsupported authentication method %u", code);
		server_fail(s, SQLSTATE_FEATURE_NOT_SUPPORTED, msg);
		return -1;
	}
	}
	server_send(s, &w);
	return 0;

no_password:
	server_fail(s, SQLSTATE_INVALID_PASSWORD, "no password known for the server login");
	return -1;
}

/* One whole message during login or setup. 0, or -1 once s is failed. */
static int server_handle_msg(struct server *s, uint8_t type, const uint8_t *body, size_t n)
{
	switch (type) {
	case 'R':
		if (s->st != SV_LOGIN)
			break;
		return server_auth(s, body, n);
	case 'S':
		server_param_msg(s, body, n);
		return 0;
	case 'K':
		if (msg_parse_backend_key(body, n, &s->be_pid, &s->be_key) < 0) {
			server_fail(s, SQLSTATE_PROTOCOL_VIOLATION, "malformed BackendKeyData from server");
			return -1;
		}
		return 0;
	case 'E': {
		struct msg_fields f = { 0 };
		if (msg_parse_fields(body, n, &f) < 0 || !f.code)
			f = (struct msg_fields){ .code = SQLSTATE_CONNECTION_FAILURE, .message = "malformed error from server" };
		if (s->st == SV_LOGIN) {
			server_fail(s, f.code, f.message ? f.message : "server refused the login");
			return -1;
		}
		s->setup_failed = true;
		snprintf(s->setup_err, sizeof s->setup_err, "%s", f.code);
		snprintf(s->setup_msg, sizeof s->setup_msg, "%s", f.message ? f.message : "");
		return 0;
	}
	case 'Z':
		s->txn.status = n ? (char)body[0] : 'I';
		free(s->scram);
		s->scram = NULL;
		if (s->st == SV_LOGIN) {
			log_debug("%s %s/%s logged in, backend pid %u", s->id, s->pool->db, s->pool->user, s->be_pid);
			pool_server_ready(s);
		} else if (s->in_setup) {
			txn_ready(&s->txn, s->txn.status);
			s->in_setup = false;
			struct server_link *l = s->link;
			if (s->setup_failed)
				l->setup_done(l, s->setup_err, s->setup_msg);
			else
				l->setup_done(l, NULL, NULL);
		}
		return 0;
	default:
		break;
	}
	return 0;
}

/* Login and setup replies are small: gather whole messages and parse them. */
static void server_gather(struct server *s, const uint8_t *p, size_t n)
{
	if (!bytes_append(&s->in, p, n, SERVER_IN_MAX)) {
		server_fail(s, SQLSTATE_PROTOCOL_VIOLATION, "server login messages too large");
		return;
	}

	uint32_t off = 0;
	while (s->in.len - off >= 5 && (s->st == SV_LOGIN || s->in_setup)) {
		uint8_t type = s->in.p[off];
		uint32_t len = msg_get32(s->in.p + off + 1);
		if (len < 4 || len > SERVER_IN_MAX) {
			server_fail(s, SQLSTATE_PROTOCOL_VIOLATION, "bad message length from server");
			return;
		}
		if (s->in.len - off < 1 + len)
			break;
		if (server_handle_msg(s, type, s->in.p + off + 5, len - 4) < 0)
			return;
		off += 1 + len;
	}
	bytes_consume(&s->in, off);
	if (s->st != SV_LOGIN && !s->in_setup && s->in.len) {
		/* Nothing may follow ReadyForQuery before the client speaks. */
		server_close(s, "unexpected bytes after ReadyForQuery");
	}
}

static void server_push_expect(struct server *s, uint8_t type, bool hidden, const uint8_t *hash)
{
	if (s->exp_n == s->exp_cap) {
		uint32_t ncap = s->exp_cap ? s->exp_cap * 2 : 16;
		struct server_expect *nv = malloc(ncap * sizeof *nv);
		if (!nv)
			die("out of memory");
		for (uint32_t i = 0; i < s->exp_n; i++)
			nv[i] = s->expect[(s->exp_head + i) % s->exp_cap];
		free(s->expect);
		s->expect = nv;
		s->exp_head = 0;
		s->exp_cap = ncap;
	}
	struct server_expect *e = &s->expect[(s->exp_head + s->exp_n) % s->exp_cap];
	*e = (struct server_expect){ .type = type, .hidden = hidden, .epoch = s->txn.requests };
	if (hash) {
		e->has_hash = true;
		memcpy(e->hash, hash, STMT_HASH_LEN);
	}
	s->exp_n++;
	s->exp_hidden += hidden;
}

static struct server_expect server_pop_expect(struct server *s)
{
	struct server_expect e = s->expect[s->exp_head];
	s->exp_head = (s->exp_head + 1) % s->exp_cap;
	s->exp_n--;
	s->exp_hidden -= e.hidden;
	return e;
}

void server_expect(struct server *s, uint8_t type, const uint8_t *hash)
{
	server_push_expect(s, type, false, hash);
}

void server_evict_sql(struct server *s, char *sql, size_t cap, size_t *len)
{
	uint32_t max = server_cfg(s)->max_prepared_statements;
	const struct stmt_set_entry *victim;
	while ((victim = stmt_set_victim(&s->stmts, max))) {
		char name[STMT_NAME_LEN];
		uint8_t hash[STMT_HASH_LEN];
		memcpy(hash, victim->hash, STMT_HASH_LEN);
		stmt_name_of(hash, name);
		int n = snprintf(sql + *len, cap - *len, "DEALLOCATE %s;", name);
		if (n < 0 || (size_t)n >= cap - *len) {
			sql[*len] = 0;
			return; /* the rest go at a later link: the set stays over its cap till then */
		}
		*len += (size_t)n;
		stmt_set_mark(&s->stmts, hash, STMT_ABSENT);
	}
}

static void server_send_parse(struct server *s, const struct stmt *st, bool hidden)
{
	conn_send_named(&s->c, 'P', NULL, 0, st->name, st->body, st->len);
	server_push_expect(s, '1', hidden, st->hash);
	stmt_set_mark(&s->stmts, st->hash, STMT_PENDING);
}

void server_parse(struct server *s, const struct stmt *st)
{
	if (stmt_set_state(&s->stmts, st->hash) == STMT_ABSENT) {
		server_send_parse(s, st, false);
		return;
	}
	/*
	 * Already here: an empty unnamed Parse makes the server itself answer
	 * ParseComplete in the right place among the replies.
	 */
	static const uint8_t empty[] = { 0, 0, 0 };
	conn_send_named(&s->c, 'P', NULL, 0, "", empty, sizeof empty);
	server_push_expect(s, '1', false, NULL);
}

void server_prepare(struct server *s, const struct stmt *st)
{
	if (stmt_set_state(&s->stmts, st->hash) == STMT_ABSENT)
		server_send_parse(s, st, true);
}

static void server_send_query(struct server *s, const char *sql);

static char refused_portal[40];

static void server_name_refused_portal(void)
{
	uint8_t r[12];
	if (getrandom(r, sizeof r, 0) != sizeof r)
		die("getrandom failed");
	int n = snprintf(refused_portal, sizeof refused_portal, "rb_refused_");
	for (size_t i = 0; i < sizeof r; i++)
		n += snprintf(refused_portal + n, sizeof refused_portal - (size_t)n, "%02x", r[i]);
}

/* A portal no client made: one that guessed the name could have its own portal run in a refusal's place. */
static const char *server_refused_portal(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, server_name_refused_portal);
	return refused_portal;
}

static void server_push_refusal(struct server *s, uint32_t epoch, const uint8_t *err, size_t len)
{
	struct server_refusal *r = malloc(sizeof *r + len);
	if (!r)
		die("out of memory");
	*r = (struct server_refusal){ .epoch = epoch, .len = (uint32_t)len };
	memcpy(r->msg, err, len);
	/* Kept in epoch order: a replacement for the current request goes before later refusals. */
	struct server_refusal **pp = &s->refusals;
	while (*pp && (*pp)->epoch <= epoch)
		pp = &(*pp)->next;
	r->next = *pp;
	*pp = r;
}

void server_replace_error(struct server *s, const uint8_t *err, size_t len)
{
	server_push_refusal(s, s->txn.answers, err, len);
}

void server_refuse(struct server *s, uint8_t type, const uint8_t *err, size_t len)
{
	server_push_refusal(s, s->txn.requests, err, len);
	/* Each fails in parse analysis or portal look-up, before anything runs. */
	static const char fail_sql[] = "SELECT rb_refused";
	static const uint8_t no_types[] = { 0, 0 };
	static const uint8_t no_limit[] = { 0, 0, 0, 0 };
	if (type == 'Q' || type == 'F') {
		server_send_query(s, fail_sql);
	} else if (type == 'P') {
		uint8_t rest[sizeof fail_sql + sizeof no_types];
		memcpy(rest, fail_sql, sizeof fail_sql);
		memcpy(rest + sizeof fail_sql, no_types, sizeof no_types);
		conn_send_named(&s->c, 'P', NULL, 0, "", rest, sizeof rest);
	} else {
		conn_send_named(&s->c, 'E', NULL, 0, server_refused_portal(), no_limit, sizeof no_limit);
	}
	txn_request(&s->txn, type);
}

/* An ErrorResponse arrived: our replacement when a refusal is due in this epoch, else NULL. */
static struct server_refusal *server_take_refusal(struct server *s)
{
	struct server_refusal *r = s->refusals;
	if (!r || r->epoch != s->txn.answers)
		return NULL;
	s->refusals = r->next;
	return r;
}

/* After a ReadyForQuery: refusals of epochs now over were skipped by an earlier error. */
static void server_drop_refusals(struct server *s, bool all)
{
	while (s->refusals && (all || s->refusals->epoch < s->txn.answers)) {
		struct server_refusal *r = s->refusals;
		s->refusals = r->next;
		free(r);
	}
}

/*
 * After a ReadyForQuery: refusals and expected replies of epochs now over were
 * skipped by an earlier error (or cut with a result), and never come.
 */
static void server_drop_stale(struct server *s)
{
	if (s->refusals)
		server_drop_refusals(s, false);
	while (s->exp_n && s->expect[s->exp_head].epoch < s->txn.answers) {
		struct server_expect e = server_pop_expect(s);
		if (e.has_hash && stmt_set_state(&s->stmts, e.hash) == STMT_PENDING)
			stmt_set_mark(&s->stmts, e.hash, STMT_ABSENT);
	}
}

/* A ParseComplete/CloseComplete arrived: true when it is ours, to be kept from the client. */
static bool server_take_reply(struct server *s, uint8_t type)
{
	if (!s->exp_n)
		return false;
	struct server_expect e = server_pop_expect(s);
	if (e.type != type)
		log_warn("%s expected '%c' got '%c': statement bookkeeping is off", s->id, e.type, type);
	if (e.has_hash && type == '1')
		stmt_set_mark(&s->stmts, e.hash, STMT_READY);
	return e.hidden;
}

/* An ErrorResponse: the server skips to the next Sync, so replies due in this epoch never come. */
static void server_skip_epoch(struct server *s)
{
	while (s->exp_n && s->expect[s->exp_head].epoch == s->txn.answers) {
		struct server_expect e = server_pop_expect(s);
		if (e.has_hash && stmt_set_state(&s->stmts, e.hash) == STMT_PENDING)
			stmt_set_mark(&s->stmts, e.hash, STMT_ABSENT);
	}
}

/*
 * Message m (of the chunk starting at stream offset base, n bytes long) is
 * not relayed: returns where relaying resumes in this chunk; what is left of
 * it in later chunks goes with drop_left.
 */
static size_t server_cut(struct server *s, const struct frame_msg *m, uint64_t base, size_t n)
{
	size_t end = (size_t)(m->at + 1 + m->len - base);
	size_t from = end < n ? end : n;
	s->drop_left = end - from;
	return from;
}

/* Frames the server's stream in place; forwards it when linked, minus the replies to our own messages. */
static void server_relay(struct server *s, uint16_t bid, const uint8_t *p, size_t n)
{
	struct server_link *l = s->st == SV_LINKED ? s->link : NULL;
	uint64_t base = s->fr.pos;
	size_t off = 0, from = 0;
	uint32_t rows = 0, readies = 0;
	bool reset_failed = false, reset_done = false, ready = false;
	if (s->drop_left) {
		/* The rest of a replaced ErrorResponse; the framer skips the same bytes below. */
		from = n < s->drop_left ? n : (size_t)s->drop_left;
		s->drop_left -= from;
	}
	if (s->pcap_left) {
		/* The rest of a ParameterStatus; the framer skips the same bytes below. */
		size_t k = n < s->pcap_left ? n : s->pcap_left;
		if (!bytes_append(&s->pcap, p, k, SERVER_IN_MAX))
			die("ParameterStatus too large");
		s->pcap_left -= (uint32_t)k;
		if (!s->pcap_left) {
			server_param_msg(s, s->pcap.p, s->pcap.len);
			s->pcap.len = 0;
			if (l && s->link != l)
				return; /* the client left over it */
		}
	}
	while (off < n) {
		size_t used;
		struct frame_msg m;
		int rc = frame_next(&s->fr, p + off, n - off, &used, &m);
		off += used;
		if (rc == FRAME_BAD) {
			s->fr.have = 1; /* not at a boundary: no ErrorResponse into a broken stream */
			server_close(s, "protocol violation from server");
			return;
		}
		if (rc == FRAME_MORE)
			break;
		size_t start = m.at >= base ? (size_t)(m.at - base) : 0;
		bool row = m.type == 'D' || m.type == 'd';
		if (l && row && !s->cutting && (l->max_rows || l->max_bytes)) {
			s->res_rows++;
			s->res_bytes += 1 + (uint64_t)m.len;
			bool over_rows = l->max_rows && s->res_rows > l->max_rows;
			if (over_rows || (l->max_bytes && s->res_bytes > l->max_bytes)) {
				conn_send_buf(l->peer, bid, p + from, start - from);
				from = start;
				s->cutting = true;
				s->cut_len = (uint16_t)l->result_limit(l, over_rows, s->cut_err, sizeof s->cut_err);
			}
		}
		/* Cutting a result: everything up to ReadyForQuery is dropped, its bookkeeping still done. */
		bool drop = s->cutting && m.type != 'Z';
		switch (m.type) {
		case 'D':
		case 'd':
			rows++;
			break;
		case 'C':
		case 's':
		case 'I':
			s->res_rows = s->res_bytes = 0;
			break;
		case 'Z':
			if (s->cutting) {
				/* The result's end: our error, then ReadyForQuery as the server sent it. */
				conn_send_copy(l->peer, s->cut_err, s->cut_len);
				s->cutting = false;
			}
			s->res_rows = s->res_bytes = 0;
			txn_ready(&s->txn, (char)m.first);
			server_drop_stale(s);
			ready = true;
			readies++;
			if (s->st == SV_RESET && s->txn.pending == 0)
				reset_done = true;
			break;
		case 'E': {
			s->res_rows = s->res_bytes = 0;
			/* Replaced only when none of its header went out already. */
			bool whole = m.at >= base || s->nheld == base - m.at;
			struct server_refusal *r = l && !drop && whole ? server_take_refusal(s) : NULL;
			server_skip_epoch(s);
			if (s->st == SV_RESET)
				reset_failed = true;
			if (!r)
				break;
			/* Ours instead: whatever of it was held or is in this chunk is cut. */
			conn_send_buf(l->peer, bid, p + from, start - from);
			s->nheld = 0;
			conn_send_copy(l->peer, r->msg, r->len);
			free(r);
			from = server_cut(s, &m, base, n);
			continue;
		}
		case 'S':
			/* ParameterStatus: its body starts at its first byte, the one just framed. */
			if (m.len > 4 && m.len - 4 <= SERVER_IN_MAX) {
				size_t body = off - 1, blen = m.len - 4;
				if (n - body >= blen) {
					server_param_msg(s, p + body, blen);
					if (l && s->link != l)
						return; /* the client left over it */
				} else {
					if (!bytes_append(&s->pcap, p + body, n - body, SERVER_IN_MAX))
						die("ParameterStatus too large");
					s->pcap_left = (uint32_t)(blen - (n - body));
				}
			}
			break;
		case '1':
		case '3':
			if (server_take_reply(s, m.type) && !drop) {
				/* Ours: cut it out (with any of its header held from the last chunk). */
				if (l)
					conn_send_buf(l->peer, bid, p + from, start - from);
				from = off;
				s->nheld = 0;
				continue;
			}
			break;
		default:
			break;
		}
		if (drop) {
			/* Dropped whole, with any of its header held from the last chunk. */
			from = server_cut(s, &m, base, n);
			s->nheld = 0;
			continue;
		}
		if (s->nheld) {
			if (l)
				conn_send_copy(l->peer, s->held, s->nheld);
			s->nheld = 0;
		}
	}
	if (l) {
		size_t end = n;
		bool may_cut = s->cutting || l->max_rows || l->max_bytes;
		if ((s->exp_hidden || s->refusals || may_cut) && s->fr.have) {
			/* A cut header may be a reply we must swallow: hold it back (at most 5 bytes). */
			size_t cut = (size_t)s->fr.have - s->nheld;
			size_t in_chunk = cut < n ? cut : n;
			memcpy(s->held + s->nheld, p + n - in_chunk, in_chunk);
			s->nheld = s->fr.have;
			end = n - in_chunk;
		}
		if (end > from)
			conn_send_buf(l->peer, bid, p + from, end - from);
		if (conn_queued(l->peer) > CONN_HIGH_WATER)
			conn_recv_pause(&s->c);
		if (l->usage)
			l->usage(l, rows, n, readies);
		/* Last: the client may hand s to someone else right away. */
		if (ready && server_is_clean(s))
			l->txn_done(l);
		return;
	}
	if (s->st == SV_RESET) {
		if (reset_failed) {
			server_close(s, "reset query failed");
		} else if (reset_done) {
			if (s->txn.status == 'I')
				pool_server_ready(s);
			else
				server_close(s, "reset left a transaction open");
		}
	}
}

static void server_on_data(struct conn *c, uint16_t bid, const uint8_t *p, size_t n)
{
	struct server *s = server_of(c);
	if (s->st == SV_LOGIN || s->in_setup)
		server_gather(s, p, n);
	else
		server_relay(s, bid, p, n);
}

static void server_on_eof(struct conn *c, int res)
{
	struct server *s = server_of(c);
	char why[128];
	if (res == 0)
		snprintf(why, sizeof why, "server closed the connection unexpectedly");
	else
		snprintf(why, sizeof why, "server connection failed: %s", strerror(-res));
	server_fail(s, SQLSTATE_CONNECTION_FAILURE, why);
}

static void server_on_connect(struct conn *c, int res)
{
	struct server *s = server_of(c);
	if (res < 0) {
		char why[160];
		snprintf(why, sizeof why, "could not connect to server %s:%u: %s",
			 s->pool->d->host, s->pool->d->port, strerror(-res));
		server_fail(s, SQLSTATE_CONNECTION_FAILURE, why);
		return;
	}
	uint8_t buf[1024];
	struct wbuf w = wbuf_on(buf, sizeof buf);
	const char *kv[] = { "user", s->pool->server_user, "database", s->pool->server_db, NULL };
	msg_startup(&w, kv);
	if (w.overflow) {
		server_fail(s, SQLSTATE_PROTOCOL_VIOLATION, "startup packet too large");
		return;
	}
	server_send(s, &w);
	server_set_state(s, SV_LOGIN);
	conn_recv_start(c);
}

static void server_on_drain(struct conn *c)
{
	struct server *s = server_of(c);
	/* The client was paused because we could not keep up: let it talk again. */
	if (s->st == SV_LINKED && s->link && !s->link->peer->closing)
		conn_recv_start(s->link->peer);
}

static void server_on_tick(struct conn *c)
{
	struct server *s = server_of(c);
	const struct cfg *cfg = server_cfg(s);
	uint64_t now = c->w->now;
	switch (s->st) {
	case SV_CONNECTING:
	case SV_LOGIN:
		if (cfg->server_connect_timeout && now - s->state_since >= cfg->server_connect_timeout) {
			char why[160];
			snprintf(why, sizeof why, "timed out connecting to server %s:%u",
				 s->pool->d->host, s->pool->d->port);
			server_fail(s, SQLSTATE_CONNECTION_FAILURE, why);
		}
		break;
	case SV_RESET:
		if (cfg->server_connect_timeout && now - s->state_since >= cfg->server_connect_timeout)
			server_close(s, "reset query timed out");
		break;
	case SV_IDLE:
		if (cfg->server_idle_timeout && now - s->idle_since >= cfg->server_idle_timeout)
			server_close(s, "server_idle_timeout");
		else if (cfg->server_lifetime && now - s->created >= cfg->server_lifetime)
			server_close(s, "server_lifetime");
		break;
	default:
		break;
	}
}

static void server_on_free(struct conn *c)
{
	struct server *s = server_of(c);
	c->w->nservers--;
	server_params_free(s->params, s->nparams);
	free(s->trk);
	bytes_free(&s->in);
	bytes_free(&s->pcap);
	free(s->scram);
	free(s->expect);
	server_drop_refusals(s, true);
	stmt_set_free(&s->stmts);
	free(s);
}

static const struct conn_ops server_ops = {
	.on_data = server_on_data,
	.on_eof = server_on_eof,
	.on_connect = server_on_connect,
	.on_drain = server_on_drain,
	.on_tick = server_on_tick,
	.on_free = server_on_free,
};

int server_connect(struct pool *p)
{
	int fd = socket(p->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (p->family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	struct server *s = calloc(1, sizeof *s);
	if (!s)
		die("out of memory");
	int ret = conn_open(&s->c, p->w, fd, &server_ops);
	if (ret < 0) {
		close(fd);
		free(s);
		return ret;
	}
	s->pool = p;
	s->st = SV_CONNECTING;
	s->created = s->state_since = p->w->now;
	txn_init(&s->txn);
	snprintf(s->id, sizeof s->id, "s%u.%u", s->c.slot, s->c.gen);
	p->w->nservers++;
	conn_connect(&s->c, &p->addr, p->addrlen);
	return 0;
}

void server_link(struct server *s, struct server_link *link)
{
	s->link = link;
	s->txn.pending = 0;
	s->txn.unsynced = false;
	server_set_state(s, SV_LINKED);
	conn_recv_start(&s->c);
}

static bool server_quiet(const struct server *s);

bool server_is_clean(const struct server *s)
{
	return server_quiet(s) && s->txn.status == 'I';
}

void server_release(struct server *s)
{
	s->link = NULL;
	if (s->canceled) {
		server_close(s, "a cancel of the proxy's may still arrive");
		return;
	}
	pool_server_ready(s);
}

/* A Query of our own, built in the buffer the send queue then owns. */
static void server_send_query(struct server *s, const char *sql)
{
	size_t need = strlen(sql) + 6;
	uint8_t *buf = malloc(need);
	if (!buf)
		die("out of memory");
	struct wbuf w = wbuf_on(buf, need);
	msg_query(&w, sql);
	conn_send_owned(&s->c, buf, w.len);
}

/* Runs sql on a server no client holds; pool_server_ready follows its ReadyForQuery 'I'. */
static void server_reset(struct server *s, const char *sql)
{
	server_set_state(s, SV_RESET);
	conn_recv_start(&s->c);
	server_send_query(s, sql);
	txn_request(&s->txn, 'Q');
}

/* Between requests: nothing owed, nothing half-sent either way, no reply of ours pending. */
static bool server_quiet(const struct server *s)
{
	return s->st == SV_LINKED && !s->in_setup && txn_quiet(&s->txn) &&
	       s->fr.left == 0 && s->fr.have == 0 && s->exp_n == 0 && !s->refusals;
}

void server_unlink(struct server *s, bool client_at_boundary)
{
	bool idle = client_at_boundary && server_quiet(s);
	bool clean = idle && s->txn.status == 'I';
	s->link = NULL;
	if (s->st != SV_LINKED)
		return;
	if (s->canceled) {
		server_close(s, "a cancel of the proxy's may still arrive");
		return;
	}
	bool transaction = s->pool->d->pool_mode == CFG_POOL_TRANSACTION;
	if (transaction && idle) {
		/* Between transactions the server is as good as new; inside one it is rolled back. */
		if (clean)
			pool_server_ready(s);
		else
			server_reset(s, "ROLLBACK");
		return;
	}
	if (!clean) {
		server_close(s, "client left with the server busy or in a transaction");
		return;
	}
	const char *reset = server_cfg(s)->server_reset_query;
	if (!reset || !*reset) {
		pool_server_ready(s);
		return;
	}
	server_reset(s, reset);
}

void server_note_request(struct server *s, uint8_t type)
{
	txn_request(&s->txn, type);
}

void server_setup_query(struct server *s, const char *sql)
{
	server_send_query(s, sql);
	s->in_setup = true;
	s->setup_failed = false;
	txn_request(&s->txn, 'Q');
}
