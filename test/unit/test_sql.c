/* Unit test of proto/sql: where a simple query splits into statements, and the text each one hands the rules. */
#include "proto/sql.h"
#include "test/unit/check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* True when sql[0..n) splits into exactly the NULL-terminated want[], and off ends at n. */
static bool splits(const char *sql, size_t n, unsigned flags, const char *const *want)
{
	char *out = malloc(n + 1); /* exactly what the contract asks, so ASan sees any byte more */
	size_t off = 0, k = 0;
	long len;
	bool ok = true;
	while (ok && (len = sql_next(sql, n, &off, out, flags)) >= 0) {
		if (!want[k] || (size_t)len != strlen(want[k]) || memcmp(out, want[k], (size_t)len) || out[len]) {
			fprintf(stderr, "  statement %zu: got [%s], want [%s]\n", k, out, want[k] ? want[k] : "(none)");
			ok = false;
		}
		k++;
	}
	if (ok && want[k]) {
		fprintf(stderr, "  statement %zu: got none, want [%s]\n", k, want[k]);
		ok = false;
	}
	free(out);
	return ok && off == n;
}

/* SPLITS("sql", "first", "second") with standard_conforming_strings on; SPLITS("  ;", NULL) for none. */
#define SPLITS(sql, ...) splits(sql, sizeof(sql) - 1, 0, (const char *const[]){__VA_ARGS__, NULL})
#define SPLITS_NONSTD(sql, ...) \
	splits(sql, sizeof(sql) - 1, SQL_BACKSLASH_ESCAPES, (const char *const[]){__VA_ARGS__, NULL})

static uint64_t rnd_state = 0x9e3779b97f4a7c15u;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state >> 16);
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* For random bytes: outputs fit the input, are trimmed and terminated, and off only moves forward to n. */
static bool property(const char *sql, size_t n, unsigned flags)
{
	char *out = malloc(n + 1);
	size_t off = 0, total = 0;
	long len;
	bool ok = true;
	for (size_t calls = 0; ok && calls <= n + 1; calls++) {
		size_t before = off;
		len = sql_next(sql, n, &off, out, flags);
		if (len < 0) {
			ok = off == n;
			break;
		}
		total += (size_t)len;
		ok = len > 0 && (size_t)len <= n - before && off > before && off <= n && !out[len] && !blank(out[0]) &&
		     !blank(out[len - 1]) && total <= n;
	}
	free(out);
	return ok && len < 0;
}

static void test_semicolons(void)
{
	CHECK(SPLITS("SELECT 1; DROP TABLE t", "SELECT 1", "DROP TABLE t"));
	CHECK(SPLITS("SELECT 1", "SELECT 1"));
	CHECK(SPLITS("SELECT 1;", "SELECT 1"));
	CHECK(SPLITS("SELECT 1;;  ;", "SELECT 1"));
	CHECK(SPLITS(";;a;;b;;", "a", "b"));
	CHECK(SPLITS("", NULL));
	CHECK(SPLITS(" \t\n\r\f\v ", NULL));
	CHECK(SPLITS(";", NULL));
	CHECK(SPLITS("  SELECT\t1  \n", "SELECT\t1"));
	/* Inside a statement the text stays as it came: case, inner whitespace. */
	CHECK(SPLITS("  sElEcT   1,\n\t2  ", "sElEcT   1,\n\t2"));
}

