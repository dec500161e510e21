/* idle: the idle-scale load generator of bench/run.
 *
 * Opens N client connections to a PostgreSQL server or pooler, logs each one in
 * (trust, cleartext, md5 or SCRAM-SHA-256) and then keeps them all idle, sending
 * nothing, until SIGTERM or SIGINT. It speaks the protocol itself over
 * non-blocking sockets and one epoll, so that it costs little next to the
 * process being measured: a SCRAM SaltedPassword is derived once per (salt,
 * iteration count) and reused, so logins against a server that keeps a stored
 * secret cost the generator a few HMACs each.
 *
 *   idle -h HOST -p PORT -U USER -d DB -n N [-c IN_FLIGHT] [-t TIMEOUT_S] [-s STALL_S]
 *   (password from $PGPASSWORD; HOST may be a unix socket folder)
 *
 * At most IN_FLIGHT (128) logins run at once. When every connection has either
 * finished its login (ReadyForQuery) or failed, or TIMEOUT_S (120) pass, or no
 * login has finished for STALL_S (15) seconds, it prints one line on stdout:
 *   ready K of N failed F pending P ms T
 * (failures and the first error message go to stderr), then idles until told
 * to stop. A connection the peer closes while idle is reported on stderr.
 * Exit status: 0 if all N became ready and none was dropped, else 1; 2 on a
 * usage error.
 *
 * Build: cc -O2 -o idle idle.c $(pkg-config --cflags --libs wolfssl)
 */
#define _GNU_SOURCE
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/md5.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define KEY_LEN 32

enum state { S_NEW, S_CONNECTING, S_LOGIN, S_READY, S_FAILED, S_DROPPED };

struct conn {
	int        fd;
	enum state st;
	/* login only; freed once ready */
	char      *in;
	size_t     in_len, in_cap;
	char      *cfb;      /* SCRAM client-first-bare */
	char      *sfirst;   /* SCRAM server-first */
	uint8_t    server_sig[KEY_LEN];
};

static const char *opt_host = "127.0.0.1", *opt_port = "5432", *opt_user, *opt_db, *opt_pw = "";
static int         opt_n = 1, opt_inflight = 128, opt_timeout = 120, opt_stall = 15;
static struct conn *conns;
static struct sockaddr_storage addr;
static socklen_t   addr_len;
static int         epfd;
static int         n_started, n_ready, n_failed, n_dropped, n_inflight;
static char        first_error[512];

/* The one cached SCRAM derivation. */
static struct {
	bool    valid;
	char    salt_b64[128];
	int     iter;
	uint8_t salted[KEY_LEN];
} cache;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("idle: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------- base64 */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_enc(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = B64[v >> 18];
		out[o++] = B64[(v >> 12) & 63];
		out[o++] = B64[(v >> 6) & 63];
		out[o++] = B64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = B64[v >> 18];
		out[o++] = B64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = 0;
}

/* Decodes NUL-terminated base64; returns the length or -1. */
static int b64_dec(const char *in, uint8_t *out, size_t cap)
{
	uint32_t v = 0;
	int      bits = 0;
	size_t   o = 0;

	for (; *in && *in != '='; in++) {
		const char *p = strchr(B64, *in);
		if (!p || !*in)
			return -1;
		v = v << 6 | (uint32_t)(p - B64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(v >> bits);
		}
	}
	return (int)o;
}

/* ---------------------------------------------------------------- crypto */

static void hmac(const uint8_t *key, size_t klen, const char *a, size_t an, const char *b, size_t bn,
		 const char *c, size_t cn, uint8_t out[KEY_LEN])
{
	Hmac h;

	if (wc_HmacInit(&h, NULL, INVALID_DEVID) || wc_HmacSetKey(&h, WC_SHA256, key, (word32)klen) ||
	    wc_HmacUpdate(&h, (const byte *)a, (word32)an) ||
	    (bn && (wc_HmacUpdate(&h, (const byte *)",", 1) || wc_HmacUpdate(&h, (const byte *)b, (word32)bn))) ||
	    (cn && (wc_HmacUpdate(&h, (const byte *)",", 1) || wc_HmacUpdate(&h, (const byte *)c, (word32)cn))) ||
	    wc_HmacFinal(&h, out))
		die("wolfCrypt HMAC failed");
	wc_HmacFree(&h);
}

