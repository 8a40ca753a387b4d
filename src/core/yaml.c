/* The YAML composer: libyaml's event parser turned into an ms_yaml_node tree with positions,
 * anchors/aliases, merge keys, duplicate-key detection and core-schema scalar resolution.
 * It keeps its own explicit stack, so deep nesting costs heap, not C stack. */
#include "core/yaml.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- arena: every node and string of a stream, freed at once ---- */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct arena {
    struct chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
    size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    struct chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static char *arena_strdup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (p) {
        if (len)
            memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

static void arena_free(struct arena *a)
{
    if (!a)
        return;
    while (a->head) {
        struct chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    free(a);
}

void ms_yaml_stream_free(struct ms_yaml_stream *s)
{
    if (!s)
        return;
    free(s->docs);
    free(s->error);
    arena_free(s->arena);
    free(s);
}

/* ---- scalar resolution ---- */

static int is_one_of(const char *t, size_t len, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == len && memcmp(t, *words, len) == 0)
            return 1;
    return 0;
}

static int digit_value(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return 99;
}

/* Digits of t[0..len) in base; returns 0 when any is not a digit or there are none. Sets
 * *overflow when the magnitude does not fit an int64 (the double still approximates it). */
static int parse_digits(const char *t, size_t len, int base, int negative, long long *out,
                        double *approx, int *overflow)
{
    if (len == 0)
        return 0;
    unsigned long long limit = negative ? (unsigned long long)INT64_MAX + 1 : INT64_MAX;
    unsigned long long u = 0;
    double d = 0;
    *overflow = 0;
    for (size_t i = 0; i < len; i++) {
        int v = digit_value((unsigned char)t[i]);
        if (v >= base)
            return 0;
        d = d * base + v;
        if (!*overflow) {
            if (u > (limit - (unsigned)v) / (unsigned)base)
                *overflow = 1;
            else
                u = u * (unsigned)base + (unsigned)v;
        }
    }
    if (!*overflow)
        *out = negative ? (long long)(0 - u) : (long long)u;
    *approx = negative ? -d : d;
    return 1;
}

static int is_float_syntax(const char *t, size_t len)
{
    size_t i = 0, digits = 0;
    if (i < len && (t[i] == '-' || t[i] == '+'))
        i++;
    while (i < len && t[i] >= '0' && t[i] <= '9')
        i++, digits++;
    if (i < len && t[i] == '.') {
        i++;
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (i < len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < len && (t[i] == '-' || t[i] == '+'))
            i++;
        size_t exp = 0;
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++, exp++;
        if (exp == 0)
            return 0;
    }
    return i == len;
}

enum ms_yaml_type ms_yaml_resolve(const char *t, size_t len, long long *integer, double *number)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    long long iv = 0;
    double dv = 0;
    int overflow = 0;

    if (is_one_of(t, len, nulls))
        return MS_YAML_NULL;
    if (is_one_of(t, len, trues)) {
        if (integer)
            *integer = 1;
        return MS_YAML_BOOL;
    }
    if (is_one_of(t, len, falses)) {
        if (integer)
            *integer = 0;
        return MS_YAML_BOOL;
    }
    if (len > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'o')) {
        if (!parse_digits(t + 2, len - 2, t[1] == 'x' ? 16 : 8, 0, &iv, &dv, &overflow))
            return MS_YAML_STR;
        goto integer_or_float;
    }
    size_t sign = (len > 0 && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
    int negative = sign && t[0] == '-';
    /* A leading 0 means octal, as in YAML 1.1 and so in kubectl (defaultMode: 0644); digits
     * 8 or 9 after it make it decimal again rather than a string. */
    if (len - sign > 1 && t[sign] == '0' &&
        parse_digits(t + sign, len - sign, 8, negative, &iv, &dv, &overflow))
        goto integer_or_float;
    if (parse_digits(t + sign, len - sign, 10, negative, &iv, &dv, &overflow))
        goto integer_or_float;
    if (is_one_of(t + sign, len - sign, infs)) {
        if (number)
            *number = negative ? -HUGE_VAL : HUGE_VAL;
        return MS_YAML_FLOAT;
    }
    if (is_one_of(t, len, nans)) {
        if (number)
            *number = NAN;
        return MS_YAML_FLOAT;
    }
    if (is_float_syntax(t, len)) {
        char buf[64];
        if (len < sizeof buf) {
            memcpy(buf, t, len);
            buf[len] = '\0';
            dv = strtod(buf, NULL);
        } else {
            char *copy = strndup(t, len);
            dv = copy ? strtod(copy, NULL) : NAN;
            free(copy);
        }
        if (number)
            *number = dv;
        return MS_YAML_FLOAT;
    }
    return MS_YAML_STR;

integer_or_float:
    if (overflow) { /* beyond int64: the nearest double, as Lua's tonumber does */
        if (number)
            *number = dv;
        return MS_YAML_FLOAT;
    }
    if (integer)
        *integer = iv;
    return MS_YAML_INT;
}

