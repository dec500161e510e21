/* Levelled logging to stderr with a per-thread prefix; the level is checked before formatting. */
#pragma once

#include <stdatomic.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern atomic_int log_min_level;
/* "w0", "w1", ... or "main"; set once by each thread. */
extern _Thread_local char log_thread[8];

void log_write(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_set_thread(const char *name);

#define log_at(lvl, ...)                                                             \
	do {                                                                         \
		if ((int)(lvl) >= atomic_load_explicit(&log_min_level, memory_order_relaxed)) \
			log_write((lvl), __VA_ARGS__);                               \
	} while (0)

#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)

/* Broken invariants and out-of-memory: no way to carry on safely. */
#define die(...) log_die(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void log_die(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define must(cond) do { if (!(cond)) die("assertion failed: %s", #cond); } while (0)
