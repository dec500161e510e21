/* Unit test of proto/msg.c: builders round-trip through the parsers, and every startup rejection is reached. */
#include "proto/msg.h"
#include "test/unit/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The body of the one typed message w holds; checks type and length field. */
static const uint8_t *body_of(const struct wbuf *w, uint8_t type, size_t *n)
{
	CHECK(!w->overflow && w->len >= 5 && w->p[0] == type);
	CHECK(get32(w->p + 1) == w->len - 1);
	*n = w->len - 5;
	return w->p + 5;
}

static void test_builders(void)
{
	uint8_t buf[512];
	struct wbuf w;
	struct msg_fields f;
	const uint8_t *b, *data;
	const char *s1, *s2;
	uint32_t code, pid, key;
	size_t n, dn;

	w = wbuf_on(buf, sizeof(buf));
	msg_error(&w, "FATAL", "28P01", "password authentication failed", "no such user", "check it");
	b = body_of(&w, 'E', &n);
	CHECK(msg_parse_fields(b, n, &f) == 0);
	CHECK(!strcmp(f.severity, "FATAL") && !strcmp(f.code, "28P01") &&
	      !strcmp(f.message, "password authentication failed") &&
	      !strcmp(f.detail, "no such user") && !strcmp(f.hint, "check it"));
	CHECK(!memcmp(b, "SFATAL\0VFATAL\0C28P01\0M", 22) && b[n - 1] == 0);

	w = wbuf_on(buf, sizeof(buf));
	msg_error(&w, "ERROR", "08P01", "bad", NULL, NULL);
	b = body_of(&w, 'E', &n);
	CHECK(msg_parse_fields(b, n, &f) == 0 && !f.detail && !f.hint && !strcmp(f.message, "bad"));

	w = wbuf_on(buf, sizeof(buf));
	msg_notice(&w, "00000", "hello");
	b = body_of(&w, 'N', &n);
	CHECK(msg_parse_fields(b, n, &f) == 0 && !strcmp(f.severity, "NOTICE") &&
	      !strcmp(f.code, "00000") && !strcmp(f.message, "hello"));
	printf("ok - ErrorResponse / NoticeResponse round trip\n");

	w = wbuf_on(buf, sizeof(buf));
	msg_auth(&w, AUTH_MD5, "\x01\x02\x03\x04", 4);
	b = body_of(&w, 'R', &n);
	CHECK(msg_parse_auth(b, n, &code, &data, &dn) == 0 && code == AUTH_MD5 && dn == 4 &&
	      !memcmp(data, "\x01\x02\x03\x04", 4));
	w = wbuf_on(buf, sizeof(buf));
	msg_auth(&w, AUTH_OK, NULL, 0);
	b = body_of(&w, 'R', &n);
	CHECK(n == 4 && msg_parse_auth(b, n, &code, &data, &dn) == 0 && code == AUTH_OK && dn == 0);
	w = wbuf_on(buf, sizeof(buf));
	msg_auth(&w, AUTH_SASL, "SCRAM-SHA-256\0", 15);
	b = body_of(&w, 'R', &n);
	CHECK(msg_parse_auth(b, n, &code, &data, &dn) == 0 && code == AUTH_SASL && dn == 15);
	printf("ok - Authentication round trip (ok, md5, sasl)\n");

	w = wbuf_on(buf, sizeof(buf));
	msg_param_status(&w, "server_version", "15.0");
	b = body_of(&w, 'S', &n);
	CHECK(msg_parse_param_status(b, n, &s1, &s2) == 0 && !strcmp(s1, "server_version") &&
	      !strcmp(s2, "15.0"));
	w = wbuf_on(buf, sizeof(buf));
	msg_param_status(&w, "application_name", "");
	b = body_of(&w, 'S', &n);
	CHECK(msg_parse_param_status(b, n, &s1, &s2) == 0 && !*s2);

	w = wbuf_on(buf, sizeof(buf));
	msg_backend_key(&w, 4242, 0xdeadbeef);
	b = body_of(&w, 'K', &n);
	CHECK(msg_parse_backend_key(b, n, &pid, &key) == 0 && pid == 4242 && key == 0xdeadbeef);
	printf("ok - ParameterStatus / BackendKeyData round trip\n");

	w = wbuf_on(buf, sizeof(buf));
	msg_ready(&w, 'I');
	msg_query(&w, "SELECT 1");
	msg_terminate(&w);
	msg_byte(&w, 'N');
	CHECK(!w.overflow && w.len == 6 + 14 + 5 + 1);
	CHECK(!memcmp(buf, "Z\0\0\0\x05I" "Q\0\0\0\x0dSELECT 1\0" "X\0\0\0\x04" "N", w.len));
	printf("ok - ReadyForQuery, Query, Terminate, single byte: exact bytes\n");

	w = wbuf_on(buf, sizeof(buf));
	msg_password(&w, "md5abc");
	b = body_of(&w, 'p', &n);
	CHECK(msg_parse_password(b, n, &s1) == 0 && !strcmp(s1, "md5abc"));

	w = wbuf_on(buf, sizeof(buf));
	msg_sasl_initial(&w, "SCRAM-SHA-256", "n,,n=,r=abc", 11);
	b = body_of(&w, 'p', &n);
	CHECK(msg_parse_sasl_initial(b, n, &s1, &data, &dn) == 0 && !strcmp(s1, "SCRAM-SHA-256") &&
	      dn == 11 && !memcmp(data, "n,,n=,r=abc", 11));
	w = wbuf_on(buf, sizeof(buf));
	msg_sasl_initial(&w, "SCRAM-SHA-256", NULL, 0);
	b = body_of(&w, 'p', &n);
	CHECK(get32(b + 14) == 0xffffffffu);
	CHECK(msg_parse_sasl_initial(b, n, &s1, &data, &dn) == 0 && !data && dn == 0);
	w = wbuf_on(buf, sizeof(buf));
	msg_sasl_initial(&w, "SCRAM-SHA-256", "", 0);
	b = body_of(&w, 'p', &n);
	CHECK(msg_parse_sasl_initial(b, n, &s1, &data, &dn) == 0 && data && dn == 0);

	w = wbuf_on(buf, sizeof(buf));
	msg_sasl_response(&w, "c=biws,r=x,p=y", 14);
	b = body_of(&w, 'p', &n);
	CHECK(n == 14 && !memcmp(b, "c=biws,r=x,p=y", 14));
	printf("ok - PasswordMessage, SASLInitialResponse (data, none, empty), SASLResponse\n");
}