/* ---- the composer ---- */

#define TAG_PREFIX "tag:yaml.org,2002:"

struct frame {
    struct ms_yaml_node *node;  /* the collection being built */
    struct ms_yaml_node **kids; /* owns (malloc): items, or key,value,key,value... */
    size_t n, cap;
    long anchor; /* index in anchors, or -1 */
};

struct anchor {
    const char *name; /* in the arena */
    struct ms_yaml_node *node;
    int complete; /* an alias to an anchor still being built would make a cycle */
};

struct composer {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    const char *filename;
    struct ms_yaml_stream *s;
    struct arena *arena;
    struct frame *stack; /* owns */
    int depth, stack_cap;
    struct anchor *anchors; /* owns the array */
    size_t nanchors, anchors_cap;
    size_t docs_cap;
    struct ms_yaml_node *root;
    size_t total, max_nodes;
    int max_depth;
    int nomem;
};

/* Records the first error; returns MS_YAML_EPARSE so callers can `return fail(...)`. */
static int fail(struct composer *c, int line, int col, const char *fmt, ...)
{
    if (c->s->error)
        return MS_YAML_EPARSE;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = strlen(c->filename) + strlen(msg) + 32;
    c->s->error = malloc(n);
    if (!c->s->error) {
        c->nomem = 1;
        return MS_YAML_ENOMEM;
    }
    snprintf(c->s->error, n, "%s:%d:%d: %s", c->filename, line, col, msg);
    c->s->error_line = line;
    c->s->error_col = col;
    return MS_YAML_EPARSE;
}

static int nomem(struct composer *c)
{
    c->nomem = 1;
    return MS_YAML_ENOMEM;
}

/* A key or value quoted in a message: at most 40 bytes, control bytes as '?'. */
static const char *shown(const struct ms_yaml_node *n, char buf[48])
{
    size_t len = n->len > 40 ? 37 : n->len, j = 0;
    for (size_t i = 0; i < len; i++)
        buf[j++] = (unsigned char)n->text[i] < 0x20 ? '?' : n->text[i];
    if (len < n->len)
        buf[j++] = '.', buf[j++] = '.', buf[j++] = '.';
    buf[j] = '\0';
    return buf;
}

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static int count_node(struct composer *c, size_t n, const yaml_mark_t *m)
{
    c->total = sat_add(c->total, n);
    if (c->total > c->max_nodes)
        return fail(c, (int)m->line + 1, (int)m->column + 1,
                    "document too large: more than %zu nodes once aliases are expanded",
                    c->max_nodes);
    return 0;
}

static int add_node(struct composer *c, struct ms_yaml_node *node)
{
    if (c->depth == 0) {
        c->root = node;
        return 0;
    }
    struct frame *f = &c->stack[c->depth - 1];
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct ms_yaml_node **k = realloc(f->kids, cap * sizeof *k);
        if (!k)
            return nomem(c);
        f->kids = k;
        f->cap = cap;
    }
    f->kids[f->n++] = node;
    return 0;
}

