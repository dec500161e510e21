/* A server connection: connect, log in to PostgreSQL, relay to a linked client, reset. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/bytes.h"
#include "lib/conn.h"
#include "pool/stmt.h"
#include "pool/txn.h"
#include "proto/frame.h"

struct pool;
struct scram_client;

#define SERVER_STATES(X) X(CONNECTING) X(LOGIN) X(IDLE) X(LINKED) X(RESET) X(CLOSED)
#define SERVER_STATE_ENUM(name) SV_##name,
enum server_state { SERVER_STATES(SERVER_STATE_ENUM) };
#undef SERVER_STATE_ENUM

/* A ParseComplete ('1') or CloseComplete ('3') the server owes, in request order. */
struct server_expect {
	uint8_t  type;
	bool     hidden;            /* answers our own Parse/Close: the client never sees it */
	bool     has_hash;          /* a Parse of this statement: READY once answered */
	uint8_t  hash[STMT_HASH_LEN];
	uint32_t epoch;             /* Syncs/Queries sent before it: an error skips its epoch */
};

struct server_param {
	char *name;
	char *value;
	bool  noted;                /* set by us, not reported by the server */
};

/* What a linked client is told by its server. */
struct server_link {
	struct conn *peer;      /* the client's connection: relayed bytes go there */
	/* The server went away while linked; at_boundary: the client stream is
	 * between messages, so the client can be sent an ErrorResponse. */
	void (*lost)(struct server_link *l, const char *why, bool at_boundary);
	/* A setup query (SET of startup parameters) finished: ok, or the error fields. */
	void (*setup_done)(struct server_link *l, const char *sqlstate, const char *message);
	/* The server reported a parameter value while linked (a SET, ours or the client's). */
	void (*param)(struct server_link *l, const char *name, const char *value);
	/* ReadyForQuery 'I' with nothing pending: the client may let the server go
	 * (transaction pooling). The last thing the server does in its handler. */
	void (*txn_done)(struct server_link *l);
	/* Optional (a tenant's client): after each relayed chunk, the DataRows and
	 * bytes in it and the ReadyForQuerys it ended. Before txn_done. */
	void (*usage)(struct server_link *l, uint32_t rows, size_t bytes, uint32_t readies);
	/* Per result (0: none): past either, the rest of the result is cut and
	 * result_limit writes the ErrorResponse the client gets in its place
	 * (into buf, at most cap bytes; it returns the length). */
	uint64_t max_rows, max_bytes;
	size_t (*result_limit)(struct server_link *l, bool rows, uint8_t *buf, size_t cap);
};

/* An ErrorResponse of ours that replaces the server's in one Sync epoch. */
struct server_refusal {
	struct server_refusal *next;
	uint32_t epoch;
	uint32_t len;
	uint8_t  msg[];
};

struct server {
	struct conn c;
	struct pool *pool;
	enum server_state st;
	struct server *next_idle;
	struct server_link *link;
	struct frame fr;           /* server -> client stream */
	struct bytes in;           /* whole messages during login and setup */
	struct txn txn;            /* requests owed a ReadyForQuery, and its last status */
	bool     in_setup;         /* running the proxy's own SET query: swallow replies */
	bool     setup_failed;
	char     setup_err[6];
	char     setup_msg[200];
	uint32_t be_pid, be_key;   /* BackendKeyData: for cancels */
	struct server_param *params;
	uint32_t nparams;
	uint32_t params_gen;       /* bumped when entries of params are added or move */
	uint32_t trk_gen;          /* params_gen that trk was built for (trk NULL: never built) */
	uint16_t *trk;             /* tracked parameter i -> its index in params (server_tracked) */
	uint64_t created, idle_since, state_since;
	struct scram_client *scram;
	char     id[16];
	/* Transaction pooling with named statements. */
	struct stmt_set stmts;      /* statements this server has or is preparing */
	struct server_expect *expect;
	uint32_t exp_head, exp_n, exp_cap, exp_hidden;
	uint8_t  held[5];           /* a reply header cut by a chunk's end, while hidden replies are due */
	uint8_t  nheld;
	struct bytes pcap;          /* a ParameterStatus cut by a chunk's end */
	uint32_t pcap_left;
	struct server_refusal *refusals;  /* by epoch, oldest first */
	uint64_t drop_left;         /* bytes of a replaced message still to cut from the stream */
	uint64_t res_rows, res_bytes;  /* of the result being relayed: for link->max_rows/max_bytes */
	bool     cutting;           /* a result passed a limit: drop replies up to ReadyForQuery */
	bool     canceled;          /* the proxy sent a cancel: it may yet hit a later statement */
	uint16_t cut_len;
	uint8_t  cut_err[512];      /* the ErrorResponse sent in their place */
};

