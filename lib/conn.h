/* A socket owned by one worker: multishot receive, an ordered send queue of segments, and a close sequence. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct worker;
struct conn;

/*
 * What the owner of a connection (client, server, cancel) is told. Each
 * callback runs on the owning worker while the op that caused it still
 * counts as in flight, so a callee may close c but c stays valid until the
 * callback returns.
 */
struct conn_ops {
	/* Bytes arrived in ring buffer bid at p[0..n). To keep any of them past
	 * the call, queue them with conn_send_buf (which takes a reference). */
	void (*on_data)(struct conn *c, uint16_t bid, const uint8_t *p, size_t n);
	/* The peer closed (res 0) or the socket failed (-errno). Not called once closing. */
	void (*on_eof)(struct conn *c, int res);
	/* conn_connect finished: 0 or -errno. */
	void (*on_connect)(struct conn *c, int res);
	/* The send queue fell below CONN_LOW_WATER after having passed CONN_HIGH_WATER. */
	void (*on_drain)(struct conn *c);
	/* The worker's periodic tick (optional): timeouts. */
	void (*on_tick)(struct conn *c);
	/* A deadline set with worker_timer_at passed (optional). Any earlier
	 * deadline of c may fire too: the owner checks what is due. */
	void (*on_timer)(struct conn *c);
	/* Nothing is in flight any more and the fd is closed: release the object. */
	void (*on_free)(struct conn *c);
};

/* A run of bytes to send: inside a ring buffer (bid >= 0) or a heap block we own. */
struct conn_seg {
	const uint8_t *p;
	uint32_t len;
	int32_t  bid;      /* -1: heap block `own`, freed once sent */
	void    *own;
};

#define CONN_HIGH_WATER (256u * 1024)
#define CONN_LOW_WATER  (64u * 1024)
#define CONN_IOV_MAX    32

/*
 * A sendmsg's header and vector. The kernel copies both when the SQE is
 * submitted (IORING_FEAT_SUBMIT_STABLE), so they live in a per-worker scratch
 * area reset after each submit, not in every connection.
 */
struct conn_iov {
	struct msghdr mh;
	struct iovec  v[CONN_IOV_MAX];
};

struct conn {
	const struct conn_ops *ops;
	struct worker *w;
	int      fd;
	uint32_t slot;
	uint32_t gen;
	uint16_t inflight;       /* ops the kernel holds for us */
	bool     recv_armed;     /* a multishot recv is active */
	bool     recv_wanted;    /* it should be (not paused, not closing) */
	bool     sending;        /* a sendmsg is in flight */
	bool     closing;
	bool     flush_close;    /* close once the send queue is empty */
	bool     above_high;     /* passed CONN_HIGH_WATER; on_drain is due */
	bool     queued_flush;   /* on the worker's flush list */
	bool     starved;        /* recv ended with -ENOBUFS; on the starved list */
	bool     reaping;        /* on the worker's reap list */
	bool     connecting;     /* a connect is in flight */
	struct conn_seg *q;      /* ring of queued segments */
	uint32_t qhead, qlen, qcap;
	uint32_t send_segs;      /* segments covered by the sendmsg in flight */
	size_t   qbytes;
	struct conn *next_flush;
	struct conn *next_starved;
	struct conn *next_reap;
	uint64_t close_by;       /* ms: a flush_close that takes longer is forced */
};

/* Takes a slot on w for fd (which c now owns). 0 or -ENOMEM. */
int conn_open(struct conn *c, struct worker *w, int fd, const struct conn_ops *ops)
	__attribute__((warn_unused_result));
/* Starts (or resumes) receiving. */
void conn_recv_start(struct conn *c);
/* Stops receiving: cancels the multishot recv; bytes already received still arrive. */
void conn_recv_pause(struct conn *c);
/* Queues n bytes of ring buffer bid (takes a reference). */
void conn_send_buf(struct conn *c, uint16_t bid, const uint8_t *p, size_t n);
/* Queues a copy of p[0..n): for messages the proxy writes itself. */
void conn_send_copy(struct conn *c, const void *p, size_t n);
/* Queues heap block p[0..n), which c now owns (freed once sent): no second copy. */
void conn_send_owned(struct conn *c, void *p, size_t n);
/* Builds and queues a message carrying a statement name (see msg_named), in one allocation. */
void conn_send_named(struct conn *c, char type, const void *prefix, size_t plen, const char *name,
		     const void *rest, size_t rlen);
/* Starts a non-blocking connect of c->fd to addr; on_connect follows. */
void conn_connect(struct conn *c, const void *addr, uint32_t addrlen);
/* Closes now: pending sends are dropped. */
void conn_close(struct conn *c);
/* Closes once everything queued is sent, or after timeout_ms. */
void conn_close_flushed(struct conn *c, uint64_t timeout_ms);
static inline size_t conn_queued(const struct conn *c) { return c->qbytes; }

/* Worker side: completions and the per-iteration flush. */
void conn_on_recv(struct conn *c, int res, uint32_t flags);
void conn_on_send(struct conn *c, int res);
void conn_on_connect(struct conn *c, int res);
void conn_submit_sends(struct conn *c);
void conn_rearm_starved(struct conn *c);
/* Frees c: closing, nothing in flight, off every list. Worker, end of iteration only. */
void conn_reap(struct conn *c);
