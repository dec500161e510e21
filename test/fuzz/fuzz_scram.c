/*
 * libFuzzer target for proto/scram.c. Input: a mode byte, a 2-byte big-endian
 * length n, then two messages: the first n bytes and the rest. Mode 0 plays the
 * server (client-first, client-final), mode 1 the client (server-first,
 * server-final), mode 2 parses the whole input after the mode byte as a stored secret.
 */
#include "proto/scram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The seeds were made with these: password "pencil", this salt, zero nonces. */
static const uint8_t salt[16] = "fuzz-scram-salt";
static const uint8_t zero_nonce[SCRAM_NONCE_RAW];
static struct scram_secret sec;
static struct scram_keys keys;

static void setup(void)
{
	static int done;

	if (done)
		return;
	if (scram_keys_derive("pencil", salt, sizeof(salt), 4096, &keys) ||
	    scram_secret_make("pencil", salt, sizeof(salt), 4096, &sec))
		abort();
	done = 1;
}

static void server(const uint8_t *first, size_t n1, const uint8_t *final, size_t n2)
{
	struct scram_server s;
	uint8_t client_key[SCRAM_KEY_LEN];
	char out[SCRAM_MSG_MAX];
	const char *why = NULL;
	size_t n = 0;
	int rc;

	memset(&s, 0, sizeof(s));
	rc = scram_server_first(&s, &sec, first, n1, zero_nonce, out, &n, &why);
	if (rc) {
		if (rc != -EPROTO || !why)
			abort();
		return;
	}
	if (n >= SCRAM_MSG_MAX || memcmp(out, "r=", 2))
		abort();
	rc = scram_server_final(&s, final, n2, out, &n, client_key, &why);
	if (rc == 0 && (n >= SCRAM_MSG_MAX || memcmp(client_key, keys.client_key, SCRAM_KEY_LEN)))
		abort();
	if (rc && ((rc != -EPROTO && rc != -EACCES) || !why))
		abort();
}

static void client(const uint8_t *first, size_t n1, const uint8_t *final, size_t n2)
{
	struct scram_client c;
	char out[SCRAM_MSG_MAX];
	const char *why = NULL;
	size_t n;
	int rc;

	memset(&c, 0, sizeof(c));
	if (scram_client_first(&c, zero_nonce, out, &n))
		abort();
	rc = scram_client_parse_first(&c, first, n1, &why);
	if (rc) {
		if (rc != -EPROTO || !why)
			abort();
		return;
	}
	if (!c.salt_len || c.salt_len > SCRAM_SALT_MAX || !c.iterations ||
	    c.iterations > SCRAM_MAX_ITERATIONS)
		abort();
	if (scram_client_final(&c, &keys, out, &n) || n >= SCRAM_MSG_MAX)
		abort();
	rc = scram_client_verify(&c, final, n2, &why);
	if (rc && ((rc != -EPROTO && rc != -EACCES) || !why))
		abort();
}

static void secret(const uint8_t *p, size_t n)
{
	char str[1024], again[256];
	struct scram_secret a, b;

	if (n >= sizeof(str))
		return;
	memcpy(str, p, n);
	str[n] = 0;
	if (scram_secret_parse(str, &a))
		return;
	if (scram_secret_format(&a, again, sizeof(again)) || scram_secret_parse(again, &b) ||
	    a.iterations != b.iterations || a.salt_len != b.salt_len ||
	    memcmp(a.salt, b.salt, a.salt_len) || memcmp(a.stored_key, b.stored_key, SCRAM_KEY_LEN) ||
	    memcmp(a.server_key, b.server_key, SCRAM_KEY_LEN))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n1;

	setup();
	if (size < 3)
		return 0;
	if (data[0] % 3 == 2) {
		secret(data + 1, size - 1);
		return 0;
	}
	n1 = (size_t)data[1] << 8 | data[2];
	if (n1 > size - 3)
		n1 = size - 3;
	if (data[0] % 3 == 0)
		server(data + 3, n1, data + 3 + n1, size - 3 - n1);
	else
		client(data + 3, n1, data + 3 + n1, size - 3 - n1);
	return 0;
}