/* Opens a connection for pool p; the pool hears back through pool_server_*(). */
int server_connect(struct pool *p) __attribute__((warn_unused_result));
/* Links s to a client: from now on its bytes are relayed to link->peer. */
void server_link(struct server *s, struct server_link *link);
/*
 * The client left. A clean server (idle, synced, and the client stopped
 * between messages) is reset for the next client; any other is closed.
 */
void server_unlink(struct server *s, bool client_at_boundary);
/* Transaction pooling: the linked client is done with s, which goes back to its pool as it is. */
void server_release(struct server *s);
/* Client -> server bytes, already framed by the client: notes requests. */
void server_note_request(struct server *s, uint8_t type);
/* The client's Parse or Close was forwarded: its reply is due in order. hash: for a Parse of a statement. */
void server_expect(struct server *s, uint8_t type, const uint8_t *hash);
/* Client Parse of st: prepares it here under its shared name, or answers from what is here. */
void server_parse(struct server *s, const struct stmt *st);
/*
 * Appends "DEALLOCATE name;" for the least recently used statements past
 * max_prepared_statements, for the setup query that runs when a client links,
 * before any of its traffic (so no error of the client's can skip it). As many
 * as fit within cap; the others wait for a later link.
 */
void server_evict_sql(struct server *s, char *sql, size_t cap, size_t *len);
/*
 * Refuses the client's message of this type ('Q', 'P', 'E' or 'F') where it
 * stands: the server gets one that fails at once instead, and its
 * ErrorResponse is replaced by err[0..len) (one the proxy built). So the
 * refusal reaches the client in order, and aborts a transaction block as
 * PostgreSQL's own errors do, while the refused statement never runs.
 */
void server_refuse(struct server *s, uint8_t type, const uint8_t *err, size_t len);
/*
 * The next ErrorResponse of the request being answered now, if any, is
 * replaced by err[0..len): for a statement the proxy cancels on a limit.
 */
void server_replace_error(struct server *s, const uint8_t *err, size_t len);
/* Before a Bind/Describe of st: prepares it here if it is not (the reply is swallowed). */
void server_prepare(struct server *s, const struct stmt *st);
/* Runs sql for the linked client before its traffic; link->setup_done follows. */
void server_setup_query(struct server *s, const char *sql);
const char *server_param(const struct server *s, const char *name);
/* Records a value we set on s for a parameter PostgreSQL does not report. */
void server_note_param(struct server *s, const char *name, const char *value);
/*
 * Tracked parameter i of the configuration (track_parameters) as s has it,
 * or NULL: the same entry server_param() finds by name, without a search.
 * Its `noted`: we set it, PostgreSQL does not report it.
 */
const struct server_param *server_tracked(struct server *s, size_t i);
/* Frees an array of n parameters, names and values. */
void server_params_free(struct server_param *v, uint32_t n);
/* default_transaction_read_only as s has it (PostgreSQL reports it since 14), or NULL; no search either. */
const char *server_default_read_only(struct server *s);
/* Forgets a noted value: after a RESET it is the server's default again. */
void server_forget_param(struct server *s, const char *name);
void server_close(struct server *s, const char *why);
bool server_is_clean(const struct server *s);
const char *server_state_name(enum server_state st);