static long add_anchor(struct composer *c, const yaml_char_t *name, struct ms_yaml_node *node,
                       int complete)
{
    if (!name)
        return -1;
    if (c->nanchors == c->anchors_cap) {
        size_t cap = c->anchors_cap ? c->anchors_cap * 2 : 16;
        struct anchor *a = realloc(c->anchors, cap * sizeof *a);
        if (!a) {
            nomem(c);
            return -2;
        }
        c->anchors = a;
        c->anchors_cap = cap;
    }
    const char *copy = arena_strdup(c->arena, (const char *)name, strlen((const char *)name));
    if (!copy) {
        nomem(c);
        return -2;
    }
    c->anchors[c->nanchors] = (struct anchor){copy, node, complete};
    return (long)c->nanchors++;
}

static struct ms_yaml_node *new_node(struct composer *c, const yaml_event_t *ev,
                                     const yaml_char_t *tag)
{
    struct ms_yaml_node *n = arena_alloc(c->arena, sizeof *n);
    if (!n) {
        nomem(c);
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    n->expanded = 1;
    if (tag) {
        n->tag = arena_strdup(c->arena, (const char *)tag, strlen((const char *)tag));
        if (!n->tag) {
            nomem(c);
            return NULL;
        }
    }
    return n;
}

static int tag_is(const struct ms_yaml_node *n, const char *name)
{
    return n->tag && strncmp(n->tag, TAG_PREFIX, sizeof TAG_PREFIX - 1) == 0 &&
           strcmp(n->tag + sizeof TAG_PREFIX - 1, name) == 0;
}

/* Types a scalar: quoted and block scalars are strings, explicit core tags are honoured (and
 * checked), other tags leave the plain resolution alone. */
static int type_scalar(struct composer *c, struct ms_yaml_node *n)
{
    long long iv = 0;
    double dv = 0;
    enum ms_yaml_type t = ms_yaml_resolve(n->text, n->len, &iv, &dv);
    const char *want = NULL;
    char buf[48];

    if (n->tag && strcmp(n->tag, "!") == 0) {
        t = MS_YAML_STR;
    } else if (n->tag && strncmp(n->tag, TAG_PREFIX, sizeof TAG_PREFIX - 1) == 0) {
        const char *name = n->tag + sizeof TAG_PREFIX - 1;
        if (!strcmp(name, "str") || !strcmp(name, "binary") || !strcmp(name, "timestamp")) {
            t = MS_YAML_STR;
        } else if (!strcmp(name, "int")) {
            want = "int";
            if (t != MS_YAML_INT)
                goto bad;
        } else if (!strcmp(name, "float")) {
            want = "float";
            if (t == MS_YAML_INT)
                dv = (double)iv, t = MS_YAML_FLOAT;
            if (t != MS_YAML_FLOAT)
                goto bad;
        } else if (!strcmp(name, "bool")) {
            want = "bool";
            if (t != MS_YAML_BOOL)
                goto bad;
        } else if (!strcmp(name, "null")) {
            want = "null";
            if (t != MS_YAML_NULL)
                goto bad;
        } else if (!strcmp(name, "map") || !strcmp(name, "seq")) {
            return fail(c, n->line, n->col, "tag !!%s on a scalar", name);
        } else if (n->style != MS_YAML_PLAIN) {
            t = MS_YAML_STR;
        }
    } else if (n->style != MS_YAML_PLAIN) {
        t = MS_YAML_STR;
    }
    n->type = t;
    if (t == MS_YAML_BOOL || t == MS_YAML_INT)
        n->v.integer = iv;
    if (t == MS_YAML_BOOL)
        n->v.boolean = (int)iv;
    if (t == MS_YAML_FLOAT)
        n->v.number = dv;
    return 0;
bad:
    return fail(c, n->line, n->col, "invalid !!%s value '%s'", want, shown(n, buf));
}

static enum ms_yaml_style scalar_style(yaml_scalar_style_t s)
{
    switch (s) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        return MS_YAML_SINGLE_QUOTED;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        return MS_YAML_DOUBLE_QUOTED;
    case YAML_LITERAL_SCALAR_STYLE:
        return MS_YAML_LITERAL;
    case YAML_FOLDED_SCALAR_STYLE:
        return MS_YAML_FOLDED;
    default:
        return MS_YAML_PLAIN;
    }
}

