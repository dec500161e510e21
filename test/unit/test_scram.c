/* Unit test of proto/scram.c: RFC 7677's vector, a PostgreSQL 15 secret, both ends together, and malformed input. */
#include "proto/scram.h"
#include "test/unit/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* RFC 7677 section 3. */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_NONCE        "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The same, in PostgreSQL's stored form (computed with Python's hashlib). */
#define RFC_SECRET \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* PostgreSQL 15: SET password_encryption='scram-sha-256'; CREATE ROLE x PASSWORD 'pw'. */
#define PG_SECRET \
	"SCRAM-SHA-256$4096:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s="

static const uint8_t nonce_a[SCRAM_NONCE_RAW] = "0123456789abcdefg";
static const uint8_t nonce_b[SCRAM_NONCE_RAW] = { 0xff, 0xfe, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };

static void test_rfc7677(void)
{
	struct scram_secret sec;
	struct scram_server s;
	struct scram_client c;
	struct scram_keys keys;
	uint8_t client_key[SCRAM_KEY_LEN];
	char out[SCRAM_MSG_MAX], str[256];
	const char *why;
	size_t n;

	/* The stored form from the password matches an independent computation. */
	CHECK(scram_secret_make("pencil", (const uint8_t *)"\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81",
				16, 4096, &sec) == 0);
	CHECK(scram_secret_format(&sec, str, sizeof(str)) == 0 && !strcmp(str, RFC_SECRET));
	printf("ok - RFC 7677: secret from \"pencil\" = %.40s...\n", str);

	/* Server: our nonce cannot hold the RFC's, so the state takes it after server-first. */
	CHECK(scram_server_first(&s, &sec, S(RFC_CLIENT_FIRST), nonce_a, out, &n, &why) == 0);
	CHECK(s.cfb_len == 29 && !memcmp(s.client_first_bare, "n=user,r=rOprNGfwEbeRWgbNEkqO", 29));
	s.nonce_len = strlen(RFC_NONCE);
	memcpy(s.nonce, RFC_NONCE, s.nonce_len);
	s.sf_len = strlen(RFC_SERVER_FIRST);
	memcpy(s.server_first, RFC_SERVER_FIRST, s.sf_len);
	CHECK(scram_server_final(&s, S(RFC_CLIENT_FINAL), out, &n, client_key, &why) == 0);
	CHECK(n == strlen(RFC_SERVER_FINAL) && !memcmp(out, RFC_SERVER_FINAL, n));
	printf("ok - RFC 7677: server accepts the RFC proof and answers %.*s\n", (int)n, out);

	/* Client: the same, the other way round. */
	CHECK(scram_client_first(&c, nonce_a, out, &n) == 0);
	c.nonce_len = strlen("rOprNGfwEbeRWgbNEkqO");
	memcpy(c.nonce, "rOprNGfwEbeRWgbNEkqO", c.nonce_len);
	c.cfb_len = strlen("n=user,r=rOprNGfwEbeRWgbNEkqO");
	memcpy(c.client_first_bare, "n=user,r=rOprNGfwEbeRWgbNEkqO", c.cfb_len);
	CHECK(scram_client_parse_first(&c, S(RFC_SERVER_FIRST), &why) == 0);
	CHECK(c.iterations == 4096 && c.salt_len == 16 && !memcmp(c.salt, sec.salt, 16));
	CHECK(scram_keys_derive("pencil", c.salt, c.salt_len, c.iterations, &keys) == 0);
	CHECK(!memcmp(keys.client_key, client_key, SCRAM_KEY_LEN));
	CHECK(scram_client_final(&c, &keys, out, &n) == 0);
	CHECK(n == strlen(RFC_CLIENT_FINAL) && !memcmp(out, RFC_CLIENT_FINAL, n));
	CHECK(scram_client_verify(&c, S(RFC_SERVER_FINAL), &why) == 0);
	printf("ok - RFC 7677: client builds proof %.*s and accepts the server signature\n",
	       (int)(n - strlen("c=biws,r=" RFC_NONCE ",p=")), out + strlen("c=biws,r=" RFC_NONCE ",p="));
}

/*
 * One full login of our client into our server. Returns what scram_server_final
 * said; on success the client verified the server too.
 */
