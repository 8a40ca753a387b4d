/* moonship.json: JSON decoding on cJSON (integers read from their own digits, so they stay
 * exact) and an encoder that keeps integers, [] versus {}, and nulls as they were decoded. */
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "lua/modules.h"
#include "lua/options.h"
#include "lua/shape.h"

#define TREE_MT "moonship.json.Tree"
#define OUT_MT "moonship.json.Output"

/* ---- decode ---- */

/* cJSON's tree lives in a box whose __gc frees it: building the Lua value may raise. */
struct tree {
    cJSON *root;           /* owns */
    struct ms_json_buf buf; /* a string being unescaped */
    struct ms_json_scan numbers, strings;
};

static int tree_gc(lua_State *L)
{
    struct tree *t = luaL_checkudata(L, 1, TREE_MT);
    cJSON_Delete(t->root);
    t->root = NULL;
    ms_json_buf_free(&t->buf);
    return 0;
}

/* Pushes the next string literal of the text: cJSON's copy would end at a \u0000. */
static void push_next_string(lua_State *L, struct tree *t, const char *fallback)
{
    size_t start, n;
    t->buf.len = 0;
    if (!ms_json_next_string(&t->strings, &start, &n) ||
        ms_json_unescape(&t->buf, t->strings.text + start, n) == MS_JSON_ENOMEM) {
        lua_pushstring(L, fallback);
        return;
    }
    lua_pushlstring(L, t->buf.data ? t->buf.data : "", t->buf.len);
}

static void push_item(lua_State *L, struct tree *t, const cJSON *item)
{
    luaL_checkstack(L, 6, "json.decode: nesting too deep");
    if (cJSON_IsNull(item)) {
        ms_push_null(L);
    } else if (cJSON_IsBool(item)) {
        lua_pushboolean(L, cJSON_IsTrue(item));
    } else if (cJSON_IsNumber(item)) {
        /* cJSON only keeps a double: read the token again to keep integers exact. */
        size_t start, n;
        long long v;
        if (ms_json_next_number(&t->numbers, &start, &n) &&
            ms_json_token_integer(t->numbers.text + start, n, &v))
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, (lua_Number)item->valuedouble);
    } else if (cJSON_IsString(item)) {
        push_next_string(L, t, item->valuestring);
    } else if (cJSON_IsArray(item)) {
        lua_createtable(L, cJSON_GetArraySize(item), 0);
        lua_Integer i = 0;
        for (const cJSON *c = item->child; c; c = c->next) {
            push_item(L, t, c);
            lua_rawseti(L, -2, ++i);
        }
        ms_set_shape(L, -1, MS_SHAPE_ARRAY);
    } else if (cJSON_IsObject(item)) {
        lua_createtable(L, 0, cJSON_GetArraySize(item));
        for (const cJSON *c = item->child; c; c = c->next) {
            push_next_string(L, t, c->string);
            push_item(L, t, c);
            lua_rawset(L, -3); /* a repeated key: the last one wins */
        }
        if (!item->child)
            ms_set_shape(L, -1, MS_SHAPE_OBJECT);
    } else {
        ms_push_null(L);
    }
}

static int decode_error(lua_State *L, const char *text, size_t len, size_t off, const char *msg)
{
    char what[48];
    int line, col;
    ms_json_position(text, len, off, &line, &col);
    if (!msg) {
        unsigned char c = off < len ? (unsigned char)text[off] : 0;
        if (off >= len)
            snprintf(what, sizeof what, "unexpected end of input");
        else if (c > 0x20 && c < 0x7f)
            snprintf(what, sizeof what, "unexpected character '%c'", c);
        else
            snprintf(what, sizeof what, "unexpected byte 0x%02X", c);
        msg = what;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "json: %d:%d/%I: %s", line, col, (lua_Integer)off, msg);
    return 2;
}

/* json.decode(text) -> value | nil, "json: line:col/offset: message"
 * Arrays carry the array mark and empty objects the object mark, so they encode back the
 * same; null is json.null; integers are Lua integers. Raises only when text is not a string. */
