/* Fuzz target: the statement splitter stays inside its buffers, trims, terminates, and always moves forward. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sql.h"

static int fuzz_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void fuzz_split(const char *sql, size_t n, unsigned flags)
{
	/* Exactly the n + 1 bytes the contract asks for, so ASan sees a write past them. */
	char *out = malloc(n + 1);
	if (!out)
		abort();
	size_t off = 0, total = 0;
	for (size_t calls = 0;; calls++) {
		if (calls > n + 1)
			abort();
		size_t before = off;
		long len = sql_next(sql, n, &off, out, flags);
		if (len < 0) {
			if (off != n)
				abort();
			break;
		}
		total += (size_t)len;
		if (len == 0 || (size_t)len > n - before || total > n || off <= before || off > n)
			abort();
		if (out[len] || fuzz_blank(out[0]) || fuzz_blank(out[len - 1]))
			abort();
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, with no NUL after it: sql_next must not need one. */
	char *sql = malloc(size ? size : 1);
	if (!sql)
		return 0;
	memcpy(sql, data, size);
	fuzz_split(sql, size, 0);
	fuzz_split(sql, size, SQL_BACKSLASH_ESCAPES);
	free(sql);
	return 0;
}