static void md5_hex(const char *a, size_t an, const char *b, size_t bn, char out[33])
{
	wc_Md5  m;
	uint8_t d[16];

	wc_InitMd5(&m);
	wc_Md5Update(&m, (const byte *)a, (word32)an);
	wc_Md5Update(&m, (const byte *)b, (word32)bn);
	wc_Md5Final(&m, d);
	wc_Md5Free(&m);
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* ---------------------------------------------------------------- connections */

static void fail(struct conn *c, const char *fmt, ...)
{
	if (!first_error[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(first_error, sizeof first_error, fmt, ap);
		va_end(ap);
	}
	if (c->st == S_READY) {
		c->st = S_DROPPED;
		n_dropped++;
	} else {
		c->st = S_FAILED;
		n_failed++;
		n_inflight--;
	}
	if (c->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	free(c->in), c->in = NULL;
	free(c->cfb), c->cfb = NULL;
	free(c->sfirst), c->sfirst = NULL;
}

/* Sends a whole small message; login messages fit any socket buffer. */
static bool send_all(struct conn *c, const void *buf, size_t n)
{
	ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);

	if (w != (ssize_t)n) {
		fail(c, "send: %s", w < 0 ? strerror(errno) : "short write");
		return false;
	}
	return true;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

static uint32_t get32(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* A message: type, int32 length, body. */
static bool send_msg(struct conn *c, char type, const void *body, size_t n)
{
	uint8_t buf[1024];

	if (n + 5 > sizeof buf)
		die("message too long");
	buf[0] = (uint8_t)type;
	put32(buf + 1, (uint32_t)(n + 4));
	memcpy(buf + 5, body, n);
	return send_all(c, buf, n + 5);
}

static bool send_startup(struct conn *c)
{
	uint8_t buf[1024];
	size_t  n = 8;
	const char *kv[] = { "user", opt_user, "database", opt_db, "application_name", "rb-bench-idle" };

	for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
		size_t l = strlen(kv[i]) + 1;
		if (n + l + 1 > sizeof buf)
			die("startup packet too long");
		memcpy(buf + n, kv[i], l);
		n += l;
	}
	buf[n++] = 0;
	put32(buf, (uint32_t)n);
	put32(buf + 4, 196608);
	return send_all(c, buf, n);
}

static void start_one(void)
{
	struct conn *c = &conns[n_started++];
	int one = 1;

	n_inflight++;
	c->st = S_CONNECTING;
	c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(c, "socket: %s", strerror(errno));
		return;
	}
	if (addr.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&addr, addr_len) < 0 && errno != EINPROGRESS) {
		fail(c, "connect: %s", strerror(errno));
		return;
	}
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		fail(c, "epoll_ctl: %s", strerror(errno));
}

static bool scram_first(struct conn *c, const char *mechs, size_t n)
{
	bool found = false;

	for (size_t i = 0; i < n && mechs[i];) {
		if (!strcmp(mechs + i, "SCRAM-SHA-256"))
			found = true;
		i += strlen(mechs + i) + 1;
	}
	if (!found) {
		fail(c, "server offers no SCRAM-SHA-256");
		return false;
	}
	uint8_t raw[18];
	char    nonce[32], body[256];
	if (getrandom(raw, sizeof raw, 0) != sizeof raw)
		die("getrandom failed");
	b64_enc(raw, sizeof raw, nonce);
	if (asprintf(&c->cfb, "n=,r=%s", nonce) < 0)
		die("out of memory");
	/* SASLInitialResponse: mechanism, int32 length, "n,," client-first-bare */
	size_t ml = strlen("SCRAM-SHA-256") + 1, cl = 3 + strlen(c->cfb);
	memcpy(body, "SCRAM-SHA-256", ml);
	put32((uint8_t *)body + ml, (uint32_t)cl);
	memcpy(body + ml + 4, "n,,", 3);
	memcpy(body + ml + 7, c->cfb, cl - 3);
	return send_msg(c, 'p', body, ml + 4 + cl);
}

static bool scram_continue(struct conn *c, const char *msg, size_t n)
{
	char *sf = strndup(msg, n), *r = NULL, *s = NULL, *i = NULL, *save = NULL;

	if (!sf)
		die("out of memory");
	c->sfirst = strdup(sf);
	for (char *tok = strtok_r(sf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "r=", 2))
			r = tok + 2;
		else if (!strncmp(tok, "s=", 2))
			s = tok + 2;
		else if (!strncmp(tok, "i=", 2))
			i = tok + 2;
	}
	const char *cnonce = c->cfb + 5;
	if (!r || !s || !i || strncmp(r, cnonce, strlen(cnonce))) {
		free(sf);
		fail(c, "bad SCRAM server-first message");
		return false;
	}
	int iter = atoi(i);
	if (!cache.valid || cache.iter != iter || strcmp(cache.salt_b64, s)) {
		uint8_t salt[96];
		int     sl = b64_dec(s, salt, sizeof salt);
		if (sl <= 0 || iter <= 0 || strlen(s) >= sizeof cache.salt_b64) {
			free(sf);
			fail(c, "bad SCRAM salt or iteration count");
			return false;
		}
		if (wc_PBKDF2(cache.salted, (const byte *)opt_pw, (int)strlen(opt_pw), salt, sl, iter, KEY_LEN,
			      WC_SHA256))
			die("wolfCrypt PBKDF2 failed");
		strcpy(cache.salt_b64, s);
		cache.iter = iter;
		cache.valid = true;
	}
	char cfwp[256];
	snprintf(cfwp, sizeof cfwp, "c=biws,r=%s", r);
	free(sf);

	uint8_t ck[KEY_LEN], stored[KEY_LEN], csig[KEY_LEN], proof[KEY_LEN], servkey[KEY_LEN];
	hmac(cache.salted, KEY_LEN, "Client Key", 10, NULL, 0, NULL, 0, ck);
	if (wc_Sha256Hash(ck, KEY_LEN, stored))
		die("wolfCrypt SHA-256 failed");
	size_t bl = strlen(c->cfb), sl = strlen(c->sfirst), fl = strlen(cfwp);
	hmac(stored, KEY_LEN, c->cfb, bl, c->sfirst, sl, cfwp, fl, csig);
	for (int k = 0; k < KEY_LEN; k++)
		proof[k] = ck[k] ^ csig[k];
	hmac(cache.salted, KEY_LEN, "Server Key", 10, NULL, 0, NULL, 0, servkey);
	hmac(servkey, KEY_LEN, c->cfb, bl, c->sfirst, sl, cfwp, fl, c->server_sig);

	char final[384], pb[64];
	b64_enc(proof, KEY_LEN, pb);
	int len = snprintf(final, sizeof final, "%s,p=%s", cfwp, pb);
	return send_msg(c, 'p', final, (size_t)len);
}

