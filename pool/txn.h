/* Where a server connection stands between requests and ReadyForQuery: the transaction-state tracker. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * Counts what the server still owes: every Query, Sync and FunctionCall gets
 * exactly one ReadyForQuery. Extended-protocol messages after the last Sync
 * leave the server mid-request until the next Sync. Pure and inline: the
 * relay calls it per message.
 */
struct txn {
	uint32_t pending;   /* requests not yet answered by ReadyForQuery */
	uint32_t requests;  /* Query/Sync/FunctionCall sent, ever: statement replies' epochs */
	uint32_t answers;   /* ReadyForQuery received, ever */
	char     status;    /* of the last ReadyForQuery: 'I', 'T' or 'E' */
	bool     unsynced;  /* Parse/Bind/Execute/Describe/Close/Flush since the last Sync */
};

static inline void txn_init(struct txn *t)
{
	*t = (struct txn){ .status = 'I' };
}

/* A message of this type went to the server. */
static inline void txn_request(struct txn *t, uint8_t type)
{
	switch (type) {
	case 'Q':
	case 'F':
	case 'S':
		t->pending++;
		t->requests++;
		t->unsynced = false;
		break;
	case 'P':
	case 'B':
	case 'E':
	case 'D':
	case 'C':
	case 'H':
		t->unsynced = true;
		break;
	default:
		break;
	}
}

/* ReadyForQuery with this status came back. */
static inline void txn_ready(struct txn *t, char status)
{
	t->status = status;
	t->answers++;
	if (t->pending)
		t->pending--;
}

/* Nothing owed and nothing half-sent: the server waits for a new request. */
static inline bool txn_quiet(const struct txn *t)
{
	return t->pending == 0 && !t->unsynced;
}

/* Quiet and outside a transaction block: another client may have it. */
static inline bool txn_idle(const struct txn *t)
{
	return txn_quiet(t) && t->status == 'I';
}
