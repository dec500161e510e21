/* Connection I/O: multishot receive with provided buffers, ordered sendmsg batches, and the close sequence. */
#include "lib/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/worker.h"
#include "proto/msg.h"

int conn_open(struct conn *c, struct worker *w, int fd, const struct conn_ops *ops)
{
	c->ops = ops;
	c->w = w;
	c->fd = fd;
	return worker_slot_alloc(w, c);
}

static uint64_t conn_ud(const struct conn *c, enum ring_op op)
{
	return ring_ud(op, c->slot, c->gen);
}

static void conn_arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = c->w->br.bgid;
	io_uring_sqe_set_data64(sqe, conn_ud(c, OP_RECV));
	c->recv_armed = true;
	c->inflight++;
}

void conn_recv_start(struct conn *c)
{
	c->recv_wanted = true;
	if (!c->recv_armed && !c->closing && !c->starved)
		conn_arm_recv(c);
}

void conn_recv_pause(struct conn *c)
{
	c->recv_wanted = false;
	if (!c->recv_armed)
		return;
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_cancel64(sqe, conn_ud(c, OP_RECV), 0);
	io_uring_sqe_set_data64(sqe, ring_ud(OP_IGNORE, 0, 0));
}

static void conn_push(struct conn *c, struct conn_seg seg)
{
	if (c->qlen == c->qcap) {
		uint32_t ncap = c->qcap ? c->qcap * 2 : 4;
		struct conn_seg *nq = malloc(ncap * sizeof *nq);
		if (!nq)
			die("out of memory");
		for (uint32_t i = 0; i < c->qlen; i++)
			nq[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = nq;
		c->qhead = 0;
		c->qcap = ncap;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = seg;
	c->qlen++;
	c->qbytes += seg.len;
	if (c->qbytes > CONN_HIGH_WATER)
		c->above_high = true;
	if (!c->sending)
		worker_flush_later(c->w, c);
}

void conn_send_buf(struct conn *c, uint16_t bid, const uint8_t *p, size_t n)
{
	if (c->closing || n == 0)
		return;
	bufring_ref(&c->w->br, bid);
	conn_push(c, (struct conn_seg){ .p = p, .len = (uint32_t)n, .bid = bid });
}

void conn_send_owned(struct conn *c, void *p, size_t n)
{
	if (c->closing || n == 0) {
		free(p);
		return;
	}
	conn_push(c, (struct conn_seg){ .p = p, .len = (uint32_t)n, .bid = -1, .own = p });
}

void conn_send_copy(struct conn *c, const void *p, size_t n)
{
	if (c->closing || n == 0)
		return;
	void *own = malloc(n);
	if (!own)
		die("out of memory");
	memcpy(own, p, n);
	conn_send_owned(c, own, n);
}

void conn_send_named(struct conn *c, char type, const void *prefix, size_t plen, const char *name,
		     const void *rest, size_t rlen)
{
	size_t len = MSG_NAMED_LEN(plen, name, rlen);
	void *buf = malloc(len);
	if (!buf)
		die("out of memory");
	struct wbuf w = wbuf_on(buf, len);
	msg_named(&w, type, prefix, plen, name, rest, rlen);
	if (w.overflow)
		die("named message does not fit its own size");
	conn_send_owned(c, buf, len);
}

static void conn_seg_release(struct conn *c, struct conn_seg *s)
{
	if (s->bid >= 0)
		bufring_put(&c->w->br, (uint16_t)s->bid);
	else
		free(s->own);
}

void conn_submit_sends(struct conn *c)
{
	c->queued_flush = false;
	if (c->sending || c->closing || c->qlen == 0)
		return;
	/* The SQE first: taking it may submit, which frees the scratch vectors. */
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	struct conn_iov *iov = worker_iov(c->w);
	uint32_t n = c->qlen < CONN_IOV_MAX ? c->qlen : CONN_IOV_MAX;
	for (uint32_t i = 0; i < n; i++) {
		struct conn_seg *s = &c->q[(c->qhead + i) % c->qcap];
		iov->v[i] = (struct iovec){ .iov_base = (void *)s->p, .iov_len = s->len };
	}
	iov->mh = (struct msghdr){ .msg_iov = iov->v, .msg_iovlen = n };
	/* MSG_WAITALL makes io_uring retry short sends itself; partial results are still handled. */
	io_uring_prep_sendmsg(sqe, c->fd, &iov->mh, MSG_NOSIGNAL | MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, conn_ud(c, OP_SEND));
	c->send_segs = n;
	c->sending = true;
	c->inflight++;
}

void conn_on_send(struct conn *c, int res)
{
	c->sending = false;
	c->inflight--;
	if (res < 0) {
		if (!c->closing && c->ops->on_eof)
			c->ops->on_eof(c, res);
		if (!c->closing)
			conn_close(c);
		return;
	}
	size_t left = (size_t)res;
	while (c->qlen && left) {
		struct conn_seg *s = &c->q[c->qhead];
		if (left < s->len) {
			s->p += left;
			s->len -= (uint32_t)left;
			c->qbytes -= left;
			break;
		}
		left -= s->len;
		c->qbytes -= s->len;
		conn_seg_release(c, s);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
	}
	if (c->closing)
		return;
	if (c->qlen) {
		conn_submit_sends(c);
		return;
	}
	if (c->flush_close) {
		conn_close(c);
		return;
	}
	if (c->above_high && c->qbytes < CONN_LOW_WATER) {
		c->above_high = false;
		if (c->ops->on_drain)
			c->ops->on_drain(c);
	}
}

void conn_on_recv(struct conn *c, int res, uint32_t flags)
{
	bool more = flags & IORING_CQE_F_MORE;
	if (res > 0) {
		uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
		struct bufring *br = &c->w->br;
		bufring_take(br, bid);
		if (!c->closing)
			c->ops->on_data(c, bid, bufring_addr(br, bid), (size_t)res);
		bufring_put(br, bid);
	} else if (res == -ENOBUFS) {
		/* Backpressure from the ring, not an error: retry when buffers return. */
		if (!more && !c->closing) {
			c->starved = true;
			worker_add_starved(c->w, c);
		}
	} else if (res == -ECANCELED) {
		/* Only we cancel a recv (a pause); re-armed below if resumed meanwhile. */
		more = false;
	} else {
		if (!c->closing && c->ops->on_eof)
			c->ops->on_eof(c, res);
		if (!c->closing)
			conn_close(c);
		more = false;
		c->recv_wanted = false;
	}
	if (more)
		return;
	c->recv_armed = false;
	c->inflight--;
	if (c->recv_wanted && !c->closing && !c->starved)
		conn_arm_recv(c);
}

void conn_rearm_starved(struct conn *c)
{
	c->starved = false;
	if (c->recv_wanted && !c->recv_armed && !c->closing)
		conn_arm_recv(c);
}

void conn_connect(struct conn *c, const void *addr, uint32_t addrlen)
{
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_connect(sqe, c->fd, addr, addrlen);
	io_uring_sqe_set_data64(sqe, conn_ud(c, OP_CONNECT));
	c->inflight++;
	c->connecting = true;
}

void conn_on_connect(struct conn *c, int res)
{
	c->inflight--;
	c->connecting = false;
	if (!c->closing)
		c->ops->on_connect(c, res);
}

void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->recv_wanted = false;
	worker_reap_later(c->w, c);
	if (c->fd < 0)
		return;
	/* Wakes the multishot recv (it ends with 0) and fails a send stuck on a slow peer. */
	shutdown(c->fd, SHUT_RDWR);
	/* shutdown(2) does not abort a connect in progress: cancel that one by its tag. */
	if (c->connecting) {
		struct io_uring_sqe *sqe = worker_sqe(c->w);
		io_uring_prep_cancel64(sqe, conn_ud(c, OP_CONNECT), 0);
		io_uring_sqe_set_data64(sqe, ring_ud(OP_IGNORE, 0, 0));
	}
}

void conn_close_flushed(struct conn *c, uint64_t timeout_ms)
{
	if (c->closing)
		return;
	conn_recv_pause(c);
	if (c->qlen == 0 && !c->sending) {
		conn_close(c);
		return;
	}
	c->flush_close = true;
	c->close_by = c->w->now + timeout_ms;
}

void conn_reap(struct conn *c)
{
	while (c->qlen) {
		conn_seg_release(c, &c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
	}
	free(c->q);
	c->q = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	worker_slot_free(c->w, c);
	c->ops->on_free(c);
}
