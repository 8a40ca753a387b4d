/* moonship.json: a one-pass decoder on core/json.h's reader (integers read from their own
 * digits, so they stay exact; strings keep their NULs) and an encoder that keeps integers,
 * [] versus {}, and nulls as they were decoded. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "lua/modules.h"
#include "lua/options.h"
#include "lua/shape.h"

#define DECODE_MT "moonship.json.Decode"
#define OUT_MT "moonship.json.Output"

/* ---- decode ---- */

#define MAX_DROP 32 /* paths in the drop option */
#define MAX_SEGMENTS 16

/* One decode: the reader, and the paths whose values are read past without being built. One
 * box per Lua state is kept in decode's upvalue and reused (a watch decodes thousands of
 * events); a decode that finds it busy (from a finalizer run mid-decode, or after a decode
 * that raised) takes a box of its own. __gc frees the reader's buffer. */
struct decode {
    struct ms_json_reader r;
    int busy;
    int array_mt, object_mt; /* stack indexes of the shape metatables */
    int ndrop;
    struct {
        int n;
        struct {
            const char *s;
            size_t len;
        } seg[MAX_SEGMENTS]; /* into the option's strings */
    } drop[MAX_DROP];
};

static int decode_gc(lua_State *L)
{
    struct decode *d = luaL_checkudata(L, 1, DECODE_MT);
    ms_json_reader_free(&d->r);
    return 0;
}

static void done_decoding(struct decode *d)
{
    if (d->r.buf.cap > 65536) /* one huge string is no reason to hold its buffer */
        ms_json_reader_free(&d->r);
    d->busy = 0;
}

/* The drop option: {"a.b.c", ...}, each a path of object keys from the top value. */
static void read_drop(lua_State *L, int idx, struct decode *d)
{
    luaL_argcheck(L, lua_type(L, idx) == LUA_TTABLE, 2, "drop must be a list of paths");
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    luaL_argcheck(L, n <= MAX_DROP, 2, "drop takes up to 32 paths");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        size_t len = 0;
        const char *path = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        luaL_argcheck(L, len > 0, 2, "drop: a path is a non-empty string");
        lua_pop(L, 1); /* the string stays alive in the option table */
        int k = d->ndrop++;
        d->drop[k].n = 0;
        for (const char *p = path, *end = path + len; p <= end;) {
            const char *dot = memchr(p, '.', (size_t)(end - p));
            if (!dot)
                dot = end;
            luaL_argcheck(L, d->drop[k].n < MAX_SEGMENTS && dot > p, 2,
                          "drop: a path is up to 16 non-empty keys joined by '.'");
            d->drop[k].seg[d->drop[k].n].s = p;
            d->drop[k].seg[d->drop[k].n++].len = (size_t)(dot - p);
            p = dot + 1;
        }
    }
}

/* Of the drop paths in `live` (their first `level` keys matched the way here), those that go on
 * through key (NULL: an array element, which only "*" matches): returns 1 when one ends at it
 * (its value is dropped), else sets *next. */
static int drop_key(const struct decode *d, uint32_t live, int level, const char *key, size_t len,
                    uint32_t *next)
{
    *next = 0;
    for (int i = 0; i < d->ndrop; i++) {
        if (!(live >> i & 1) || d->drop[i].n <= level)
            continue;
        const char *s = d->drop[i].seg[level].s;
        size_t n = d->drop[i].seg[level].len;
        if (!(n == 1 && s[0] == '*') && (!key || n != len || memcmp(s, key, len) != 0))
            continue;
        if (d->drop[i].n == level + 1)
            return 1;
        *next |= (uint32_t)1 << i;
    }
    return 0;
}

