/* The unit tests' one assertion macro: counts checks, reports failures, and sums up for ctest. */
#pragma once

#include <stdio.h>

static int check_count, check_failures;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		check_count++;                                                       \
		if (!(cond)) {                                                       \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

/* Prints "N passed, M failed" and gives main's exit code. */
static inline int check_summary(void)
{
	printf("%d passed, %d failed\n", check_count - check_failures, check_failures);
	return check_failures ? 1 : 0;
}
