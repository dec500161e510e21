/* Unit test of lib/auth: each method's exchange, driven by the real client-side code, right and wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test/unit/check.h"
#include "lib/auth.h"
#include "lib/cfg.h"

/* Splits one message written by a builder into type and body. */
static const uint8_t *body_of(const struct wbuf *w, uint8_t *type, size_t *n)
{
	*type = w->p[0];
	*n = ((size_t)w->p[1] << 24 | (size_t)w->p[2] << 16 | (size_t)w->p[3] << 8 | w->p[4]) - 4;
	return w->p + 5;
}

static uint32_t auth_code(const struct wbuf *w, const uint8_t **data, size_t *dn)
{
	uint8_t type;
	size_t n;
	const uint8_t *b = body_of(w, &type, &n);
	uint32_t code;
	if (type != 'R' || msg_parse_auth(b, n, &code, data, dn) < 0)
		return 999;
	return code;
}

/* The password a client types, run through the exchange for method. */
static enum auth_result login(enum cfg_auth method, const struct auth_user *u, const char *user,
			      const char *password)
{
	struct auth_state a = { 0 };
	uint8_t out[1024], msg[1024];
	struct wbuf w = wbuf_on(out, sizeof out);
	enum auth_result r = auth_begin(&a, method, u, user, &w);
	if (r != AUTH_CONTINUE)
		return r;
	const uint8_t *data;
	size_t dn;
	const char *why;
	uint32_t code = auth_code(&w, &data, &dn);
	struct wbuf m = wbuf_on(msg, sizeof msg);
	if (code == AUTH_CLEARTEXT) {
		msg_password(&m, password);
	} else if (code == AUTH_MD5) {
		char secret[MD5_PASSWD_LEN + 1], salted[MD5_PASSWD_LEN + 1];
		md5_secret(user, password, secret);
		md5_salted(secret, data, salted);
		msg_password(&m, salted);
	} else if (code == AUTH_SASL) {
		struct scram_client sc = { 0 };
		uint8_t nonce[SCRAM_NONCE_RAW] = { 1, 2, 3 };
		char first[SCRAM_MSG_MAX];
		size_t flen;
		CHECK(scram_client_first(&sc, nonce, first, &flen) == 0);
		msg_sasl_initial(&m, "SCRAM-SHA-256", first, flen);
		uint8_t type;
		size_t n;
		const uint8_t *b = body_of(&m, &type, &n);
		w = wbuf_on(out, sizeof out);
		r = auth_step(&a, b, n, &w, &why);
		if (r != AUTH_CONTINUE)
			goto done;
		code = auth_code(&w, &data, &dn);
		CHECK(code == AUTH_SASL_CONTINUE);
		CHECK(scram_client_parse_first(&sc, data, dn, &why) == 0);
		struct scram_keys keys;
		CHECK(scram_keys_derive(password, sc.salt, sc.salt_len, sc.iterations, &keys) == 0);
		char fin[SCRAM_MSG_MAX];
		size_t fl;
		CHECK(scram_client_final(&sc, &keys, fin, &fl) == 0);
		m = wbuf_on(msg, sizeof msg);
		msg_sasl_response(&m, fin, fl);
		b = body_of(&m, &type, &n);
		w = wbuf_on(out, sizeof out);
		r = auth_step(&a, b, n, &w, &why);
		if (r == AUTH_PASS) {
			/* The proxy's SASL final must carry a server signature the client accepts. */
			code = auth_code(&w, &data, &dn);
			CHECK(code == AUTH_SASL_FINAL);
			CHECK(scram_client_verify(&sc, data, dn, &why) == 0);
			CHECK(a.have_client_key);
			CHECK(memcmp(a.client_key, keys.client_key, SCRAM_KEY_LEN) == 0);
		}
		goto done;
	} else {
		CHECK(!"unexpected auth request");
		return AUTH_FAIL;
	}
	uint8_t type;
	size_t n;
	const uint8_t *b = body_of(&m, &type, &n);
	w = wbuf_on(out, sizeof out);
	r = auth_step(&a, b, n, &w, &why);
done:
	auth_state_clear(&a);
	return r;
}

int main(void)
{
	struct cfg_user users[] = {
		{ .name = "plain", .password = "secret" },
		{ .name = "md5only", .password = NULL },
		{ .name = "scramonly", .password = NULL },
	};
	char md5[MD5_PASSWD_LEN + 1];
	md5_secret("md5only", "m5pass", md5);
	users[1].password = md5;
	struct scram_secret sec;
	uint8_t salt[16] = "0123456789abcdef";
	char scram[256];
	CHECK(scram_secret_make("scpass", salt, sizeof salt, 4096, &sec) == 0);
	CHECK(scram_secret_format(&sec, scram, sizeof scram) == 0);
	users[2].password = scram;

	struct cfg cfg = { .users = users, .nusers = 3 };
	struct auth_users *au = NULL;
	char err[128];
	CHECK(auth_prepare(&cfg, &au, err, sizeof err) == 0);
	const struct auth_user *plain = auth_find(au, "plain");
	const struct auth_user *m5 = auth_find(au, "md5only");
	const struct auth_user *sc = auth_find(au, "scramonly");
	CHECK(plain && m5 && sc && !auth_find(au, "nobody"));
	CHECK(plain->has_md5 && plain->has_scram && plain->plain);
	CHECK(m5->has_md5 && !m5->has_scram && !m5->plain);
	CHECK(sc->has_scram && !sc->has_md5);

	static const enum cfg_auth methods[] = { CFG_AUTH_PASSWORD, CFG_AUTH_MD5, CFG_AUTH_SCRAM };
	for (size_t i = 0; i < 3; i++) {
		enum cfg_auth meth = methods[i];
		printf("method %s\n", cfg_auth_name(meth));
		CHECK(login(meth, plain, "plain", "secret") == AUTH_PASS);
		CHECK(login(meth, plain, "plain", "wrong") == AUTH_FAIL);
		CHECK(login(meth, NULL, "nobody", "secret") == AUTH_FAIL);
		CHECK(login(meth, sc, "scramonly", "scpass") == AUTH_PASS);
		CHECK(login(meth, sc, "scramonly", "nope") == AUTH_FAIL);
		/* An md5-only user cannot do SCRAM, as in PostgreSQL. */
		CHECK(login(meth, m5, "md5only", "m5pass") == (meth == CFG_AUTH_SCRAM ? AUTH_FAIL : AUTH_PASS));
		CHECK(login(meth, m5, "md5only", "bad") == AUTH_FAIL);
	}
	printf("method trust\n");
	CHECK(login(CFG_AUTH_TRUST, plain, "plain", "") == AUTH_PASS);
	CHECK(login(CFG_AUTH_TRUST, NULL, "nobody", "") == AUTH_FAIL);

	/* A malformed secret in the config is refused with the user's name. */
	struct cfg_user bad[] = { { .name = "broken", .password = "SCRAM-SHA-256$x" } };
	struct cfg badcfg = { .users = bad, .nusers = 1 };
	struct auth_users *none = NULL;
	CHECK(auth_prepare(&badcfg, &none, err, sizeof err) < 0 && strstr(err, "broken"));

	auth_free(au);
	return check_summary();
}