static int on_scalar(struct composer *c, const yaml_event_t *ev)
{
    struct ms_yaml_node *n = new_node(c, ev, ev->data.scalar.tag);
    if (!n)
        return MS_YAML_ENOMEM;
    n->style = scalar_style(ev->data.scalar.style);
    n->len = ev->data.scalar.length;
    n->text = arena_strdup(c->arena, (const char *)ev->data.scalar.value, n->len);
    if (!n->text)
        return nomem(c);
    int rc = type_scalar(c, n);
    if (rc == 0)
        rc = count_node(c, 1, &ev->start_mark);
    if (rc == 0 && add_anchor(c, ev->data.scalar.anchor, n, 1) == -2)
        rc = MS_YAML_ENOMEM;
    return rc ? rc : add_node(c, n);
}

static int on_alias(struct composer *c, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    for (size_t i = c->nanchors; i-- > 0;) {
        if (strcmp(c->anchors[i].name, name) != 0)
            continue;
        if (!c->anchors[i].complete)
            return fail(c, line, col, "recursive alias '%s' is not supported", name);
        int rc = count_node(c, c->anchors[i].node->expanded, &ev->start_mark);
        return rc ? rc : add_node(c, c->anchors[i].node);
    }
    return fail(c, line, col, "undefined alias '%s'", name);
}

static int on_start(struct composer *c, const yaml_event_t *ev, enum ms_yaml_type type)
{
    int map = type == MS_YAML_MAP;
    const yaml_char_t *tag = map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
    const yaml_char_t *anchor =
        map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    int flow = map ? ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                   : ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
    if (c->depth >= c->max_depth)
        return fail(c, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                    "nesting deeper than %d levels", c->max_depth);
    int rc = count_node(c, 1, &ev->start_mark);
    if (rc)
        return rc;
    struct ms_yaml_node *n = new_node(c, ev, tag);
    if (!n)
        return MS_YAML_ENOMEM;
    n->type = type;
    n->style = flow ? MS_YAML_FLOW : MS_YAML_BLOCK;
    if (c->depth == c->stack_cap) {
        int cap = c->stack_cap ? c->stack_cap * 2 : 16;
        struct frame *s = realloc(c->stack, (size_t)cap * sizeof *s);
        if (!s)
            return nomem(c);
        c->stack = s;
        c->stack_cap = cap;
    }
    long a = add_anchor(c, anchor, n, 0);
    if (a == -2)
        return MS_YAML_ENOMEM;
    c->stack[c->depth++] = (struct frame){n, NULL, 0, 0, a};
    return 0;
}

/* ---- mapping keys: an open-addressing set of key texts ---- */

struct keyset {
    struct ms_yaml_node **slots; /* owns the array; NULL slot is empty */
    size_t mask;
};

static size_t hash_text(const char *t, size_t len)
{
    size_t h = 14695981039346656037ULL & SIZE_MAX;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)t[i]) * (1099511628211ULL & SIZE_MAX);
    return h;
}

static int keyset_init(struct keyset *ks, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    ks->slots = calloc(cap, sizeof *ks->slots);
    ks->mask = cap - 1;
    return ks->slots ? 0 : -1;
}

/* Returns the node already holding key's text, or NULL after adding key. */
static struct ms_yaml_node *keyset_put(struct keyset *ks, struct ms_yaml_node *key)
{
    size_t i = hash_text(key->text, key->len) & ks->mask;
    for (; ks->slots[i]; i = (i + 1) & ks->mask) {
        struct ms_yaml_node *k = ks->slots[i];
        if (k->len == key->len && memcmp(k->text, key->text, k->len) == 0)
            return k;
    }
    ks->slots[i] = key;
    return NULL;
}

static int is_merge_key(const struct ms_yaml_node *k)
{
    if (tag_is(k, "merge"))
        return 1;
    return !k->tag && k->style == MS_YAML_PLAIN && k->len == 2 && memcmp(k->text, "<<", 2) == 0;
}

