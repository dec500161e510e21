/* A worker's provided-buffer ring for receives, with a reference count per buffer. */
#pragma once

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Ownership: a buffer is the kernel's while it sits in the ring. A recv
 * completion hands it to the receiving connection (bufring_take: one ref);
 * each queued send segment that points into it holds one more ref; the last
 * bufring_put gives it back to the ring. Publication to the kernel is batched:
 * bufring_publish once per loop iteration.
 */
struct bufring {
	struct io_uring_buf_ring *br;
	uint8_t  *mem;
	uint16_t *refs;
	uint32_t  count;      /* buffers mapped */
	uint32_t  active;     /* buffers ever given to the kernel: ids below this */
	uint32_t  size;
	uint32_t  in_ring;    /* buffers the kernel can pick */
	uint16_t  bgid;
	uint16_t  unpublished;
	bool      grew;       /* bufring_starved grew it since the last publish */
};

/*
 * Registers room for count buffers of size bytes as group bgid and provides
 * the first `initial` of them; more are provided, doubling, when the ring runs
 * low (bufring_take). The kernel cycles through every buffer it is given, so
 * each one provided ends up resident: starting small keeps a worker with few
 * busy connections from touching the pages of all count. 0 or -errno. Worker
 * thread.
 */
int bufring_init(struct bufring *b, struct io_uring *ring, uint16_t bgid,
		 uint32_t count, uint32_t initial, uint32_t size) __attribute__((warn_unused_result));
void bufring_destroy(struct bufring *b, struct io_uring *ring);

static inline uint8_t *bufring_addr(const struct bufring *b, uint16_t bid)
{
	return b->mem + (size_t)bid * b->size;
}

/* A recv completion delivered bid: it now has one reference. */
void bufring_take(struct bufring *b, uint16_t bid);
static inline void bufring_ref(struct bufring *b, uint16_t bid) { b->refs[bid]++; }
/* Drops a reference; the last one returns the buffer to the ring. */
void bufring_put(struct bufring *b, uint16_t bid);
/* A receive found the ring empty: provide more buffers if any are left to give. */
void bufring_starved(struct bufring *b);
/* Makes the buffers returned since the last call visible to the kernel. */
void bufring_publish(struct bufring *b);
