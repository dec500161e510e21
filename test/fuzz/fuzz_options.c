/* Fuzz target: the options startup parameter splitter never reads past its string nor loops. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	const char *cur = s, *why;
	char name[64], value[256];
	/* Each call consumes at least one word, so this ends. */
	for (int i = 0; i <= (int)size; i++) {
		const char *before = cur;
		int r = options_next(&cur, name, sizeof name, value, sizeof value, &why);
		if (r != 1)
			break;
		if (cur == before)
			abort();
	}
	free(s);
	return 0;
}
