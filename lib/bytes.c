/* The growable byte buffer: doubling growth, front consumption. */
#include "lib/bytes.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

bool bytes_append(struct bytes *b, const void *src, size_t n, uint32_t max)
{
	if (n > max || b->len > max - n)
		return false;
	if (!n)
		return true;
	if (b->len + n > b->cap) {
		uint32_t ncap = b->cap ? b->cap : 512;
		while (ncap < b->len + n)
			ncap *= 2;
		uint8_t *np = realloc(b->p, ncap);
		if (!np)
			die("out of memory");
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += (uint32_t)n;
	return true;
}

void bytes_consume(struct bytes *b, uint32_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

void bytes_free(struct bytes *b)
{
	free(b->p);
	*b = (struct bytes){ 0 };
}

void *bytes_grow_array(void *v, uint32_t *cap, size_t elem, uint32_t first)
{
	uint32_t ncap = *cap ? *cap * 2 : first;
	void *nv = realloc(v, (size_t)ncap * elem);
	if (!nv)
		die("out of memory");
	*cap = ncap;
	return nv;
}
