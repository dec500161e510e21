/* Unit test of proto/frame.c: one stream cut every way must frame the same, and bad lengths are caught. */
#include "proto/frame.h"
#include "test/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSGS 256

static uint8_t stream[256 * 1024];
static size_t stream_len;
static struct frame_msg want[MAX_MSGS];
static size_t nwant;

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

static void add(uint8_t type, const uint8_t *body, uint32_t n)
{
	uint32_t len = n + 4;
	uint8_t *q = stream + stream_len;

	CHECK(stream_len + 5 + n <= sizeof(stream) && nwant < MAX_MSGS);
	want[nwant++] = (struct frame_msg){
		.at = stream_len, .len = len, .type = type, .first = n ? body[0] : -1,
	};
	q[0] = type;
	q[1] = len >> 24;
	q[2] = len >> 16;
	q[3] = len >> 8;
	q[4] = len;
	if (n)
		memcpy(q + 5, body, n);
	stream_len += 5 + n;
}

static void build_stream(void)
{
	static uint8_t big[100000];
	uint8_t body[300];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	add('R', (const uint8_t[]){ 0, 0, 0, 0 }, 4);
	add('S', (const uint8_t *)"client_encoding\0UTF8", 21);
	add('Z', (const uint8_t *)"I", 1);
	add('1', NULL, 0);                /* ParseComplete: empty body */
	add('n', NULL, 0);
	add('D', (const uint8_t[]){ 0xff }, 1);
	add('D', big, sizeof(big));
	add('C', (const uint8_t *)"SELECT 1", 9);
	add('Z', (const uint8_t *)"T", 1);
	for (int i = 0; i < 60; i++) {
		uint32_t n = rnd() % 4 == 0 ? 0 : rnd() % sizeof(body);

		for (uint32_t j = 0; j < n; j++)
			body[j] = (uint8_t)rnd();
		add((uint8_t)('A' + rnd() % 26), body, n);
	}
	add('X', NULL, 0);                /* ends on a header-only message */
}

/* Feeds stream cut at cuts[0..ncuts) (ascending) and checks what comes out against want. */
static void feed(const size_t *cuts, size_t ncuts)
{
	struct frame f = { 0 };
	size_t got = 0, start = 0;

	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : stream_len;

		while (start < end || (start == end && c < ncuts)) {
			struct frame_msg m;
			size_t used;
			int rc = frame_next(&f, stream + start, end - start, &used, &m);

			CHECK(used <= end - start);
			start += used;
			if (rc == FRAME_MORE) {
				CHECK(start == end);
				break;
			}
			CHECK(rc == FRAME_MSG && used > 0);
			CHECK(got < nwant);
			CHECK(m.at == want[got].at && m.type == want[got].type &&
			      m.len == want[got].len && m.first == want[got].first);
			/* It stops right after the header: type, length, first body byte. */
			CHECK(f.pos == start && start == m.at + (m.first < 0 ? 5 : 6));
			got++;
		}
	}
	CHECK(got == nwant && f.pos == stream_len && f.left == 0 && f.have == 0);
}

static void test_splits(void)
{
	static size_t cuts[sizeof(stream)];
	size_t n;

	feed(NULL, 0);
	printf("ok - whole stream: %zu messages, %zu bytes\n", nwant, stream_len);

	for (n = 0; n + 1 < stream_len; n++)
		cuts[n] = n + 1;
	feed(cuts, n);
	printf("ok - byte by byte\n");

	for (size_t at = 0; at <= stream_len; at++) {
		cuts[0] = at;
		feed(cuts, 1);
	}
	printf("ok - split in two at every one of %zu points\n", stream_len + 1);

	for (int round = 0; round < 2000; round++) {
		size_t at = 0;

		n = 0;
		while (at < stream_len) {
			/* Mostly small cuts around headers, sometimes large ones, sometimes empty. */
			uint32_t r = rnd() % 8;

			at += r == 0 ? 0 : r < 6 ? rnd() % 7 : rnd() % 20000;
			if (at > stream_len)
				at = stream_len;
			cuts[n++] = at;
		}
		feed(cuts, n);
	}
	printf("ok - 2000 random splittings (fixed seed)\n");
}

static void test_bad(void)
{
	static const uint32_t bad[] = { 0, 1, 3, FRAME_MAX_LEN + 1, 0x80000000u, 0xffffffffu };
	uint8_t s[16] = { 'Z', 0, 0, 0, 5, 'I', 'Q' };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct frame f = { 0 };
		struct frame_msg m;
		size_t used, total = 0;
		int rc;

		s[7] = bad[i] >> 24;
		s[8] = bad[i] >> 16;
		s[9] = bad[i] >> 8;
		s[10] = bad[i];
		/* Whole: the good message, then the broken header. */
		CHECK(frame_next(&f, s, 14, &used, &m) == FRAME_MSG && m.type == 'Z');
		CHECK(frame_next(&f, s + used, 14 - used, &used, &m) == FRAME_BAD && used == 5);
		/* The stream stays broken. */
		CHECK(frame_next(&f, s + 11, 3, &used, &m) == FRAME_BAD && used == 0);

		/* Byte by byte: caught on the last length byte. */
		f = (struct frame){ 0 };
		do {
			rc = frame_next(&f, s + total, 1, &used, &m);
			total += used;
		} while (rc != FRAME_BAD && total < 14);
		CHECK(rc == FRAME_BAD && total == 11);
	}
	printf("ok - bad lengths 0, 1, 3, max+1, 2^31, 2^32-1 give FRAME_BAD, and it sticks\n");

	/* The bounds themselves are fine. */
	{
		struct frame f = { 0 };
		struct frame_msg m;
		size_t used;
		const uint8_t max[] = { 'd', 0x40, 0, 0, 0, 7 }, four[] = { 'c', 0, 0, 0, 4 };

		CHECK(frame_next(&f, max, sizeof(max), &used, &m) == FRAME_MSG &&
		      m.len == FRAME_MAX_LEN && m.first == 7 && f.left == FRAME_MAX_LEN - 5);
		f = (struct frame){ 0 };
		CHECK(frame_next(&f, four, sizeof(four), &used, &m) == FRAME_MSG && m.len == 4 &&
		      m.first == -1 && f.left == 0);
		CHECK(frame_next(&f, NULL, 0, &used, &m) == FRAME_MORE && used == 0);
	}
	printf("ok - lengths 4 and FRAME_MAX_LEN accepted; empty input consumes nothing\n");
}

int main(void)
{
	build_stream();
	test_splits();
	test_bad();
	return check_summary();
}
