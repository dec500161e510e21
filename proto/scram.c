/* SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, both ends, on wolfCrypt. */
#include "proto/scram.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define SECRET_PREFIX "SCRAM-SHA-256$"
#define B64_LEN(n)    (((n) + 2) / 3 * 4)
#define NONCE_B64     B64_LEN(SCRAM_NONCE_RAW)
#define NONCE_MAX     sizeof(((struct scram_client *)0)->nonce)
/* c= without channel binding is base64 of the gs2 header: "n,," or "y,,". */
#define CBIND_N       "biws"
#define CBIND_Y       "eSws"

/* Every message we build has a bounded shape; these keep SCRAM_MSG_MAX honest. */
_Static_assert(sizeof(((struct scram_server *)0)->nonce) == NONCE_MAX, "one nonce size");
_Static_assert(2 + NONCE_MAX + 3 + B64_LEN(SCRAM_SALT_MAX) + 3 + 10 < SCRAM_MSG_MAX, "server-first fits");
_Static_assert(9 + NONCE_MAX + 3 + B64_LEN(SCRAM_KEY_LEN) < SCRAM_MSG_MAX, "client-final fits");

struct part {
	const void *p;
	size_t      n;
};

/* out = HMAC-SHA-256(key, parts...). False only if wolfCrypt fails. */
static bool hmac(const uint8_t key[SCRAM_KEY_LEN], const struct part *parts, int nparts,
		 uint8_t out[SCRAM_KEY_LEN])
{
	Hmac h;
	int rc = wc_HmacInit(&h, NULL, INVALID_DEVID);

	if (!rc)
		rc = wc_HmacSetKey(&h, WC_SHA256, key, SCRAM_KEY_LEN);
	for (int i = 0; !rc && i < nparts; i++)
		rc = wc_HmacUpdate(&h, parts[i].p, (word32)parts[i].n);
	if (!rc)
		rc = wc_HmacFinal(&h, out);
	wc_HmacFree(&h);
	return rc == 0;
}

static bool hmac_str(const uint8_t key[SCRAM_KEY_LEN], const char *s, uint8_t out[SCRAM_KEY_LEN])
{
	struct part p = { s, strlen(s) };

	return hmac(key, &p, 1, out);
}

/* HMAC over AuthMessage = client-first-bare "," server-first "," client-final-without-proof. */
static bool hmac_auth(const uint8_t key[SCRAM_KEY_LEN], const char *cfb, size_t cfb_len,
		      const char *sf, size_t sf_len, const char *cf, size_t cf_len,
		      uint8_t out[SCRAM_KEY_LEN])
{
	struct part p[] = { { cfb, cfb_len }, { ",", 1 }, { sf, sf_len }, { ",", 1 }, { cf, cf_len } };

	return hmac(key, p, 5, out);
}

static bool sha256(const uint8_t in[SCRAM_KEY_LEN], uint8_t out[SCRAM_KEY_LEN])
{
	return wc_Sha256Hash(in, SCRAM_KEY_LEN, out) == 0;
}

/* Takes the same time wherever the first difference is. */
static bool ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

/* Base64 of in[0..n) plus a NUL into out[0..cap); its length, or 0 if it does not fit. */
static size_t b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	word32 len = (word32)cap;

	if (Base64_Encode_NoNl(in, (word32)n, (byte *)out, &len) || len >= cap)
		return 0;
	out[len] = 0;
	return len;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * Decodes padded base64 in[0..n) into out[0..cap), cap <= SCRAM_SALT_MAX.
 * Returns the length, or -1. wolfCrypt lets spaces and line breaks through
 * and drops an unpadded tail, so the alphabet and padding are checked first.
 */
static int b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	uint8_t tmp[SCRAM_SALT_MAX + 8];
	word32 len = sizeof(tmp);
	size_t pad;

	if (n == 0 || n % 4 || n / 4 * 3 > cap + 2)
		return -1;
	pad = in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(in[i]))
			return -1;
	if (n / 4 * 3 - pad > cap || Base64_Decode((const byte *)in, (word32)n, tmp, &len) ||
	    len != n / 4 * 3 - pad)
		return -1;
	memcpy(out, tmp, len);
	return (int)len;
}