/* msg_named: a Bind/Describe with its statement name swapped, byte for byte. */
static void test_named(void)
{
	uint8_t buf[64];
	static const uint8_t rest[] = { 0, 0, 0, 1, 0, 0 };
	struct wbuf w = wbuf_on(buf, sizeof buf);
	msg_named(&w, 'B', "p1", 3, "rb_x", rest, sizeof rest);
	CHECK(!w.overflow && w.len == MSG_NAMED_LEN(3, "rb_x", sizeof rest));
	CHECK(buf[0] == 'B' && msg_get32(buf + 1) == w.len - 1);
	CHECK(memcmp(buf + 5, "p1\0rb_x\0", 8) == 0 && memcmp(buf + 13, rest, sizeof rest) == 0);
	/* Empty prefix and rest (a Parse of a shared name with no body yet). */
	w = wbuf_on(buf, sizeof buf);
	msg_named(&w, 'P', NULL, 0, "", NULL, 0);
	CHECK(!w.overflow && w.len == 6 && msg_get32(buf + 1) == 5 && buf[5] == 0);
	/* Too small: nothing written, overflow set. */
	w = wbuf_on(buf, 8);
	msg_named(&w, 'D', "S", 1, "a_long_statement_name", NULL, 0);
	CHECK(w.overflow && w.len == 0);
	printf("ok - msg_named\n");
}

static void test_wbuf(void)
{
	uint8_t buf[64];
	struct wbuf w = wbuf_on(buf, 14);

	memset(buf, 0xaa, sizeof(buf));
	msg_query(&w, "SELECT 1");      /* 14 bytes: fits exactly */
	CHECK(!w.overflow && w.len == 14);
	msg_byte(&w, 'S');
	CHECK(w.overflow && w.len == 14 && buf[14] == 0xaa);

	w = wbuf_on(buf, 10);
	memset(buf, 0xaa, sizeof(buf));
	msg_ready(&w, 'I');
	msg_query(&w, "SELECT 1");      /* does not fit: nothing of it is written */
	CHECK(w.overflow && w.len == 6 && buf[6] == 0xaa);
	msg_ready(&w, 'I');             /* would fit, but overflow sticks */
	CHECK(w.overflow && w.len == 6);
	printf("ok - wbuf: exact fit, overflow writes nothing and sticks\n");
}

