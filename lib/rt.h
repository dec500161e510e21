/* The process-wide runtime shared by the acceptor and the workers: config snapshot, workers, global counters. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lib/auth.h"
#include "lib/cfg.h"
#include "quota/quota.h"

struct worker;
struct pool_caps;
struct quota;
struct quota_keeper;

struct rt {
	const struct cfg *cfg;          /* immutable while workers run */
	const struct auth_users *auth;  /* per-user secrets, derived once at start */
	struct pool_caps *caps;         /* global pool-size caps, shared by all workers */
	struct worker *workers;
	uint32_t nworkers;
	struct quota_conns clients;     /* client connections on all workers: max_client_connections */
	struct quota *quota;            /* per-tenant limits and usage */
	struct quota_keeper *keeper;    /* saves usage and logs it, on a thread of its own */
	atomic_uint next_worker;        /* round-robin hand-off */
	pthread_barrier_t started;      /* workers have their rings */
};

/* Builds the runtime and starts cfg->workers workers. 0 or -errno. Main thread. */
int rt_start(struct rt *rt, const struct cfg *cfg) __attribute__((warn_unused_result));
/* Waits for every worker to finish (after a shutdown was posted) and frees the runtime. */
void rt_join(struct rt *rt);