/* Pushes the value that starts with tok. Returns 0, or -1 when the reader failed. */
static int push_value(lua_State *L, struct decode *d, enum ms_json_token tok, uint32_t live,
                      int level)
{
    struct ms_json_reader *r = &d->r;
    switch (tok) {
    /* clang-format off */ /* one token a line */
    case MS_JSON_NULL: ms_push_null(L); return 0;
    case MS_JSON_FALSE: lua_pushboolean(L, 0); return 0;
    case MS_JSON_TRUE: lua_pushboolean(L, 1); return 0;
    case MS_JSON_INTEGER: lua_pushinteger(L, (lua_Integer)r->integer); return 0;
    case MS_JSON_NUMBER: lua_pushnumber(L, (lua_Number)r->number); return 0;
    case MS_JSON_STRING: lua_pushlstring(L, r->str, r->str_len); return 0;
    /* clang-format on */
    case MS_JSON_ARRAY: {
        luaL_checkstack(L, 4, "json.decode: nesting too deep");
        lua_newtable(L);
        lua_Integer n = 0;
        while ((tok = ms_json_read(r)) != MS_JSON_ARRAY_END) {
            uint32_t next = 0;
            if (tok == MS_JSON_ERROR)
                return -1;
            if (live && drop_key(d, live, level, NULL, 0, &next)) {
                if (ms_json_skip_rest(r, tok) == MS_JSON_ERROR)
                    return -1;
                continue;
            }
            if (push_value(L, d, tok, next, level + 1))
                return -1;
            lua_rawseti(L, -2, ++n);
        }
        lua_pushvalue(L, d->array_mt);
        lua_setmetatable(L, -2);
        return 0;
    }
    case MS_JSON_OBJECT: {
        luaL_checkstack(L, 4, "json.decode: nesting too deep");
        lua_newtable(L);
        int members = 0;
        while ((tok = ms_json_read(r)) != MS_JSON_OBJECT_END) {
            if (tok == MS_JSON_ERROR)
                return -1;
            uint32_t next = 0;
            if (live && drop_key(d, live, level, r->str, r->str_len, &next)) {
                if (ms_json_skip_value(r) == MS_JSON_ERROR)
                    return -1;
                continue;
            }
            lua_pushlstring(L, r->str, r->str_len);
            tok = ms_json_read(r);
            if (tok == MS_JSON_ERROR || push_value(L, d, tok, next, level + 1))
                return -1;
            lua_rawset(L, -3); /* a repeated key: the last one wins */
            members++;
        }
        if (!members) {
            lua_pushvalue(L, d->object_mt);
            lua_setmetatable(L, -2);
        }
        return 0;
    }
    default:
        return -1;
    }
}

/* json.decode(text [, {drop = {"a.b", ...}}])
 *   -> value | nil, "json: line:col/offset: message", "parse"
 * Arrays carry the array mark and empty objects the object mark, so they encode back the
 * same; null is json.null; integers are Lua integers. drop names the values (dotted paths of
 * keys from the top value; "*" stands for any key or any array element) that are read past
 * and left out: cheaper than building what is thrown away, such as the managedFields of
 * every watched object ("items.*.metadata.managedFields" in a list). Raises only for bad
 * arguments. */
static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_settop(L, 2);
    struct decode *d = lua_touserdata(L, lua_upvalueindex(1));
    if (d->busy) {
        d = lua_newuserdatauv(L, sizeof *d, 0);
        memset(d, 0, sizeof *d);
        luaL_setmetatable(L, DECODE_MT);
    }
    struct ms_json_buf keep = d->r.buf; /* the buffer outlives the reader's init */
    ms_json_reader_init(&d->r, text, len, MS_JSON_MAX_DEPTH);
    d->r.buf = keep;
    d->r.buf.len = 0;
    d->ndrop = 0;
    if (!lua_isnil(L, 2)) { /* raises on a bad option: d is not busy yet */
        static const char *const names[] = {"drop", NULL};
        ms_check_options(L, 2, "json.decode", names);
        lua_getfield(L, 2, "drop");
        if (!lua_isnil(L, -1))
            read_drop(L, lua_gettop(L), d);
        lua_pop(L, 1);
    }
    d->busy = 1;
    ms_push_shape_mt(L, MS_SHAPE_ARRAY);
    d->array_mt = lua_gettop(L);
    ms_push_shape_mt(L, MS_SHAPE_OBJECT);
    d->object_mt = lua_gettop(L);
    uint32_t live = d->ndrop ? (uint32_t)(((uint64_t)1 << d->ndrop) - 1) : 0;
    enum ms_json_token tok = ms_json_read(&d->r);
    if (tok == MS_JSON_ERROR || push_value(L, d, tok, live, 0) ||
        ms_json_read(&d->r) != MS_JSON_END) {
        int line, col;
        ms_json_position(text, len, d->r.error_at, &line, &col);
        int n = ms_fail(L, "parse", "json: %d:%d/%I: %s", line, col, (lua_Integer)d->r.error_at,
                        d->r.problem);
        done_decoding(d);
        return n;
    }
    done_decoding(d);
    return 1;
}

/* ---- encode ---- */

