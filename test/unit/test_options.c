/* Unit test of proto/options: the settings of an `options` startup parameter, and what is refused. */
#include "proto/options.h"
#include "test/unit/check.h"

#include <string.h>

static int count(const char *opts, const char **why)
{
	char name[64], value[64];
	int n = 0, r;
	while ((r = options_next(&opts, name, sizeof name, value, sizeof value, why)) == 1)
		n++;
	return r < 0 ? -1 : n;
}

int main(void)
{
	const char *why = NULL;
	const char *opts = " -c search_path=app\\ schema,public   -cstatement_timeout=5s --work-mem=64MB ";
	char name[64], value[64];

	CHECK(options_next(&opts, name, sizeof name, value, sizeof value, &why) == 1);
	CHECK(!strcmp(name, "search_path") && !strcmp(value, "app schema,public"));
	CHECK(options_next(&opts, name, sizeof name, value, sizeof value, &why) == 1);
	CHECK(!strcmp(name, "statement_timeout") && !strcmp(value, "5s"));
	CHECK(options_next(&opts, name, sizeof name, value, sizeof value, &why) == 1);
	CHECK(!strcmp(name, "work_mem") && !strcmp(value, "64MB"));
	CHECK(options_next(&opts, name, sizeof name, value, sizeof value, &why) == 0);

	CHECK(count("", &why) == 0 && count("   ", &why) == 0);
	CHECK(count("-c a=", &why) == 1);                  /* an empty value is a value */
	CHECK(count("-d 5", &why) == -1 && strstr(why, "supported"));
	CHECK(count("-c", &why) == -1 && strstr(why, "without"));
	CHECK(count("-c novalue", &why) == -1 && strstr(why, "name=value"));
	CHECK(count("--=x", &why) == -1);
	/* Too long for the caller's buffers, or for one word: refused, never cut. */
	opts = "-c averyveryverylongname=1";
	CHECK(options_next(&opts, name, 8, value, sizeof value, &why) == -1 && strstr(why, "long"));
	char big[3000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	big[0] = '-', big[1] = 'c', big[2] = 'a', big[3] = '=';
	CHECK(count(big, &why) == -1 && strstr(why, "long"));
	return check_summary();
}
