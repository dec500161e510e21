/* Incremental framer for PostgreSQL v3 typed messages: finds headers in place, across buffer boundaries. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* PostgreSQL itself refuses messages near 1 GiB; anything larger is garbage. */
#define FRAME_MAX_LEN 0x40000000u

/*
 * The framer keeps only what it needs between chunks: the body bytes still to
 * skip, and a stash of at most 6 bytes (type + length + first body byte) when a
 * header is split across chunks. Zero-initialise it to start a stream.
 */
struct frame {
	uint64_t pos;      /* stream offset of the next byte to be consumed */
	uint32_t left;     /* body bytes of the current message still to skip */
	uint8_t  have;     /* bytes held in stash */
	uint8_t  stash[6];
};

struct frame_msg {
	uint64_t at;       /* stream offset of the message's type byte */
	uint32_t len;      /* the length field: counts itself, not the type byte */
	uint8_t  type;
	int16_t  first;    /* first body byte, or -1 when the body is empty */
};

enum frame_rc {
	FRAME_BAD  = -1,   /* length field < 4 or > FRAME_MAX_LEN: the stream is broken */
	FRAME_MORE =  0,   /* every byte given was consumed; no new header completed */
	FRAME_MSG  =  1,   /* a header completed: *m describes it */
};

/*
 * Consumes bytes from p[0..n). Stops right after the byte that completed the
 * next message's header (type, length and first body byte if the body is not
 * empty) and returns FRAME_MSG, or consumes everything and returns FRAME_MORE.
 * *used gets the bytes consumed either way. Call again with the rest of the
 * chunk. Pure; any thread; the caller keeps the buffer.
 */
int frame_next(struct frame *f, const uint8_t *p, size_t n, size_t *used,
	       struct frame_msg *m) __attribute__((warn_unused_result));