static int login(const struct scram_secret *sec, const char *password, const struct scram_keys *given,
		 uint8_t client_key[SCRAM_KEY_LEN])
{
	struct scram_server s;
	struct scram_client c;
	struct scram_keys keys;
	char cf[SCRAM_MSG_MAX], sf[SCRAM_MSG_MAX];
	const char *why;
	size_t cn, sn;
	int rc;

	memset(&s, 0xa5, sizeof(s));    /* no reliance on zeroed state */
	memset(&c, 0xa5, sizeof(c));
	CHECK(scram_client_first(&c, nonce_a, cf, &cn) == 0);
	CHECK(cn == 3 + 5 + 24 && !memcmp(cf, "n,,n=,r=", 8));
	CHECK(scram_server_first(&s, sec, (const uint8_t *)cf, cn, nonce_b, sf, &sn, &why) == 0);
	CHECK(scram_client_parse_first(&c, (const uint8_t *)sf, sn, &why) == 0);
	CHECK(c.iterations == sec->iterations && c.salt_len == sec->salt_len);
	if (given)
		keys = *given;
	else
		CHECK(scram_keys_derive(password, c.salt, c.salt_len, c.iterations, &keys) == 0);
	CHECK(scram_client_final(&c, &keys, cf, &cn) == 0);
	rc = scram_server_final(&s, (const uint8_t *)cf, cn, sf, &sn, client_key, &why);
	if (rc == 0) {
		CHECK(scram_client_verify(&c, (const uint8_t *)sf, sn, &why) == 0);
		/* A second client-final on the same exchange is refused. */
		CHECK(scram_server_final(&s, (const uint8_t *)cf, cn, sf, &sn, NULL, &why) == -EPROTO);
	}
	return rc;
}

static void test_together(void)
{
	static const uint8_t salt[16] = "saltsaltsaltsalt";
	struct scram_secret sec, pg;
	struct scram_keys keys;
	uint8_t client_key[SCRAM_KEY_LEN];
	char str[256];

	CHECK(scram_secret_make("pw", salt, sizeof(salt), SCRAM_DEFAULT_ITERATIONS, &sec) == 0);
	CHECK(login(&sec, "pw", NULL, client_key) == 0);
	printf("ok - our client logs into our server\n");
	CHECK(login(&sec, "pW", NULL, client_key) == -EACCES);
	CHECK(login(&sec, "", NULL, client_key) == -EACCES);
	printf("ok - wrong or empty password: -EACCES\n");

	/* The ClientKey recovered from a proof logs into another holder of the secret. */
	CHECK(login(&sec, "pw", NULL, keys.client_key) == 0);
	memcpy(keys.server_key, sec.server_key, SCRAM_KEY_LEN);
	CHECK(login(&sec, NULL, &keys, client_key) == 0);
	printf("ok - recovered ClientKey + stored ServerKey log in without the password\n");

	CHECK(scram_is_secret(PG_SECRET) && !scram_is_secret("md5abc") && !scram_is_secret("SCRAM-SHA-1$x"));
	CHECK(scram_secret_parse(PG_SECRET, &pg) == 0 && pg.iterations == 4096 && pg.salt_len == 16);
	CHECK(scram_secret_format(&pg, str, sizeof(str)) == 0 && !strcmp(str, PG_SECRET));
	CHECK(scram_secret_format(&pg, str, strlen(PG_SECRET)) == -ENOSPC);
	CHECK(scram_secret_make("pw", pg.salt, pg.salt_len, pg.iterations, &sec) == 0);
	CHECK(!memcmp(&sec.stored_key, pg.stored_key, SCRAM_KEY_LEN) &&
	      !memcmp(&sec.server_key, pg.server_key, SCRAM_KEY_LEN));
	CHECK(login(&pg, "pw", NULL, client_key) == 0);
	CHECK(login(&pg, "px", NULL, client_key) == -EACCES);
	printf("ok - PostgreSQL 15 secret: parse/format round trip, 'pw' logs in, 'px' does not\n");
}