static void test_comments(void)
{
	CHECK(SPLITS("--c\nDROP t", "DROP t"));
	CHECK(SPLITS("--c\rDROP t", "DROP t"));
	CHECK(SPLITS("SELECT 1 -- ; DROP t", "SELECT 1"));
	CHECK(SPLITS("SELECT 1 -- c\n; DROP t", "SELECT 1", "DROP t"));
	CHECK(SPLITS("/* x */ DROP TABLE t", "DROP TABLE t"));
	CHECK(SPLITS("DROP/**/TABLE t", "DROP TABLE t"));
	CHECK(SPLITS("SELECT 2/*;*/3", "SELECT 2 3"));
	CHECK(SPLITS("/* a /* nested */ b */ DROP x", "DROP x"));
	/* Without nesting, the first close would end the comment and "; DROP x" would split. */
	CHECK(SPLITS("/* a /* b */ ; DROP x */ SELECT 1", "SELECT 1"));
	CHECK(SPLITS("/*/ x */ y", "y")); /* the opening '*' does not also close */
	CHECK(SPLITS("/**/y", "y"));
	CHECK(SPLITS("SELECT 1 */ ; x", "SELECT 1 */", "x")); /* a stray close is text */
	CHECK(SPLITS("SELECT 4 - -1; x", "SELECT 4 - -1", "x"));
	CHECK(SPLITS("SELECT 4 / *x; y", "SELECT 4 / *x", "y"));
	CHECK(SPLITS("SELECT 2*/*c*/3", "SELECT 2* 3"));
	CHECK(SPLITS("a--b\nc", "a \nc"));
	CHECK(SPLITS("/* only */ -- comments\n ; -- here", NULL));
	/* Comment markers inside quotes are text. */
	CHECK(SPLITS("SELECT '--'; x", "SELECT '--'", "x"));
	CHECK(SPLITS("SELECT '/*'; x", "SELECT '/*'", "x"));
	CHECK(SPLITS("SELECT \"/*\"; x", "SELECT \"/*\"", "x"));
	CHECK(SPLITS("SELECT $$--$$; x", "SELECT $$--$$", "x"));
}

static void test_strings(void)
{
	CHECK(SPLITS("SELECT 'a;b'; SELECT $$x;y$$; SELECT $q$ $$ ; $q$",
		     "SELECT 'a;b'", "SELECT $$x;y$$", "SELECT $q$ $$ ; $q$"));
	CHECK(SPLITS("SELECT 'it''s;'; x", "SELECT 'it''s;'", "x"));
	CHECK(SPLITS("SELECT ''';'; x", "SELECT ''';'", "x"));
	CHECK(SPLITS("SELECT ''; x", "SELECT ''", "x"));
	/* standard_conforming_strings on: a backslash in '...' is ordinary. */
	CHECK(SPLITS("SELECT 'a\\'; DROP t; --'", "SELECT 'a\\'", "DROP t"));
	CHECK(SPLITS("SELECT '\\''; DROP t; --'", "SELECT '\\''; DROP t; --'"));
	/* E'...': backslash escapes the next character, quotes included. */
	CHECK(SPLITS("SELECT E'\\';'; x", "SELECT E'\\';'", "x"));
	CHECK(SPLITS("SELECT e'\\';'; x", "SELECT e'\\';'", "x"));
	CHECK(SPLITS("SELECT E'\\\\'; x", "SELECT E'\\\\'", "x"));
	CHECK(SPLITS("SELECT E'a''b;'; x", "SELECT E'a''b;'", "x"));
	CHECK(SPLITS("SELECT (E'\\'');DROP t", "SELECT (E'\\'')", "DROP t"));
	/* Only a lone E is a prefix: typE'\' is an identifier and a plain string. */
	CHECK(SPLITS("SELECT typE'\\'; x", "SELECT typE'\\'", "x"));
	CHECK(SPLITS("SELECT 1E'\\'; x", "SELECT 1E'\\'", "x"));
	CHECK(SPLITS("SELECT \"a\"E'\\';'; x", "SELECT \"a\"E'\\';'", "x"));
	CHECK(SPLITS("SELECT /**/E'\\';'; x", "SELECT  E'\\';'", "x"));
	CHECK(SPLITS("SELECT $E'\\';'; x", "SELECT $E'\\';'", "x"));
	/* U&'...', N'...', B'...', X'...' read backslashes as ordinary characters. */
	CHECK(SPLITS("SELECT U&'\\'; x", "SELECT U&'\\'", "x"));
	CHECK(SPLITS("SELECT u&'d\\0061t;a'; x", "SELECT u&'d\\0061t;a'", "x"));
	CHECK(SPLITS("SELECT N'\\'; x", "SELECT N'\\'", "x"));
	CHECK(SPLITS("SELECT B'\\'; x", "SELECT B'\\'", "x"));
	CHECK(SPLITS("SELECT X'\\'; x", "SELECT X'\\'", "x"));
	CHECK(SPLITS("SELECT x'1;F'; y", "SELECT x'1;F'", "y"));
	/* A string continued across a newline stays in its state; without the newline it does not. */
	CHECK(SPLITS("SELECT E'a'\n'\\''; x; --'", "SELECT E'a'\n'\\''", "x"));
	CHECK(SPLITS("SELECT E'a'\r'\\''; x; --'", "SELECT E'a'\r'\\''", "x"));
	CHECK(SPLITS("SELECT E'a' -- c\n'\\''; x; --'", "SELECT E'a'  \n'\\''", "x"));
	CHECK(SPLITS("SELECT E'a'\n-- c\n  '\\''; x; --'", "SELECT E'a'\n \n  '\\''", "x"));
	CHECK(SPLITS("SELECT E'a'\n'b'\n'\\''; x; --'", "SELECT E'a'\n'b'\n'\\''", "x"));
	CHECK(SPLITS("SELECT E'a' '\\''; x; --'", "SELECT E'a' '\\''; x; --'"));
	CHECK(SPLITS("SELECT E'a' /* c */\n'\\''; x; --'", "SELECT E'a'  \n'\\''; x; --'"));
	CHECK(SPLITS("SELECT E'a'\n-- c", "SELECT E'a'"));
	/* Quoted identifiers: "" doubling, and nothing else is special inside. */
	CHECK(SPLITS("SELECT \"a;b\"; x", "SELECT \"a;b\"", "x"));
	CHECK(SPLITS("SELECT \"a\"\";'b\"; x", "SELECT \"a\"\";'b\"", "x"));
	CHECK(SPLITS("SELECT \"\\\"; x", "SELECT \"\\\"", "x"));
	CHECK(SPLITS("SELECT \"'\"; '\"'; x", "SELECT \"'\"", "'\"'", "x"));
}