/* Builds a startup-phase packet: length, code, then raw bytes. */
static size_t packet(uint8_t *buf, uint32_t code, const void *rest, size_t n)
{
	uint32_t len = (uint32_t)(8 + n);

	buf[0] = len >> 24;
	buf[1] = len >> 16;
	buf[2] = len >> 8;
	buf[3] = len;
	buf[4] = code >> 24;
	buf[5] = code >> 16;
	buf[6] = code >> 8;
	buf[7] = code;
	if (n)
		memcpy(buf + 8, rest, n);
	return 8 + n;
}

static void reject(const uint8_t *pkt, size_t len, const char *reason)
{
	struct startup s;
	const char *why = NULL;

	CHECK(msg_parse_startup(pkt, len, &s, &why) == -EPROTO);
	if (!why || !strstr(why, reason)) {
		fprintf(stderr, "FAIL: reason '%s', wanted '%s'\n", why ? why : "(null)", reason);
		exit(1);
	}
	printf("ok - rejected: %s\n", why);
}

#define PAIRS(lit) lit, sizeof(lit) - 1

static void test_startup(void)
{
	static uint8_t buf[2 * PROTO_STARTUP_MAX], rest[PROTO_STARTUP_MAX];
	static const char *const kv[] = { "user", "app", "database", "appdb",
					  "application_name", "", NULL };
	struct startup s;
	struct wbuf w;
	const char *why;
	size_t len, off;

	w = wbuf_on(buf, sizeof(buf));
	msg_startup(&w, kv);
	CHECK(!w.overflow && get32(buf) == w.len && get32(buf + 4) == PROTO_V3);
	CHECK(w.len == 8 + 5 + 4 + 9 + 6 + 17 + 1 + 1 && buf[w.len - 1] == 0);
	CHECK(msg_parse_startup(buf, w.len, &s, &why) == 0 && s.code == PROTO_V3 && s.nparams == 3);
	CHECK(!strcmp(startup_get(&s, "user"), "app") &&
	      !strcmp(startup_get(&s, "database"), "appdb") &&
	      !strcmp(startup_get(&s, "application_name"), "") && !startup_get(&s, "options"));
	/* Strings point into the packet. */
	CHECK((const uint8_t *)s.name[0] == buf + 8);
	/* The walk without a struct startup sees the same pairs, in order, and then stops. */
	{
		const char *name, *value;
		size_t pos = 0, i = 0;
		while (startup_next(buf, w.len, &pos, &name, &value)) {
			CHECK(i < s.nparams && name == s.name[i] && value == s.value[i]);
			i++;
		}
		CHECK(i == s.nparams && !startup_next(buf, w.len, &pos, &name, &value));
	}
	printf("ok - StartupMessage round trip, strings in place\n");

	len = packet(buf, PROTO_V3, PAIRS("user\0bob\0\0"));
	CHECK(msg_parse_startup(buf, len, &s, &why) == 0 && s.nparams == 1 &&
	      !startup_get(&s, "database"));
	printf("ok - database is optional\n");

	w = wbuf_on(buf, sizeof(buf));
	msg_cancel(&w, 1234, 0xcafef00d);
	CHECK(w.len == 16 && get32(buf) == 16 && get32(buf + 4) == PROTO_CANCEL_CODE);
	CHECK(msg_parse_startup(buf, w.len, &s, &why) == 0 && s.code == PROTO_CANCEL_CODE &&
	      s.pid == 1234 && s.key == 0xcafef00d);
	len = packet(buf, PROTO_SSL_CODE, NULL, 0);
	CHECK(msg_parse_startup(buf, len, &s, &why) == 0 && s.code == PROTO_SSL_CODE);
	len = packet(buf, PROTO_GSSENC_CODE, NULL, 0);
	CHECK(msg_parse_startup(buf, len, &s, &why) == 0 && s.code == PROTO_GSSENC_CODE);
	printf("ok - CancelRequest, SSLRequest, GSSENCRequest\n");

	reject(buf, 7, "too short");
	reject(buf, 0, "too short");
	len = packet(buf, PROTO_V3, PAIRS("user\0bob\0\0"));
	reject(buf, len - 1, "does not match");
	reject(buf, len + 1, "does not match");
	memset(rest, 'x', sizeof(rest));
	len = packet(buf, PROTO_V3, rest, PROTO_STARTUP_MAX - 7);
	reject(buf, len, "too long");
	len = packet(buf, PROTO_SSL_CODE, "\0\0\0\0", 4);
	reject(buf, len, "SSLRequest");
	len = packet(buf, PROTO_GSSENC_CODE, "\0", 1);
	reject(buf, len, "GSSENCRequest");
	len = packet(buf, PROTO_CANCEL_CODE, "\0\0\0\1", 4);
	reject(buf, len, "CancelRequest");
	len = packet(buf, PROTO_CANCEL_CODE, "\0\0\0\1\0\0\0\2\0", 9);
	reject(buf, len, "CancelRequest");
	len = packet(buf, 1234u << 16 | 5699, NULL, 0);
	reject(buf, len, "unsupported frontend protocol 1234.5699");
	len = packet(buf, 2u << 16, PAIRS("user\0bob\0\0"));
	reject(buf, len, "unsupported frontend protocol 2.0");
	len = packet(buf, PROTO_V3 + 1, PAIRS("user\0bob\0\0"));
	reject(buf, len, "unsupported frontend protocol 3.1");
	len = packet(buf, PROTO_V3, NULL, 0);
	reject(buf, len, "final terminator");
	len = packet(buf, PROTO_V3, PAIRS("user\0bob\0"));
	reject(buf, len, "final terminator");
	len = packet(buf, PROTO_V3, PAIRS("user"));
	reject(buf, len, "unterminated startup parameter name");
	len = packet(buf, PROTO_V3, PAIRS("user\0"));
	reject(buf, len, "without a value");
	len = packet(buf, PROTO_V3, PAIRS("user\0bob"));
	reject(buf, len, "without a value");
	len = packet(buf, PROTO_V3, PAIRS("user\0bob\0\0x"));
	reject(buf, len, "after the startup packet's terminator");
	len = packet(buf, PROTO_V3, PAIRS("\0"));
	reject(buf, len, "no user name");
	len = packet(buf, PROTO_V3, PAIRS("database\0db\0\0"));
	reject(buf, len, "no user name");
	len = packet(buf, PROTO_V3, PAIRS("user\0\0\0"));
	reject(buf, len, "no user name");
	len = packet(buf, PROTO_V3, PAIRS("user\0a\0user\0b\0\0"));
	reject(buf, len, "duplicate");

	/* PROTO_STARTUP_MAX_PARAMS pairs pass; one more does not. */
	off = 0;
	for (int i = 0; i <= PROTO_STARTUP_MAX_PARAMS; i++) {
		off += (size_t)sprintf((char *)rest + off, i ? "p%d" : "user", i) + 1;
		rest[off++] = 'v';
		rest[off++] = 0;
		if (i == PROTO_STARTUP_MAX_PARAMS - 1) {
			rest[off] = 0;
			len = packet(buf, PROTO_V3, rest, off + 1);
			CHECK(msg_parse_startup(buf, len, &s, &why) == 0 &&
			      s.nparams == PROTO_STARTUP_MAX_PARAMS);
		}
	}
	printf("ok - %d parameters accepted\n", PROTO_STARTUP_MAX_PARAMS);
	rest[off] = 0;
	len = packet(buf, PROTO_V3, rest, off + 1);
	reject(buf, len, "too many");
}

