/*
 * libFuzzer target for the message body parsers: input is a type byte and a
 * body; what a parser accepts must rebuild to the same bytes.
 */
#include "proto/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t *body;
static size_t body_len;

/* s points into the body and ends there with its own NUL. */
static void in_body(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;

	if (s && (p < body || p >= body + body_len || !memchr(p, 0, (size_t)(body + body_len - p))))
		abort();
}

/* w holds one typed message whose body must equal the parsed one. */
static void same_body(const struct wbuf *w, uint8_t type)
{
	if (w->overflow || w->len != 5 + body_len || w->p[0] != type ||
	    (body_len && memcmp(w->p + 5, body, body_len)))
		abort();
}

static void check_rc(int rc)
{
	if (rc && rc != -EPROTO)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[1 << 16];
	struct wbuf w = wbuf_on(out, sizeof(out));
	struct msg_fields f;
	const uint8_t *d;
	const char *a, *b;
	uint32_t x, y;
	size_t dn;
	int rc;

	if (size < 1 || size - 1 > sizeof(out) - 64)
		return 0;
	body = data + 1;
	body_len = size - 1;
	switch (data[0]) {
	case 'E':
	case 'N':
		check_rc(rc = msg_parse_fields(body, body_len, &f));
		if (!rc) {
			in_body(f.severity);
			in_body(f.code);
			in_body(f.message);
			in_body(f.detail);
			in_body(f.hint);
		}
		break;
	case 'S':
		check_rc(rc = msg_parse_param_status(body, body_len, &a, &b));
		if (!rc) {
			msg_param_status(&w, a, b);
			same_body(&w, 'S');
		}
		break;
	case 'K':
		check_rc(rc = msg_parse_backend_key(body, body_len, &x, &y));
		if (!rc) {
			msg_backend_key(&w, x, y);
			same_body(&w, 'K');
		}
		break;
	case 'R':
		check_rc(rc = msg_parse_auth(body, body_len, &x, &d, &dn));
		if (!rc) {
			msg_auth(&w, x, d, dn);
			same_body(&w, 'R');
		}
		break;
	case 'p':
		/* A 'p' is read by what the authentication step expects: try each. */
		check_rc(rc = msg_parse_sasl_initial(body, body_len, &a, &d, &dn));
		if (!rc) {
			in_body(a);
			msg_sasl_initial(&w, a, d, dn);
			same_body(&w, 'p');
		}
		w = wbuf_on(out, sizeof(out));
		check_rc(rc = msg_parse_password(body, body_len, &a));
		if (!rc) {
			msg_password(&w, a);
			same_body(&w, 'p');
		}
		break;
	}
	return 0;
}
