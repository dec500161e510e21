/* Unit test of lib/ring and lib/bufring: user_data packing, and buffer references on a real io_uring. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test/unit/check.h"
#include "lib/bufring.h"
#include "lib/ring.h"

static void test_ud(void)
{
	uint64_t ud = ring_ud(OP_SEND, 0xFFFFFFFFu, 0x1234567);
	CHECK(ring_ud_op(ud) == OP_SEND);
	CHECK(ring_ud_slot(ud) == 0xFFFFFFFFu);
	CHECK(ring_ud_gen(ud) == (0x1234567 & RING_GEN_MASK));
	for (int op = 0; op < OP__COUNT; op++) {
		ud = ring_ud((enum ring_op)op, 7, 9);
		CHECK((int)ring_ud_op(ud) == op && ring_ud_slot(ud) == 7 && ring_ud_gen(ud) == 9);
		CHECK(strcmp(ring_op_name((enum ring_op)op), "?") != 0);
	}
}

/* Receives through the provided-buffer ring until it runs dry, then returns buffers and receives again. */
static void test_bufring(void)
{
	struct io_uring ring;
	if (io_uring_queue_init(64, &ring, 0) < 0) {
		printf("no io_uring here: skipped\n");
		return;
	}
	struct bufring br;
	CHECK(bufring_init(&br, &ring, 3, 4, 4, 64) == 0);
	CHECK(bufring_init(&(struct bufring){ 0 }, &ring, 4, 3, 3, 64) == -EINVAL); /* not a power of two */
	CHECK(bufring_init(&(struct bufring){ 0 }, &ring, 4, 4, 0, 64) == -EINVAL);
	CHECK(br.in_ring == 4);

	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	uint16_t held[8];
	int nheld = 0, enobufs = 0;
	bool retry = false;
	for (int round = 0; round < 6; round++) {
		if (!retry)
			CHECK(write(sv[1], "hello", 5) == 5);
		retry = false;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_recv(sqe, sv[0], NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = 3;
		io_uring_submit(&ring);
		struct io_uring_cqe *cqe;
		CHECK(io_uring_wait_cqe(&ring, &cqe) == 0);
		if (cqe->res == -ENOBUFS) {
			enobufs++;
			io_uring_cqe_seen(&ring, cqe);
			/* Give every held buffer back; the data is still queued in the socket. */
			for (int i = 0; i < nheld; i++)
				bufring_put(&br, held[i]);
			nheld = 0;
			bufring_publish(&br);
			retry = true;
			continue;
		}
		CHECK(cqe->res == 5 && (cqe->flags & IORING_CQE_F_BUFFER));
		uint16_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		io_uring_cqe_seen(&ring, cqe);
		bufring_take(&br, bid);
		CHECK(memcmp(bufring_addr(&br, bid), "hello", 5) == 0);
		/* A second reference (a queued send) keeps it out of the ring after the first goes. */
		bufring_ref(&br, bid);
		bufring_put(&br, bid);
		CHECK(br.refs[bid] == 1);
		held[nheld++] = bid;
	}
	CHECK(enobufs == 1);
	CHECK(br.in_ring + nheld == 4);
	close(sv[0]);
	close(sv[1]);
	bufring_destroy(&br, &ring);
	io_uring_queue_exit(&ring);
}

/* A ring that starts with 2 of 16 buffers grows, doubling, as receives hold them, and never past 16. */
static void test_bufring_grows(void)
{
	struct io_uring ring;
	if (io_uring_queue_init(64, &ring, 0) < 0)
		return;
	struct bufring br;
	CHECK(bufring_init(&br, &ring, 5, 16, 2, 64) == 0);
	CHECK(br.active == 2 && br.in_ring == 2);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	uint32_t seen_active[20];
	int got = 0;
	for (int i = 0; i < 20; i++) {
		CHECK(write(sv[1], "x", 1) == 1);
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_recv(sqe, sv[0], NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = 5;
		io_uring_submit(&ring);
		struct io_uring_cqe *cqe;
		CHECK(io_uring_wait_cqe(&ring, &cqe) == 0);
		int res = cqe->res;
		unsigned flags = cqe->flags;
		io_uring_cqe_seen(&ring, cqe);
		if (res == -ENOBUFS)
			break;
		CHECK(res == 1);
		bufring_take(&br, (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT));
		bufring_publish(&br);
		seen_active[got++] = br.active;
	}
	/* 16 buffers held, then the ring is dry: no more than count was ever provided. */
	CHECK(got == 16);
	CHECK(seen_active[0] == 2 && seen_active[1] == 4 && seen_active[3] == 8 && seen_active[got - 1] == 16);
	CHECK(br.in_ring == 0);
	bufring_starved(&br);   /* all 16 given: nothing more to provide */
	CHECK(br.active == 16 && br.in_ring == 0);
	close(sv[0]);
	close(sv[1]);
	bufring_destroy(&br, &ring);

	/* A receive that found the ring dry makes it grow before any buffer comes back. */
	CHECK(bufring_init(&br, &ring, 6, 16, 4, 64) == 0);
	bufring_starved(&br);
	CHECK(br.active == 8 && br.in_ring == 8);
	bufring_starved(&br);   /* the same batch: once is enough */
	CHECK(br.active == 8);
	bufring_publish(&br);
	bufring_starved(&br);
	CHECK(br.active == 16 && br.in_ring == 16);
	bufring_destroy(&br, &ring);
	io_uring_queue_exit(&ring);
}

int main(void)
{
	test_ud();
	test_bufring();
	test_bufring_grows();
	return check_summary();
}
