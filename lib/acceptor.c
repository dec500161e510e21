/* Listen sockets and the acceptor loop: multishot accept, signalfd, round-robin hand-off with MSG_RING. */
#include "lib/acceptor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/ring.h"
#include "lib/rt.h"
#include "lib/worker.h"

#define ACCEPTOR_BACKLOG 4096

static int listen_tcp(const struct cfg_listen *l, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	char port[8];
	snprintf(port, sizeof port, "%u", l->port);
	int ret = getaddrinfo(l->host[0] ? l->host : NULL, port, &hints, &res);
	if (ret) {
		snprintf(err, errlen, "listen %s:%u: %s", l->host, l->port, gai_strerror(ret));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* Accepted sockets inherit it: no per-connection syscall. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, ACCEPTOR_BACKLOG) < 0) {
		ret = -errno;
		close(fd);
		goto fail;
	}
	freeaddrinfo(res);
	return fd;
fail:
	snprintf(err, errlen, "listen %s:%u: %s", l->host, l->port, strerror(-ret));
	freeaddrinfo(res);
	return ret;
}

static int listen_unix(const struct cfg_listen *l, char **path_out, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int n = snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.%u", l->path, l->port);
	if (n < 0 || (size_t)n >= sizeof sun.sun_path) {
		snprintf(err, errlen, "listen unix:%s: path too long", l->path);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(fd, ACCEPTOR_BACKLOG) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		goto fail;
	}
	chmod(sun.sun_path, 0777);
	*path_out = strdup(sun.sun_path);
	return fd;
fail:
	snprintf(err, errlen, "listen %s: %s", sun.sun_path, strerror(errno));
	return -errno;
}

int acceptor_listen(struct acceptor *a, const struct cfg *cfg, char *err, size_t errlen)
{
	a->fds = calloc(cfg->nlisten, sizeof *a->fds);
	a->unix_paths = calloc(cfg->nlisten, sizeof *a->unix_paths);
	if (!a->fds || !a->unix_paths)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct cfg_listen *l = &cfg->listen[i];
		int fd = l->is_unix ? listen_unix(l, &a->unix_paths[i], err, errlen)
				    : listen_tcp(l, err, errlen);
		if (fd < 0)
			return fd;
		a->fds[i] = fd;
		a->nfds++;
		if (l->is_unix)
			log_info("listening on %s", a->unix_paths[i]);
		else
			log_info("listening on %s:%u", l->host, l->port);
	}
	return 0;
}

void acceptor_block_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* A free SQE: a burst of hand-offs may have filled the queue. */
static struct io_uring_sqe *acceptor_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
		if (!sqe)
			die("acceptor: no SQE after submit");
	}
	return sqe;
}

static void acceptor_arm(struct io_uring *ring, struct acceptor *a, size_t i)
{
	struct io_uring_sqe *sqe = acceptor_sqe(ring);
	io_uring_prep_multishot_accept(sqe, a->fds[i], NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ring_ud(OP_ACCEPT, (uint32_t)i, 0));
}

static void acceptor_arm_signal(struct io_uring *ring, int sfd, struct signalfd_siginfo *si)
{
	struct io_uring_sqe *sqe = acceptor_sqe(ring);
	io_uring_prep_read(sqe, sfd, si, sizeof *si, 0);
	io_uring_sqe_set_data64(sqe, ring_ud(OP_SIGNAL, 0, 0));
}

static void acceptor_hand_off(struct io_uring *ring, struct rt *rt, int fd)
{
	unsigned i = atomic_fetch_add_explicit(&rt->next_worker, 1, memory_order_relaxed) % rt->nworkers;
	struct io_uring_sqe *sqe = worker_post(ring, &rt->workers[i], OP_NEW_CLIENT, 0, 0, fd);
	/* If the post fails, its completion comes back here with the fd, which is ours to close. */
	io_uring_sqe_set_data64(sqe, ring_ud(OP_NEW_CLIENT, (uint32_t)fd, 0));
}

int acceptor_run(struct acceptor *a, struct rt *rt)
{
	struct io_uring *ring = &a->ring;
	int ret = io_uring_queue_init(256, ring, 0);
	if (ret < 0)
		return ret;
	a->ring_up = true;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return -errno;
	a->sfd = sfd;
	struct signalfd_siginfo si;
	for (size_t i = 0; i < a->nfds; i++)
		acceptor_arm(ring, a, i);
	acceptor_arm_signal(ring, sfd, &si);

	bool stop = false;
	while (!stop) {
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR)
			die("acceptor: io_uring_submit_and_wait: %s", strerror(-ret));
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(ring, head, cqe) {
			seen++;
			uint64_t ud = cqe->user_data;
			switch (ring_ud_op(ud)) {
			case OP_ACCEPT:
				if (cqe->res >= 0)
					acceptor_hand_off(ring, rt, cqe->res);
				else if (cqe->res != -ECANCELED)
					log_warn("accept: %s", strerror(-cqe->res));
				if (!(cqe->flags & IORING_CQE_F_MORE) && !stop)
					acceptor_arm(ring, a, ring_ud_slot(ud));
				break;
			case OP_SIGNAL:
				if (cqe->res == sizeof si && si.ssi_signo == SIGHUP) {
					log_warn("SIGHUP: configuration reload is not supported yet");
				} else if (cqe->res == sizeof si) {
					log_info("%s: shutting down (up to %.1fs for clients to finish)",
						 si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM",
						 (double)rt->cfg->shutdown_timeout / 1000.0);
					stop = true;
					break;
				}
				acceptor_arm_signal(ring, sfd, &si);
				break;
			case OP_NEW_CLIENT:
				log_warn("hand-off of a new client failed: %s", strerror(-cqe->res));
				close((int)ring_ud_slot(ud));
				break;
			default:
				if (cqe->res < 0)
					log_warn("hand-off: %s", strerror(-cqe->res));
				break;
			}
		}
		io_uring_cq_advance(ring, seen);
	}
	/* Stop accepting before the workers are told, so no new client arrives mid-shutdown. */
	for (size_t i = 0; i < a->nfds; i++) {
		shutdown(a->fds[i], SHUT_RDWR);
		close(a->fds[i]);
		a->fds[i] = -1;
	}
	for (uint32_t i = 0; i < rt->nworkers; i++)
		worker_post(ring, &rt->workers[i], OP_SHUTDOWN, 0, 0, 0);
	io_uring_submit(ring);
	return 0;
}

void acceptor_close(struct acceptor *a)
{
	for (size_t i = 0; i < a->nfds; i++) {
		if (a->fds[i] >= 0)
			close(a->fds[i]);
		if (a->unix_paths[i])
			unlink(a->unix_paths[i]);
		free(a->unix_paths[i]);
	}
	free(a->fds);
	free(a->unix_paths);
	a->nfds = 0;
	if (a->sfd > 0)
		close(a->sfd);
	if (a->ring_up)
		io_uring_queue_exit(&a->ring);
	a->ring_up = false;
}
