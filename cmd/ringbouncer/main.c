/* ringbouncer's command line: parse flags, load the config, run the runtime, map errors to exit codes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/acceptor.h"
#include "lib/auth.h"
#include "lib/cfg.h"
#include "lib/log.h"
#include "lib/rt.h"

#ifndef RB_VERSION
#define RB_VERSION "dev"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ringbouncer [-c|--config FILE] [--check] [--version] [--help]\n"
		"\n"
		"  -c, --config FILE  configuration file (default ./config.yaml)\n"
		"      --check        validate the configuration and exit: 0 if good, 1 otherwise\n"
		"      --version      print the version and exit\n"
		"      --help         print this help and exit\n");
}

static const int level_map[] = {
	[CFG_LOG_DEBUG] = LOG_DEBUG,
	[CFG_LOG_INFO] = LOG_INFO,
	[CFG_LOG_WARN] = LOG_WARN,
	[CFG_LOG_ERROR] = LOG_ERROR,
};

int main(int argc, char **argv)
{
	const char *path = "config.yaml";
	bool check = false;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	for (int o; (o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1;) {
		switch (o) {
		case 'c': path = optarg; break;
		case 'k': check = true; break;
		case 'V': printf("ringbouncer %s\n", RB_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringbouncer: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	struct cfg *cfg = NULL;
	struct cfg_errors errs = { 0 };
	if (cfg_load(path, &cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		cfg_errors_free(&errs);
		return 1;
	}
	cfg_errors_free(&errs);
	if (check) {
		printf("%s: configuration is valid\n", path);
		cfg_free(cfg);
		return 0;
	}
	atomic_store(&log_min_level, level_map[cfg->log_level]);

	char err[256] = "";
	struct auth_users *auth = NULL;
	if (auth_prepare(cfg, &auth, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		cfg_free(cfg);
		return 1;
	}
	acceptor_block_signals();
	struct acceptor acc = { 0 };
	if (acceptor_listen(&acc, cfg, err, sizeof err) < 0) {
		log_error("%s", err);
		return 1;
	}
	struct rt rt = { .auth = auth };
	int ret = rt_start(&rt, cfg);
	if (ret < 0) {
		log_error("cannot start workers: %s", strerror(-ret));
		return 1;
	}
	log_info("ringbouncer %s running with %u workers", RB_VERSION, rt.nworkers);
	ret = acceptor_run(&acc, &rt);
	if (ret < 0)
		die("acceptor: %s", strerror(-ret));
	rt_join(&rt);
	acceptor_close(&acc);
	auth_free(auth);
	cfg_free(cfg);
	log_info("shutdown complete");
	return 0;
}
