/* The acceptor: listen sockets, multishot accept, signals, and the hand-off of fds to workers. */
#pragma once

#include <liburing.h>
#include <stdbool.h>

#include "lib/cfg.h"

struct rt;

struct acceptor {
	int *fds;
	size_t nfds;
	char **unix_paths;    /* unlinked at exit */
	struct io_uring ring; /* kept until the workers have read its last messages */
	bool ring_up;
	int sfd;
};

/* Opens every listen address of cfg. 0, or -errno with err set. Main thread, before workers. */
int acceptor_listen(struct acceptor *a, const struct cfg *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Blocks SIGINT/SIGTERM/SIGHUP so that only the acceptor's signalfd sees them; call before threads start. */
void acceptor_block_signals(void);
/* Accepts and hands off until SIGINT/SIGTERM, then tells every worker to stop. 0 or -errno. */
int acceptor_run(struct acceptor *a, struct rt *rt) __attribute__((warn_unused_result));
void acceptor_close(struct acceptor *a);
