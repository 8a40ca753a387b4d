/* Small helpers shared by every kubesim file: a growable byte buffer, a string-keyed hash map,
 * a seedable PRNG (so --seed reproduces a run), clocks and cJSON conveniences. */
#ifndef KS_UTIL_H
#define KS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

/* ---- buffer ---- */
struct ks_buf {
    char *data; /* owns; always NUL-terminated when len > 0 */
    size_t len, cap;
    int oom; /* sticky: set when an allocation failed; the content is then truncated */
};
void ks_buf_init(struct ks_buf *b);
void ks_buf_free(struct ks_buf *b);
void ks_buf_add(struct ks_buf *b, const char *s, size_t n);
void ks_buf_adds(struct ks_buf *b, const char *s);
void ks_buf_reserve(struct ks_buf *b, size_t extra); /* room for extra more bytes (sets oom) */
void ks_buf_printf(struct ks_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *ks_buf_steal(struct ks_buf *b); /* returns the owned string ("" when empty), resets b */

/* ---- string map (chained, grows) ---- */
struct ks_map_ent {
    char *key; /* owns */
    void *val; /* borrows: the caller owns values */
    struct ks_map_ent *next;
};
struct ks_map {
    struct ks_map_ent **b;
    size_t nb, n;
};
void ks_map_init(struct ks_map *m);
void ks_map_free(struct ks_map *m); /* frees keys and entries, not values */
void *ks_map_get(const struct ks_map *m, const char *key);
int ks_map_put(struct ks_map *m, const char *key, void *val); /* replaces; -1 on OOM */
void *ks_map_del(struct ks_map *m, const char *key);          /* returns the removed value */
/* Iteration: for (size_t i = 0; i < m->nb; i++) for (e = m->b[i]; e; e = e->next) */

/* ---- PRNG (splitmix64 seeded xoshiro256**) ---- */
struct ks_rng {
    uint64_t s[4];
};
void ks_rng_seed(struct ks_rng *r, uint64_t seed);
uint64_t ks_rng_next(struct ks_rng *r);
double ks_rng_unit(struct ks_rng *r);                   /* [0,1) */
void ks_rng_suffix(struct ks_rng *r, char *out, int n); /* k8s-style name suffix alphabet */
void ks_rng_uid(struct ks_rng *r, char out[37]);

/* ---- clocks ---- */
double ks_mono(void);                       /* monotonic seconds */
void ks_rfc3339(double wall, char out[32]); /* 2026-07-26T10:20:20Z */
double ks_wall(void);

/* ---- strings ---- */
char *ks_strdup(const char *s);
char *ks_strndup(const char *s, size_t n);
char *ks_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ks_streq(const char *a, const char *b); /* NULL-safe */
uint32_t ks_fnv32(const char *s, size_t n);
void ks_hash_name(uint32_t h, char *out, size_t outsz); /* safe-encoded like pod-template-hash */

/* ---- cJSON conveniences (all NULL-safe) ---- */
cJSON *ks_j(const cJSON *o, const char *key);         /* case-sensitive member */
cJSON *ks_jpath(const cJSON *o, const char *dotted);  /* "spec.template.metadata" */
const char *ks_jstr(const cJSON *o, const char *key); /* string member or NULL */
double ks_jnum(const cJSON *o, const char *key, double dflt);
int ks_jbool(const cJSON *o, const char *key, int dflt);
cJSON *ks_jobj(cJSON *o, const char *key);         /* get or create an object member */
void ks_jset(cJSON *o, const char *key, cJSON *v); /* replace or add; takes v */
void ks_jset_str(cJSON *o, const char *key, const char *s);
void ks_jset_num(cJSON *o, const char *key, double n);
void ks_jset_bool(cJSON *o, const char *key, int b);
int ks_jequal(const cJSON *a, const cJSON *b);       /* deep equality, object order free */
char *ks_jprint(const cJSON *o);                     /* unformatted; NULL on OOM */
int ks_jprint_buf(struct ks_buf *b, const cJSON *o); /* appends the same text; -1 on failure */
/* FNV-1a of a canonical form (object keys sorted): equal content, equal hash, whatever the
 * member order a client sent. */
uint32_t ks_jhash(const cJSON *o);

/* YAML (one document, or the first of a stream) to cJSON; NULL with *err set on failure.
 * Plain scalars get YAML 1.1-ish typing (ints, floats, true/false, null). */
cJSON *ks_yaml_parse(const char *text, size_t len, char **err);
/* Parses every document of a stream into a JSON array. */
cJSON *ks_yaml_parse_all(const char *text, size_t len, char **err);

#endif
