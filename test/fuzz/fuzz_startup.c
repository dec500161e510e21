/* libFuzzer target for msg_parse_startup: whatever it accepts must rebuild to the same bytes. */
#include "proto/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The string lies in pkt and ends there with its own NUL. */
static void in_packet(const char *s, const uint8_t *pkt, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;

	if (p < pkt + 8 || p >= pkt + len || !memchr(p, 0, (size_t)(pkt + len - p)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t again[PROTO_STARTUP_MAX];
	const char *kv[2 * PROTO_STARTUP_MAX_PARAMS + 1];
	struct wbuf w = wbuf_on(again, sizeof(again));
	struct startup s;
	const char *why = NULL;
	int rc = msg_parse_startup(data, size, &s, &why);

	if (rc) {
		if (rc != -EPROTO || !why)
			abort();
		return 0;
	}
	switch (s.code) {
	case PROTO_V3:
		if (!s.nparams || s.nparams > PROTO_STARTUP_MAX_PARAMS || !startup_get(&s, "user"))
			abort();
		for (size_t i = 0; i < s.nparams; i++) {
			in_packet(s.name[i], data, size);
			in_packet(s.value[i], data, size);
			kv[2 * i] = s.name[i];
			kv[2 * i + 1] = s.value[i];
		}
		kv[2 * s.nparams] = NULL;
		msg_startup(&w, kv);
		break;
	case PROTO_CANCEL_CODE:
		msg_cancel(&w, s.pid, s.key);
		break;
	case PROTO_SSL_CODE:
	case PROTO_GSSENC_CODE:
		if (size != 8)
			abort();
		return 0;
	default:
		abort();
	}
	if (w.overflow || w.len != size || memcmp(again, data, size))
		abort();
	return 0;
}
