/* Client connections: startup, authentication, waiting for a server, relay, cancel routing. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct worker;

/* A new accepted fd handed to this worker (res of the MSG_RING completion). */
void client_accept(struct worker *w, int fd);
/* A CancelRequest for one of this worker's clients. */
void client_cancel_local(struct worker *w, uint32_t slot, uint32_t key);
/* Shutdown: close clients that are idle now; with force, close all of them. */
void client_stop_all(struct worker *w, bool force);