static void test_parsers(void)
{
	struct msg_fields f;
	const uint8_t *data;
	const char *s1, *s2;
	uint32_t code, pid, key;
	size_t dn;

	CHECK(msg_parse_fields((const uint8_t *)"", 1, &f) == 0 && !f.severity && !f.message);
	CHECK(msg_parse_fields((const uint8_t *)"SERROR\0VFEHLER\0q?\0", 19, &f) == 0 &&
	      !strcmp(f.severity, "FEHLER"));
	CHECK(msg_parse_fields((const uint8_t *)"VERROR\0SFEHLER\0", 16, &f) == 0 &&
	      !strcmp(f.severity, "ERROR"));
	CHECK(msg_parse_fields(NULL, 0, &f) == -EPROTO);
	CHECK(msg_parse_fields((const uint8_t *)"SERROR", 6, &f) == -EPROTO);
	CHECK(msg_parse_fields((const uint8_t *)"SERROR\0", 7, &f) == -EPROTO);
	CHECK(msg_parse_fields((const uint8_t *)"SERROR\0\0M", 9, &f) == -EPROTO);
	CHECK(msg_parse_fields((const uint8_t *)"S", 1, &f) == -EPROTO);
	printf("ok - fields: V wins over S, unknown skipped, unterminated / trailing rejected\n");

	CHECK(msg_parse_param_status((const uint8_t *)"a\0b\0", 4, &s1, &s2) == 0);
	CHECK(msg_parse_param_status((const uint8_t *)"a\0", 2, &s1, &s2) == -EPROTO);
	CHECK(msg_parse_param_status((const uint8_t *)"a\0b", 3, &s1, &s2) == -EPROTO);
	CHECK(msg_parse_param_status((const uint8_t *)"a\0b\0c", 5, &s1, &s2) == -EPROTO);
	CHECK(msg_parse_param_status(NULL, 0, &s1, &s2) == -EPROTO);
	CHECK(msg_parse_backend_key((const uint8_t *)"1234567", 7, &pid, &key) == -EPROTO);
	CHECK(msg_parse_backend_key((const uint8_t *)"123456789", 9, &pid, &key) == -EPROTO);
	printf("ok - ParameterStatus / BackendKeyData: bad shapes rejected\n");

	CHECK(msg_parse_auth((const uint8_t *)"\0\0\0", 3, &code, &data, &dn) == -EPROTO);
	CHECK(msg_parse_auth((const uint8_t *)"\0\0\0\5abc", 7, &code, &data, &dn) == -EPROTO);
	CHECK(msg_parse_auth((const uint8_t *)"\0\0\0\0x", 5, &code, &data, &dn) == -EPROTO);
	CHECK(msg_parse_auth((const uint8_t *)"\0\0\0\3x", 5, &code, &data, &dn) == -EPROTO);
	CHECK(msg_parse_auth((const uint8_t *)"\0\0\0\x0c" "v=x", 7, &code, &data, &dn) == 0 &&
	      code == AUTH_SASL_FINAL && dn == 3);
	printf("ok - Authentication: short, md5 salt size, trailing bytes rejected\n");

	CHECK(msg_parse_sasl_initial((const uint8_t *)"SCRAM", 5, &s1, &data, &dn) == -EPROTO);
	CHECK(msg_parse_sasl_initial((const uint8_t *)"M\0\0\0\0", 5, &s1, &data, &dn) == -EPROTO);
	CHECK(msg_parse_sasl_initial((const uint8_t *)"M\0\0\0\0\2x", 7, &s1, &data, &dn) == -EPROTO);
	CHECK(msg_parse_sasl_initial((const uint8_t *)"M\0\0\0\0\1xy", 8, &s1, &data, &dn) == -EPROTO);
	CHECK(msg_parse_sasl_initial((const uint8_t *)"M\0\xff\xff\xff\xfe", 6, &s1, &data, &dn) == -EPROTO);
	CHECK(msg_parse_sasl_initial((const uint8_t *)"M\0\xff\xff\xff\xffx", 7, &s1, &data, &dn) == -EPROTO);
	CHECK(msg_parse_sasl_initial((const uint8_t *)"M\0\0\0\0\1x", 7, &s1, &data, &dn) == 0 &&
	      dn == 1 && *data == 'x');
	CHECK(msg_parse_password((const uint8_t *)"pw", 2, &s1) == -EPROTO);
	CHECK(msg_parse_password((const uint8_t *)"pw\0x\0", 5, &s1) == -EPROTO);
	CHECK(msg_parse_password(NULL, 0, &s1) == -EPROTO);
	CHECK(msg_parse_password((const uint8_t *)"\0", 1, &s1) == 0 && !*s1);
	printf("ok - SASLInitialResponse / PasswordMessage: bad lengths rejected\n");
}

int main(void)
{
	test_builders();
	test_named();
	test_wbuf();
	test_startup();
	test_parsers();
	return check_summary();
}
