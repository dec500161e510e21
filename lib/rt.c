/* Runtime start and join: the shared objects, the workers and their start barrier. */
#include "lib/rt.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/worker.h"
#include "pool/pool.h"
#include "quota/keeper.h"
#include "quota/tenant.h"

int rt_start(struct rt *rt, const struct cfg *cfg)
{
	rt->cfg = cfg;
	rt->clients.max = cfg->max_client_connections;
	rt->nworkers = cfg->workers;
	if (rt->nworkers == 0 || rt->nworkers > WORKER_MAX)
		return -EINVAL;
	rt->caps = pool_caps_new();
	rt->workers = calloc(rt->nworkers, sizeof *rt->workers);
	rt->quota = quota_new(cfg, rt->nworkers);
	if (!rt->caps || !rt->workers || !rt->quota)
		return -ENOMEM;
	/* Usage is read back before the first client can spend any. */
	if (cfg->ntenants) {
		rt->keeper = quota_keeper_start(rt->quota, cfg->quota_state_file, cfg->quota_log_interval);
		if (!rt->keeper)
			return -ENOMEM;
	}

	/* Destroyed only in rt_join: a worker may still be leaving the wait when we return. */
	pthread_barrier_init(&rt->started, NULL, rt->nworkers + 1);
	for (uint32_t i = 0; i < rt->nworkers; i++)
		if (worker_start(&rt->workers[i], rt, (int)i, &rt->started) < 0)
			die("cannot start worker thread %u", i);
	pthread_barrier_wait(&rt->started);
	int err = 0;
	for (uint32_t i = 0; i < rt->nworkers; i++) {
		if (rt->workers[i].start_err) {
			err = rt->workers[i].start_err;
			log_error("worker %u: cannot set up io_uring: %s", i, strerror(-err));
		}
	}
	/* On failure the caller exits the process; started workers go with it. */
	return err;
}

void rt_join(struct rt *rt)
{
	for (uint32_t i = 0; i < rt->nworkers; i++)
		worker_join(&rt->workers[i]);
	pthread_barrier_destroy(&rt->started);
	/* After the workers: the last save has every query they ran. */
	quota_keeper_stop(rt->keeper);
	quota_free(rt->quota);
	rt->keeper = NULL;
	rt->quota = NULL;
	free(rt->workers);
	pool_caps_free(rt->caps);
	rt->workers = NULL;
	rt->caps = NULL;
}
