/* PostgreSQL v3 message builders and parsers over caller-supplied buffers. */
#include "proto/msg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/frame.h"

static uint8_t *put32(uint8_t *q, uint32_t v)
{
	q[0] = v >> 24;
	q[1] = v >> 16;
	q[2] = v >> 8;
	q[3] = v;
	return q + 4;
}

static uint8_t *putmem(uint8_t *q, const void *p, size_t n)
{
	if (n)
		memcpy(q, p, n);
	return q + n;
}

/* Copies s with its NUL. */
static uint8_t *putstr(uint8_t *q, const char *s)
{
	return putmem(q, s, strlen(s) + 1);
}

/*
 * Reserves a whole message: the type byte unless type is 0, the length and
 * body bytes. Returns where the body goes, or NULL (overflow set) when it
 * does not fit or could not be framed.
 */
static uint8_t *msg_begin(struct wbuf *w, uint8_t type, size_t body)
{
	size_t total = (type ? 1 : 0) + 4 + body;
	uint8_t *q;

	if (w->overflow || body > FRAME_MAX_LEN - 4 || total > w->cap - w->len) {
		w->overflow = true;
		return NULL;
	}
	q = w->p + w->len;
	w->len += total;
	if (type)
		*q++ = type;
	return put32(q, (uint32_t)(4 + body));
}

/* ErrorResponse and NoticeResponse share their layout. */
static void msg_fields(struct wbuf *w, uint8_t type, const char *severity,
		       const char *sqlstate, const char *message, const char *detail,
		       const char *hint)
{
	size_t sev = strlen(severity) + 2;
	size_t body = 2 * sev + strlen(sqlstate) + 2 + strlen(message) + 2 + 1;
	uint8_t *q;

	if (detail)
		body += strlen(detail) + 2;
	if (hint)
		body += strlen(hint) + 2;
	q = msg_begin(w, type, body);
	if (!q)
		return;
	/* 'S' may be localised; 'V' never is, and clients since 9.6 read it. */
	*q++ = 'S';
	q = putstr(q, severity);
	*q++ = 'V';
	q = putstr(q, severity);
	*q++ = 'C';
	q = putstr(q, sqlstate);
	*q++ = 'M';
	q = putstr(q, message);
	if (detail) {
		*q++ = 'D';
		q = putstr(q, detail);
	}
	if (hint) {
		*q++ = 'H';
		q = putstr(q, hint);
	}
	*q = 0;
}

void msg_error(struct wbuf *w, const char *severity, const char *sqlstate,
	       const char *message, const char *detail, const char *hint)
{
	msg_fields(w, 'E', severity, sqlstate, message, detail, hint);
}

void msg_notice(struct wbuf *w, const char *sqlstate, const char *message)
{
	msg_fields(w, 'N', "NOTICE", sqlstate, message, NULL, NULL);
}

void msg_auth(struct wbuf *w, uint32_t code, const void *data, size_t n)
{
	uint8_t *q = msg_begin(w, 'R', 4 + n);

	if (q)
		putmem(put32(q, code), data, n);
}

void msg_param_status(struct wbuf *w, const char *name, const char *value)
{
	uint8_t *q = msg_begin(w, 'S', strlen(name) + 1 + strlen(value) + 1);

	if (q)
		putstr(putstr(q, name), value);
}

void msg_backend_key(struct wbuf *w, uint32_t pid, uint32_t key)
{
	uint8_t *q = msg_begin(w, 'K', 8);

	if (q)
		put32(put32(q, pid), key);
}

void msg_ready(struct wbuf *w, char status)
{
	uint8_t *q = msg_begin(w, 'Z', 1);

	if (q)
		*q = (uint8_t)status;
}

void msg_query(struct wbuf *w, const char *sql)
{
	uint8_t *q = msg_begin(w, 'Q', strlen(sql) + 1);

	if (q)
		putstr(q, sql);
}

void msg_terminate(struct wbuf *w)
{
	msg_empty(w, 'X');
}

void msg_named(struct wbuf *w, char type, const void *prefix, size_t plen, const char *name,
	       const void *rest, size_t rlen)
{
	size_t nlen = strlen(name) + 1;
	uint8_t *q = msg_begin(w, (uint8_t)type, plen + nlen + rlen);
	if (!q)
		return;
	if (plen)
		memcpy(q, prefix, plen);
	memcpy(q + plen, name, nlen);
	if (rlen)
		memcpy(q + plen + nlen, rest, rlen);
}