static bool scram_final(struct conn *c, const char *msg, size_t n)
{
	char    v[128];
	uint8_t sig[64];

	if (n < 3 || n >= sizeof v + 2 || strncmp(msg, "v=", 2)) {
		fail(c, "bad SCRAM server-final message");
		return false;
	}
	memcpy(v, msg + 2, n - 2);
	v[n - 2] = 0;
	if (b64_dec(v, sig, sizeof sig) != KEY_LEN || memcmp(sig, c->server_sig, KEY_LEN)) {
		fail(c, "SCRAM server signature does not match");
		return false;
	}
	return true;
}

static void error_text(const char *body, size_t n, char *out, size_t cap)
{
	const char *sev = "", *code = "", *m = "";

	for (size_t i = 0; i < n && body[i];) {
		char f = body[i];
		const char *val = body + i + 1;
		if (f == 'S')
			sev = val;
		else if (f == 'C')
			code = val;
		else if (f == 'M')
			m = val;
		i += 1 + strlen(val) + 1;
	}
	snprintf(out, cap, "%s %s: %s", sev, code, m);
}

/* Handles one complete backend message during login. False when c is done with (failed). */
static bool on_message(struct conn *c, char type, const char *body, size_t n)
{
	switch (type) {
	case 'R': {
		if (n < 4) {
			fail(c, "short Authentication message");
			return false;
		}
		uint32_t code = get32(body);
		if (code == 0)
			return true;
		if (code == 3)
			return send_msg(c, 'p', opt_pw, strlen(opt_pw) + 1);
		if (code == 5 && n >= 8) {
			char inner[33], outer[36] = "md5";
			md5_hex(opt_pw, strlen(opt_pw), opt_user, strlen(opt_user), inner);
			md5_hex(inner, 32, body + 4, 4, outer + 3);
			return send_msg(c, 'p', outer, 36);
		}
		if (code == 10)
			return scram_first(c, body + 4, n - 4);
		if (code == 11 && c->cfb)
			return scram_continue(c, body + 4, n - 4);
		if (code == 12 && c->sfirst)
			return scram_final(c, body + 4, n - 4);
		fail(c, "unsupported authentication request %u", code);
		return false;
	}
	case 'E': {
		char e[400];
		error_text(body, n, e, sizeof e);
		fail(c, "%s", e);
		return false;
	}
	case 'Z':
		c->st = S_READY;
		n_ready++;
		n_inflight--;
		free(c->in), c->in = NULL;
		free(c->cfb), c->cfb = NULL;
		free(c->sfirst), c->sfirst = NULL;
		c->in_len = c->in_cap = 0;
		return true;
	default: /* ParameterStatus, BackendKeyData, NoticeResponse */
		return true;
	}
}