struct seg {       /* one step of the path to the value being encoded, for messages */
    const char *s; /* borrows: the key is on the stack while its value is encoded */
    size_t n;
    lua_Integer i;
};

struct key {
    const char *s; /* borrows: the key string is on the stack */
    size_t n;
    int slot; /* stack index of the value */
};

struct out {
    struct ms_json_buf b;
    int sort;
    char indent[17];
    int indent_len;
    int array_mt, object_mt; /* stack indexes of the shape metatables */
    struct seg *path;        /* owns; grown as deep as the value goes */
    const void **tables;     /* owns: the tables being encoded, outermost first (cycles) */
    int path_cap;
    struct key *keys; /* owns: the sorted keys of the objects being encoded, outermost first */
    size_t nkeys, keys_cap;
};

/* Frees what o owns; o stays reusable (and safe to free again). */
static void out_free(struct out *o)
{
    ms_json_buf_free(&o->b);
    free(o->path);
    free(o->tables);
    free(o->keys);
    o->path = NULL;
    o->tables = NULL;
    o->keys = NULL;
}

static int out_gc(lua_State *L)
{
    out_free(luaL_checkudata(L, 1, OUT_MT));
    return 0;
}

static int reserve_keys(struct out *o, size_t n)
{
    if (o->keys_cap - o->nkeys >= n)
        return 0;
    size_t cap = o->keys_cap ? o->keys_cap : 64;
    while (cap - o->nkeys < n)
        cap *= 2;
    struct key *k = realloc(o->keys, cap * sizeof *k);
    if (!k)
        return -1;
    o->keys = k;
    o->keys_cap = cap;
    return 0;
}

/* Makes room for depth in the path and the table stack. */
static void reserve_depth(lua_State *L, struct out *o, int depth)
{
    if (depth < o->path_cap)
        return;
    int cap = o->path_cap ? o->path_cap * 2 : 16;
    struct seg *p = realloc(o->path, (size_t)cap * sizeof *p);
    if (p)
        o->path = p;
    const void **t = p ? realloc(o->tables, (size_t)cap * sizeof *t) : NULL;
    if (!t)
        luaL_error(L, "json.encode: out of memory");
    o->tables = t;
    o->path_cap = cap;
}

/* Records the step taken at depth, for messages. */
static void set_path(lua_State *L, struct out *o, int depth, struct seg seg)
{
    reserve_depth(L, o, depth);
    o->path[depth] = seg;
}

/* Raises "json.encode: <what> at $.a[2].b" naming where the bad value is. */
static int enc_error(lua_State *L, struct out *o, int depth, const char *what)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "json.encode: ");
    luaL_addstring(&b, what);
    luaL_addstring(&b, " at $");
    for (int d = 0; d < depth; d++) {
        if (o->path[d].s) {
            luaL_addchar(&b, '.');
            luaL_addlstring(&b, o->path[d].s, o->path[d].n);
        } else {
            lua_pushfstring(L, "[%I]", o->path[d].i);
            luaL_addvalue(&b);
        }
    }
    luaL_pushresult(&b);
    return lua_error(L);
}

static void put(lua_State *L, struct out *o, const char *s, size_t n)
{
    if (ms_json_buf_add(&o->b, s, n))
        luaL_error(L, "json.encode: out of memory");
}

static void put_string(lua_State *L, struct out *o, const char *s, size_t n)
{
    if (ms_json_add_string(&o->b, s, n))
        luaL_error(L, "json.encode: out of memory");
}

static void newline(lua_State *L, struct out *o, int depth)
{
    if (!o->indent_len)
        return;
    put(L, o, "\n", 1);
    for (int d = 0; d < depth; d++)
        put(L, o, o->indent, (size_t)o->indent_len);
}

static int key_cmp(const void *pa, const void *pb)
{
    const struct key *a = pa, *b = pb;
    int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* Whether the table at idx is keyed exactly 1..n (n > 0). */
static int keyed_1_to_n(lua_State *L, int idx)
{
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
        if (lua_tointeger(L, -1) > max)
            max = lua_tointeger(L, -1);
    }
    return count > 0 && max == count;
}

static void encode(lua_State *L, struct out *o, int idx, int depth);

/* The key on top of the stack as an object key string, pushed above it. */
static void key_string(lua_State *L, struct out *o, int depth)
{
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_pushvalue(L, -1);
    } else if (lua_isinteger(L, -1)) {
        lua_pushfstring(L, "%I", lua_tointeger(L, -1));
    } else {
        char what[48];
        snprintf(what, sizeof what, "cannot encode a %s key", luaL_typename(L, -1));
        enc_error(L, o, depth, what);
    }
}

