/* One-shot connections that carry a CancelRequest to a PostgreSQL server. */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

struct worker;

/* Connects to addr, sends CancelRequest(pid, key) and closes. Fire and forget. */
void cancel_send(struct worker *w, const struct sockaddr_storage *addr, socklen_t addrlen,
		 int family, uint32_t pid, uint32_t key);
