/* Splitting a simple-query string into its statements, with comments blanked, for the deny/allow rules. */
#pragma once

#include <stddef.h>

/*
 * standard_conforming_strings is off (the server reports it in ParameterStatus, and any client may SET it): a
 * backslash then escapes the next character in '...' too, as it always does in E'...'. Without this flag
 * "SELECT '\''; DROP TABLE t; --'" would look like one statement while the server runs two.
 */
#define SQL_BACKSLASH_ESCAPES 1u

/*
 * Walks sql[0..n) one statement at a time, splitting at ';' as PostgreSQL's lexer does: not inside '...', E'...'
 * (backslash escapes), B'...', X'...', U&'...', strings continued across a newline, "..." identifiers,
 * $tag$...$tag$ dollar quotes, -- comments or nested block comments. sql need not be NUL-terminated; a NUL
 * byte is an ordinary character (the server refuses a Query holding one). Writes the next statement into out
 * (at least n - *off + 1 bytes) with every comment replaced by one space and leading and trailing whitespace
 * removed, NUL-terminated; returns its length (> 0) and advances *off past it and its ';'. Statements empty
 * after that are skipped. Returns -1, with *off = n, when no statement is left.
 *
 * An unterminated string, comment or dollar quote runs to the end of sql, so its text still reaches the rules.
 * Where a client could make the server and this splitter disagree, the splitter errs towards splitting more:
 * a ';' inside a BEGIN ATOMIC function body splits here, and 0x1F$$ or 1e5$$ open no dollar quote here
 * (after a number the server would read one, but then the query does not parse and nothing runs).
 * Assumes an ASCII-safe client_encoding: in SJIS, BIG5, GBK, UHC or GB18030 a second byte may be a backslash.
 *
 * flags: 0 or SQL_BACKSLASH_ESCAPES. Linear time, no allocation, pure: any thread may call it; the caller owns
 * sql, off and out.
 */
long sql_next(const char *sql, size_t n, size_t *off, char *out, unsigned flags)
	__attribute__((warn_unused_result));
