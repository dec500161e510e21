/* Names of ring ops, from the one X-macro list. */
#include "lib/ring.h"

#define RING_OP_NAME(name) #name,
static const char *const ring_op_names[] = { RING_OPS(RING_OP_NAME) };
#undef RING_OP_NAME

const char *ring_op_name(enum ring_op op)
{
	return op < OP__COUNT ? ring_op_names[op] : "?";
}
