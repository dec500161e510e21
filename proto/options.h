/* The `options` startup parameter: "-c name=value" and "--name=value" settings, as PostgreSQL reads them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Reads the next setting from *cur and advances it. Words are separated by
 * blanks; a backslash makes the next character literal. Returns 1 with name
 * and value filled (NUL-terminated), 0 at the end, or -1 with *why set for
 * anything else (another switch, a setting without '=', too long). Pure.
 */
int options_next(const char **cur, char *name, size_t ncap, char *value, size_t vcap,
		 const char **why) __attribute__((warn_unused_result));