static void test_secret_parse(void)
{
	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256",
		"SCRAM-SHA-256$",
		"scram-sha-256$4096:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
		"SCRAM-SHA-256$0:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
		"SCRAM-SHA-256$-1:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
		"SCRAM-SHA-256$99999999999:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
		"SCRAM-SHA-256$:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
		"SCRAM-SHA-256$4096:$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
		"SCRAM-SHA-256$4096:Irs9bm8EPtfV5+QVyAuZ0A=$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
		"SCRAM-SHA-256$4096:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
		"SCRAM-SHA-256$4096:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=x",
		"SCRAM-SHA-256$4096:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=",
		"SCRAM-SHA-256$4096:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQr\nUw1sCqfFS4s=",
		"SCRAM-SHA-256$4096:Irs9bm8EPtfV5+QVyAuZ0A==$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQr*w1sCqfFS4s=",
		/* 66-byte salt: over SCRAM_SALT_MAX */
		"SCRAM-SHA-256$4096:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB$s+rbtGcA1nMM3jN/OjB4FZ2bvPysoPSwn1kE0AQ67u0=:bMEmyiX08Dr8BcE+cU1a3MVOX433EUQrUw1sCqfFS4s=",
	};
	struct scram_secret sec;
	struct scram_keys keys;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (scram_secret_parse(bad[i], &sec) != -EINVAL) {
			fprintf(stderr, "FAIL: accepted secret %s\n", bad[i]);
			exit(1);
		}
	printf("ok - %zu malformed secrets rejected\n", sizeof(bad) / sizeof(bad[0]));

	CHECK(scram_keys_derive("pw", (const uint8_t *)"s", 0, 4096, &keys) == -EINVAL);
	CHECK(scram_keys_derive("pw", (const uint8_t *)"s", 1, 0, &keys) == -EINVAL);
	CHECK(scram_keys_derive("pw", (const uint8_t *)"s", 1, SCRAM_MAX_ITERATIONS + 1, &keys) == -EINVAL);
	CHECK(scram_keys_derive("pw", (const uint8_t *)"s", SCRAM_SALT_MAX + 1, 1, &keys) == -EINVAL);
	printf("ok - key derivation refuses empty salt, zero or huge iterations\n");
}

static void server_rejects(const struct scram_secret *sec, const char *first, const char *final,
			   int want, const char *reason)
{
	struct scram_server s;
	char out[SCRAM_MSG_MAX];
	const char *why = NULL;
	size_t n;
	int rc;

	rc = scram_server_first(&s, sec, (const uint8_t *)first, strlen(first), nonce_b, out, &n, &why);
	if (final && rc == 0)
		rc = scram_server_final(&s, (const uint8_t *)final, strlen(final), out, &n, NULL, &why);
	if (rc != want || !why || !strstr(why, reason)) {
		fprintf(stderr, "FAIL: %s / %s: rc %d why '%s', wanted %d '%s'\n", first,
			final ? final : "-", rc, why ? why : "(null)", want, reason);
		exit(1);
	}
	printf("ok - server rejects: %s\n", why);
}