/* The mappings a merge key's value names: itself, or the items of a sequence of mappings. */
static int merge_sources(struct composer *c, struct ms_yaml_node *v, struct ms_yaml_node ***src,
                         size_t *n)
{
    if (v->type == MS_YAML_MAP) {
        *src = NULL;
        *n = 1;
        return 0;
    }
    if (v->type == MS_YAML_SEQ) {
        for (size_t i = 0; i < v->count; i++)
            if (v->items[i]->type != MS_YAML_MAP)
                return fail(c, v->items[i]->line, v->items[i]->col,
                            "merge key '<<' expects a mapping or a list of mappings");
        *src = v->items;
        *n = v->count;
        return 0;
    }
    return fail(c, v->line, v->col, "merge key '<<' expects a mapping or a list of mappings");
}

static int finish_map(struct composer *c, struct frame *f)
{
    struct ms_yaml_node *m = f->node;
    size_t npairs = f->n / 2, total = npairs;
    struct keyset ks = {0};
    char buf[48];
    int rc = 0;

    for (size_t i = 0; i < npairs; i++) {
        struct ms_yaml_node *k = f->kids[2 * i], *v = f->kids[2 * i + 1];
        if (k->type == MS_YAML_SEQ || k->type == MS_YAML_MAP)
            return fail(c, k->line, k->col, "mapping keys must be scalars");
        if (is_merge_key(k)) {
            struct ms_yaml_node **src;
            size_t nsrc;
            if ((rc = merge_sources(c, v, &src, &nsrc)))
                return rc;
            for (size_t j = 0; j < nsrc; j++)
                total += (src ? src[j] : v)->count;
        }
    }
    if (keyset_init(&ks, total))
        return nomem(c);
    /* Keys written in this mapping first: they are checked for duplicates and override
     * whatever the merges bring, wherever the '<<' stands. */
    struct ms_yaml_node *merge = NULL;
    for (size_t i = 0; i < npairs; i++) {
        struct ms_yaml_node *k = f->kids[2 * i], *first;
        if (is_merge_key(k)) {
            /* Not a key of the result (a quoted '<<' is one), but only one per mapping. */
            first = merge;
            merge = k;
        } else {
            first = keyset_put(&ks, k);
        }
        if (first) {
            rc = fail(c, k->line, k->col, "duplicate key '%s' (first at %d:%d)", shown(k, buf),
                      first->line, first->col);
            goto done;
        }
    }
    m->pairs = arena_alloc(c->arena, (total ? total : 1) * sizeof *m->pairs);
    if (!m->pairs) {
        rc = nomem(c);
        goto done;
    }
    m->count = 0;
    m->expanded = 1;
    for (size_t i = 0; i < npairs; i++) {
        struct ms_yaml_node *k = f->kids[2 * i], *v = f->kids[2 * i + 1];
        if (!is_merge_key(k)) {
            m->pairs[m->count++] = (struct ms_yaml_pair){k, v};
            m->expanded = sat_add(m->expanded, sat_add(k->expanded, v->expanded));
            continue;
        }
        /* YAML 1.1 merge: earlier mappings of the list win over later ones. */
        struct ms_yaml_node **src;
        size_t nsrc;
        merge_sources(c, v, &src, &nsrc);
        for (size_t j = 0; j < nsrc; j++) {
            struct ms_yaml_node *s = src ? src[j] : v;
            for (size_t p = 0; p < s->count; p++) {
                if (keyset_put(&ks, s->pairs[p].key))
                    continue;
                m->pairs[m->count++] = s->pairs[p];
                m->expanded = sat_add(
                    m->expanded, sat_add(s->pairs[p].key->expanded, s->pairs[p].value->expanded));
            }
        }
    }
done:
    free(ks.slots);
    return rc;
}

