/* PostgreSQL's md5 password scheme on wolfCrypt MD5. */
#include "proto/md5.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/md5.h>

#include <string.h>

/* out = "md5" + hex(md5(a || b)). MD5 over memory cannot fail, so results are not checked. */
static void md5_hex(const void *a, size_t an, const void *b, size_t bn,
		    char out[MD5_PASSWD_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t d[WC_MD5_DIGEST_SIZE];
	wc_Md5 md5;

	wc_InitMd5(&md5);
	wc_Md5Update(&md5, a, (word32)an);
	wc_Md5Update(&md5, b, (word32)bn);
	wc_Md5Final(&md5, d);
	wc_Md5Free(&md5);
	memcpy(out, "md5", 3);
	for (size_t i = 0; i < sizeof(d); i++) {
		out[3 + 2 * i] = hex[d[i] >> 4];
		out[4 + 2 * i] = hex[d[i] & 15];
	}
	out[MD5_PASSWD_LEN] = 0;
}

void md5_secret(const char *user, const char *password, char out[MD5_PASSWD_LEN + 1])
{
	md5_hex(password, strlen(password), user, strlen(user), out);
}

void md5_salted(const char *secret, const uint8_t salt[4], char out[MD5_PASSWD_LEN + 1])
{
	md5_hex(secret + 3, MD5_PASSWD_LEN - 3, salt, 4, out);
}

bool md5_is_secret(const char *s)
{
	if (strncmp(s, "md5", 3))
		return false;
	for (int i = 3; i < MD5_PASSWD_LEN; i++)
		if (!(s[i] >= '0' && s[i] <= '9') && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return s[MD5_PASSWD_LEN] == 0;
}
