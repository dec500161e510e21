/* What lib/cfg.c shares with section parsers kept in their own files (lib/cfg_tenant.c): the YAML walk, its key tables. */
#pragma once

#include "lib/cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Nothing can start without its configuration, so running out of memory here is not worth unwinding. */
#define cfg_oom() do { fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__); abort(); } while (0)

void *cfg_xcalloc(size_t n, size_t size);
void *cfg_xrealloc(void *p, size_t size);
char *cfg_xstrdup(const char *s);

struct diag;
struct ref;

/* One load in progress: the document being walked, the cfg being filled, and the problems found so far. */
struct ctx {
	const char *path;
	yaml_document_t *doc;
	struct cfg *c;
	struct diag *diag;
	size_t ndiag;
	struct ref *refs;
	size_t nrefs;
};

/* Records a problem at m; cfg_load hands them all out, in file order, once the walk is over. */
__attribute__((format(printf, 3, 4)))
void cfg_report(struct ctx *x, yaml_mark_t m, const char *fmt, ...);

struct key;
typedef void parse_fn(struct ctx *x, const struct key *k, const yaml_node_t *v, void *field);

enum {
	K_REQUIRED = 1 << 0,
	K_NULLABLE = 1 << 1,   /* an empty value or null leaves the field NULL */
	K_NONEMPTY = 1 << 2,
};

struct section {
	const struct key *keys;
	size_t n;
};

#define SECTION(keys) { keys, sizeof(keys) / sizeof(keys[0]) }

/* One key of a mapping: how to parse its value, and where in the struct being filled it goes. */
struct key {
	const char *name;
	parse_fn *parse;
	size_t off;                 /* offset of the field in the struct being filled */
	const char *expect;         /* completes "'name' must be ..." */
	unsigned flags;
	const struct section *sub;  /* for a nested mapping parsed into the same struct */
};

static inline yaml_node_t *node(struct ctx *x, int i)
{
	return yaml_document_get_node(x->doc, i);
}

static inline size_t npairs(const yaml_node_t *m)
{
	return (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
}

static inline const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* libyaml escapes can put NUL bytes in a scalar; C strings would silently cut them. */
static inline bool has_nul(const yaml_node_t *n)
{
	return strlen(sval(n)) != n->data.scalar.length;
}

/* An empty plain value or YAML's null spellings; a quoted "" is a real empty string. */
static inline bool is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = sval(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* A value that may be one scalar or a sequence of them, seen as a list. */
static inline size_t list_len(const yaml_node_t *v)
{
	return v->type == YAML_SEQUENCE_NODE ?
	       (size_t)(v->data.sequence.items.top - v->data.sequence.items.start) : 1;
}

static inline const yaml_node_t *list_item(struct ctx *x, const yaml_node_t *v, size_t i)
{
	return v->type == YAML_SEQUENCE_NODE ? node(x, v->data.sequence.items.start[i]) : v;
}

/* Reports "'key' must be <k->expect>", followed by ", not '<text>'" when text is given. */
void cfg_bad(struct ctx *x, const struct key *k, const yaml_node_t *v, const char *text);
/* The interpolated text of scalar value v (free it), or NULL after reporting why there is none. */
char *cfg_text(struct ctx *x, const struct key *k, const yaml_node_t *v);
/* A mapping key as a C string, or NULL after reporting a non-string or a repeated key. */
const char *cfg_key_name(struct ctx *x, const yaml_node_t *map, const yaml_node_pair_t *p);
/*
 * Parses mapping map by the keys of s into base. A missing required key is
 * reported at owner (the key that introduced the mapping, else the mapping).
 */
void cfg_parse_map(struct ctx *x, const yaml_node_t *map, const struct section *s, void *base,
		   const char *kind, const yaml_node_t *owner);
/* Parses one "name: { ... }" entry of a named mapping (users:, databases:, tenants:) into base. */
void cfg_parse_entry(struct ctx *x, const yaml_node_pair_t *p, const struct section *s, void *base,
		     const char *kind);
/* The value node of key name in mapping m, or NULL. */
const yaml_node_t *cfg_map_get(struct ctx *x, const yaml_node_t *m, const char *name);

/* Value parsers for key tables: each leaves its field untouched after reporting a bad value. */
parse_fn cfg_p_str;     /* char *; honours K_NULLABLE and K_NONEMPTY */
parse_fn cfg_p_count;   /* uint32_t, at least 1 */
/* A decimal integer within [min, max] into *n, or a report. */
void cfg_p_uint(struct ctx *x, const struct key *k, const yaml_node_t *v, uint64_t min, uint64_t max,
		uint64_t *n);
/* The index of v's text in names, or -1 after reporting. */
int cfg_p_enum(struct ctx *x, const struct key *k, const yaml_node_t *v, const char *const *names, size_t n);

#define P_ENUM(fn, type, names)                                                         \
	static void fn(struct ctx *x, const struct key *k, const yaml_node_t *v, void *f) \
	{                                                                               \
		int i = cfg_p_enum(x, k, v, names, sizeof(names) / sizeof(names[0]));  \
		if (i >= 0)                                                             \
			*(type *)f = (type)i;                                           \
	}

/* lib/cfg_tenant.c: the top-level tenants: key, given the whole struct cfg; and freeing what it filled. */
parse_fn cfg_p_tenants;
void cfg_tenants_free(struct cfg *c);
