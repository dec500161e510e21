/* Client authentication: per-user secrets derived once, and the trust/password/md5/SCRAM exchanges. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cfg.h"
#include "proto/md5.h"
#include "proto/msg.h"
#include "proto/scram.h"

struct auth_user {
	const char *name;
	const char *plain;                 /* the password in clear, or NULL */
	bool has_md5;
	char md5[MD5_PASSWD_LEN + 1];      /* given, or derived from plain */
	bool has_scram;
	struct scram_secret scram;         /* given, or derived once from plain */
};

struct auth_users {
	size_t n;
	struct auth_user *u;
};

/*
 * Derives every user's secrets (one PBKDF2 per plain password, here and never
 * per login). 0, or -EINVAL with err describing the bad secret. Main thread.
 */
int auth_prepare(const struct cfg *cfg, struct auth_users **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void auth_free(struct auth_users *a);
const struct auth_user *auth_find(const struct auth_users *a, const char *name);

enum auth_result { AUTH_CONTINUE, AUTH_PASS, AUTH_FAIL };

/* One client's exchange in progress. */
struct auth_state {
	enum cfg_auth method;          /* what is actually run (md5 falls back to SCRAM) */
	const struct auth_user *user;  /* NULL: unknown user, which must fail alike */
	const char *username;
	uint8_t salt[4];
	struct scram_server *scram;
	bool scram_started;
	bool have_client_key;
	uint8_t client_key[SCRAM_KEY_LEN];  /* recovered from a SCRAM proof */
};

/*
 * Starts the exchange for method: writes the first request into out, or
 * returns AUTH_PASS for trust. Worker thread; a stays owned by the caller.
 */
enum auth_result auth_begin(struct auth_state *a, enum cfg_auth method,
			    const struct auth_user *u, const char *username, struct wbuf *out);
/* Feeds one 'p' message body; out gets the next request or the SASL final. */
enum auth_result auth_step(struct auth_state *a, const uint8_t *body, size_t n,
			   struct wbuf *out, const char **why);
void auth_state_clear(struct auth_state *a);
