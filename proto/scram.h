/* SCRAM-SHA-256 (RFC 5802, RFC 7677) for both ends of a PostgreSQL login, on wolfCrypt. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN     32
#define SCRAM_SALT_MAX    64
#define SCRAM_NONCE_RAW   18    /* random bytes; base64 gives 24 characters */
#define SCRAM_MSG_MAX     512   /* bound on every message we build or accept */
#define SCRAM_DEFAULT_ITERATIONS 4096
/*
 * Far above any sane setting, low enough that a hostile server-first cannot
 * make one PBKDF2 pin a worker for minutes.
 */
#define SCRAM_MAX_ITERATIONS 10000000u

/* The stored form: what "SCRAM-SHA-256$iter:salt$StoredKey:ServerKey" holds. */
struct scram_secret {
	uint32_t iterations;
	size_t   salt_len;
	uint8_t  salt[SCRAM_SALT_MAX];
	uint8_t  stored_key[SCRAM_KEY_LEN];
	uint8_t  server_key[SCRAM_KEY_LEN];
};

/* Keys a client derives from the password; cached so PBKDF2 runs once per (salt, iterations). */
struct scram_keys {
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* scram_server.step and scram_client.step: how far the exchange got. */
enum {
	SCRAM_SERVER_NEW = 0,
	SCRAM_SERVER_FIRST_SENT,
	SCRAM_SERVER_DONE,      /* client-final handled, whatever the outcome */
};
enum {
	SCRAM_CLIENT_NEW = 0,
	SCRAM_CLIENT_FIRST_SENT,
	SCRAM_CLIENT_FIRST_READ,
	SCRAM_CLIENT_FINAL_SENT,
	SCRAM_CLIENT_DONE,
};

/* True when s starts with "SCRAM-SHA-256$". */
bool scram_is_secret(const char *s);
/* Parses the stored form. 0 or -EINVAL. */
int scram_secret_parse(const char *s, struct scram_secret *out) __attribute__((warn_unused_result));
/* Writes the stored form of sec into out (NUL-terminated). 0 or -ENOSPC. */
int scram_secret_format(const struct scram_secret *sec, char *out, size_t cap) __attribute__((warn_unused_result));
/* PBKDF2 + HMACs: the client and server keys for password, salt, iterations. 0 or -EINVAL. */
int scram_keys_derive(const char *password, const uint8_t *salt, size_t salt_len,
		      uint32_t iterations, struct scram_keys *out) __attribute__((warn_unused_result));
/* Builds a stored secret from password (one PBKDF2). 0 or -EINVAL. */
int scram_secret_make(const char *password, const uint8_t *salt, size_t salt_len,
		      uint32_t iterations, struct scram_secret *out) __attribute__((warn_unused_result));

/*
 * Server side: the proxy verifying a client. Feed the client-first message,
 * send back server-first; feed client-final, send back server-final.
 * Message buffers are caller-owned; out gets at most SCRAM_MSG_MAX bytes.
 */
struct scram_server {
	int      step;
	struct scram_secret sec;
	char     client_first_bare[SCRAM_MSG_MAX];
	char     server_first[SCRAM_MSG_MAX];
	char     nonce[128];      /* client nonce + server nonce */
	size_t   cfb_len, sf_len, nonce_len;
	char     gs2;             /* the client's gs2 flag, 'n' or 'y': c= must echo it */
};

/*
 * Starts from the client's SASLInitialResponse data. nonce_raw: SCRAM_NONCE_RAW
 * random bytes from the caller. Returns 0 with server-first in out/outlen, or
 * -EPROTO with *why set (malformed message, channel binding requested...).
 */
int scram_server_first(struct scram_server *s, const struct scram_secret *sec,
		       const uint8_t *client_first, size_t n,
		       const uint8_t nonce_raw[SCRAM_NONCE_RAW],
		       char *out, size_t *outlen, const char **why) __attribute__((warn_unused_result));
/*
 * Checks the client-final message. Returns 0 with server-final in out/outlen
 * when the proof is right, -EACCES when it is wrong, -EPROTO when malformed.
 * On success, *client_key (if not NULL) gets the ClientKey recovered from the
 * proof, which lets the proxy log into a server holding the same secret.
 */
int scram_server_final(struct scram_server *s, const uint8_t *client_final, size_t n,
		       char *out, size_t *outlen, uint8_t client_key[SCRAM_KEY_LEN],
		       const char **why) __attribute__((warn_unused_result));

/* Client side: the proxy logging into PostgreSQL. */
struct scram_client {
	int      step;
	char     client_first_bare[SCRAM_MSG_MAX];
	char     server_first[SCRAM_MSG_MAX];
	size_t   cfb_len, sf_len;
	char     nonce[128];
	size_t   nonce_len;
	uint8_t  server_signature[SCRAM_KEY_LEN];
	/* From server-first, for the caller's key cache. */
	uint8_t  salt[SCRAM_SALT_MAX];
	size_t   salt_len;
	uint32_t iterations;
};

/* Builds client-first ("n,,n=,r=<nonce>"). 0 or -ENOSPC. */
int scram_client_first(struct scram_client *c, const uint8_t nonce_raw[SCRAM_NONCE_RAW],
		       char *out, size_t *outlen) __attribute__((warn_unused_result));
/* Parses server-first: fills c->salt, c->iterations. 0 or -EPROTO (bad nonce...). */
int scram_client_parse_first(struct scram_client *c, const uint8_t *server_first, size_t n,
			     const char **why) __attribute__((warn_unused_result));
/*
 * Builds client-final with proof from keys (derived for c->salt, c->iterations).
 * 0, or -EPROTO when server-first was not parsed first.
 */
int scram_client_final(struct scram_client *c, const struct scram_keys *keys,
		       char *out, size_t *outlen) __attribute__((warn_unused_result));
/* Verifies server-final's signature. 0, -EACCES (wrong signature) or -EPROTO. */
int scram_client_verify(struct scram_client *c, const uint8_t *server_final, size_t n,
			const char **why) __attribute__((warn_unused_result));
