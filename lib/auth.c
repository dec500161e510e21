/* Client authentication against the configured users: secrets prepared once, exchanges per login. */
#include "lib/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void auth_random(void *p, size_t n)
{
	uint8_t *b = p;
	while (n) {
		ssize_t got = getrandom(b, n, 0);
		if (got < 0)
			continue;
		b += got;
		n -= (size_t)got;
	}
}

int auth_prepare(const struct cfg *cfg, struct auth_users **out, char *err, size_t errlen)
{
	struct auth_users *a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	a->u = calloc(cfg->nusers ? cfg->nusers : 1, sizeof *a->u);
	if (!a->u) {
		free(a);
		return -ENOMEM;
	}
	a->n = cfg->nusers;
	for (size_t i = 0; i < cfg->nusers; i++) {
		const struct cfg_user *cu = &cfg->users[i];
		struct auth_user *u = &a->u[i];
		u->name = cu->name;
		if (scram_is_secret(cu->password)) {
			if (scram_secret_parse(cu->password, &u->scram) < 0) {
				snprintf(err, errlen, "user '%s': malformed SCRAM-SHA-256 secret", cu->name);
				auth_free(a);
				return -EINVAL;
			}
			u->has_scram = true;
		} else if (md5_is_secret(cu->password)) {
			memcpy(u->md5, cu->password, MD5_PASSWD_LEN + 1);
			u->has_md5 = true;
		} else {
			u->plain = cu->password;
			md5_secret(cu->name, cu->password, u->md5);
			u->has_md5 = true;
			uint8_t salt[16];
			auth_random(salt, sizeof salt);
			if (scram_secret_make(cu->password, salt, sizeof salt,
					      SCRAM_DEFAULT_ITERATIONS, &u->scram) < 0) {
				snprintf(err, errlen, "user '%s': cannot derive a SCRAM secret", cu->name);
				auth_free(a);
				return -EINVAL;
			}
			u->has_scram = true;
		}
	}
	*out = a;
	return 0;
}

void auth_free(struct auth_users *a)
{
	if (!a)
		return;
	free(a->u);
	free(a);
}

const struct auth_user *auth_find(const struct auth_users *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->u[i].name, name) == 0)
			return &a->u[i];
	return NULL;
}

void auth_state_clear(struct auth_state *a)
{
	free(a->scram);
	a->scram = NULL;
}

static enum auth_result auth_begin_scram(struct auth_state *a, struct wbuf *out)
{
	a->method = CFG_AUTH_SCRAM;
	a->scram = calloc(1, sizeof *a->scram);
	if (!a->scram)
		return AUTH_FAIL;
	static const char mechs[] = "SCRAM-SHA-256\0";
	msg_auth(out, AUTH_SASL, mechs, sizeof mechs);
	return AUTH_CONTINUE;
}

enum auth_result auth_begin(struct auth_state *a, enum cfg_auth method,
			    const struct auth_user *u, const char *username, struct wbuf *out)
{
	a->method = method;
	a->user = u;
	a->username = username;
	switch (method) {
	case CFG_AUTH_TRUST:
		return u ? AUTH_PASS : AUTH_FAIL;
	case CFG_AUTH_PASSWORD:
		msg_auth(out, AUTH_CLEARTEXT, NULL, 0);
		return AUTH_CONTINUE;
	case CFG_AUTH_MD5:
		/* As PostgreSQL does: a user whose only secret is SCRAM is asked for SCRAM. */
		if (u && !u->has_md5 && u->has_scram)
			return auth_begin_scram(a, out);
		auth_random(a->salt, sizeof a->salt);
		msg_auth(out, AUTH_MD5, a->salt, sizeof a->salt);
		return AUTH_CONTINUE;
	case CFG_AUTH_SCRAM:
		return auth_begin_scram(a, out);
	}
	return AUTH_FAIL;
}

/* Equal strings, in time that depends on the lengths only: no timing hint about the secret. */
static bool auth_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;
	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

static bool auth_check_plain(const struct auth_user *u, const char *pw)
{
	if (u->plain)
		return auth_equal(u->plain, pw);
	if (u->has_md5) {
		char m[MD5_PASSWD_LEN + 1];
		md5_secret(u->name, pw, m);
		return auth_equal(m, u->md5);
	}
	struct scram_secret s;
	if (scram_secret_make(pw, u->scram.salt, u->scram.salt_len, u->scram.iterations, &s) < 0)
		return false;
	return memcmp(s.stored_key, u->scram.stored_key, SCRAM_KEY_LEN) == 0 &&
	       memcmp(s.server_key, u->scram.server_key, SCRAM_KEY_LEN) == 0;
}

static enum auth_result auth_step_scram(struct auth_state *a, const uint8_t *body, size_t n,
					struct wbuf *out, const char **why)
{
	char reply[SCRAM_MSG_MAX];
	size_t rlen = 0;
	if (!a->scram_started) {
		const char *mech;
		const uint8_t *data;
		size_t dn;
		if (msg_parse_sasl_initial(body, n, &mech, &data, &dn) < 0) {
			*why = "malformed SASLInitialResponse";
			return AUTH_FAIL;
		}
		if (strcmp(mech, "SCRAM-SHA-256") != 0) {
			*why = "unsupported SASL mechanism";
			return AUTH_FAIL;
		}
		/* An unknown user gets a made-up secret, so the exchange fails only at the proof. */
		struct scram_secret mock;
		const struct scram_secret *sec = &mock;
		if (a->user && a->user->has_scram) {
			sec = &a->user->scram;
		} else {
			memset(&mock, 0, sizeof mock);
			mock.iterations = SCRAM_DEFAULT_ITERATIONS;
			mock.salt_len = 16;
			auth_random(mock.salt, mock.salt_len);
			auth_random(mock.stored_key, sizeof mock.stored_key);
			auth_random(mock.server_key, sizeof mock.server_key);
		}
		uint8_t nonce[SCRAM_NONCE_RAW];
		auth_random(nonce, sizeof nonce);
		if (scram_server_first(a->scram, sec, data, dn, nonce, reply, &rlen, why) < 0)
			return AUTH_FAIL;
		msg_auth(out, AUTH_SASL_CONTINUE, reply, rlen);
		a->scram_started = true;
		return AUTH_CONTINUE;
	}
	int ret = scram_server_final(a->scram, body, n, reply, &rlen, a->client_key, why);
	if (ret < 0 || !a->user || !a->user->has_scram) {
		if (ret == -EACCES || ret == 0)
			*why = NULL;
		return AUTH_FAIL;
	}
	a->have_client_key = true;
	msg_auth(out, AUTH_SASL_FINAL, reply, rlen);
	return AUTH_PASS;
}

enum auth_result auth_step(struct auth_state *a, const uint8_t *body, size_t n,
			   struct wbuf *out, const char **why)
{
	*why = NULL;
	if (a->method == CFG_AUTH_SCRAM)
		return auth_step_scram(a, body, n, out, why);
	const char *pw;
	if (msg_parse_password(body, n, &pw) < 0) {
		*why = "malformed password message";
		return AUTH_FAIL;
	}
	if (!a->user)
		return AUTH_FAIL;
	if (a->method == CFG_AUTH_PASSWORD)
		return auth_check_plain(a->user, pw) ? AUTH_PASS : AUTH_FAIL;
	char expect[MD5_PASSWD_LEN + 1];
	md5_salted(a->user->md5, a->salt, expect);
	return auth_equal(expect, pw) ? AUTH_PASS : AUTH_FAIL;
}