void msg_empty(struct wbuf *w, char type)
{
	(void)msg_begin(w, (uint8_t)type, 0);
}

void msg_startup(struct wbuf *w, const char *const *kv)
{
	size_t body = 4 + 1;
	uint8_t *q;

	for (const char *const *k = kv; *k; k++)
		body += strlen(*k) + 1;
	q = msg_begin(w, 0, body);
	if (!q)
		return;
	q = put32(q, PROTO_V3);
	for (const char *const *k = kv; *k; k++)
		q = putstr(q, *k);
	*q = 0;
}

void msg_cancel(struct wbuf *w, uint32_t pid, uint32_t key)
{
	uint8_t *q = msg_begin(w, 0, 12);

	if (q)
		put32(put32(put32(q, PROTO_CANCEL_CODE), pid), key);
}

void msg_password(struct wbuf *w, const char *password)
{
	uint8_t *q = msg_begin(w, 'p', strlen(password) + 1);

	if (q)
		putstr(q, password);
}

void msg_sasl_initial(struct wbuf *w, const char *mechanism, const void *data, size_t n)
{
	uint8_t *q;

	if (!data)
		n = 0;
	q = msg_begin(w, 'p', strlen(mechanism) + 1 + 4 + n);
	if (!q)
		return;
	q = putstr(q, mechanism);
	/* -1: no initial response at all, which is not the same as an empty one. */
	putmem(put32(q, data ? (uint32_t)n : UINT32_MAX), data, n);
}

void msg_sasl_response(struct wbuf *w, const void *data, size_t n)
{
	uint8_t *q = msg_begin(w, 'p', n);

	if (q)
		putmem(q, data, n);
}

void msg_byte(struct wbuf *w, char c)
{
	if (w->overflow || w->len == w->cap) {
		w->overflow = true;
		return;
	}
	w->p[w->len++] = (uint8_t)c;
}

/* The NUL-terminated string at p[0..n), or NULL when no NUL ends it in range. */
static const char *str_at(const uint8_t *p, size_t n, size_t *slen)
{
	const uint8_t *z = n ? memchr(p, 0, n) : NULL;

	if (!z)
		return NULL;
	*slen = (size_t)(z - p);
	return (const char *)p;
}

static int parse_params(const uint8_t *pkt, size_t len, struct startup *s, const char **why)
{
	size_t off = 8, k;

	for (;;) {
		const char *name, *value;

		if (off == len) {
			*why = "startup packet lacks its final terminator";
			return -EPROTO;
		}
		if (!pkt[off])
			break;
		name = str_at(pkt + off, len - off, &k);
		if (!name) {
			*why = "unterminated startup parameter name";
			return -EPROTO;
		}
		off += k + 1;
		value = str_at(pkt + off, len - off, &k);
		if (!value) {
			*why = "startup parameter without a value";
			return -EPROTO;
		}
		off += k + 1;
		if (s->nparams == PROTO_STARTUP_MAX_PARAMS) {
			*why = "too many startup parameters";
			return -EPROTO;
		}
		/* One meaning per name: we and the server must not read different ones. */
		if (startup_get(s, name)) {
			*why = "duplicate startup parameter";
			return -EPROTO;
		}
		s->name[s->nparams] = name;
		s->value[s->nparams++] = value;
	}
	if (off + 1 != len) {
		*why = "bytes after the startup packet's terminator";
		return -EPROTO;
	}
	if (!startup_get(s, "user") || !*startup_get(s, "user")) {
		*why = "no user name in startup packet";
		return -EPROTO;
	}
	return 0;
}