static void encode_object(lua_State *L, struct out *o, int idx, int depth)
{
    int first = 1;
    put(L, o, "{", 1);
    if (!o->sort) {
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pushvalue(L, -2);
            key_string(L, o, depth);
            size_t n;
            const char *s = lua_tolstring(L, -1, &n);
            if (!first)
                put(L, o, ",", 1);
            first = 0;
            newline(L, o, depth + 1);
            put_string(L, o, s, n);
            put(L, o, o->indent_len ? ": " : ":", o->indent_len ? 2 : 1);
            set_path(L, o, depth, (struct seg){s, n, 0});
            encode(L, o, lua_gettop(L) - 2, depth + 1);
            lua_pop(L, 3);
        }
    } else {
        /* Each member's key string and value go on the stack, then are written in key order:
         * nothing is allocated per object but room in the scratch of keys. */
        int base = lua_gettop(L), n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) { /* ... key value */
            luaL_checkstack(L, 4, "json.encode: object too large");
            lua_pushvalue(L, -2);
            key_string(L, o, depth); /* ... key value key keystr */
            lua_replace(L, -4);      /* ... keystr value key: the key goes on to lua_next */
            n++;
        }
        size_t k0 = o->nkeys;
        if (n && reserve_keys(o, (size_t)n))
            luaL_error(L, "json.encode: out of memory");
        for (int j = 0; j < n; j++) {
            struct key *k = &o->keys[k0 + (size_t)j];
            k->s = lua_tolstring(L, base + 2 * j + 1, &k->n);
            k->slot = base + 2 * j + 2;
        }
        o->nkeys = k0 + (size_t)n;
        if (n > 1)
            qsort(o->keys + k0, (size_t)n, sizeof *o->keys, key_cmp);
        for (int j = 0; j < n; j++) {
            const struct key *ks = o->keys + k0; /* nested objects may have moved the scratch */
            if (j)
                put(L, o, ",", 1);
            newline(L, o, depth + 1);
            put_string(L, o, ks[j].s, ks[j].n);
            put(L, o, o->indent_len ? ": " : ":", o->indent_len ? 2 : 1);
            set_path(L, o, depth, (struct seg){ks[j].s, ks[j].n, 0});
            encode(L, o, ks[j].slot, depth + 1);
        }
        o->nkeys = k0;
        first = n == 0;
        lua_settop(L, base);
    }
    if (!first)
        newline(L, o, depth);
    put(L, o, "}", 1);
}

static void encode_table(lua_State *L, struct out *o, int idx, int depth)
{
    luaL_checkstack(L, 8, "json.encode: nesting too deep");
    if (depth >= MS_JSON_MAX_DEPTH)
        enc_error(L, o, depth, "nesting deeper than 1000 levels");
    /* a cycle goes through the tables being encoded: the path is short, a scan is cheap */
    const void *self = lua_topointer(L, idx);
    for (int d = 0; d < depth; d++)
        if (o->tables[d] == self)
            enc_error(L, o, depth, "cannot encode a table that contains itself");
    reserve_depth(L, o, depth);
    o->tables[depth] = self;
    int array;
    if (!lua_getmetatable(L, idx)) {
        array = keyed_1_to_n(L, idx);
    } else {
        array = lua_rawequal(L, -1, o->array_mt)    ? 1
                : lua_rawequal(L, -1, o->object_mt) ? 0
                                                    : keyed_1_to_n(L, idx);
        lua_pop(L, 1);
    }
    if (array) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        put(L, o, "[", 1);
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1)
                put(L, o, ",", 1);
            newline(L, o, depth + 1);
            set_path(L, o, depth, (struct seg){NULL, 0, i});
            lua_rawgeti(L, idx, i);
            encode(L, o, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        if (n)
            newline(L, o, depth);
        put(L, o, "]", 1);
    } else {
        encode_object(L, o, idx, depth);
    }
}