static int on_end(struct composer *c, const yaml_event_t *ev)
{
    struct frame *f = &c->stack[c->depth - 1];
    struct ms_yaml_node *n = f->node;
    int rc = 0;
    if (n->type == MS_YAML_MAP) {
        rc = finish_map(c, f);
    } else {
        n->count = f->n;
        n->items = arena_alloc(c->arena, (f->n ? f->n : 1) * sizeof *n->items);
        if (!n->items)
            rc = nomem(c);
        else if (f->n)
            memcpy(n->items, f->kids, f->n * sizeof *n->items);
        for (size_t i = 0; i < f->n; i++)
            n->expanded = sat_add(n->expanded, f->kids[i]->expanded);
    }
    if (rc)
        return rc;
    if (f->anchor >= 0)
        c->anchors[f->anchor].complete = 1;
    free(f->kids);
    c->depth--;
    return add_node(c, n);
}

static int on_document_end(struct composer *c)
{
    struct ms_yaml_stream *s = c->s;
    if (s->ndocs == c->docs_cap) {
        size_t cap = c->docs_cap ? c->docs_cap * 2 : 4;
        struct ms_yaml_node **d = realloc(s->docs, cap * sizeof *d);
        if (!d)
            return nomem(c);
        s->docs = d;
        c->docs_cap = cap;
    }
    s->docs[s->ndocs++] = c->root;
    c->root = NULL;
    c->nanchors = 0; /* anchors do not cross documents */
    return 0;
}

/* libyaml reports reader errors (bad UTF-8, control characters) by byte offset only. */
static void offset_position(const char *text, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n')
            ++*line, *col = 1;
        else if (((unsigned char)text[i] & 0xC0) != 0x80)
            ++*col;
    }
}

static int parser_error(struct composer *c)
{
    yaml_parser_t *p = &c->parser;
    int line, col;
    if (p->error == YAML_MEMORY_ERROR)
        return nomem(c);
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        offset_position(c->text, c->len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return fail(c, line, col, "%s (0x%X)", problem, (unsigned)p->problem_value);
        return fail(c, line, col, "%s", problem);
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        return fail(c, line, col, "%s (%s started at %d:%d)", problem, p->context,
                    (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    return fail(c, line, col, "%s", problem);
}

static int compose(struct composer *c)
{
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&c->parser, &ev))
            return parser_error(c);
        int rc = 0, done = 0;
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
            rc = on_scalar(c, &ev);
            break;
        case YAML_ALIAS_EVENT:
            rc = on_alias(c, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(c, &ev, MS_YAML_SEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(c, &ev, MS_YAML_MAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = on_end(c, &ev);
            break;
        case YAML_DOCUMENT_END_EVENT:
            rc = on_document_end(c);
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc || done)
            return rc;
    }
}

int ms_yaml_parse(const char *text, size_t len, const struct ms_yaml_opts *opts,
                  struct ms_yaml_stream **out)
{
    struct composer c;
    memset(&c, 0, sizeof c);
    *out = NULL;
    c.text = text;
    c.len = len;
    c.filename = opts && opts->filename ? opts->filename : "<string>";
    c.max_nodes = opts && opts->max_nodes ? opts->max_nodes : MS_YAML_MAX_NODES;
    c.max_depth = opts && opts->max_depth > 0 ? opts->max_depth : MS_YAML_MAX_DEPTH;
    c.s = calloc(1, sizeof *c.s);
    c.arena = calloc(1, sizeof *c.arena);
    if (!c.s || !c.arena || !yaml_parser_initialize(&c.parser)) {
        free(c.s);
        free(c.arena);
        return MS_YAML_ENOMEM;
    }
    c.s->arena = c.arena;
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
    int rc = compose(&c);
    yaml_parser_delete(&c.parser);
    for (int i = 0; i < c.depth; i++)
        free(c.stack[i].kids);
    free(c.stack);
    free(c.anchors);
    if (c.nomem) {
        ms_yaml_stream_free(c.s);
        return MS_YAML_ENOMEM;
    }
    if (rc) {
        /* A failed stream holds only its error: no half-built documents. */
        free(c.s->docs);
        c.s->docs = NULL;
        c.s->ndocs = 0;
        rc = MS_YAML_EPARSE;
    }
    *out = c.s;
    return rc;
}
