/* Unit test of pool/txn.h: when a server is owed replies, in a transaction, or free for another client. */
#include "pool/txn.h"
#include "test/unit/check.h"

static void feed(struct txn *t, const char *types)
{
	for (; *types; types++)
		txn_request(t, (uint8_t)*types);
}

int main(void)
{
	struct txn t;

	txn_init(&t);
	CHECK(txn_idle(&t) && t.status == 'I');

	/* Simple query: owed one ReadyForQuery, idle after it. */
	feed(&t, "Q");
	CHECK(!txn_quiet(&t) && t.pending == 1);
	txn_ready(&t, 'I');
	CHECK(txn_idle(&t) && t.requests == 1 && t.answers == 1);

	/* BEGIN keeps the server: quiet, but inside a transaction block. */
	feed(&t, "Q");
	txn_ready(&t, 'T');
	CHECK(txn_quiet(&t) && !txn_idle(&t));
	feed(&t, "Q");
	txn_ready(&t, 'I');
	CHECK(txn_idle(&t));

	/* A pipeline: many Parse/Bind/Execute, one Sync. */
	feed(&t, "PBEPBEPBE");
	CHECK(t.unsynced && !txn_quiet(&t) && t.pending == 0);
	feed(&t, "S");
	CHECK(!t.unsynced && t.pending == 1);
	txn_ready(&t, 'I');
	CHECK(txn_idle(&t));

	/* Several Syncs in flight: idle only after the last answer. */
	feed(&t, "BESBESBES");
	CHECK(t.pending == 3);
	txn_ready(&t, 'I');
	txn_ready(&t, 'I');
	CHECK(!txn_idle(&t));
	txn_ready(&t, 'I');
	CHECK(txn_idle(&t) && t.requests == t.answers);

	/* Flush without Sync: the server is mid-request, never handed over. */
	feed(&t, "PDH");
	CHECK(!txn_quiet(&t));
	feed(&t, "S");
	txn_ready(&t, 'I');
	CHECK(txn_idle(&t));

	/* A failed transaction block is not idle; COPY data and Terminate change nothing. */
	feed(&t, "Q");
	txn_ready(&t, 'E');
	CHECK(txn_quiet(&t) && !txn_idle(&t));
	feed(&t, "dcfX");
	CHECK(t.pending == 0 && !t.unsynced);

	/* More answers than requests (a server speaking out of turn) never underflow. */
	txn_init(&t);
	txn_ready(&t, 'I');
	CHECK(t.pending == 0 && t.answers == 1);
	return check_summary();
}
