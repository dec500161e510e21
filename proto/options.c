/* Splitting the `options` startup parameter into settings. */
#include "proto/options.h"

#include <string.h>

static bool options_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The next blank-separated word of *cur into out, backslash escapes undone. -1 when too long, 0 at the end. */
static int options_word(const char **cur, char *out, size_t cap)
{
	const char *p = *cur;
	while (options_blank(*p))
		p++;
	if (!*p) {
		*cur = p;
		return 0;
	}
	size_t n = 0;
	while (*p && !options_blank(*p)) {
		if (*p == '\\' && p[1])
			p++;
		if (n + 1 >= cap)
			return -1;
		out[n++] = *p++;
	}
	out[n] = 0;
	*cur = p;
	return 1;
}

int options_next(const char **cur, char *name, size_t ncap, char *value, size_t vcap, const char **why)
{
	char word[1024];
	int r = options_word(cur, word, sizeof word);
	if (r <= 0) {
		if (r < 0)
			*why = "option too long";
		return r;
	}
	const char *setting;
	if (strcmp(word, "-c") == 0) {
		r = options_word(cur, word, sizeof word);
		if (r <= 0) {
			*why = r < 0 ? "option too long" : "-c without a setting";
			return -1;
		}
		setting = word;
	} else if (strncmp(word, "-c", 2) == 0) {
		setting = word + 2;
	} else if (strncmp(word, "--", 2) == 0) {
		setting = word + 2;
	} else {
		*why = "only -c name=value and --name=value are supported in options";
		return -1;
	}
	const char *eq = strchr(setting, '=');
	if (!eq || eq == setting) {
		*why = "a setting in options needs name=value";
		return -1;
	}
	size_t nlen = (size_t)(eq - setting), vlen = strlen(eq + 1);
	if (nlen + 1 > ncap || vlen + 1 > vcap) {
		*why = "option too long";
		return -1;
	}
	memcpy(name, setting, nlen);
	name[nlen] = 0;
	/* As PostgreSQL does for --name=value: dashes in the name are underscores. */
	for (size_t i = 0; i < nlen; i++)
		if (name[i] == '-')
			name[i] = '_';
	memcpy(value, eq + 1, vlen + 1);
	return 1;
}
