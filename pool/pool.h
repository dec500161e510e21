/* Per-worker server pools keyed by (database, user), under a global size cap shared by all workers. */
#pragma once

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/auth.h"
#include "lib/cfg.h"
#include "pool/stmt.h"
#include "proto/scram.h"

struct worker;
struct server;
struct server_param;

#define POOL_CAPS_MAX 65536

/* A server's ParameterStatus set as first seen; immutable once published. */
struct pool_params {
	uint32_t n;
	struct server_param *v;
};

/* Shared by every worker: how many servers (pool, all workers) exist, and how many clients wait. */
struct pool_cap {
	atomic_uint servers;
	atomic_uint waiting;
	/* The first server's parameters, published once: later logins end without a server. */
	struct pool_params *_Atomic params;
	uint32_t size;
	uint32_t id;
	char *db, *user;
};

struct pool_caps;
struct pool_caps *pool_caps_new(void);
void pool_caps_free(struct pool_caps *caps);

/* A client waiting for a server, FIFO. */
struct pool_waiter {
	struct pool_waiter *next;
	uint64_t since;
	bool queued;
	void (*ready)(struct pool_waiter *wt, struct server *s);
	void (*fail)(struct pool_waiter *wt, const char *sqlstate, const char *message);
};

struct pool {
	struct pool *next;
	struct worker *w;
	struct pool_cap *cap;
	char *db, *user;                  /* as the client named them */
	const struct cfg_db *d;
	const char *server_db, *server_user;
	const char *server_password;      /* in clear, or NULL */
	const struct auth_user *server_auth;
	bool have_client_key;             /* from a client's SCRAM proof: logs in without the password */
	uint8_t client_key[SCRAM_KEY_LEN];
	bool keys_cached;                 /* SCRAM keys for the server's salt: PBKDF2 once */
	uint8_t keys_salt[SCRAM_SALT_MAX];
	size_t keys_salt_len;
	uint32_t keys_iterations;
	struct scram_keys keys;

	struct sockaddr_storage addr;
	socklen_t addrlen;
	int family;

	struct server *idle;              /* LIFO */
	struct server *ready_later;       /* freed while a hand-out runs: served by its loop */
	bool readying;
	uint32_t nidle, nlinked, nconnecting, nservers;
	struct pool_waiter *wait_head, *wait_tail;
	uint32_t nwaiting;
	struct stmt_table stmts;          /* named statements of this pool's clients, by content */
	/* Statistics (this worker writes them; SHOW and metrics sum the workers' pools). */
	uint64_t waits;                   /* clients that had to queue for a server */
	uint64_t wait_ms;                 /* their total time in the queue */
	bool need_posted;                 /* asked other workers for room; cleared when room comes */
	uint64_t need_at;
	uint32_t owed;                    /* servers to give up as they free: another worker needs room */
	uint64_t retry_at;                /* ms: a server login failed; no new one before (server_login_retry) */
	bool probing;                     /* since that failure, one login at a time until one succeeds */
	bool told_later;                  /* a POOL_FREED came during the retry wait: pool_grow's `told` after it */
	char last_error[256];
	char last_sqlstate[6];
};

/*
 * The worker's pool for (db, user), created on first use. NULL with *why set
 * when the database's address cannot be resolved. Worker thread.
 */
struct pool *pool_get(struct worker *w, const char *db, const char *user,
		      const struct cfg_db *d, const char **why);
/* Gives wt a server now (wt->ready) or later, or fails it (wt->fail). */
void pool_acquire(struct pool *p, struct pool_waiter *wt);
/* wt stops waiting (its client left). */
void pool_cancel_wait(struct pool *p, struct pool_waiter *wt);

/* From pool/server.c: a server finished login or reset and is free. */
void pool_server_ready(struct server *s);
/* From pool/server.c: a server is gone; why is its failure if it never got ready. */
void pool_server_gone(struct server *s, const char *sqlstate, const char *why);

/* The pool's published parameters, or NULL before any server logged in. Any worker. */
const struct pool_params *pool_params(const struct pool *p);

void pool_tick(struct worker *w);
void pool_on_freed(struct worker *w, uint32_t cap_id);
void pool_on_need(struct worker *w, uint32_t cap_id);
void pool_destroy_all(struct worker *w);
/* Closes idle servers: for shutdown. */
void pool_close_idle(struct worker *w);
