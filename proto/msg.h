/* PostgreSQL v3 message builders and parsers over caller-supplied buffers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PROTO_V3          196608u   /* 3.0 */
#define PROTO_CANCEL_CODE 80877102u
#define PROTO_SSL_CODE    80877103u
#define PROTO_GSSENC_CODE 80877104u
#define PROTO_STARTUP_MAX 10000u    /* PostgreSQL's own bound on a startup packet */
#define PROTO_STARTUP_MAX_PARAMS 64

/*
 * A write cursor over a caller-owned buffer. Builders append whole messages;
 * when one does not fit, nothing of it is written and `overflow` is set, so a
 * caller can build several messages and check once.
 */
struct wbuf {
	uint8_t *p;
	size_t   len;
	size_t   cap;
	bool     overflow;
};

/* A big-endian int32 as the protocol writes lengths and codes. */
static inline uint32_t msg_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline struct wbuf wbuf_on(void *p, size_t cap)
{
	return (struct wbuf){ .p = p, .len = 0, .cap = cap, .overflow = false };
}

/* Builders: each appends one complete message to w. */
void msg_error(struct wbuf *w, const char *severity, const char *sqlstate,
	       const char *message, const char *detail, const char *hint);
void msg_notice(struct wbuf *w, const char *sqlstate, const char *message);
void msg_auth(struct wbuf *w, uint32_t code, const void *data, size_t n);
void msg_param_status(struct wbuf *w, const char *name, const char *value);
void msg_backend_key(struct wbuf *w, uint32_t pid, uint32_t key);
void msg_ready(struct wbuf *w, char status);
void msg_query(struct wbuf *w, const char *sql);
void msg_terminate(struct wbuf *w);
/*
 * A message of type whose body is prefix, a NUL-terminated name, then rest:
 * how Parse, Bind, Describe and Close carry a statement name, so a name can
 * be swapped. MSG_NAMED_LEN is its total size, type byte included.
 */
#define MSG_NAMED_LEN(plen, name, rlen) (5 + (plen) + strlen(name) + 1 + (rlen))
void msg_named(struct wbuf *w, char type, const void *prefix, size_t plen, const char *name,
	       const void *rest, size_t rlen);
/* A message with no body: ParseComplete '1', CloseComplete '3', ... */
void msg_empty(struct wbuf *w, char type);
/* kv: name, value, name, value, ..., NULL. Protocol 3.0. */
void msg_startup(struct wbuf *w, const char *const *kv);
void msg_cancel(struct wbuf *w, uint32_t pid, uint32_t key);
void msg_password(struct wbuf *w, const char *password);
void msg_sasl_initial(struct wbuf *w, const char *mechanism, const void *data, size_t n);
void msg_sasl_response(struct wbuf *w, const void *data, size_t n);
/* A single byte: the answer to SSLRequest / GSSENCRequest. */
void msg_byte(struct wbuf *w, char c);

/* Authentication request codes ('R'). */
enum {
	AUTH_OK             = 0,
	AUTH_CLEARTEXT      = 3,
	AUTH_MD5            = 5,
	AUTH_SASL           = 10,
	AUTH_SASL_CONTINUE  = 11,
	AUTH_SASL_FINAL     = 12,
};

/*
 * A startup-phase packet (no type byte). For PROTO_V3 the parameters point
 * into the packet, which must stay alive; for PROTO_CANCEL_CODE pid/key are set.
 */
struct startup {
	uint32_t    code;
	uint32_t    pid, key;
	size_t      nparams;
	const char *name[PROTO_STARTUP_MAX_PARAMS];
	const char *value[PROTO_STARTUP_MAX_PARAMS];
};

/*
 * Parses a whole startup packet pkt[0..len), its 4-byte length included.
 * Returns 0, or -EPROTO with *why set to a static reason (bad length, unknown
 * code, unterminated strings, missing "user", too many parameters...); the
 * unknown-code reason is thread-local and lasts until this thread's next call.
 * Duplicate parameter names are refused, so every name has one meaning.
 */
int msg_parse_startup(const uint8_t *pkt, size_t len, struct startup *s,
		      const char **why) __attribute__((warn_unused_result));

/* The value of a startup parameter, or NULL. */
const char *startup_get(const struct startup *s, const char *name);
/*
 * Walks the parameters of a v3 startup packet that msg_parse_startup accepted,
 * without a struct startup: start with *off = 0; false after the last pair.
 */
bool startup_next(const uint8_t *pkt, size_t len, size_t *off, const char **name,
		  const char **value);

/* Fields of an ErrorResponse / NoticeResponse; strings point into the body. */
struct msg_fields {
	const char *severity;   /* 'V' if present, else 'S' */
	const char *code;       /* 'C' */
	const char *message;    /* 'M' */
	const char *detail;     /* 'D' */
	const char *hint;       /* 'H' */
};

/*
 * Parsers take the body of one complete message (after type and length).
 * They return 0 or -EPROTO; string results point into body.
 */
int msg_parse_fields(const uint8_t *body, size_t n, struct msg_fields *f)
	__attribute__((warn_unused_result));
int msg_parse_param_status(const uint8_t *body, size_t n, const char **name,
			   const char **value) __attribute__((warn_unused_result));
int msg_parse_backend_key(const uint8_t *body, size_t n, uint32_t *pid,
			  uint32_t *key) __attribute__((warn_unused_result));
/* 'R': *code is the request; data/dn the rest (salt, SASL payload, ...). */
int msg_parse_auth(const uint8_t *body, size_t n, uint32_t *code,
		   const uint8_t **data, size_t *dn) __attribute__((warn_unused_result));
/* 'p' as SASLInitialResponse: mechanism name and initial client response. */
int msg_parse_sasl_initial(const uint8_t *body, size_t n, const char **mechanism,
			   const uint8_t **data, size_t *dn) __attribute__((warn_unused_result));
/* 'p' as PasswordMessage: one NUL-terminated string filling the body. */
int msg_parse_password(const uint8_t *body, size_t n, const char **password)
	__attribute__((warn_unused_result));
