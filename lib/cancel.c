/* Cancel connections: connect, send the 16-byte CancelRequest, close once it is out. */
#include "lib/cancel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/worker.h"
#include "proto/msg.h"

struct cancel {
	struct conn c;
	uint8_t pkt[16];
	struct sockaddr_storage addr;
};

static void cancel_on_connect(struct conn *c, int res)
{
	struct cancel *k = (struct cancel *)c;
	if (res < 0) {
		log_warn("cancel: cannot connect to server: %s", strerror(-res));
		conn_close(c);
		return;
	}
	conn_send_copy(c, k->pkt, sizeof k->pkt);
	conn_close_flushed(c, 5000);
}

static void cancel_on_data(struct conn *c, uint16_t bid, const uint8_t *p, size_t n)
{
	(void)c, (void)bid, (void)p, (void)n;
}

static void cancel_on_free(struct conn *c)
{
	free(c);
}

static const struct conn_ops cancel_ops = {
	.on_data = cancel_on_data,
	.on_connect = cancel_on_connect,
	.on_free = cancel_on_free,
};

void cancel_send(struct worker *w, const struct sockaddr_storage *addr, socklen_t addrlen,
		 int family, uint32_t pid, uint32_t key)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("cancel: socket: %s", strerror(errno));
		return;
	}
	struct cancel *k = calloc(1, sizeof *k);
	if (!k)
		die("out of memory");
	if (conn_open(&k->c, w, fd, &cancel_ops) < 0) {
		close(fd);
		free(k);
		return;
	}
	struct wbuf wb = wbuf_on(k->pkt, sizeof k->pkt);
	msg_cancel(&wb, pid, key);
	/* The address must outlive the connect SQE: keep a copy in the object. */
	conn_connect(&k->c, memcpy(&k->addr, addr, sizeof *addr), addrlen);
}
