/* io_uring completion tags: user_data packs op, connection slot and generation. */
#pragma once

#include <stdint.h>

/*
 * Every op the workers and the acceptor submit or receive. The names come from
 * this one list so logs and counters cannot drift from the enum.
 */
#define RING_OPS(X)                                                            \
	X(IGNORE)      /* completions nobody waits for (cancels, MSG_RING sends) */ \
	X(RECV)        /* multishot recv on a connection */                        \
	X(SEND)        /* sendmsg of a connection's queued segments */             \
	X(CONNECT)     /* a server or cancel connection being opened */            \
	X(TICK)        /* the worker's periodic timer */                           \
	X(WAKE)        /* the worker's one-shot timer for its soonest deadline */  \
	X(ACCEPT)      /* acceptor: multishot accept on listener `slot` */         \
	X(SIGNAL)      /* acceptor: signalfd read */                              \
	X(NEW_CLIENT)  /* MSG_RING to a worker: res is an accepted fd */           \
	X(SHUTDOWN)    /* MSG_RING to a worker: start a graceful shutdown */       \
	X(CANCEL)      /* MSG_RING to a worker: res is the key, slot the client */ \
	X(POOL_FREED)  /* MSG_RING to a worker: pool cap `slot` has room again */  \
	X(POOL_NEED)   /* MSG_RING to a worker: close an idle server of pool `slot` */

#define RING_OP_ENUM(name) OP_##name,
enum ring_op { RING_OPS(RING_OP_ENUM) OP__COUNT };
#undef RING_OP_ENUM

/* op: 8 bits | gen: 24 bits | slot: 32 bits. */
#define RING_GEN_BITS 24
#define RING_GEN_MASK ((1u << RING_GEN_BITS) - 1)
_Static_assert(OP__COUNT <= 256, "op must fit in 8 bits of user_data");

static inline uint64_t ring_ud(enum ring_op op, uint32_t slot, uint32_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & RING_GEN_MASK) << 32 | slot;
}

static inline enum ring_op ring_ud_op(uint64_t ud) { return (enum ring_op)(ud >> 56); }
static inline uint32_t ring_ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & RING_GEN_MASK; }
static inline uint32_t ring_ud_slot(uint64_t ud) { return (uint32_t)ud; }

const char *ring_op_name(enum ring_op op);
