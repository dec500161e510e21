/* Unit test of proto/md5.c against values PostgreSQL and Python's hashlib produce. */
#include "proto/md5.h"
#include "test/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	char out[MD5_PASSWD_LEN + 1];

	/* python3 -c "import hashlib;print('md5'+hashlib.md5(b'secretpostgres').hexdigest())" */
	md5_secret("postgres", "secret", out);
	CHECK(!strcmp(out, "md553f48b7c4b76a86ce72276c5755f217d"));
	/* PostgreSQL 15: SET password_encryption='md5'; CREATE ROLE postgres2 PASSWORD 'secret'. */
	md5_secret("postgres2", "secret", out);
	CHECK(!strcmp(out, "md5a99489f2ba8d41137689bf5947f835e0"));
	md5_secret("", "", out);
	CHECK(!strcmp(out, "md5d41d8cd98f00b204e9800998ecf8427e"));
	printf("ok - stored form: postgres/secret, postgres2/secret (from PostgreSQL 15), empty\n");

	/* 'md5' + md5(hex part + salt), as libpq answers AuthenticationMD5Password. */
	md5_salted("md553f48b7c4b76a86ce72276c5755f217d", (const uint8_t[]){ 1, 2, 3, 4 }, out);
	CHECK(!strcmp(out, "md5bb41a296aab6baccb36ff243a562abff"));
	md5_salted("md553f48b7c4b76a86ce72276c5755f217d", (const uint8_t[]){ 0xff, 0, 0x80, 0x7f }, out);
	CHECK(!strcmp(out, "md5af5825a82e8a131090770b6d3ea127f9"));
	printf("ok - salted form, including salt bytes 0x00 and 0xff\n");

	CHECK(md5_is_secret("md553f48b7c4b76a86ce72276c5755f217d"));
	CHECK(!md5_is_secret("md553f48b7c4b76a86ce72276c5755f217"));
	CHECK(!md5_is_secret("md553f48b7c4b76a86ce72276c5755f217d0"));
	CHECK(!md5_is_secret("md553F48b7c4b76a86ce72276c5755f217d"));
	CHECK(!md5_is_secret("md553g48b7c4b76a86ce72276c5755f217d"));
	CHECK(!md5_is_secret("MD553f48b7c4b76a86ce72276c5755f217d"));
	CHECK(!md5_is_secret("secret"));
	CHECK(!md5_is_secret(""));
	CHECK(!md5_is_secret("SCRAM-SHA-256$4096:c2FsdA==$a:b"));
	printf("ok - md5_is_secret: length, case, alphabet, prefix\n");

	return check_summary();
}