static void test_nonstandard_strings(void)
{
	/* standard_conforming_strings off: '...' escapes as E'...' does; B'' and X'' still do not. */
	CHECK(SPLITS_NONSTD("SELECT '\\''; DROP t; --'", "SELECT '\\''", "DROP t"));
	CHECK(SPLITS_NONSTD("SELECT 'a\\';b'; x", "SELECT 'a\\';b'", "x"));
	CHECK(SPLITS_NONSTD("SELECT N'a\\';b'; x", "SELECT N'a\\';b'", "x"));
	CHECK(SPLITS_NONSTD("SELECT B'\\'; x", "SELECT B'\\'", "x"));
	CHECK(SPLITS_NONSTD("SELECT X'\\'; x", "SELECT X'\\'", "x"));
	/* B'a''b' is B'a' then a new '...' string, which escapes here. */
	CHECK(SPLITS_NONSTD("SELECT B'1''\\''; x; --'", "SELECT B'1''\\''", "x"));
	CHECK(SPLITS("SELECT B'1''\\''; x; --'", "SELECT B'1''\\''; x; --'"));
	CHECK(SPLITS_NONSTD("SELECT \"\\\"; x", "SELECT \"\\\"", "x"));
	CHECK(SPLITS_NONSTD("SELECT $$\\$$; x", "SELECT $$\\$$", "x"));
}

