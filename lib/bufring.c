/* The provided-buffer ring: registration, reference counts, batched return to the kernel. */
#include "lib/bufring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/log.h"

static void give(struct bufring *b, uint16_t bid)
{
	io_uring_buf_ring_add(b->br, bufring_addr(b, bid), b->size, bid,
			      io_uring_buf_ring_mask(b->count), b->unpublished);
	b->unpublished++;
	b->in_ring++;
}

/* Hands the kernel n buffers it has never had (ids from active up). */
static void provide_more(struct bufring *b, uint32_t n)
{
	if (n > b->count - b->active)
		n = b->count - b->active;
	for (uint32_t i = 0; i < n; i++)
		give(b, (uint16_t)(b->active + i));
	b->active += n;
}

int bufring_init(struct bufring *b, struct io_uring *ring, uint16_t bgid,
		 uint32_t count, uint32_t initial, uint32_t size)
{
	memset(b, 0, sizeof *b);
	if (count == 0 || count > 32768 || (count & (count - 1)) || initial == 0 || initial > count)
		return -EINVAL;
	size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
	void *r = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return -errno;
	/* Buffers are mapped lazily by the kernel: untouched ones cost no RSS. */
	void *mem = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		int err = -errno;
		munmap(r, ring_bytes);
		return err;
	}
	b->br = r;
	b->mem = mem;
	b->count = count;
	b->size = size;
	b->bgid = bgid;
	b->refs = calloc(count, sizeof *b->refs);
	if (!b->refs)
		goto fail_nomem;

	struct io_uring_buf_reg reg = {
		.ring_addr = (uintptr_t)r,
		.ring_entries = count,
		.bgid = bgid,
	};
	int ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret < 0)
		goto fail;
	io_uring_buf_ring_init(b->br);
	provide_more(b, initial);
	bufring_publish(b);
	return 0;

fail_nomem:
	ret = -ENOMEM;
fail:
	free(b->refs);
	munmap(mem, (size_t)count * size);
	munmap(r, ring_bytes);
	memset(b, 0, sizeof *b);
	return ret;
}

void bufring_destroy(struct bufring *b, struct io_uring *ring)
{
	if (!b->br)
		return;
	io_uring_unregister_buf_ring(ring, b->bgid);
	munmap(b->mem, (size_t)b->count * b->size);
	munmap(b->br, (size_t)b->count * sizeof(struct io_uring_buf));
	free(b->refs);
	memset(b, 0, sizeof *b);
}

void bufring_take(struct bufring *b, uint16_t bid)
{
	must(bid < b->active && b->refs[bid] == 0);
	b->refs[bid] = 1;
	b->in_ring--;
	/* Below a quarter left, double: busy connections get room before the ring runs dry. */
	if (b->in_ring * 4 < b->active && b->active < b->count)
		provide_more(b, b->active);
}

void bufring_put(struct bufring *b, uint16_t bid)
{
	must(bid < b->count && b->refs[bid] > 0);
	if (--b->refs[bid])
		return;
	give(b, bid);
}

void bufring_starved(struct bufring *b)
{
	/* Once per publish: a burst of starved receives in one batch doubles it once, not each time. */
	if (b->active < b->count && !b->grew) {
		provide_more(b, b->active);
		b->grew = true;
	}
}

void bufring_publish(struct bufring *b)
{
	b->grew = false;
	if (!b->unpublished)
		return;
	io_uring_buf_ring_advance(b->br, b->unpublished);
	b->unpublished = 0;
}
