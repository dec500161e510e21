/* Log lines: "TIME LEVEL THREAD message", written whole with one write(2) so threads never interleave. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

atomic_int log_min_level = LOG_INFO;
_Thread_local char log_thread[8] = "main";

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_thread(const char *name)
{
	snprintf(log_thread, sizeof log_thread, "%s", name);
}

static void log_vwrite(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level, log_thread);
	int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	n += m < 0 ? 0 : (size_t)m >= sizeof line - n - 1 ? (int)(sizeof line - n - 2) : m;
	line[n++] = '\n';
	/* Logging must never fail the caller; a short write to stderr is lost. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void log_write(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level_names[lvl], fmt, ap);
	va_end(ap);
}

void log_die(const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_write(LOG_ERROR, "fatal at %s:%d: %s", file, line, msg);
	abort();
}