static void encode(lua_State *L, struct out *o, int idx, int depth)
{
    char what[48];
    int rc = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        put(L, o, "null", 4);
        return;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(L, o, "true", 4);
        else
            put(L, o, "false", 5);
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            rc = ms_json_add_integer(&o->b, (long long)lua_tointeger(L, idx));
        else
            rc = ms_json_add_number(&o->b, (double)lua_tonumber(L, idx), 0);
        if (rc == MS_JSON_EDOM)
            enc_error(L, o, depth, "cannot encode NaN or infinity");
        else if (rc)
            luaL_error(L, "json.encode: out of memory");
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        put_string(L, o, s, n);
        return;
    }
    case LUA_TTABLE:
        encode_table(L, o, idx, depth);
        return;
    default:
        if (ms_is_null(L, idx)) {
            put(L, o, "null", 4);
            return;
        }
        snprintf(what, sizeof what, "cannot encode a %s", luaL_typename(L, idx));
        enc_error(L, o, depth, what);
    }
}

/* json.encode(value [, {sort_keys=bool, indent=n|string}]) -> text
 * Raises for values JSON cannot hold (functions, userdata, cycles, NaN, boolean keys), naming
 * their path. Integers stay integers; integral floats are written as integers (3.0 -> 3). A
 * table is an array when marked (json.array, decoded arrays) or keyed exactly 1..n; an empty
 * unmarked table is {}. Integer keys of an object become strings. */
static int l_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 2);
    struct out *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, OUT_MT);
    if (!lua_isnil(L, 2)) {
        static const char *const names[] = {"sort_keys", "indent", NULL};
        ms_check_options(L, 2, "json.encode", names);
        lua_getfield(L, 2, "sort_keys");
        o->sort = lua_toboolean(L, -1);
        lua_getfield(L, 2, "indent");
        if (lua_isinteger(L, -1)) {
            lua_Integer n = lua_tointeger(L, -1);
            luaL_argcheck(L, n >= 0 && n <= 16, 2, "indent must be 0..16 spaces");
            memset(o->indent, ' ', (size_t)n);
            o->indent_len = (int)n;
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            size_t n;
            const char *s = lua_tolstring(L, -1, &n);
            luaL_argcheck(L, n <= 16 && strspn(s, " \t") == n, 2,
                          "indent must be up to 16 spaces or tabs");
            memcpy(o->indent, s, n);
            o->indent_len = (int)n;
        } else if (!lua_isnil(L, -1)) {
            luaL_argerror(L, 2, "indent must be a number or a string");
        }
        lua_pop(L, 2);
    }
    ms_push_shape_mt(L, MS_SHAPE_ARRAY);
    o->array_mt = lua_gettop(L);
    ms_push_shape_mt(L, MS_SHAPE_OBJECT);
    o->object_mt = lua_gettop(L);
    encode(L, o, 1, 0);
    lua_pushlstring(L, o->b.data ? o->b.data : "", o->b.len);
    out_free(o);
    return 1;
}

static int mark(lua_State *L, enum ms_shape shape, const char *fn)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1) && ms_shape_of(L, 1) == MS_SHAPE_NONE)
        return luaL_error(L, "%s: the table already has a metatable", fn);
    ms_set_shape(L, 1, shape);
    lua_settop(L, 1);
    return 1;
}

/* json.array([t]) -> t: encodes t as an array even when empty. Raises when t has a
 * metatable of its own. */
static int l_json_array(lua_State *L)
{
    return mark(L, MS_SHAPE_ARRAY, "json.array");
}

/* json.object([t]) -> t: encodes t as an object even when empty or keyed 1..n. */
static int l_json_object(lua_State *L)
{
    return mark(L, MS_SHAPE_OBJECT, "json.object");
}

/* json.is_array(t) -> bool: whether t would encode as an array. */
static int l_json_is_array(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    enum ms_shape shape = ms_shape_of(L, 1);
    lua_pushboolean(L, shape == MS_SHAPE_NONE ? keyed_1_to_n(L, 1) : shape == MS_SHAPE_ARRAY);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"encode", l_json_encode},
    {"decode", NULL}, /* a closure over its reusable box, set below */
    {"array", l_json_array},
    {"object", l_json_object},
    {"is_array", l_json_is_array},
    {NULL, NULL},
};

int luaopen_moonship_core_json(lua_State *L)
{
    luaL_newmetatable(L, DECODE_MT);
    lua_pushcfunction(L, decode_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newmetatable(L, OUT_MT);
    lua_pushcfunction(L, out_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 2);
    luaL_newlib(L, funcs);
    struct decode *d = lua_newuserdatauv(L, sizeof *d, 0);
    memset(d, 0, sizeof *d);
    luaL_setmetatable(L, DECODE_MT);
    lua_pushcclosure(L, l_json_decode, 1);
    lua_setfield(L, -2, "decode");
    ms_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