static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *problem = NULL;
    long bad = ms_json_check(text, len, MS_JSON_MAX_DEPTH, &problem);
    if (bad >= 0)
        return decode_error(L, text, len, (size_t)bad, problem);
    struct tree *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, TREE_MT);
    const char *end = NULL;
    /* The length counts the terminating NUL, which cJSON wants to see after the value. */
    t->root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (!t->root) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        return decode_error(L, text, len, off, NULL);
    }
    t->numbers = t->strings = (struct ms_json_scan){text, len, 0};
    push_item(L, t, t->root);
    cJSON_Delete(t->root);
    t->root = NULL;
    ms_json_buf_free(&t->buf);
    return 1;
}

/* ---- encode ---- */

struct seg { /* one step of the path to the value being encoded, for messages */
    const char *s; /* borrows: the key is on the stack while its value is encoded */
    size_t n;
    lua_Integer i;
};

struct out {
    struct ms_json_buf b;
    int sort;
    char indent[17];
    int indent_len;
    int visiting; /* stack index of the set of tables being encoded */
    struct seg path[MS_JSON_MAX_DEPTH + 1];
};

static int out_gc(lua_State *L)
{
    struct out *o = luaL_checkudata(L, 1, OUT_MT);
    ms_json_buf_free(&o->b);
    return 0;
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

struct key {
    const char *s; /* borrows: held by the keys table */
    size_t n;
    int slot;
};

static int key_cmp(const void *pa, const void *pb)
{
    const struct key *a = pa, *b = pb;
    int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* Whether the table at idx encodes as an array: marked so, or keyed exactly 1..n (n > 0). */
static int is_array(lua_State *L, int idx)
{
    enum ms_shape shape = ms_shape_of(L, idx);
    if (shape != MS_SHAPE_NONE)
        return shape == MS_SHAPE_ARRAY;
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
            o->path[depth] = (struct seg){s, n, 0};
            encode(L, o, lua_gettop(L) - 2, depth + 1);
            lua_pop(L, 3);
        }
    } else {
        /* keys table: original key at 2k-1, its string at 2k */
        lua_newtable(L);
        int keys = lua_gettop(L), n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_rawseti(L, keys, 2 * n + 1);
            key_string(L, o, depth);
            lua_rawseti(L, keys, 2 * n + 2);
            n++;
        }
        struct key *ks = lua_newuserdatauv(L, (size_t)n * sizeof *ks + 1, 0);
        for (int j = 0; j < n; j++) {
            lua_rawgeti(L, keys, 2 * j + 2);
            ks[j].s = lua_tolstring(L, -1, &ks[j].n);
            ks[j].slot = j;
            lua_pop(L, 1);
        }
        qsort(ks, (size_t)n, sizeof *ks, key_cmp);
        for (int j = 0; j < n; j++) {
            if (j)
                put(L, o, ",", 1);
            newline(L, o, depth + 1);
            put_string(L, o, ks[j].s, ks[j].n);
            put(L, o, o->indent_len ? ": " : ":", o->indent_len ? 2 : 1);
            o->path[depth] = (struct seg){ks[j].s, ks[j].n, 0};
            lua_rawgeti(L, keys, 2 * ks[j].slot + 1);
            lua_rawget(L, idx);
            encode(L, o, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        first = n == 0;
        lua_settop(L, keys - 1);
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
    lua_pushvalue(L, idx);
    if (lua_rawget(L, o->visiting) != LUA_TNIL)
        enc_error(L, o, depth, "cannot encode a table that contains itself");
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, o->visiting);
    if (is_array(L, idx)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        put(L, o, "[", 1);
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1)
                put(L, o, ",", 1);
            newline(L, o, depth + 1);
            o->path[depth] = (struct seg){NULL, 0, i};
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
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, o->visiting);
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
    lua_newtable(L);
    o->visiting = lua_gettop(L);
    encode(L, o, 1, 0);
    lua_pushlstring(L, o->b.data ? o->b.data : "", o->b.len);
    ms_json_buf_free(&o->b);
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
    lua_pushboolean(L, is_array(L, 1));
    return 1;
}

static const luaL_Reg funcs[] = {
    {"encode", l_json_encode},
    {"decode", l_json_decode},
    {"array", l_json_array},
    {"object", l_json_object},
    {"is_array", l_json_is_array},
    {NULL, NULL},
};

int luaopen_moonship_core_json(lua_State *L)
{
    luaL_newmetatable(L, TREE_MT);
    lua_pushcfunction(L, tree_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newmetatable(L, OUT_MT);
    lua_pushcfunction(L, out_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 2);
    luaL_newlib(L, funcs);
    ms_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
