/* Splitting a simple-query string into statements, reading quotes and comments as scan.l in PostgreSQL does. */
#include "proto/sql.h"

#include <stdbool.h>
#include <string.h>

/* How backslashes and doubled quotes read inside a '...' string. */
enum sql_quote {
	SQL_PLAIN,  /* '...', N'...', U&'...': '' is a quote */
	SQL_ESCAPE, /* E'...', or any '...' without standard_conforming_strings: \ escapes too */
	SQL_RAW,    /* B'...', X'...': '' ends the string and opens another */
};

static bool sql_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool sql_tag_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool sql_tag_cont(unsigned char c)
{
	return sql_tag_start(c) || (c >= '0' && c <= '9');
}

/* Past the -- comment at s[i]: up to, not over, the newline that ends it. */
static size_t sql_line_comment(const char *s, size_t n, size_t i)
{
	for (i += 2; i < n && s[i] != '\n' && s[i] != '\r'; i++)
		;
	return i;
}

/* Past the block comment at s[i] and the ones nested in it, or n. */
static size_t sql_block_comment(const char *s, size_t n, size_t i)
{
	size_t depth = 1;
	for (i += 2; i < n && depth;) {
		if (s[i] == '/' && i + 1 < n && s[i + 1] == '*')
			depth++, i += 2;
		else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/')
			depth--, i += 2;
		else
			i++;
	}
	return i;
}

/*
 * Where the string that closed just before s[i] goes on, or 0. SQL joins 'a'<newline>'b' into one string, and
 * the server reads the second part in the state of the first: E'a'\n'\'' is still an E string. The gap is
 * whitespace holding a newline, with -- comments but not block comments (scan.l's quotecontinue).
 */
static size_t sql_continuation(const char *s, size_t n, size_t i)
{
	bool newline = false;
	while (i < n) {
		char c = s[i];
		if (c == '\'')
			return newline ? i : 0;
		if (c == '-' && i + 1 < n && s[i + 1] == '-') {
			i = sql_line_comment(s, n, i);
		} else if (sql_space((unsigned char)c)) {
			newline |= c == '\n' || c == '\r';
			i++;
		} else {
			return 0;
		}
	}
	return 0;
}

/* Past the string opening at s[i] and its continuations, or n; copies it to out + *len, comments blanked. */
static size_t sql_string(const char *s, size_t n, size_t i, enum sql_quote kind, char *out, size_t *len)
{
	out[(*len)++] = s[i++];
	while (i < n) {
		char c = s[i++];
		out[(*len)++] = c;
		if (c == '\\' && kind == SQL_ESCAPE && i < n) {
			out[(*len)++] = s[i++];
			continue;
		}
		if (c != '\'')
			continue;
		if (kind != SQL_RAW && i < n && s[i] == '\'') {
			out[(*len)++] = s[i++];
			continue;
		}
		size_t q = sql_continuation(s, n, i);
		if (!q)
			return i;
		while (i < q) {
			if (s[i] == '-' && s[i + 1] == '-') {
				i = sql_line_comment(s, n, i);
				out[(*len)++] = ' ';
			} else {
				out[(*len)++] = s[i++];
			}
		}
		out[(*len)++] = s[i++];
	}
	return n;
}

/* Past the "..." identifier opening at s[i], or n; copies it to out + *len. */
static size_t sql_ident(const char *s, size_t n, size_t i, char *out, size_t *len)
{
	out[(*len)++] = s[i++];
	while (i < n) {
		char c = s[i++];
		out[(*len)++] = c;
		if (c == '"') {
			if (i < n && s[i] == '"')
				out[(*len)++] = s[i++];
			else
				return i;
		}
	}
	return n;
}

/* The length of the $tag$ that s[i] == '$' opens, or 0. */
static size_t sql_dollar_tag(const char *s, size_t n, size_t i)
{
	size_t j = i + 1;
	if (j < n && sql_tag_start((unsigned char)s[j]))
		for (j++; j < n && sql_tag_cont((unsigned char)s[j]); j++)
			;
	return j < n && s[j] == '$' ? j + 1 - i : 0;
}

/*
 * Past the dollar quote whose tag, tlen bytes with both '$', starts at s[i], or n; copies it to out + *len.
 * Compared by hand, stopping at the first difference: the bytes matched are tag bytes, never '$', so the next
 * candidate lies beyond them and the search stays linear whatever the tag's length.
 */
static size_t sql_dollar(const char *s, size_t n, size_t i, size_t tlen, char *out, size_t *len)
{
	size_t end = n;
	for (size_t j = i + tlen; j < n;) {
		const char *d = memchr(s + j, '$', n - j);
		if (!d)
			break;
		size_t k = (size_t)(d - s), m = 1;
		while (m < tlen && k + m < n && s[k + m] == s[i + m])
			m++;
		if (m == tlen) {
			end = k + tlen;
			break;
		}
		j = k + 1;
	}
	memcpy(out + *len, s + i, end - i);
	*len += end - i;
	return end;
}

/* How the string opening at s[i] reads; word counts the identifier bytes right before it (E'..' but not typE'..'). */
static enum sql_quote sql_quote_kind(const char *s, size_t i, size_t word, unsigned flags)
{
	if (word == 1) {
		char p = s[i - 1];
		if (p == 'E' || p == 'e')
			return SQL_ESCAPE;
		if (p == 'B' || p == 'b' || p == 'X' || p == 'x')
			return SQL_RAW;
	}
	return flags & SQL_BACKSLASH_ESCAPES ? SQL_ESCAPE : SQL_PLAIN;
}

long sql_next(const char *s, size_t n, size_t *off, char *out, unsigned flags)
{
	size_t i = *off;
	while (i < n) {
		/*
		 * word counts the identifier or number bytes just before s[i]. After one, a '$' belongs to it
		 * (a$b$c, $1$) rather than opening a dollar quote, and a quote is a plain string (typE'x').
		 */
		size_t len = 0, word = 0, tlen;
		while (i < n && s[i] != ';') {
			unsigned char c = (unsigned char)s[i];
			char next = i + 1 < n ? s[i + 1] : 0;
			if ((c == '-' && next == '-') || (c == '/' && next == '*')) {
				i = c == '-' ? sql_line_comment(s, n, i) : sql_block_comment(s, n, i);
				if (len)
					out[len++] = ' ';
				word = 0;
			} else if (c == '\'') {
				i = sql_string(s, n, i, sql_quote_kind(s, i, word, flags), out, &len);
				word = 0;
			} else if (c == '"') {
				i = sql_ident(s, n, i, out, &len);
				word = 0;
			} else if (c == '$' && !word && (tlen = sql_dollar_tag(s, n, i))) {
				i = sql_dollar(s, n, i, tlen, out, &len);
				word = 0;
			} else if (sql_space(c)) {
				if (len)
					out[len++] = (char)c;
				i++;
				word = 0;
			} else {
				out[len++] = (char)c;
				i++;
				/* A '$' opening no quote starts no word either: in $E'x' the E is a prefix again. */
				bool in_word = sql_tag_cont(c) || (c == '$' && word);
				word = in_word ? word + 1 : 0;
			}
		}
		if (i < n)
			i++;
		while (len && sql_space((unsigned char)out[len - 1]))
			len--;
		if (len) {
			out[len] = 0;
			*off = i;
			return (long)len;
		}
	}
	*off = i;
	return -1;
}