static void on_readable(struct conn *c)
{
	if (c->st == S_READY) {
		char    b[256];
		ssize_t r = recv(c->fd, b, sizeof b, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			fail(c, "idle connection closed by the peer");
		return;
	}
	for (;;) {
		if (c->in_cap - c->in_len < 4096) {
			c->in_cap = c->in_cap ? c->in_cap * 2 : 8192;
			c->in = realloc(c->in, c->in_cap);
			if (!c->in)
				die("out of memory");
		}
		ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (r <= 0) {
			fail(c, "connection closed during login: %s", r < 0 ? strerror(errno) : "EOF");
			return;
		}
		c->in_len += (size_t)r;
	}
	size_t off = 0;
	while (c->st == S_LOGIN && c->in_len - off >= 5) {
		uint32_t len = get32(c->in + off + 1);
		if (len < 4 || len > 1 << 20) {
			fail(c, "bad message length %u", len);
			return;
		}
		if (c->in_len - off < 1 + (size_t)len)
			break;
		if (!on_message(c, c->in[off], c->in + off + 5, len - 4))
			return;
		off += 1 + len;
	}
	if (c->st == S_READY) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void on_event(struct conn *c, uint32_t events)
{
	if (c->st == S_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
			fail(c, "connect: %s", strerror(err ? err : errno));
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		c->st = S_LOGIN;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
		send_startup(c);
		return;
	}
	if (c->st == S_LOGIN || c->st == S_READY) {
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			on_readable(c);
	}
}

static void resolve(void)
{
	if (opt_host[0] == '/') {
		struct sockaddr_un *u = (struct sockaddr_un *)&addr;
		u->sun_family = AF_UNIX;
		if (snprintf(u->sun_path, sizeof u->sun_path, "%s/.s.PGSQL.%s", opt_host, opt_port) >=
		    (int)sizeof u->sun_path)
			die("socket path too long");
		addr_len = sizeof *u;
		return;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int rc = getaddrinfo(opt_host, opt_port, &hints, &res);
	if (rc)
		die("%s:%s: %s", opt_host, opt_port, gai_strerror(rc));
	memcpy(&addr, res->ai_addr, res->ai_addrlen);
	addr_len = res->ai_addrlen;
	freeaddrinfo(res);
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "h:p:U:d:n:c:t:s:")) != -1) {
		switch (opt) {
		case 'h': opt_host = optarg; break;
		case 'p': opt_port = optarg; break;
		case 'U': opt_user = optarg; break;
		case 'd': opt_db = optarg; break;
		case 'n': opt_n = atoi(optarg); break;
		case 'c': opt_inflight = atoi(optarg); break;
		case 't': opt_timeout = atoi(optarg); break;
		case 's': opt_stall = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: idle -h HOST -p PORT -U USER -d DB -n N [-c IN_FLIGHT] [-t TIMEOUT_S] "
					"[-s STALL_S]\n");
			return 2;
		}
	}
	if (!opt_user || opt_n <= 0 || opt_inflight <= 0 || opt_timeout <= 0 || opt_stall <= 0)
		die("need -U USER and positive -n, -c, -t, -s");
	if (!opt_db)
		opt_db = opt_user;
	if (getenv("PGPASSWORD"))
		opt_pw = getenv("PGPASSWORD");

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)opt_n + 16)
		die("RLIMIT_NOFILE %lu is too low for %d connections", (unsigned long)rl.rlim_cur, opt_n);

	resolve();
	conns = calloc((size_t)opt_n, sizeof *conns);
	if (!conns)
		die("out of memory");
	for (int i = 0; i < opt_n; i++)
		conns[i].fd = -1;
	epfd = epoll_create1(EPOLL_CLOEXEC);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &sev);

	double start = now_ms(), deadline = start + opt_timeout * 1e3, last_progress = start;
	int    last_done = 0;
	bool   reported = false, stop = false, stalled = false;
	struct epoll_event evs[256];

	while (!stop) {
		while (!reported && n_started < opt_n && n_inflight < opt_inflight && now_ms() < deadline)
			start_one();
		if (n_ready + n_failed != last_done) {
			last_done = n_ready + n_failed;
			last_progress = now_ms();
		} else if (now_ms() - last_progress >= opt_stall * 1e3) {
			stalled = true;
		}
		if (!reported && (n_ready + n_failed == opt_n || now_ms() >= deadline || stalled)) {
			int pending = opt_n - n_ready - n_failed;
			printf("ready %d of %d failed %d pending %d ms %.0f\n", n_ready, opt_n, n_failed, pending,
			       now_ms() - start);
			fflush(stdout);
			if (n_failed)
				fprintf(stderr, "idle: %d logins failed; first error: %s\n", n_failed, first_error);
			if (pending && stalled)
				fprintf(stderr, "idle: %d logins pending, none finished in the last %d s\n", pending,
					opt_stall);
			else if (pending)
				fprintf(stderr, "idle: %d logins still pending after the %d s timeout\n", pending,
					opt_timeout);
			reported = true;
		}
		int timeout = reported ? -1 : 100;
		int n = epoll_wait(epfd, evs, 256, timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				stop = true;
				continue;
			}
			struct conn *c = evs[i].data.ptr;
			int was_ready = c->st == S_READY;
			on_event(c, evs[i].events);
			if (was_ready && c->st == S_DROPPED)
				fprintf(stderr, "idle: an idle connection was closed by the peer (%d so far)\n",
					n_dropped);
		}
	}
	int bad = n_ready != opt_n || n_dropped;
	for (int i = 0; i < opt_n; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	if (n_dropped)
		fprintf(stderr, "idle: %d idle connections were closed by the peer\n", n_dropped);
	return bad ? 1 : 0;
}
