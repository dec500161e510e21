/* libFuzzer target for proto/frame.c: any byte stream must frame the same however it is cut. */
#include "proto/frame.h"

#include <stdbool.h>
#include <stdlib.h>

struct result {
	size_t   nmsgs;
	uint64_t hash;    /* FNV-1a over every (at, len, type, first) */
	uint64_t end;     /* stream offset reached, or of the broken header */
	bool     bad;
};

static void mix(uint64_t *h, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		*h = (*h ^ (v & 0xff)) * 1099511628211u;
}

/*
 * Feeds p[0..n) in chunks whose sizes come from cuts[0..ncuts) (all of it at
 * once when ncuts is 0), checking each header against the bytes themselves.
 */
static void feed(const uint8_t *p, size_t n, const uint8_t *cuts, size_t ncuts, struct result *r)
{
	struct frame f = { 0 };
	uint64_t next_at = 0;
	size_t off = 0, k = 0;

	*r = (struct result){ .hash = 14695981039346656037u };
	while (off < n) {
		uint8_t c = ncuts ? cuts[k++ % ncuts] : 0;
		size_t end = ncuts ? off + 1 + (c & 0x80 ? c * 37u : c & 7) : n;

		if (end > n)
			end = n;
		/* Some cuts leave an empty chunk, which must consume nothing. */
		if (c & 0x40) {
			struct frame_msg m;
			size_t used;

			if (frame_next(&f, p + off, 0, &used, &m) != FRAME_MORE || used)
				abort();
		}
		for (;;) {
			struct frame_msg m;
			size_t used;
			int rc = frame_next(&f, p + off, end - off, &used, &m);

			if (used > end - off)
				abort();
			off += used;
			if (f.pos != off)
				abort();
			if (rc == FRAME_BAD) {
				r->bad = true;
				r->end = off;
				return;
			}
			if (rc == FRAME_MORE) {
				if (off != end)
					abort();
				break;
			}
			if (rc != FRAME_MSG || m.at != next_at || m.type != p[m.at] || m.len < 4 ||
			    m.len > FRAME_MAX_LEN || (m.len == 4) != (m.first < 0) ||
			    (m.first >= 0 && m.first != p[m.at + 5]) ||
			    off != m.at + (m.first < 0 ? 5 : 6))
				abort();
			next_at = m.at + 1 + m.len;
			r->nmsgs++;
			mix(&r->hash, m.at);
			mix(&r->hash, m.len);
			mix(&r->hash, m.type);
			mix(&r->hash, (uint64_t)m.first);
		}
	}
	r->end = off;
}

static bool same(const struct result *a, const struct result *b)
{
	return a->nmsgs == b->nmsgs && a->hash == b->hash && a->end == b->end && a->bad == b->bad;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t one = 0;
	struct result whole, bytes, cut, rcut;

	feed(data, size, NULL, 0, &whole);
	feed(data, size, &one, 1, &bytes);
	/* The input's own bytes as chunk sizes, read forwards and from the middle. */
	feed(data, size, data, size, &cut);
	feed(data, size, data + size / 2, size - size / 2, &rcut);
	if (!same(&whole, &bytes) || !same(&whole, &cut) || !same(&whole, &rcut))
		abort();
	return 0;
}
