/* Incremental framer for PostgreSQL v3 typed messages: headers found in place, bodies skipped by count. */
#include "proto/frame.h"

static uint32_t stash_len(const struct frame *f)
{
	return (uint32_t)f->stash[1] << 24 | (uint32_t)f->stash[2] << 16 |
	       (uint32_t)f->stash[3] << 8 | f->stash[4];
}

static int stash_bad(const struct frame *f)
{
	uint32_t len = stash_len(f);

	return len < 4 || len > FRAME_MAX_LEN;
}

int frame_next(struct frame *f, const uint8_t *p, size_t n, size_t *used,
	       struct frame_msg *m)
{
	size_t i = 0;

	/* A broken length stays in the stash, so the stream stays broken. */
	if (f->have == 5 && stash_bad(f)) {
		*used = 0;
		return FRAME_BAD;
	}
	while (i < n) {
		if (f->left) {
			size_t k = n - i < f->left ? n - i : f->left;

			f->left -= (uint32_t)k;
			f->pos += k;
			i += k;
			continue;
		}
		f->stash[f->have++] = p[i++];
		f->pos++;
		if (f->have < 5)
			continue;
		if (f->have == 5) {
			if (stash_bad(f)) {
				*used = i;
				return FRAME_BAD;
			}
			/* A non-empty body waits for its first byte. */
			if (stash_len(f) > 4)
				continue;
		}
		m->at = f->pos - f->have;
		m->type = f->stash[0];
		m->len = stash_len(f);
		m->first = f->have == 6 ? f->stash[5] : -1;
		f->left = m->len - (f->have - 1);
		f->have = 0;
		*used = i;
		return FRAME_MSG;
	}
	*used = i;
	return FRAME_MORE;
}