static void test_dollar_quotes(void)
{
	CHECK(SPLITS("SELECT $$a;b$$; x", "SELECT $$a;b$$", "x"));
	CHECK(SPLITS("SELECT $body$ $x$ ; $$ ' \" -- /* $body$; x", "SELECT $body$ $x$ ; $$ ' \" -- /* $body$", "x"));
	CHECK(SPLITS("SELECT $_1$;$_1$; x", "SELECT $_1$;$_1$", "x"));
	CHECK(SPLITS("SELECT $\xc3\xa9$;$\xc3\xa9$; x", "SELECT $\xc3\xa9$;$\xc3\xa9$", "x"));
	CHECK(SPLITS("SELECT $a$;$A$;$a$; x", "SELECT $a$;$A$;$a$", "x")); /* tags are case-sensitive */
	CHECK(SPLITS("SELECT $ab$;$abc$;$b$;$ab$; x", "SELECT $ab$;$abc$;$b$;$ab$", "x"));
	CHECK(SPLITS("SELECT $a$$a$; x", "SELECT $a$$a$", "x"));
	CHECK(SPLITS("SELECT $$$$; x", "SELECT $$$$", "x"));
	CHECK(SPLITS("SELECT $x$a$x$$$;$$; y", "SELECT $x$a$x$$$;$$", "y"));
	/* No dollar quote: after an identifier or number character, before a digit, or with a bad tag. */
	CHECK(SPLITS("SELECT a$b$c; x$b$", "SELECT a$b$c", "x$b$"));
	CHECK(SPLITS("SELECT a$$; x$$", "SELECT a$$", "x$$"));
	CHECK(SPLITS("SELECT $1; x", "SELECT $1", "x"));
	CHECK(SPLITS("SELECT $1$; x$1$", "SELECT $1$", "x$1$"));
	CHECK(SPLITS("SELECT $1$$; x$$", "SELECT $1$$", "x$$"));
	CHECK(SPLITS("SELECT $a-b$; x$", "SELECT $a-b$", "x$"));
	CHECK(SPLITS("SELECT $a b$; x", "SELECT $a b$", "x"));
	CHECK(SPLITS("SELECT 0x1F$$; x$$", "SELECT 0x1F$$", "x$$"));
	/* After a quote, a comment or an operator, a '$' does open one. */
	CHECK(SPLITS("SELECT \"a\"$$;$$; x", "SELECT \"a\"$$;$$", "x"));
	CHECK(SPLITS("SELECT 'a'$$;$$; x", "SELECT 'a'$$;$$", "x"));
	CHECK(SPLITS("SELECT a/**/$$;$$; x", "SELECT a $$;$$", "x"));
	CHECK(SPLITS("SELECT 1||$$;$$; x", "SELECT 1||$$;$$", "x"));
	CHECK(SPLITS("SELECT $a$;$a$$$;$$; x", "SELECT $a$;$a$$$;$$", "x"));
}

static void test_unterminated(void)
{
	CHECK(SPLITS("SELECT 1; SELECT 'a; DROP t", "SELECT 1", "SELECT 'a; DROP t"));
	CHECK(SPLITS("SELECT 'a;  \n", "SELECT 'a;"));
	CHECK(SPLITS("SELECT E'a\\", "SELECT E'a\\"));
	CHECK(SPLITS("SELECT E'a\\'; x", "SELECT E'a\\'; x"));
	CHECK(SPLITS("SELECT \"a; x", "SELECT \"a; x"));
	CHECK(SPLITS("SELECT $q$ a; $q", "SELECT $q$ a; $q"));
	CHECK(SPLITS("SELECT $$", "SELECT $$"));
	CHECK(SPLITS("SELECT 1 /* a; DROP t", "SELECT 1"));
	CHECK(SPLITS("SELECT 1 /* a /* b */ ; DROP t", "SELECT 1"));
	CHECK(SPLITS("SELECT 1; /* x", "SELECT 1"));
	CHECK(SPLITS("x /", "x /"));
	CHECK(SPLITS("x -", "x -"));
	CHECK(SPLITS("'", "'"));
	CHECK(SPLITS("E'", "E'"));
	CHECK(SPLITS("$", "$"));
	CHECK(SPLITS("\"", "\""));
}