static void test_server_malformed(void)
{
	struct scram_secret sec;
	struct scram_server s;
	char out[SCRAM_MSG_MAX], first[SCRAM_MSG_MAX + 8];
	const char *why;
	uint8_t proof[SCRAM_KEY_LEN];
	size_t n;

	CHECK(scram_secret_make("pw", (const uint8_t *)"salt", 4, 1, &sec) == 0);
	server_rejects(&sec, "p=tls-server-end-point,,n=,r=abc", NULL, -EPROTO, "channel binding");
	server_rejects(&sec, "n,a=bob,n=,r=abc", NULL, -EPROTO, "authorization identity");
	server_rejects(&sec, "n,,m=ext,n=,r=abc", NULL, -EPROTO, "mandatory");
	server_rejects(&sec, "x,,n=,r=abc", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "n,,", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "n", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "n,,r=abc", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=ab c", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc,", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc,1=x", NULL, -EPROTO, "malformed");
	server_rejects(&sec, "n,n=,r=abc", NULL, -EPROTO, "malformed");
	memset(first, 'x', sizeof(first));
	memcpy(first, "n,,n=,r=", 8);
	first[8 + 104] = 0;
	server_rejects(&sec, first, NULL, -EPROTO, "malformed");   /* nonce too long to extend */
	first[8 + 103] = 0;
	CHECK(scram_server_first(&s, &sec, (const uint8_t *)first, strlen(first), nonce_b, out, &n, &why) == 0);
	CHECK(s.nonce_len == 127);
	first[8 + 103] = first[8 + 104] = 'x';
	CHECK(scram_server_first(&s, &sec, (const uint8_t *)first, SCRAM_MSG_MAX, nonce_b, out, &n, &why) == -EPROTO);
	CHECK(scram_server_first(&s, &sec, (const uint8_t *)"n,,n=\0,r=abc", 12, nonce_b, out, &n, &why) == -EPROTO);
	printf("ok - server rejects: oversized message, longest nonce fits, embedded NUL\n");

	/* The client nonce is "abc"; nonce_b makes the server's part. */
	CHECK(scram_server_first(&s, &sec, S("y,,n=bob,r=abc,x=ext"), nonce_b, out, &n, &why) == 0);
	CHECK(!memcmp(out, "r=abc//4AAQIDBAUGBwgJAAAAAAAA,s=c2FsdA==,i=1", n) && n == 44);
	printf("ok - server-first for flag 'y', a user name and an extension: %.*s\n", (int)n, out);

#define R "r=abc//4AAQIDBAUGBwgJAAAAAAAA"
#define P "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	server_rejects(&sec, "n,,n=,r=abc", "c=eSws," R "," P, -EPROTO, "channel binding data");
	server_rejects(&sec, "y,,n=,r=abc", "c=biws," R "," P, -EPROTO, "channel binding data");
	server_rejects(&sec, "n,,n=,r=abc", "c=biwsx," R "," P, -EPROTO, "channel binding data");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws,r=abc," P, -EPROTO, "nonce does not match");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R "x," P, -EPROTO, "nonce does not match");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R, -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R ",", -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R "," P ",x=y", -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R ",p=AAAA", -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R ",p=AAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAA=", -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc", R ",c=biws," P, -EPROTO, "malformed");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R "," P, -EACCES, "password authentication failed");
	server_rejects(&sec, "n,,n=,r=abc", "c=biws," R ",x=1,y=2," P, -EACCES, "password authentication failed");
	printf("ok - extensions before the proof are accepted (the proof is then checked)\n");

	memset(&s, 0, sizeof(s));
	CHECK(scram_server_final(&s, S("c=biws," R "," P), out, &n, proof, &why) == -EPROTO &&
	      strstr(why, "out of order"));
	CHECK(scram_server_first(&s, &sec, S("n,,n=,r=abc"), nonce_b, out, &n, &why) == 0);
	CHECK(scram_server_first(&s, &sec, S("n,,n=,r="), nonce_b, out, &n, &why) == -EPROTO);
	CHECK(scram_server_final(&s, S("c=biws," R "," P), out, &n, proof, &why) == -EPROTO &&
	      strstr(why, "out of order"));
	printf("ok - server-final out of order, or after a failed server-first: -EPROTO\n");
#undef R
#undef P
}

/* A client that sent "n,,n=,r=<base64 of nonce_a>". */
static void client_at_first(struct scram_client *c)
{
	char out[SCRAM_MSG_MAX];
	size_t n;

	CHECK(scram_client_first(c, nonce_a, out, &n) == 0);
	CHECK(!strcmp(c->nonce, "MDEyMzQ1Njc4OWFiY2RlZmcA"));
}

static void client_rejects(const char *sf, const char *reason)
{
	struct scram_client c;
	const char *why = NULL;

	client_at_first(&c);
	if (scram_client_parse_first(&c, (const uint8_t *)sf, strlen(sf), &why) != -EPROTO ||
	    !why || !strstr(why, reason)) {
		fprintf(stderr, "FAIL: accepted server-first %s (%s)\n", sf, why ? why : "-");
		exit(1);
	}
	printf("ok - client rejects: %s\n", why);
}

