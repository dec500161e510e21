/* A growable byte buffer for the few places that gather whole messages (logins), off the relay path; and array growth. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bytes {
	uint8_t *p;
	uint32_t len, cap;
};

/* Appends src[0..n); false (and nothing appended) when len would pass max. */
bool bytes_append(struct bytes *b, const void *src, size_t n, uint32_t max)
	__attribute__((warn_unused_result));
/* Drops the first n bytes. */
void bytes_consume(struct bytes *b, uint32_t n);
void bytes_free(struct bytes *b);

/* Doubles the capacity of array v of elem-sized items (to `first` when empty); dies when out of memory. */
void *bytes_grow_array(void *v, uint32_t *cap, size_t elem, uint32_t first);