int msg_parse_startup(const uint8_t *pkt, size_t len, struct startup *s, const char **why)
{
	/* Worker threads each format their own reason; it lives until their next call. */
	static _Thread_local char reason[64];

	s->code = s->pid = s->key = 0;
	s->nparams = 0;
	if (len < 8) {
		*why = "startup packet too short";
		return -EPROTO;
	}
	if (msg_get32(pkt) != len) {
		*why = "startup packet length does not match its length field";
		return -EPROTO;
	}
	if (len > PROTO_STARTUP_MAX) {
		*why = "startup packet too long";
		return -EPROTO;
	}
	s->code = msg_get32(pkt + 4);
	switch (s->code) {
	case PROTO_SSL_CODE:
	case PROTO_GSSENC_CODE:
		if (len != 8) {
			*why = "bad SSLRequest or GSSENCRequest length";
			return -EPROTO;
		}
		return 0;
	case PROTO_CANCEL_CODE:
		if (len != 16) {
			*why = "bad CancelRequest length";
			return -EPROTO;
		}
		s->pid = msg_get32(pkt + 8);
		s->key = msg_get32(pkt + 12);
		return 0;
	case PROTO_V3:
		return parse_params(pkt, len, s, why);
	}
	snprintf(reason, sizeof(reason), "unsupported frontend protocol %u.%u",
		 s->code >> 16, s->code & 0xffff);
	*why = reason;
	return -EPROTO;
}

const char *startup_get(const struct startup *s, const char *name)
{
	for (size_t i = 0; i < s->nparams; i++)
		if (!strcmp(s->name[i], name))
			return s->value[i];
	return NULL;
}

int msg_parse_fields(const uint8_t *body, size_t n, struct msg_fields *f)
{
	size_t off = 0, k;

	*f = (struct msg_fields){ 0 };
	while (off < n && body[off]) {
		uint8_t type = body[off++];
		const char *v = str_at(body + off, n - off, &k);

		if (!v)
			return -EPROTO;
		off += k + 1;
		switch (type) {
		case 'S':
			if (!f->severity)
				f->severity = v;
			break;
		case 'V':
			f->severity = v;
			break;
		case 'C':
			f->code = v;
			break;
		case 'M':
			f->message = v;
			break;
		case 'D':
			f->detail = v;
			break;
		case 'H':
			f->hint = v;
			break;
		}
	}
	/* The terminator must be the body's last byte. */
	return off + 1 == n ? 0 : -EPROTO;
}

int msg_parse_param_status(const uint8_t *body, size_t n, const char **name,
			   const char **value)
{
	size_t k, m;

	*name = str_at(body, n, &k);
	if (!*name)
		return -EPROTO;
	*value = str_at(body + k + 1, n - k - 1, &m);
	return *value && k + 1 + m + 1 == n ? 0 : -EPROTO;
}

int msg_parse_backend_key(const uint8_t *body, size_t n, uint32_t *pid, uint32_t *key)
{
	if (n != 8)
		return -EPROTO;
	*pid = msg_get32(body);
	*key = msg_get32(body + 4);
	return 0;
}

int msg_parse_auth(const uint8_t *body, size_t n, uint32_t *code,
		   const uint8_t **data, size_t *dn)
{
	if (n < 4)
		return -EPROTO;
	*code = msg_get32(body);
	*data = body + 4;
	*dn = n - 4;
	/* Fixed shapes are checked here so callers can trust them. */
	switch (*code) {
	case AUTH_OK:
	case AUTH_CLEARTEXT:
		return *dn == 0 ? 0 : -EPROTO;
	case AUTH_MD5:
		return *dn == 4 ? 0 : -EPROTO;
	}
	return 0;
}

int msg_parse_sasl_initial(const uint8_t *body, size_t n, const char **mechanism,
			   const uint8_t **data, size_t *dn)
{
	size_t k, rest;
	uint32_t len;

	*mechanism = str_at(body, n, &k);
	if (!*mechanism || n - k - 1 < 4)
		return -EPROTO;
	rest = n - k - 1 - 4;
	len = msg_get32(body + k + 1);
	*data = NULL;
	*dn = 0;
	if (len == UINT32_MAX)
		return rest == 0 ? 0 : -EPROTO;
	if (len != rest)
		return -EPROTO;
	*data = body + k + 1 + 4;
	*dn = len;
	return 0;
}

int msg_parse_password(const uint8_t *body, size_t n, const char **password)
{
	size_t k;

	*password = str_at(body, n, &k);
	return *password && k + 1 == n ? 0 : -EPROTO;
}

bool startup_next(const uint8_t *pkt, size_t len, size_t *off, const char **name, const char **value)
{
	/* The packet was validated by msg_parse_startup: every name has a value, a NUL ends the list. */
	if (*off < 8)
		*off = 8;
	if (*off >= len || pkt[*off] == 0)
		return false;
	*name = (const char *)pkt + *off;
	*off += strlen(*name) + 1;
	*value = (const char *)pkt + *off;
	*off += strlen(*value) + 1;
	return true;
}
