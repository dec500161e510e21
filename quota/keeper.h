/* The quota keeper: a thread that saves tenants' usage and logs it. */
#pragma once

#include <stdint.h>

struct quota;
struct quota_keeper;

/*
 * Reads usage back from state_file (when not NULL; a missing or corrupt file
 * is reported and usage starts at zero), then starts a thread that rolls
 * budget windows over and saves usage every second, and logs one line per
 * tenant every log_interval_ms (0: never). NULL only when the thread cannot
 * start. Main thread.
 */
struct quota_keeper *quota_keeper_start(struct quota *q, const char *state_file, uint64_t log_interval_ms);
/* Stops the thread after a last save. Main thread. */
void quota_keeper_stop(struct quota_keeper *k);