static void test_client_malformed(void)
{
	struct scram_client c;
	struct scram_keys keys = { 0 };
	char out[SCRAM_MSG_MAX];
	const char *why;
	size_t n;

#define CN "r=MDEyMzQ1Njc4OWFiY2RlZmcA"
	client_rejects("r=MDEyMzQ1Njc4OWFiY2RlZmcB,s=c2FsdA==,i=4096", "nonce");
	client_rejects(CN ",s=c2FsdA==,i=4096", "nonce");
	client_rejects("r=MDEyMzQ1Njc4OWFiY2RlZm,s=c2FsdA==,i=4096", "nonce");
	client_rejects(CN "x\x7f,s=c2FsdA==,i=4096", "nonce");
	client_rejects(CN "x,s=,i=4096", "salt");
	client_rejects(CN "x,s=c2FsdA=,i=4096", "salt");
	client_rejects(CN "x,s=c2Fsd===,i=4096", "salt");
	client_rejects(CN "x,s=c2F-dA==,i=4096", "salt");
	client_rejects(CN "x,s=QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB,i=4096", "salt");
	client_rejects(CN "x,s=c2FsdA==,i=0", "iteration");
	client_rejects(CN "x,s=c2FsdA==,i=", "iteration");
	client_rejects(CN "x,s=c2FsdA==,i=-1", "iteration");
	client_rejects(CN "x,s=c2FsdA==,i=+4096", "iteration");
	client_rejects(CN "x,s=c2FsdA==,i=4096x", "iteration");
	client_rejects(CN "x,s=c2FsdA==,i=10000001", "iteration");
	client_rejects(CN "x,s=c2FsdA==,i=4294967297", "iteration");
	client_rejects("m=x," CN "x,s=c2FsdA==,i=4096", "mandatory");
	client_rejects(CN "x,i=4096,s=c2FsdA==", "malformed");
	client_rejects(CN "x,s=c2FsdA==", "malformed");
	client_rejects(CN "x,s=c2FsdA==,i=4096,", "malformed");
	client_rejects("", "malformed");

	/* 64 bytes of salt and an extension are fine. */
	client_at_first(&c);
	CHECK(scram_client_parse_first(&c, S(CN "x,s=QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==,i=10000000,z=1"), &why) == 0);
	CHECK(c.salt_len == 64 && c.iterations == SCRAM_MAX_ITERATIONS);
	printf("ok - client accepts a 64-byte salt, SCRAM_MAX_ITERATIONS and an extension\n");

	CHECK(scram_client_final(&c, &keys, out, &n) == 0);
	CHECK(scram_client_verify(&c, S("e=invalid-proof"), &why) == -EPROTO && strstr(why, "rejected"));
	CHECK(scram_client_verify(&c, S("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), &why) == -EPROTO &&
	      strstr(why, "out of order"));
	client_at_first(&c);
	CHECK(scram_client_parse_first(&c, S(CN "x,s=c2FsdA==,i=1"), &why) == 0);
	CHECK(scram_client_final(&c, &keys, out, &n) == 0);
	CHECK(scram_client_verify(&c, S("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), &why) == -EACCES);
	printf("ok - client: server error -EPROTO, wrong signature -EACCES, one verify per exchange\n");

	static const char *const bad_final[] = {
		"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,x=1",
		"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
		"v=",
		"x=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"",
	};
	for (size_t i = 0; i < sizeof(bad_final) / sizeof(bad_final[0]); i++) {
		client_at_first(&c);
		CHECK(scram_client_parse_first(&c, S(CN "x,s=c2FsdA==,i=1"), &why) == 0);
		CHECK(scram_client_final(&c, &keys, out, &n) == 0);
		CHECK(scram_client_verify(&c, (const uint8_t *)bad_final[i], strlen(bad_final[i]), &why) == -EPROTO);
	}
	printf("ok - client: %zu malformed server-final messages -EPROTO\n",
	       sizeof(bad_final) / sizeof(bad_final[0]));

	memset(&c, 0, sizeof(c));
	CHECK(scram_client_parse_first(&c, S(CN "x,s=c2FsdA==,i=1"), &why) == -EPROTO);
	CHECK(scram_client_final(&c, &keys, out, &n) == -EPROTO);
	printf("ok - client steps out of order: -EPROTO\n");
#undef CN
}

int main(void)
{
	test_rfc7677();
	test_together();
	test_secret_parse();
	test_server_malformed();
	test_client_malformed();
	return check_summary();
}
