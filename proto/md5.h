/* PostgreSQL's md5 password scheme (wolfCrypt MD5). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define MD5_PASSWD_LEN 35   /* "md5" + 32 hex digits, without the NUL */

/* out = "md5" + hex(md5(password || user)): the stored form. Pure. */
void md5_secret(const char *user, const char *password, char out[MD5_PASSWD_LEN + 1]);

/*
 * out = "md5" + hex(md5(hex part of secret || salt)): what a client sends in
 * answer to AuthenticationMD5Password. secret is the stored form above.
 */
void md5_salted(const char *secret, const uint8_t salt[4], char out[MD5_PASSWD_LEN + 1]);

/* True when s looks like a stored md5 secret ("md5" + 32 lowercase hex). */
bool md5_is_secret(const char *s);