static void test_nul_bytes(void)
{
	static const char sql[] = "SELECT '\0;'\0; \0DROP t\0 ; \0";
	char out[sizeof sql];
	size_t off = 0;
	CHECK(sql_next(sql, sizeof sql - 1, &off, out, 0) == 12 && !memcmp(out, "SELECT '\0;'\0", 13));
	CHECK(off == 13);
	CHECK(sql_next(sql, sizeof sql - 1, &off, out, 0) == 8 && !memcmp(out, "\0DROP t\0", 9));
	CHECK(sql_next(sql, sizeof sql - 1, &off, out, 0) == 1 && out[0] == 0 && out[1] == 0);
	CHECK(sql_next(sql, sizeof sql - 1, &off, out, 0) == -1 && off == sizeof sql - 1);
	/* sql is read only up to n: a ';' beyond it, or a missing NUL, changes nothing. */
	off = 0;
	CHECK(sql_next("SELECT 1; x", 6, &off, out, 0) == 6 && !strcmp(out, "SELECT") && off == 6);
	off = 0;
	CHECK(sql_next("$$a$$", 4, &off, out, 0) == 4 && !strcmp(out, "$$a$") && off == 4);
	/* A second call at the end, and a call with nothing at all. */
	CHECK(sql_next("$$a$$", 4, &off, out, 0) == -1 && off == 4);
	off = 0;
	CHECK(sql_next(NULL, 0, &off, out, 0) == -1 && off == 0);
}

static void test_property(void)
{
	static const char alphabet[] = "';\"$-/*\\\n\r \tEeBbXxUu&aq_1\0\xc3";
	char buf[64];
	bool ok = true;
	for (int round = 0; round < 200000 && ok; round++) {
		size_t n = rnd() % sizeof buf;
		bool biased = round % 4 != 0;
		for (size_t i = 0; i < n; i++)
			buf[i] = biased ? alphabet[rnd() % (sizeof alphabet - 1)] : (char)rnd();
		/* Through a heap copy of exactly n bytes, so ASan catches a read past the end. */
		char *sql = malloc(n ? n : 1);
		memcpy(sql, buf, n);
		ok = property(sql, n, 0) && property(sql, n, SQL_BACKSLASH_ESCAPES);
		if (!ok) {
			fprintf(stderr, "  property fails for %zu bytes:", n);
			for (size_t i = 0; i < n; i++)
				fprintf(stderr, " %02x", (unsigned char)buf[i]);
			fprintf(stderr, "\n");
		}
		free(sql);
	}
	CHECK(ok);
}

/* Inputs that would be quadratic for a careless scanner: a few MB must take well under a second each. */
static void test_linear(void)
{
	size_t n = 4u << 20;
	char *sql = malloc(n), *out = malloc(n + 1);
	static const char *const units[] = {
		"$a ",          /* dollar tags that never close */
		"/*",           /* ever deeper nesting */
		"'\n",          /* strings that keep continuing */
		"x$",           /* '$' inside words */
		";",            /* empty statements */
		" ",            /* whitespace to trim */
	};
	for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
		size_t ul = strlen(units[u]);
		for (size_t i = 0; i < n; i++)
			sql[i] = units[u][i % ul];
		clock_t t0 = clock();
		size_t off = 0;
		while (sql_next(sql, n, &off, out, 0) >= 0)
			;
		CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
	}
	/* A long tag, and a body full of its near misses. */
	size_t tl = 4096;
	sql[0] = '$';
	memset(sql + 1, 't', tl);
	sql[tl + 1] = '$';
	for (size_t i = tl + 2; i < n; i++)
		sql[i] = (i - tl - 2) % tl == 0 ? '$' : 't';
	clock_t t0 = clock();
	size_t off = 0;
	CHECK(sql_next(sql, n, &off, out, 0) > 0 && off == n);
	CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
	free(sql);
	free(out);
}

int main(void)
{
	test_semicolons();
	test_comments();
	test_strings();
	test_nonstandard_strings();
	test_dollar_quotes();
	test_unterminated();
	test_nul_bytes();
	test_property();
	test_linear();
	return check_summary();
}
