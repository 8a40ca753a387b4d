/* Buffers, maps, PRNG, clocks and cJSON helpers for kubesim. */
#include "util.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ks_buf_init(struct ks_buf *b) { memset(b, 0, sizeof *b); }

void ks_buf_free(struct ks_buf *b)
{
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int buf_grow(struct ks_buf *b, size_t extra)
{
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void ks_buf_add(struct ks_buf *b, const char *s, size_t n)
{
    if (buf_grow(b, n) < 0) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void ks_buf_adds(struct ks_buf *b, const char *s) { ks_buf_add(b, s, strlen(s)); }

void ks_buf_reserve(struct ks_buf *b, size_t extra) { buf_grow(b, extra); }

void ks_buf_printf(struct ks_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        ks_buf_add(b, tmp, (size_t)n);
        return;
    }
    if (buf_grow(b, (size_t)n) < 0) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *ks_buf_steal(struct ks_buf *b)
{
    char *d = b->data;
    if (!d) d = ks_strdup("");
    memset(b, 0, sizeof *b);
    return d;
}

/* ---- map ---- */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void ks_map_init(struct ks_map *m) { memset(m, 0, sizeof *m); }

void ks_map_free(struct ks_map *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nb; i++) {
        struct ks_map_ent *e = m->b[i];
        while (e) {
            struct ks_map_ent *n = e->next;
            free(e->key);
            free(e);
            e = n;
        }
    }
    free(m->b);
    memset(m, 0, sizeof *m);
}

void *ks_map_get(const struct ks_map *m, const char *key)
{
    if (!m->nb) return NULL;
    for (struct ks_map_ent *e = m->b[hash_str(key) % m->nb]; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e->val;
    return NULL;
}

static int map_rehash(struct ks_map *m, size_t nb)
{
    struct ks_map_ent **b = calloc(nb, sizeof *b);
    if (!b) return -1;
    for (size_t i = 0; i < m->nb; i++) {
        struct ks_map_ent *e = m->b[i];
        while (e) {
            struct ks_map_ent *n = e->next;
            size_t h = hash_str(e->key) % nb;
            e->next = b[h];
            b[h] = e;
            e = n;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int ks_map_put(struct ks_map *m, const char *key, void *val)
{
    if (!m->nb && map_rehash(m, 64) < 0) return -1;
    size_t h = hash_str(key) % m->nb;
    for (struct ks_map_ent *e = m->b[h]; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            e->val = val;
            return 0;
        }
    if (m->n + 1 > m->nb * 2) {
        if (map_rehash(m, m->nb * 4) < 0) return -1;
        h = hash_str(key) % m->nb;
    }
    struct ks_map_ent *e = malloc(sizeof *e);
    if (!e) return -1;
    e->key = ks_strdup(key);
    if (!e->key) {
        free(e);
        return -1;
    }
    e->val = val;
    e->next = m->b[h];
    m->b[h] = e;
    m->n++;
    return 0;
}

void *ks_map_del(struct ks_map *m, const char *key)
{
    if (!m->nb) return NULL;
    struct ks_map_ent **pp = &m->b[hash_str(key) % m->nb];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0) {
            struct ks_map_ent *e = *pp;
            void *v = e->val;
            *pp = e->next;
            free(e->key);
            free(e);
            m->n--;
            return v;
        }
    return NULL;
}

/* ---- rng ---- */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ks_rng_seed(struct ks_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ks_rng_next(struct ks_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double ks_rng_unit(struct ks_rng *r) { return (double)(ks_rng_next(r) >> 11) / 9007199254740992.0; }

/* The alphabet Kubernetes uses for generated names: no vowels, no confusable characters. */
static const char SAFE[] = "bcdfghjklmnpqrstvwxz2456789";

void ks_rng_suffix(struct ks_rng *r, char *out, int n)
{
    for (int i = 0; i < n; i++) out[i] = SAFE[ks_rng_next(r) % (sizeof SAFE - 1)];
    out[n] = 0;
}

void ks_rng_uid(struct ks_rng *r, char out[37])
{
    uint64_t a = ks_rng_next(r), b = ks_rng_next(r);
    snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
             (unsigned)a & 0xfff, (unsigned)((b >> 48) & 0x3fff) | 0x8000, (unsigned long long)(b & 0xffffffffffffull));
}

/* ---- clocks ---- */
double ks_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ks_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ks_rfc3339(double wall, char out[32])
{
    time_t t = (time_t)floor(wall);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- strings ---- */
char *ks_strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

char *ks_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *ks_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *d = malloc((size_t)n + 1);
    if (!d) return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

int ks_streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

uint32_t ks_fnv32(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

void ks_hash_name(uint32_t h, char *out, size_t outsz)
{
    char dec[16];
    snprintf(dec, sizeof dec, "%u", h);
    size_t i = 0;
    for (; dec[i] && i + 1 < outsz; i++) out[i] = SAFE[(dec[i] - '0' + i * 7) % (sizeof SAFE - 1)];
    out[i] = 0;
}

/* ---- cJSON ---- */
cJSON *ks_j(const cJSON *o, const char *key)
{
    if (!o || !cJSON_IsObject(o)) return NULL;
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

cJSON *ks_jpath(const cJSON *o, const char *dotted)
{
    char part[128];
    const char *p = dotted;
    const cJSON *cur = o;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof part) return NULL;
        memcpy(part, p, n);
        part[n] = 0;
        cur = ks_j(cur, part);
        p += n;
        if (*p == '.') p++;
    }
    return (cJSON *)cur;
}

const char *ks_jstr(const cJSON *o, const char *key)
{
    cJSON *v = ks_j(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double ks_jnum(const cJSON *o, const char *key, double dflt)
{
    cJSON *v = ks_j(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int ks_jbool(const cJSON *o, const char *key, int dflt)
{
    cJSON *v = ks_j(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

cJSON *ks_jobj(cJSON *o, const char *key)
{
    if (!o) return NULL;
    cJSON *v = ks_j(o, key);
    if (cJSON_IsObject(v)) return v;
    cJSON *n = cJSON_CreateObject();
    if (!n) return NULL;
    if (v)
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, n);
    else
        cJSON_AddItemToObject(o, key, n);
    return n;
}

void ks_jset(cJSON *o, const char *key, cJSON *v)
{
    if (!o || !v) {
        cJSON_Delete(v);
        return;
    }
    if (ks_j(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
    else
        cJSON_AddItemToObject(o, key, v);
}

void ks_jset_str(cJSON *o, const char *key, const char *s) { ks_jset(o, key, cJSON_CreateString(s ? s : "")); }
void ks_jset_num(cJSON *o, const char *key, double n) { ks_jset(o, key, cJSON_CreateNumber(n)); }
void ks_jset_bool(cJSON *o, const char *key, int b) { ks_jset(o, key, cJSON_CreateBool(b)); }

/* cJSON_Compare looks every member up by name on both sides, quadratic in an object's size;
 * the objects compared here (an object and its edited copy) almost always list their members
 * in the same order, so this walks both in step, and looks members up by name only from the
 * first one where they differ in name or number. The result is cJSON_Compare's, except that
 * it can be stricter with duplicate member names. */
static int jequal(const cJSON *a, const cJSON *b, int depth)
{
    if (a == b) return 1;
    if (!a || !b || (a->type & 0xFF) != (b->type & 0xFF)) return 0;
    switch (a->type & 0xFF) {
    case cJSON_False:
    case cJSON_True:
    case cJSON_NULL: return 1;
    case cJSON_Number: { /* cJSON's tolerance */
        double x = fabs(a->valuedouble), y = fabs(b->valuedouble);
        return fabs(a->valuedouble - b->valuedouble) <= (x > y ? x : y) * DBL_EPSILON;
    }
    case cJSON_String:
    case cJSON_Raw: return a->valuestring && b->valuestring && !strcmp(a->valuestring, b->valuestring);
    case cJSON_Array: {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!jequal(x, y, depth + 1)) return 0;
        return !x && !y;
    }
    case cJSON_Object: {
        if (depth > 200) return cJSON_Compare(a, b, 1);
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next) {
            if (!x->string || !y->string || strcmp(x->string, y->string)) break;
            if (!jequal(x, y, depth + 1)) return 0;
        }
        if (!x && !y) return 1;
        /* cJSON_Compare's rule: every member of each has an equal namesake in the other */
        cJSON_ArrayForEach(x, a)
        {
            y = x->string ? cJSON_GetObjectItemCaseSensitive(b, x->string) : NULL;
            if (!y || !jequal(x, y, depth + 1)) return 0;
        }
        cJSON_ArrayForEach(y, b)
        {
            x = y->string ? cJSON_GetObjectItemCaseSensitive(a, y->string) : NULL;
            if (!x || !jequal(y, x, depth + 1)) return 0;
        }
        return 1;
    }
    default: return 0;
    }
}

int ks_jequal(const cJSON *a, const cJSON *b)
{
    if (!a || !b) return a == b;
    return jequal(a, b, 0);
}

/* ---- printing ----
 * cJSON_PrintUnformatted grows its buffer by reallocation, checks every non-integer number
 * by reading it back, and is a third of the cost of a write (every write prints the object
 * for the watch history). This prints the same bytes: numbers as "%d" when they equal their
 * valueint, else "%1.15g" or, when that does not read back equal, "%1.17g"; strings with
 * cJSON's escapes. */

static void print_string(struct ks_buf *b, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    ks_buf_add(b, "\"", 1);
    const char *run = str;
    for (const char *p = str ? str : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 32 && c != '"' && c != '\\') continue;
        ks_buf_add(b, run, (size_t)(p - run));
        run = p + 1;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default: esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15]; n = 6;
        }
        ks_buf_add(b, esc, n);
    }
    if (str) ks_buf_add(b, run, strlen(run));
    ks_buf_add(b, "\"", 1);
}

static int print_number(struct ks_buf *b, const cJSON *o)
{
    char num[32];
    double d = o->valuedouble;
    int n;
    if (isnan(d) || isinf(d)) {
        n = snprintf(num, sizeof num, "null");
    } else if (d == (double)o->valueint) {
        /* integers, by far the most common: printed by hand */
        char *e = num + sizeof num, *p = e;
        long long v = o->valueint;
        int neg = v < 0;
        unsigned long long u = neg ? (unsigned long long)(-v) : (unsigned long long)v;
        do *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (neg) *--p = '-';
        ks_buf_add(b, p, (size_t)(e - p));
        return 0;
    } else {
        double back = 0;
        n = snprintf(num, sizeof num, "%1.15g", d);
        double x = fabs(back = strtod(num, NULL)), y = fabs(d);
        if (fabs(back - d) > (x > y ? x : y) * DBL_EPSILON) n = snprintf(num, sizeof num, "%1.17g", d);
    }
    if (n < 0 || n > 25) return -1; /* cJSON's buffer: fails the print */
    for (int i = 0; i < n; i++)
        if (num[i] == ',') num[i] = '.'; /* a locale's decimal comma */
    ks_buf_add(b, num, (size_t)n);
    return 0;
}

static int print_value(struct ks_buf *b, const cJSON *o, int depth)
{
    if (depth > 1000) return -1;
    switch (o->type & 0xFF) {
    case cJSON_NULL: ks_buf_add(b, "null", 4); return 0;
    case cJSON_False: ks_buf_add(b, "false", 5); return 0;
    case cJSON_True: ks_buf_add(b, "true", 4); return 0;
    case cJSON_Number: return print_number(b, o);
    case cJSON_Raw:
        if (!o->valuestring) return -1;
        ks_buf_adds(b, o->valuestring);
        return 0;
    case cJSON_String: print_string(b, o->valuestring); return 0;
    case cJSON_Array:
    case cJSON_Object: {
        int obj = (o->type & 0xFF) == cJSON_Object;
        ks_buf_add(b, obj ? "{" : "[", 1);
        for (const cJSON *c = o->child; c; c = c->next) {
            if (c != o->child) ks_buf_add(b, ",", 1);
            if (obj) {
                print_string(b, c->string);
                ks_buf_add(b, ":", 1);
            }
            if (print_value(b, c, depth + 1) < 0) return -1;
        }
        ks_buf_add(b, obj ? "}" : "]", 1);
        return 0;
    }
    default: return -1;
    }
}

int ks_jprint_buf(struct ks_buf *b, const cJSON *o)
{
#ifdef KS_VERIFY_FASTPATH
    size_t at = b->len;
#endif
    if (!o || print_value(b, o, 0) < 0 || b->oom) return -1;
#ifdef KS_VERIFY_FASTPATH
    char *want = cJSON_PrintUnformatted(o);
    if (!want || strlen(want) != b->len - at || memcmp(want, b->data + at, b->len - at)) {
        fprintf(stderr, "print mismatch:\n%s\n%.*s\n", want, (int)(b->len - at), b->data + at);
        abort();
    }
    free(want);
#endif
    return 0;
}

char *ks_jprint(const cJSON *o)
{
    struct ks_buf b;
    ks_buf_init(&b);
    if (ks_jprint_buf(&b, o) < 0) {
        ks_buf_free(&b);
        return NULL;
    }
    char *out = realloc(b.data, b.len + 1); /* kept as an object's text: no slack */
    if (!out) out = b.data;
    return out;
}

static uint32_t fnv_add(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int cmp_members(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static uint32_t jhash(uint32_t h, const cJSON *o, int depth, struct ks_buf *tmp)
{
    if (!o || depth > 200) return fnv_add(h, "~", 1);
    if (cJSON_IsObject(o)) {
        size_t n = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, o) n++;
        const cJSON **m = malloc((n ? n : 1) * sizeof *m);
        if (!m) return h;
        n = 0;
        cJSON_ArrayForEach(c, o) if (!cJSON_IsNull(c)) m[n++] = c; /* null = absent */
        qsort(m, n, sizeof *m, cmp_members);
        h = fnv_add(h, "{", 1);
        for (size_t i = 0; i < n; i++) {
            h = fnv_add(h, m[i]->string, strlen(m[i]->string) + 1);
            h = jhash(h, m[i], depth + 1, tmp);
        }
        free(m);
        return fnv_add(h, "}", 1);
    }
    if (cJSON_IsArray(o)) {
        h = fnv_add(h, "[", 1);
        const cJSON *c;
        cJSON_ArrayForEach(c, o) h = jhash(h, c, depth + 1, tmp);
        return fnv_add(h, "]", 1);
    }
    tmp->len = 0;
    if (ks_jprint_buf(tmp, o) == 0) h = fnv_add(h, tmp->data, tmp->len + 1); /* with the NUL, as before */
    return h;
}

uint32_t ks_jhash(const cJSON *o)
{
    struct ks_buf tmp;
    ks_buf_init(&tmp);
    uint32_t h = jhash(2166136261u, o, 0, &tmp);
    ks_buf_free(&tmp);
    return h;
}