/* Decimal 1..SCRAM_MAX_ITERATIONS, digits only. */
static bool parse_iterations(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v == 0 || v > SCRAM_MAX_ITERATIONS)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* A nonce is printable ASCII without ','; the comma never reaches here. */
static bool nonce_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return n > 0;
}

/* SCRAM messages are text we keep copies of: bounded, no NUL. */
static bool text_ok(const uint8_t *m, size_t n)
{
	return n > 0 && n < SCRAM_MSG_MAX && !memchr(m, 0, n);
}

/* A read cursor over "a=v,b=w,..." */
struct cur {
	const char *p, *end;
};

/* Reads "<name>=<value>" up to the next ',' or the end; name 0 takes any letter. */
static bool attr(struct cur *c, char name, const char **v, size_t *vn)
{
	const char *s = c->p, *e;

	if (c->end - s < 2 || s[1] != '=')
		return false;
	if (name ? s[0] != name : !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	s += 2;
	e = memchr(s, ',', (size_t)(c->end - s));
	if (!e)
		e = c->end;
	*v = s;
	*vn = (size_t)(e - s);
	c->p = e;
	return true;
}

static bool comma(struct cur *c)
{
	if (c->p == c->end || *c->p != ',')
		return false;
	c->p++;
	return true;
}

/* Optional extensions up to the end: ",x=...". */
static bool extensions(struct cur *c)
{
	const char *v;
	size_t vn;

	while (c->p != c->end)
		if (!comma(c) || !attr(c, 0, &v, &vn))
			return false;
	return true;
}

bool scram_is_secret(const char *s)
{
	return !strncmp(s, SECRET_PREFIX, strlen(SECRET_PREFIX));
}

int scram_secret_parse(const char *s, struct scram_secret *out)
{
	const char *iter, *salt, *stored, *server;
	int k;

	if (!scram_is_secret(s))
		return -EINVAL;
	iter = s + strlen(SECRET_PREFIX);
	salt = strchr(iter, ':');
	stored = salt ? strchr(salt, '$') : NULL;
	server = stored ? strchr(stored, ':') : NULL;
	if (!server || !parse_iterations(iter, (size_t)(salt - iter), &out->iterations))
		return -EINVAL;
	k = b64_decode(salt + 1, (size_t)(stored - salt - 1), out->salt, SCRAM_SALT_MAX);
	if (k <= 0 ||
	    b64_decode(stored + 1, (size_t)(server - stored - 1), out->stored_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN ||
	    b64_decode(server + 1, strlen(server + 1), out->server_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN)
		return -EINVAL;
	out->salt_len = (size_t)k;
	return 0;
}

int scram_secret_format(const struct scram_secret *sec, char *out, size_t cap)
{
	char salt[B64_LEN(SCRAM_SALT_MAX) + 1], stored[B64_LEN(SCRAM_KEY_LEN) + 1];
	char server[B64_LEN(SCRAM_KEY_LEN) + 1];
	int k;

	if (!b64_encode(sec->salt, sec->salt_len, salt, sizeof(salt)) ||
	    !b64_encode(sec->stored_key, SCRAM_KEY_LEN, stored, sizeof(stored)) ||
	    !b64_encode(sec->server_key, SCRAM_KEY_LEN, server, sizeof(server)))
		return -ENOSPC;
	k = snprintf(out, cap, SECRET_PREFIX "%u:%s$%s:%s", sec->iterations, salt, stored, server);
	return k >= 0 && (size_t)k < cap ? 0 : -ENOSPC;
}

int scram_keys_derive(const char *password, const uint8_t *salt, size_t salt_len,
		      uint32_t iterations, struct scram_keys *out)
{
	uint8_t salted[SCRAM_KEY_LEN];
	size_t plen = strlen(password);
	bool ok;

	if (!salt_len || salt_len > SCRAM_SALT_MAX || !iterations ||
	    iterations > SCRAM_MAX_ITERATIONS || plen > INT_MAX)
		return -EINVAL;
	/*
	 * No SASLprep. PostgreSQL leaves ASCII passwords alone, so those match;
	 * a non-ASCII one that NFKC would change does not match its secrets.
	 */
	ok = !wc_PBKDF2(salted, (const byte *)password, (int)plen, salt, (int)salt_len,
			(int)iterations, SCRAM_KEY_LEN, WC_SHA256) &&
	     hmac_str(salted, "Client Key", out->client_key) &&
	     hmac_str(salted, "Server Key", out->server_key);
	explicit_bzero(salted, sizeof(salted));
	return ok ? 0 : -EINVAL;
}

int scram_secret_make(const char *password, const uint8_t *salt, size_t salt_len,
		      uint32_t iterations, struct scram_secret *out)
{
	struct scram_keys keys;
	int rc = scram_keys_derive(password, salt, salt_len, iterations, &keys);

	if (!rc && !sha256(keys.client_key, out->stored_key))
		rc = -EINVAL;
	if (!rc) {
		memcpy(out->server_key, keys.server_key, SCRAM_KEY_LEN);
		memcpy(out->salt, salt, salt_len);
		out->salt_len = salt_len;
		out->iterations = iterations;
	}
	explicit_bzero(&keys, sizeof(keys));
	return rc;
}

int scram_server_first(struct scram_server *s, const struct scram_secret *sec,
		       const uint8_t *client_first, size_t n,
		       const uint8_t nonce_raw[SCRAM_NONCE_RAW],
		       char *out, size_t *outlen, const char **why)
{
	const char *msg = (const char *)client_first, *v;
	char salt[B64_LEN(SCRAM_SALT_MAX) + 1];
	struct cur c;
	size_t vn;
	int k;

	s->step = SCRAM_SERVER_DONE;
	*why = "malformed SCRAM client-first-message";
	if (!text_ok(client_first, n))
		return -EPROTO;
	if (msg[0] == 'p') {
		*why = "SCRAM channel binding is not supported";
		return -EPROTO;
	}
	if (n < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
		return -EPROTO;
	if (msg[2] == 'a') {
		*why = "SCRAM authorization identity is not supported";
		return -EPROTO;
	}
	if (msg[2] != ',')
		return -EPROTO;
	c = (struct cur){ msg + 3, msg + n };
	if (c.p != c.end && *c.p == 'm') {
		*why = "mandatory SCRAM extensions are not supported";
		return -EPROTO;
	}
	/* PostgreSQL takes the user from the startup packet: n= is read and ignored. */
	if (!attr(&c, 'n', &v, &vn) || !comma(&c) || !attr(&c, 'r', &v, &vn) ||
	    !nonce_ok(v, vn) || vn >= NONCE_MAX - NONCE_B64 || !extensions(&c))
		return -EPROTO;

	memcpy(s->nonce, v, vn);
	s->nonce_len = vn + b64_encode(nonce_raw, SCRAM_NONCE_RAW, s->nonce + vn,
				       NONCE_MAX - vn);
	b64_encode(sec->salt, sec->salt_len, salt, sizeof(salt));
	k = snprintf(out, SCRAM_MSG_MAX, "r=%.*s,s=%s,i=%u", (int)s->nonce_len, s->nonce,
		     salt, sec->iterations);
	*outlen = (size_t)k;
	memcpy(s->server_first, out, *outlen);
	s->sf_len = *outlen;
	s->cfb_len = n - 3;
	memcpy(s->client_first_bare, msg + 3, s->cfb_len);
	s->sec = *sec;
	s->gs2 = msg[0];
	s->step = SCRAM_SERVER_FIRST_SENT;
	return 0;
}

int scram_server_final(struct scram_server *s, const uint8_t *client_final, size_t n,
		       char *out, size_t *outlen, uint8_t client_key[SCRAM_KEY_LEN],
		       const char **why)
{
	const char *msg = (const char *)client_final, *v, *ext;
	uint8_t proof[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN];
	uint8_t stored[SCRAM_KEY_LEN];
	struct cur c = { msg, msg + n };
	size_t vn, extn, without_proof;
	bool ok;

	*why = "malformed SCRAM client-final-message";
	if (s->step != SCRAM_SERVER_FIRST_SENT) {
		*why = "SCRAM client-final-message out of order";
		return -EPROTO;
	}
	/* One answer per exchange: a second try must start over. */
	s->step = SCRAM_SERVER_DONE;
	if (!text_ok(client_final, n) || !attr(&c, 'c', &v, &vn))
		return -EPROTO;
	if (vn != 4 || memcmp(v, s->gs2 == 'y' ? CBIND_Y : CBIND_N, 4)) {
		*why = "SCRAM channel binding data does not match";
		return -EPROTO;
	}
	if (!comma(&c) || !attr(&c, 'r', &v, &vn))
		return -EPROTO;
	if (vn != s->nonce_len || memcmp(v, s->nonce, vn)) {
		*why = "SCRAM nonce does not match";
		return -EPROTO;
	}
	/* Extensions may sit between r= and p=; the proof comes last. */
	for (;;) {
		without_proof = (size_t)(c.p - msg);
		if (!comma(&c))
			return -EPROTO;
		if (attr(&c, 'p', &v, &vn))
			break;
		if (!attr(&c, 0, &ext, &extn))
			return -EPROTO;
	}
	if (c.p != c.end || b64_decode(v, vn, proof, sizeof(proof)) != SCRAM_KEY_LEN)
		return -EPROTO;

	/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); it must hash to StoredKey. */
	ok = hmac_auth(s->sec.stored_key, s->client_first_bare, s->cfb_len, s->server_first,
		       s->sf_len, msg, without_proof, sig);
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	if (!ok || !sha256(key, stored) || !ct_equal(stored, s->sec.stored_key, SCRAM_KEY_LEN)) {
		explicit_bzero(key, sizeof(key));
		*why = "password authentication failed";
		return -EACCES;
	}
	if (client_key)
		memcpy(client_key, key, SCRAM_KEY_LEN);
	explicit_bzero(key, sizeof(key));
	if (!hmac_auth(s->sec.server_key, s->client_first_bare, s->cfb_len, s->server_first,
		       s->sf_len, msg, without_proof, sig)) {
		*why = "SCRAM computation failed";
		return -EPROTO;
	}
	memcpy(out, "v=", 2);
	*outlen = 2 + b64_encode(sig, SCRAM_KEY_LEN, out + 2, SCRAM_MSG_MAX - 2);
	return 0;
}

int scram_client_first(struct scram_client *c, const uint8_t nonce_raw[SCRAM_NONCE_RAW],
		       char *out, size_t *outlen)
{
	c->nonce_len = b64_encode(nonce_raw, SCRAM_NONCE_RAW, c->nonce, sizeof(c->nonce));
	c->cfb_len = (size_t)snprintf(c->client_first_bare, sizeof(c->client_first_bare),
				      "n=,r=%s", c->nonce);
	*outlen = (size_t)snprintf(out, SCRAM_MSG_MAX, "n,,%s", c->client_first_bare);
	c->step = SCRAM_CLIENT_FIRST_SENT;
	return 0;
}

int scram_client_parse_first(struct scram_client *c, const uint8_t *server_first, size_t n,
			     const char **why)
{
	const char *msg = (const char *)server_first, *nonce, *v;
	struct cur cur = { msg, msg + n };
	size_t nonce_len, vn;
	int k;

	*why = "malformed SCRAM server-first-message";
	if (c->step != SCRAM_CLIENT_FIRST_SENT) {
		*why = "SCRAM server-first-message out of order";
		return -EPROTO;
	}
	c->step = SCRAM_CLIENT_DONE;
	if (!text_ok(server_first, n))
		return -EPROTO;
	if (*msg == 'm') {
		*why = "mandatory SCRAM extensions are not supported";
		return -EPROTO;
	}
	if (!attr(&cur, 'r', &nonce, &nonce_len))
		return -EPROTO;
	/* The server extends our nonce; it may not drop or change any of it. */
	if (nonce_len <= c->nonce_len || nonce_len >= NONCE_MAX ||
	    memcmp(nonce, c->nonce, c->nonce_len) || !nonce_ok(nonce, nonce_len)) {
		*why = "SCRAM server nonce is invalid";
		return -EPROTO;
	}
	if (!comma(&cur) || !attr(&cur, 's', &v, &vn))
		return -EPROTO;
	k = b64_decode(v, vn, c->salt, SCRAM_SALT_MAX);
	if (k <= 0) {
		*why = "SCRAM salt is invalid";
		return -EPROTO;
	}
	c->salt_len = (size_t)k;
	if (!comma(&cur) || !attr(&cur, 'i', &v, &vn))
		return -EPROTO;
	if (!parse_iterations(v, vn, &c->iterations)) {
		*why = "SCRAM iteration count is invalid";
		return -EPROTO;
	}
	if (!extensions(&cur))
		return -EPROTO;
	memcpy(c->nonce, nonce, nonce_len);
	c->nonce_len = nonce_len;
	memcpy(c->server_first, msg, n);
	c->sf_len = n;
	c->step = SCRAM_CLIENT_FIRST_READ;
	return 0;
}

int scram_client_final(struct scram_client *c, const struct scram_keys *keys,
		       char *out, size_t *outlen)
{
	uint8_t stored[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
	size_t k;

	if (c->step != SCRAM_CLIENT_FIRST_READ)
		return -EPROTO;
	c->step = SCRAM_CLIENT_DONE;
	k = (size_t)snprintf(out, SCRAM_MSG_MAX, "c=" CBIND_N ",r=%.*s", (int)c->nonce_len,
			     c->nonce);
	if (!sha256(keys->client_key, stored) ||
	    !hmac_auth(stored, c->client_first_bare, c->cfb_len, c->server_first, c->sf_len,
		       out, k, sig) ||
	    !hmac_auth(keys->server_key, c->client_first_bare, c->cfb_len, c->server_first,
		       c->sf_len, out, k, c->server_signature))
		return -EPROTO;
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = keys->client_key[i] ^ sig[i];
	memcpy(out + k, ",p=", 3);
	k += 3;
	*outlen = k + b64_encode(proof, SCRAM_KEY_LEN, out + k, SCRAM_MSG_MAX - k);
	c->step = SCRAM_CLIENT_FINAL_SENT;
	return 0;
}

int scram_client_verify(struct scram_client *c, const uint8_t *server_final, size_t n,
			const char **why)
{
	struct cur cur = { (const char *)server_final, (const char *)server_final + n };
	uint8_t sig[SCRAM_KEY_LEN];
	const char *v;
	size_t vn;

	*why = "malformed SCRAM server-final-message";
	if (c->step != SCRAM_CLIENT_FINAL_SENT) {
		*why = "SCRAM server-final-message out of order";
		return -EPROTO;
	}
	c->step = SCRAM_CLIENT_DONE;
	if (!text_ok(server_final, n))
		return -EPROTO;
	if (attr(&cur, 'e', &v, &vn)) {
		*why = "server rejected the SCRAM exchange";
		return -EPROTO;
	}
	if (!attr(&cur, 'v', &v, &vn) || cur.p != cur.end ||
	    b64_decode(v, vn, sig, sizeof(sig)) != SCRAM_KEY_LEN)
		return -EPROTO;
	if (!ct_equal(sig, c->server_signature, SCRAM_KEY_LEN)) {
		*why = "SCRAM server signature does not match";
		return -EACCES;
	}
	return 0;
}
