/* Usage outlives the process: a thread saves it each second and at the end, and logs it. */
#include "quota/keeper.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "quota/tenant.h"

#define KEEPER_SAVE_MS 1000

/* The mutex guards only `stop`: no worker ever takes it. */
struct quota_keeper {
	struct quota *q;
	const char *path;
	uint64_t log_every;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool save_failed;     /* reported once, until a save works again */
};

static uint64_t wall_s(void)
{
	return (uint64_t)time(NULL);
}

static void keeper_save(struct quota_keeper *k)
{
	quota_roll(k->q, wall_s());
	if (!k->path)
		return;
	int ret = quota_save(k->q, k->path, wall_s());
	if (ret < 0 && !k->save_failed)
		log_error("quota: cannot save usage to %s: %s", k->path, strerror(-ret));
	else if (ret == 0 && k->save_failed)
		log_info("quota: usage saved to %s again", k->path);
	k->save_failed = ret < 0;
}

static void keeper_log(struct quota_keeper *k)
{
	char line[1024];
	for (size_t i = 0; i < k->q->ntenants; i++) {
		quota_describe(&k->q->tenants[i], wall_s(), line, sizeof line);
		log_info("tenant %s", line);
	}
}

static void *keeper_main(void *arg)
{
	struct quota_keeper *k = arg;
	log_set_thread("quota");
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	uint64_t since_log = 0;
	pthread_mutex_lock(&k->mu);
	while (!k->stop) {
		next.tv_sec += KEEPER_SAVE_MS / 1000;
		while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &next) != ETIMEDOUT)
			;
		if (k->stop)
			break;
		pthread_mutex_unlock(&k->mu);
		keeper_save(k);
		since_log += KEEPER_SAVE_MS;
		if (k->log_every && since_log >= k->log_every) {
			keeper_log(k);
			since_log = 0;
		}
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	keeper_save(k);
	return NULL;
}

struct quota_keeper *quota_keeper_start(struct quota *q, const char *state_file, uint64_t log_interval_ms)
{
	if (state_file) {
		char why[200] = "";
		int ret = quota_load(q, state_file, wall_s(), why, sizeof why);
		if (ret == -ENOENT)
			log_info("quota: no usage saved in %s yet; starting from zero", state_file);
		else if (ret == -EINVAL)
			log_error("quota: %s is corrupt (%s); usage starts from zero", state_file, why);
		else if (ret < 0)
			log_error("quota: cannot read %s: %s; usage starts from zero", state_file, strerror(-ret));
		else
			log_info("quota: usage read back from %s", state_file);
	}
	struct quota_keeper *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->q = q;
	k->path = state_file;
	k->log_every = log_interval_ms;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
		free(k);
		return NULL;
	}
	return k;
}

void quota_keeper_stop(struct quota_keeper *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
}
